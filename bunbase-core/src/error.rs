//! One error type for the whole platform, with stable machine codes.
//!
//! Shells never invent codes: they map [`ErrorCode`] to an HTTP status, a gRPC
//! status or a RESP error in exactly one place each.

use std::fmt;
use std::time::Duration;

/// Stable, machine-readable error codes. The string forms are part of the
/// public API (`{"error":{"code":"not_found",…}}`) and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    NotFound,
    AlreadyExists,
    InvalidInput,
    Unauthenticated,
    PermissionDenied,
    Conflict,
    PayloadTooLarge,
    /// A project's stored data reached its quota (keys, bytes).
    QuotaExceeded,
    /// A condition of the request (`If-None-Match: *`, `If-Match`) does not
    /// hold: nothing was changed.
    PreconditionFailed,
    /// A byte range starts beyond the end of the object.
    RangeNotSatisfiable,
    /// A function ran and failed: it threw, returned no Response, or a
    /// limit (time, CPU, memory, response size) stopped it.
    FunctionFailed,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidInput,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::QuotaExceeded,
        ErrorCode::PreconditionFailed,
        ErrorCode::RangeNotSatisfiable,
        ErrorCode::FunctionFailed,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::PreconditionFailed => "precondition_failed",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::FunctionFailed => "function_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The gRPC status code (numbering of the gRPC spec, as `tonic::Code`).
    /// The one mapping both the gRPC servers and clients use.
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorCode::InvalidInput => 3,         // INVALID_ARGUMENT
            ErrorCode::NotFound => 5,             // NOT_FOUND
            ErrorCode::AlreadyExists => 6,        // ALREADY_EXISTS
            ErrorCode::PermissionDenied => 7,     // PERMISSION_DENIED
            ErrorCode::RateLimited => 8,          // RESOURCE_EXHAUSTED
            ErrorCode::PayloadTooLarge => 8,      // RESOURCE_EXHAUSTED
            ErrorCode::QuotaExceeded => 8,        // RESOURCE_EXHAUSTED
            ErrorCode::PreconditionFailed => 9,   // FAILED_PRECONDITION
            ErrorCode::RangeNotSatisfiable => 11, // OUT_OF_RANGE
            ErrorCode::FunctionFailed => 2,       // UNKNOWN
            ErrorCode::Conflict => 10,            // ABORTED
            ErrorCode::Internal => 13,            // INTERNAL
            ErrorCode::Unavailable => 14,         // UNAVAILABLE
            ErrorCode::Unauthenticated => 16,     // UNAUTHENTICATED
        }
    }

    /// Whether the same request may succeed later unchanged (the server or
    /// a dependency was down, busy or failed), so a client should retry.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable | ErrorCode::RateLimited | ErrorCode::Internal
        )
    }

    /// The HTTP status of an error response with this code: the one mapping
    /// the HTTP shells answer with and the HTTP client reads back.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists => 409,
            ErrorCode::InvalidInput => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            // 507: the request is fine, the project's storage is full.
            ErrorCode::QuotaExceeded => 507,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::RangeNotSatisfiable => 416,
            // 502: the platform is fine; the function behind it failed.
            ErrorCode::FunctionFailed => 502,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The code an HTTP error status stands for when the response carries
    /// no platform error body (axum's rejections, a proxy's 502).
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            401 => ErrorCode::Unauthenticated,
            403 => ErrorCode::PermissionDenied,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            412 => ErrorCode::PreconditionFailed,
            413 => ErrorCode::PayloadTooLarge,
            416 => ErrorCode::RangeNotSatisfiable,
            429 => ErrorCode::RateLimited,
            507 => ErrorCode::QuotaExceeded,
            408 | 502..=504 => ErrorCode::Unavailable,
            400..=499 => ErrorCode::InvalidInput,
            _ => ErrorCode::Internal,
        }
    }

    /// The platform code a gRPC status code stands for (the stable code
    /// itself travels in the status details when we sent it).
    pub fn from_grpc_code(code: i32) -> ErrorCode {
        match code {
            3 => ErrorCode::InvalidInput,
            11 => ErrorCode::RangeNotSatisfiable,
            5 => ErrorCode::NotFound,
            6 => ErrorCode::AlreadyExists,
            7 => ErrorCode::PermissionDenied,
            8 => ErrorCode::RateLimited,
            9 => ErrorCode::PreconditionFailed,
            10 => ErrorCode::Conflict,
            1 | 4 | 14 => ErrorCode::Unavailable, // cancelled, deadline, unavailable
            16 => ErrorCode::Unauthenticated,
            _ => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The platform error. Messages are safe to show to clients: they never carry
/// secrets, stack traces or internal addresses (`Internal` keeps its detail for
/// the log only, see [`Error::public_message`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("{0}")]
    FunctionFailed(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Error::InvalidInput(_) => ErrorCode::InvalidInput,
            Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Error::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Error::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Error::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            Error::RangeNotSatisfiable(_) => ErrorCode::RangeNotSatisfiable,
            Error::FunctionFailed(_) => ErrorCode::FunctionFailed,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message a client may see. Internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// Rebuilds an error from its wire form (used by clients).
    pub fn from_code(code: ErrorCode, message: impl Into<String>) -> Error {
        let message = message.into();
        match code {
            ErrorCode::NotFound => Error::NotFound(message),
            ErrorCode::AlreadyExists => Error::AlreadyExists(message),
            ErrorCode::InvalidInput => Error::InvalidInput(message),
            ErrorCode::Unauthenticated => Error::Unauthenticated(message),
            ErrorCode::PermissionDenied => Error::PermissionDenied(message),
            ErrorCode::Conflict => Error::Conflict(message),
            ErrorCode::PayloadTooLarge => Error::PayloadTooLarge(message),
            ErrorCode::QuotaExceeded => Error::QuotaExceeded(message),
            ErrorCode::PreconditionFailed => Error::PreconditionFailed(message),
            ErrorCode::RangeNotSatisfiable => Error::RangeNotSatisfiable(message),
            ErrorCode::FunctionFailed => Error::FunctionFailed(message),
            ErrorCode::RateLimited => Error::RateLimited {
                message,
                retry_after: None,
            },
            ErrorCode::Unavailable => Error::Unavailable(message),
            ErrorCode::Internal => Error::Internal(message),
        }
    }

    /// The same error, its message prefixed with what was being done
    /// (`opening the document store: …`).
    pub fn context(self, doing: impl fmt::Display) -> Error {
        match self {
            Error::RateLimited {
                message,
                retry_after,
            } => Error::RateLimited {
                message: format!("{doing}: {message}"),
                retry_after,
            },
            Error::Internal(detail) => Error::Internal(format!("{doing}: {detail}")),
            other => Error::from_code(other.code(), format!("{doing}: {other}")),
        }
    }

    pub fn not_found(what: impl fmt::Display) -> Error {
        Error::NotFound(format!("{what} not found"))
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidInput(message.into())
    }

    pub fn internal(detail: impl fmt::Display) -> Error {
        Error::Internal(detail.to_string())
    }

    pub fn unavailable(detail: impl fmt::Display) -> Error {
        Error::Unavailable(detail.to_string())
    }
}

/// An error as it travels over HTTP:
/// `{"error":{"code":"not_found","message":"…"}}`. The shells write it, the
/// client reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorDetail {
    /// An [`ErrorCode`] name (kept as text so that a newer server's code
    /// still parses).
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.as_str().to_string(),
                message: message.into(),
            },
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Error {
    /// The error an HTTP error response stands for: its platform body when
    /// it has one, else the code of its status.
    pub fn from_http(status: u16, body: &str, retry_after: Option<Duration>) -> Error {
        let parsed = serde_json::from_str::<ErrorBody>(body)
            .ok()
            .and_then(|b| Some((ErrorCode::parse(&b.error.code)?, b.error.message)));
        let (code, message) = parsed.unwrap_or_else(|| {
            (
                ErrorCode::from_http_status(status),
                format!("HTTP {status}"),
            )
        });
        match code {
            ErrorCode::RateLimited => Error::RateLimited {
                message,
                retry_after,
            },
            _ => Error::from_code(code, message),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::InvalidInput(format!("invalid JSON: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_names() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(Error::from_code(code, "x").code(), code);
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn every_code_round_trips_through_http() {
        for code in ErrorCode::ALL {
            let status = code.http_status();
            assert!((400..600).contains(&status), "{code}");
            let body = ErrorBody::new(code, "why").to_json();
            let back = Error::from_http(status, &body, None);
            assert_eq!(back.code(), code);
            assert_eq!(
                back.to_string(),
                if code == ErrorCode::Internal {
                    "internal error: why"
                } else {
                    "why"
                }
            );
            // Without a body, statuses unique to a code still map back to it
            // (a bare 502 is a proxy's, so `unavailable`, not a function's).
            if !matches!(code, ErrorCode::AlreadyExists | ErrorCode::FunctionFailed) {
                assert_eq!(ErrorCode::from_http_status(status), code, "{status}");
            }
        }
        assert_eq!(ErrorCode::from_http_status(502), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::from_http_status(418), ErrorCode::InvalidInput);
        let limited = Error::from_http(429, "", Some(Duration::from_secs(3)));
        assert!(
            matches!(limited, Error::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 3)
        );
        // A newer server's unknown code falls back to the status.
        let unknown = r#"{"error":{"code":"teapot","message":"m"}}"#;
        assert_eq!(
            Error::from_http(503, unknown, None).code(),
            ErrorCode::Unavailable
        );
    }

    #[test]
    fn context_keeps_the_code() {
        let err = Error::invalid("bad path").context("opening the store");
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert_eq!(err.to_string(), "opening the store: bad path");
        let err = Error::internal("disk").context("saving");
        assert_eq!(err.to_string(), "internal error: saving: disk");
    }

    #[test]
    fn internal_details_never_reach_clients() {
        let err = Error::internal("db password=hunter2 refused");
        assert_eq!(err.public_message(), "internal error");
        assert!(err.to_string().contains("hunter2"), "logs keep the detail");
    }
}
