//! The one place each error code maps to an HTTP status, a gRPC status code
//! and a RESP error prefix.

use axum::http::StatusCode;
use bunbase_core::ErrorCode;

pub fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists => StatusCode::CONFLICT,
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        // 507: the request is fine, the project's storage is full.
        ErrorCode::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code for an error response that did not come from core (axum's
/// rejections, the router's 404/405, the body limit, the timeout).
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::PermissionDenied,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::PayloadTooLarge,
        429 => ErrorCode::RateLimited,
        507 => ErrorCode::QuotaExceeded,
        408 | 502..=504 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    }
}

/// gRPC status codes: defined once in core, shared with the gRPC client.
pub fn grpc_code(code: ErrorCode) -> i32 {
    code.grpc_code()
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
    fn every_code_maps_and_round_trips_through_http() {
        for code in ErrorCode::ALL {
            let status = http_status(code);
            assert!(status.is_client_error() || status.is_server_error());
            assert!(grpc_code(code) > 0);
            assert!(resp_error(code, "x\r\ny").ends_with("x  y\r\n"));
            // Statuses that are unique to a code map back to it.
            if !matches!(code, ErrorCode::AlreadyExists | ErrorCode::Conflict) {
                let back = code_for_status(status);
                let expect = if code == ErrorCode::Unavailable {
                    ErrorCode::Unavailable
                } else {
                    code
                };
                assert_eq!(back, expect, "{code}");
            }
        }
    }
}
