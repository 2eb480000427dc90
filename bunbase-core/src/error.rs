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
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidInput,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::QuotaExceeded,
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
            ErrorCode::InvalidInput => 3,     // INVALID_ARGUMENT
            ErrorCode::NotFound => 5,         // NOT_FOUND
            ErrorCode::AlreadyExists => 6,    // ALREADY_EXISTS
            ErrorCode::PermissionDenied => 7, // PERMISSION_DENIED
            ErrorCode::RateLimited => 8,      // RESOURCE_EXHAUSTED
            ErrorCode::PayloadTooLarge => 8,  // RESOURCE_EXHAUSTED
            ErrorCode::QuotaExceeded => 8,    // RESOURCE_EXHAUSTED
            ErrorCode::Conflict => 10,        // ABORTED
            ErrorCode::Internal => 13,        // INTERNAL
            ErrorCode::Unavailable => 14,     // UNAVAILABLE
            ErrorCode::Unauthenticated => 16, // UNAUTHENTICATED
        }
    }

    /// The platform code a gRPC status code stands for (the stable code
    /// itself travels in the status details when we sent it).
    pub fn from_grpc_code(code: i32) -> ErrorCode {
        match code {
            3 | 11 => ErrorCode::InvalidInput,
            5 => ErrorCode::NotFound,
            6 => ErrorCode::AlreadyExists,
            7 => ErrorCode::PermissionDenied,
            8 => ErrorCode::RateLimited,
            9 | 10 => ErrorCode::Conflict,
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
            ErrorCode::RateLimited => Error::RateLimited {
                message,
                retry_after: None,
            },
            ErrorCode::Unavailable => Error::Unavailable(message),
            ErrorCode::Internal => Error::Internal(message),
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
    fn internal_details_never_reach_clients() {
        let err = Error::internal("db password=hunter2 refused");
        assert_eq!(err.public_message(), "internal error");
        assert!(err.to_string().contains("hunter2"), "logs keep the detail");
    }
}
