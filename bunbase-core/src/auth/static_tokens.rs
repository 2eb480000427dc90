//! Service tokens from configuration.

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use super::{Principal, PrincipalKind, Rights, TokenVerifier};
use crate::error::Error;
use crate::id::ProjectId;

/// Tokens are at least this long, so a configured token can't be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

struct Entry {
    token: Vec<u8>,
    principal: Principal,
    /// A platform token (`*:RIGHTS:TOKEN`): valid in whichever project a
    /// request names — for the platform's own services (Bundoc asking
    /// BunKMS for a project's data keys), never for apps.
    any_project: bool,
}

/// A fixed set of service tokens, each bound to one project and its rights.
///
/// Configured as `PROJECT:RIGHTS:TOKEN` entries separated by commas or
/// newlines (e.g. `demo:rw:2f6c…`); `*` as the project makes a platform
/// token, valid in every project (service-to-service only). Every lookup compares the presented token
/// with *every* configured token in constant time, so timing reveals neither
/// which token matched nor how much of one did.
pub struct StaticTokens {
    entries: Vec<Entry>,
}

impl StaticTokens {
    pub fn new() -> Self {
        StaticTokens {
            entries: Vec::new(),
        }
    }

    /// Adds a token for `project` with `rights`. The subject shown in logs
    /// and audit is `service:<project>:<n>`, never the token itself.
    pub fn with_token(
        mut self,
        project: ProjectId,
        rights: Rights,
        token: impl Into<String>,
    ) -> Result<Self, Error> {
        let token = token.into();
        if token.len() < MIN_TOKEN_LEN {
            return Err(Error::invalid(format!(
                "service tokens must be at least {MIN_TOKEN_LEN} characters"
            )));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid("service tokens may not contain whitespace"));
        }
        if self.entries.iter().any(|e| e.token == token.as_bytes()) {
            return Err(Error::invalid("the same service token is configured twice"));
        }
        let subject = format!("service:{project}:{}", self.entries.len() + 1);
        self.entries.push(Entry {
            token: token.into_bytes(),
            principal: Principal {
                subject,
                kind: PrincipalKind::Service,
                project,
                rights,
            },
            any_project: false,
        });
        Ok(self)
    }

    /// Adds a platform token: valid in every project with `rights`.
    pub fn with_platform_token(
        self,
        rights: Rights,
        token: impl Into<String>,
    ) -> Result<Self, Error> {
        // Built as a project token, then widened: the same checks apply.
        let placeholder = ProjectId::new("platform")?;
        let mut tokens = self.with_token(placeholder, rights, token)?;
        let n = tokens.entries.len();
        if let Some(entry) = tokens.entries.last_mut() {
            entry.any_project = true;
            entry.principal.subject = format!("service:*:{n}");
        }
        Ok(tokens)
    }

    /// Parses `PROJECT:RIGHTS:TOKEN` entries separated by commas or newlines;
    /// blank lines and `#` comments are ignored.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let mut tokens = StaticTokens::new();
        for (n, raw) in spec.split([',', '\n']).enumerate() {
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let mut parts = entry.splitn(3, ':');
            let (Some(project), Some(rights), Some(token)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(Error::invalid(format!(
                    "token entry {} is not PROJECT:RIGHTS:TOKEN",
                    n + 1
                )));
            };
            tokens = if project == "*" {
                tokens.with_platform_token(Rights::parse(rights)?, token)?
            } else {
                tokens.with_token(ProjectId::new(project)?, Rights::parse(rights)?, token)?
            };
        }
        Ok(tokens)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for StaticTokens {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl TokenVerifier for StaticTokens {
    async fn verify(&self, token: &str, project: &ProjectId) -> Result<Principal, Error> {
        let presented = token.as_bytes();
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            // No early exit: every entry is compared.
            if bool::from(entry.token.as_slice().ct_eq(presented)) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or_else(|| Error::Unauthenticated("invalid credential".into()))?;
        let mut principal = entry.principal.clone();
        if entry.any_project {
            principal.project = project.clone();
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn platform_tokens_act_in_the_project_asked_for() {
        let tokens =
            StaticTokens::parse("*:rw:platform-token-000001, alpha:r:alpha-token-0000001").unwrap();
        for name in ["alpha", "beta"] {
            let project = ProjectId::new(name).unwrap();
            let who = tokens
                .verify("platform-token-000001", &project)
                .await
                .unwrap();
            assert_eq!(who.project, project);
            assert!(who.authorize(&project, crate::auth::Access::Write).is_ok());
            assert!(who.subject.starts_with("service:*:"));
        }
        // Project tokens stay in their project.
        let beta = ProjectId::new("beta").unwrap();
        let who = tokens.verify("alpha-token-0000001", &beta).await.unwrap();
        assert!(who.authorize(&beta, crate::auth::Access::Read).is_err());
        assert!(StaticTokens::parse("*:rw:short").is_err());
    }

    #[tokio::test]
    async fn resolves_configured_tokens_only() {
        let tokens =
            StaticTokens::parse("alpha:rw:aaaaaaaaaaaaaaaa1, beta:r:bbbbbbbbbbbbbbbb2\n# c\n")
                .unwrap();
        assert_eq!(tokens.len(), 2);
        let any = ProjectId::new("alpha").unwrap();
        let a = tokens.verify("aaaaaaaaaaaaaaaa1", &any).await.unwrap();
        assert_eq!(a.project.as_str(), "alpha");
        assert!(a.rights.write);
        let b = tokens.verify("bbbbbbbbbbbbbbbb2", &any).await.unwrap();
        assert_eq!(b.project.as_str(), "beta");
        assert!(!b.rights.write);
        for bad in [
            "",
            "aaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaa12",
            "bbbbbbbbbbbbbbbb1",
        ] {
            assert_eq!(
                tokens.verify(bad, &any).await.unwrap_err().code(),
                crate::ErrorCode::Unauthenticated
            );
        }
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "alpha:rw",
            "alpha:rw:short",
            "Alpha:rw:aaaaaaaaaaaaaaaa1",
            "alpha:x:aaaaaaaaaaaaaaaa1",
            "a:r:aaaaaaaaaaaaaaaa1,b:r:aaaaaaaaaaaaaaaa1",
        ] {
            assert!(StaticTokens::parse(bad).is_err(), "{bad}");
        }
    }
}
