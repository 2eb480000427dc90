use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::{Error, ErrorCode};

use super::codes::http_status;

/// A core error on its way to an HTTP client, in the platform's shape:
/// `{"error":{"code":"not_found","message":"…"}}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError(err)
    }
}

/// The JSON body of an error response.
pub fn error_body(code: ErrorCode, message: &str) -> String {
    serde_json::json!({ "error": { "code": code.as_str(), "message": message } }).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %self.0, "internal error");
        }
        let mut response = (
            http_status(code),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            error_body(code, &self.0.public_message()),
        )
            .into_response();
        match &self.0 {
            Error::RateLimited {
                retry_after: Some(after),
                ..
            } => {
                let secs = after.as_secs().max(1).to_string();
                if let Ok(value) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            Error::Unauthenticated(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
