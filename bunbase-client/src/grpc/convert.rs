use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::{Error, ErrorCode, ProjectId};

use super::proto::bunauth;

/// The metadata key carrying the stable platform error code.
const CODE_KEY: &str = "bunbase-error-code";

pub fn principal_to_proto(p: &Principal) -> bunauth::Principal {
    bunauth::Principal {
        subject: p.subject.clone(),
        kind: p.kind.as_str().to_string(),
        project: p.project.to_string(),
        read: p.rights.read,
        write: p.rights.write,
        admin: p.rights.admin,
    }
}

pub fn principal_from_proto(p: bunauth::Principal) -> Result<Principal, Error> {
    Ok(Principal {
        subject: p.subject,
        kind: PrincipalKind::parse(&p.kind).map_err(|e| Error::internal(e.to_string()))?,
        project: ProjectId::new(p.project).map_err(|e| Error::internal(e.to_string()))?,
        rights: Rights {
            read: p.read,
            write: p.write,
            admin: p.admin,
        },
    })
}

/// A core error as a gRPC status: the standard code, the client-safe
/// message, and the stable platform code in the metadata.
pub fn status_from_error(e: &Error) -> tonic::Status {
    let code = e.code();
    let mut status = tonic::Status::new(tonic::Code::from(code.grpc_code()), e.public_message());
    if let Ok(value) = code.as_str().parse() {
        status.metadata_mut().insert(CODE_KEY, value);
    }
    if let Error::RateLimited {
        retry_after: Some(after),
        ..
    } = e
        && let Ok(value) = after.as_secs().max(1).to_string().parse()
    {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}

/// A gRPC status as a core error (exact when the server is ours).
pub fn error_from_status(status: &tonic::Status) -> Error {
    let code = status
        .metadata()
        .get(CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorCode::parse)
        .unwrap_or_else(|| ErrorCode::from_grpc_code(status.code() as i32));
    if code == ErrorCode::RateLimited {
        let retry_after = status
            .metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_secs);
        return Error::RateLimited {
            message: status.message().to_string(),
            retry_after,
        };
    }
    Error::from_code(code, status.message())
}
