use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use bunbase_core::auth::TokenVerifier;

use bunbase_core::ProjectId;

use super::revocation::Guarded;
use super::{AuthState, Bearer, Shutdown};

/// What every handler of a service gets: the service itself (handlers
/// call it through `Deref`), the credentials it accepts, and what its
/// streams need.
#[derive(Clone)]
pub struct ShellState<S> {
    pub service: S,
    pub verifier: Arc<dyn TokenVerifier>,
    /// Between keep-alive comments and pings on idle streams, so proxies
    /// keep them open.
    pub keepalive: Duration,
    /// Between checks of an open stream's credential ([`super::revocation`]).
    pub recheck: Duration,
    /// Tracks upgraded WebSockets so shutdown waits for them.
    pub shutdown: Shutdown,
}

impl<S> ShellState<S> {
    pub fn new(service: S, verifier: Arc<dyn TokenVerifier>) -> ShellState<S> {
        ShellState {
            service,
            verifier,
            keepalive: Duration::from_secs(15),
            recheck: Duration::from_secs(10),
            shutdown: Shutdown::new(),
        }
    }
}

impl<S> ShellState<S> {
    /// `frames`, ended with a `revoked` frame once the caller's
    /// `credential` no longer holds for `project` (checked every
    /// [`ShellState::recheck`]).
    pub fn guard<T>(&self, frames: T, credential: Bearer, project: &ProjectId) -> Guarded<T> {
        Guarded::new(
            frames,
            self.verifier.clone(),
            credential,
            project.clone(),
            self.recheck,
        )
    }
}

impl<S> Deref for ShellState<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.service
    }
}

impl<S: Send + Sync> AuthState for ShellState<S> {
    fn verifier(&self) -> &Arc<dyn TokenVerifier> {
        &self.verifier
    }
}
