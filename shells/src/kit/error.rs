use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::error::ErrorBody;
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
    ErrorBody::new(code, message).to_json()
}

/// An error response with a status of its own (412, 415), in the
/// platform's shape.
pub fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        error_body(code, message),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %self.0, "internal error");
        }
        let mut response = error_response(http_status(code), code, &self.0.public_message());
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
