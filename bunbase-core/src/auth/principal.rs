//! The authenticated caller.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::ProjectId;

/// What kind of credential the caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A service token from configuration (service-to-service, operators).
    Service,
    /// A developer account acting on a project.
    Account,
    /// An end user of an app built on BunBase.
    EndUser,
    /// A project secret key (servers).
    SecretKey,
    /// A project publishable key (client apps).
    PublishableKey,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Service => "service",
            PrincipalKind::Account => "account",
            PrincipalKind::EndUser => "end_user",
            PrincipalKind::SecretKey => "secret_key",
            PrincipalKind::PublishableKey => "publishable_key",
        }
    }

    pub fn parse(raw: &str) -> Result<PrincipalKind, Error> {
        [
            PrincipalKind::Service,
            PrincipalKind::Account,
            PrincipalKind::EndUser,
            PrincipalKind::SecretKey,
            PrincipalKind::PublishableKey,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
        .ok_or_else(|| Error::invalid(format!("unknown principal kind {raw:?}")))
    }
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read data: subscribe, list, get.
    Read,
    /// Change data: publish, write.
    Write,
    /// Administer the project's resources.
    Admin,
}

/// The rights a principal holds in its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    pub read: bool,
    pub write: bool,
    pub admin: bool,
}

impl Rights {
    pub const ALL: Rights = Rights {
        read: true,
        write: true,
        admin: true,
    };
    pub const READ_WRITE: Rights = Rights {
        read: true,
        write: true,
        admin: false,
    };
    pub const READ: Rights = Rights {
        read: true,
        write: false,
        admin: false,
    };
    /// Publishable keys and end users: nothing beyond what a service's own
    /// rules grant them.
    pub const NONE: Rights = Rights {
        read: false,
        write: false,
        admin: false,
    };

    /// Parses letters `r`, `w`, `a` (e.g. `rw`, `rwa`). Admin implies nothing
    /// else: rights are exactly what is listed.
    pub fn parse(letters: &str) -> Result<Rights, Error> {
        let mut rights = Rights {
            read: false,
            write: false,
            admin: false,
        };
        if letters.is_empty() {
            return Err(Error::invalid("rights must list at least one of r, w, a"));
        }
        for c in letters.chars() {
            match c {
                'r' => rights.read = true,
                'w' => rights.write = true,
                'a' => rights.admin = true,
                other => {
                    return Err(Error::invalid(format!(
                        "unknown right {other:?} (use r, w and a)"
                    )));
                }
            }
        }
        Ok(rights)
    }

    pub fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Admin => self.admin,
        }
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, c) in [(self.read, 'r'), (self.write, 'w'), (self.admin, 'a')] {
            if on {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Who is calling: a subject acting in exactly one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub subject: String,
    pub kind: PrincipalKind,
    pub project: ProjectId,
    pub rights: Rights,
}

impl Principal {
    /// The one check every project-scoped operation makes: the principal must
    /// belong to `project` and hold `access` there. A credential of project A
    /// never grants anything in project B.
    pub fn authorize(&self, project: &ProjectId, access: Access) -> Result<(), Error> {
        if &self.project != project {
            return Err(Error::PermissionDenied(format!(
                "credential is not valid for project {project}"
            )));
        }
        if !self.rights.allows(access) {
            let needed = match access {
                Access::Read => "read",
                Access::Write => "write",
                Access::Admin => "admin",
            };
            return Err(Error::PermissionDenied(format!(
                "credential lacks the {needed} right in project {project}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(project: &str, rights: &str) -> Principal {
        Principal {
            subject: "t".into(),
            kind: PrincipalKind::Service,
            project: ProjectId::new(project).unwrap(),
            rights: Rights::parse(rights).unwrap(),
        }
    }

    #[test]
    fn other_projects_are_denied() {
        let p = principal("a", "rwa");
        let b = ProjectId::new("b").unwrap();
        for access in [Access::Read, Access::Write, Access::Admin] {
            assert_eq!(
                p.authorize(&b, access).unwrap_err().code(),
                crate::ErrorCode::PermissionDenied
            );
        }
    }

    #[test]
    fn rights_are_exact() {
        let a = ProjectId::new("a").unwrap();
        let reader = principal("a", "r");
        assert!(reader.authorize(&a, Access::Read).is_ok());
        assert!(reader.authorize(&a, Access::Write).is_err());
        assert!(reader.authorize(&a, Access::Admin).is_err());
        assert_eq!(Rights::parse("rw").unwrap().to_string(), "rw");
        assert!(Rights::parse("").is_err());
        assert!(Rights::parse("rx").is_err());
    }
}
