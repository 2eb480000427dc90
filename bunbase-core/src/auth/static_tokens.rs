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
}

/// A fixed set of service tokens, each bound to one project and its rights.
///
/// Configured as `PROJECT:RIGHTS:TOKEN` entries separated by commas or
/// newlines (e.g. `demo:rw:2f6c…`). Every lookup compares the presented token
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
        });
        Ok(self)
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
            tokens = tokens.with_token(ProjectId::new(project)?, Rights::parse(rights)?, token)?;
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
    async fn verify(&self, token: &str, _project: &ProjectId) -> Result<Principal, Error> {
        let presented = token.as_bytes();
        let mut found: Option<&Principal> = None;
        for entry in &self.entries {
            // No early exit: every entry is compared.
            if bool::from(entry.token.as_slice().ct_eq(presented)) {
                found = Some(&entry.principal);
            }
        }
        found
            .cloned()
            .ok_or_else(|| Error::Unauthenticated("invalid credential".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
