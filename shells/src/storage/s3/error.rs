//! S3's errors: a code, a message and a status, answered as
//! `<Error><Code>…</Code><Message>…</Message><Resource>…</Resource>
//! <RequestId>…</RequestId></Error>`; and the storage service's errors
//! translated into them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bunbase_core::Error;

use super::xml::Doc;

#[derive(Debug, Clone)]
pub struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// What a request was about, so `not_found` and friends name the right
/// thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    Bucket,
    CreateBucket,
    DeleteBucket,
    Object,
    Upload,
    Complete,
}

impl S3Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::bad_request("InvalidArgument", message)
    }

    pub fn access_denied(message: impl Into<String>) -> S3Error {
        S3Error::forbidden("AccessDenied", message)
    }

    pub fn malformed_xml(message: impl Into<String>) -> S3Error {
        S3Error::bad_request(
            "MalformedXML",
            format!(
                "The XML you provided was not well-formed or did not validate against our published schema: {}",
                message.into()
            ),
        )
    }

    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("{what} is not implemented by this server"),
        )
    }

    pub fn internal(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// The storage service's error, as S3 names it in `ctx`.
    pub fn from_core(e: Error, ctx: Ctx) -> S3Error {
        let message = e.to_string();
        match e {
            Error::NotFound(m) => {
                let code = if m.starts_with("bucket ") {
                    "NoSuchBucket"
                } else if m.starts_with("upload ") {
                    "NoSuchUpload"
                } else {
                    match ctx {
                        Ctx::Bucket | Ctx::CreateBucket | Ctx::DeleteBucket => "NoSuchBucket",
                        Ctx::Upload | Ctx::Complete => "NoSuchUpload",
                        Ctx::Object => "NoSuchKey",
                    }
                };
                let message = match code {
                    "NoSuchBucket" => "The specified bucket does not exist",
                    "NoSuchUpload" => {
                        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
                    }
                    _ => "The specified key does not exist.",
                };
                S3Error::new(StatusCode::NOT_FOUND, code, message)
            }
            Error::AlreadyExists(_) if ctx == Ctx::CreateBucket => S3Error::new(
                StatusCode::CONFLICT,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            ),
            Error::AlreadyExists(_) => {
                S3Error::new(StatusCode::CONFLICT, "OperationAborted", message)
            }
            Error::Conflict(_) if ctx == Ctx::DeleteBucket => S3Error::new(
                StatusCode::CONFLICT,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            ),
            Error::Conflict(_) => S3Error::new(StatusCode::CONFLICT, "OperationAborted", message),
            Error::PreconditionFailed(_) => S3Error::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
            Error::RangeNotSatisfiable(_) => S3Error::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            ),
            Error::PayloadTooLarge(_) => S3Error::bad_request("EntityTooLarge", message),
            Error::QuotaExceeded(_) => S3Error::forbidden("QuotaExceeded", message),
            Error::InvalidInput(m) => invalid_input(m, ctx),
            Error::Unauthenticated(_) | Error::PermissionDenied(_) => {
                S3Error::access_denied(message)
            }
            Error::RateLimited { .. } => S3Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
            ),
            Error::Unavailable(_) => S3Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Please reduce your request rate.",
            ),
            // Storage never runs functions; kept with internal errors.
            Error::Internal(m) | Error::FunctionFailed(m) => {
                tracing::error!(error = %m, "storage S3 API: internal error");
                S3Error::internal("We encountered an internal error. Please try again.")
            }
        }
    }

    /// The error answer; `head`: without a body (HEAD requests).
    pub fn response(&self, resource: &str, head: bool) -> Response {
        let request_id = bunbase_core::id::random_hex(8).to_ascii_uppercase();
        let mut response = if head {
            self.status.into_response()
        } else {
            let mut doc = Doc::plain("Error");
            doc.text("Code", self.code)
                .text("Message", &self.message)
                .text("Resource", resource)
                .text("RequestId", &request_id);
            let mut r = (self.status, doc.finish("Error")).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            r
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amz-request-id", v);
        }
        response
    }
}

fn invalid_input(m: String, ctx: Ctx) -> S3Error {
    if ctx == Ctx::Complete {
        if m.contains("ascending order") {
            return S3Error::bad_request(
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            );
        }
        if m.contains("was not uploaded") || m.contains("ETag does not match") {
            return S3Error::bad_request(
                "InvalidPart",
                format!(
                    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag. ({m})"
                ),
            );
        }
        if m.contains("at least 5 MiB") {
            return S3Error::bad_request(
                "EntityTooSmall",
                format!(
                    "Your proposed upload is smaller than the minimum allowed object size. ({m})"
                ),
            );
        }
        if m.contains("at least one part") {
            return S3Error::malformed_xml(m);
        }
    }
    if m.starts_with("bucket name") {
        return S3Error::bad_request("InvalidBucketName", m);
    }
    if m.starts_with("object keys are 1 to") {
        return S3Error::bad_request("KeyTooLongError", m);
    }
    if m.contains("ended after") {
        return S3Error::bad_request(
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header",
        );
    }
    S3Error::invalid_argument(m)
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
