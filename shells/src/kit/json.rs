use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::ApiError;
use bunbase_core::Error;

/// Why a request body could not be read, as a platform error (413 when
/// over the body limit).
pub fn body_error(rejection: axum::extract::rejection::BytesRejection) -> Error {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge("request body is larger than this server accepts".into())
    } else {
        Error::invalid(format!(
            "cannot read request body: {}",
            rejection.body_text()
        ))
    }
}

/// A JSON body, with errors in the platform's shape. Unlike `axum::Json`
/// it ignores a missing Content-Type only when the body is still JSON.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        if bytes.is_empty() {
            return Err(Error::invalid("request body is empty; send a JSON object").into());
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| Error::invalid(format!("invalid JSON body: {e}")).into())
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
