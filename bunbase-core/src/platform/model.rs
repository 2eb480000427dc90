use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::ProjectId;

/// Random bytes at the end of a project id (64 bits).
pub const PROJECT_ID_RANDOM_BYTES: usize = 8;

/// A project: the unit of isolation for every service's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// A project as one of its members sees it: with the member's role (as the
/// Platform API answers it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectView {
    pub id: ProjectId,
    pub name: String,
    pub created_at: u64,
    pub role: Role,
}

impl ProjectView {
    pub fn new(project: &Project, role: Role) -> ProjectView {
        ProjectView {
            id: project.id.clone(),
            name: project.name.clone(),
            created_at: project.created_at,
            role,
        }
    }
}

impl Project {
    pub const MAX_NAME_CHARS: usize = 100;

    /// Trims and checks a display name.
    pub fn validate_name(name: &str) -> Result<String, Error> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > Self::MAX_NAME_CHARS {
            return Err(Error::invalid(format!(
                "project name must be 1 to {} characters",
                Self::MAX_NAME_CHARS
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "project name may not contain control characters",
            ));
        }
        Ok(name.to_string())
    }

    /// A readable id from a name: `My App!` → `my-app-3f9a1c`.
    /// `slug-<16 hex digits>`: the slug from the name (at most 40 bytes),
    /// then 64 random bits.
    pub fn id_from_name(name: &str) -> Result<ProjectId, Error> {
        let mut slug = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
            if slug.len() >= 40 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        // 64 random bits: a deleted project's id is never handed out again
        // (its old credentials, links and cached rights must not come back
        // to life on a stranger's project).
        let suffix = crate::id::random_hex(PROJECT_ID_RANDOM_BYTES);
        let id = if slug.is_empty() {
            format!("p-{suffix}")
        } else {
            format!("{slug}-{suffix}")
        };
        ProjectId::new(id)
    }
}

/// A member's role in a project, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    /// Rights this role grants over the project's data.
    pub fn rights(self) -> crate::auth::Rights {
        use crate::auth::Rights;
        match self {
            Role::Owner | Role::Admin => Rights::ALL,
            Role::Developer => Rights::READ_WRITE,
            Role::Viewer => Rights::READ,
        }
    }

    /// Owners and admins manage members and keys.
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role, Error> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "developer" => Ok(Role::Developer),
            "viewer" => Ok(Role::Viewer),
            other => Err(Error::invalid(format!(
                "unknown role {other:?} (owner, admin, developer, viewer)"
            ))),
        }
    }
}

/// An account's membership in a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub project: ProjectId,
    pub account_id: String,
    pub email: String,
    pub role: Role,
    pub added_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_names() {
        let id = Project::id_from_name("My App!").unwrap();
        assert!(id.as_str().starts_with("my-app-"), "{id}");
        assert_eq!(
            id.as_str().len(),
            "my-app-".len() + 2 * PROJECT_ID_RANDOM_BYTES
        );
        let long = Project::id_from_name(&"x".repeat(100)).unwrap();
        assert!(long.as_str().len() <= ProjectId::MAX_LEN, "{long}");
        let id = Project::id_from_name("!!!").unwrap();
        assert!(id.as_str().starts_with("p-"), "{id}");
        let id = Project::id_from_name("Ünïcode ☃ name").unwrap();
        assert!(ProjectId::new(id.as_str()).is_ok());
    }

    #[test]
    fn names_are_validated() {
        assert_eq!(Project::validate_name("  Shop ").unwrap(), "Shop");
        assert!(Project::validate_name("").is_err());
        assert!(Project::validate_name("a\u{0}b").is_err());
        assert!(Project::validate_name(&"x".repeat(101)).is_err());
    }

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Owner < Role::Viewer);
        for r in [Role::Owner, Role::Admin, Role::Developer, Role::Viewer] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
        assert!(!Role::Viewer.rights().write);
    }
}
