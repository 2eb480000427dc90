//! Error codes on the wire. The HTTP and gRPC mappings are defined once in
//! core (`ErrorCode::http_status`, `ErrorCode::grpc_code`) and shared with
//! the client; here they become axum's types, plus the RESP error prefix.

use axum::http::StatusCode;
use bunbase_core::ErrorCode;

pub fn http_status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The code for an error response that did not come from core (axum's
/// rejections, the router's 404/405, the body limit, the timeout).
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    ErrorCode::from_http_status(status.as_u16())
}

/// RESP error line for a code, Redis style (`-ERR …`, `-NOAUTH …`).
pub fn resp_error(code: ErrorCode, message: &str) -> String {
    let prefix = match code {
        ErrorCode::Unauthenticated => "NOAUTH",
        ErrorCode::PermissionDenied => "NOPERM",
        ErrorCode::Unavailable => "LOADING",
        _ => "ERR",
    };
    let clean: String = message
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    format!("-{prefix} {clean}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_a_resp_line() {
        for code in ErrorCode::ALL {
            let status = http_status(code);
            assert!(status.is_client_error() || status.is_server_error());
            assert_eq!(status.as_u16(), code.http_status());
            assert!(resp_error(code, "x\r\ny").ends_with("x  y\r\n"));
        }
        assert_eq!(
            code_for_status(StatusCode::METHOD_NOT_ALLOWED),
            ErrorCode::InvalidInput
        );
    }
}
