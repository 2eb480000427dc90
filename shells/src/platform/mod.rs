//! The Platform API (port 3001, prefix `/api`): the public HTTP face of the
//! identity service.
//!
//! - `/api/v1/auth/{signup,signin,refresh,signout,me}` — developer accounts
//! - `/api/v1/projects[/{project}]` — projects; `…/members`, `…/keys`
//! - `/api/v1/projects/{project}/auth/{signup,signin,refresh,signout,me}` —
//!   the project's end users (with the project's publishable key)
//! - `/api/v1/projects/{project}/users` — admin listing and deleting
//! - `/api/.well-known/jwks.json` — the token-signing public keys

mod accounts;
mod extract;
mod projects;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use bunbase_core::auth::{Identity, TokenVerifier};

use crate::kit::{self, AuthState};

#[derive(Clone)]
pub struct PlatformState {
    pub identity: Arc<Identity>,
    /// The same service, resolving credentials for project-scoped routes.
    verifier: Arc<dyn TokenVerifier>,
}

impl PlatformState {
    pub fn new(identity: Arc<Identity>) -> PlatformState {
        PlatformState {
            verifier: identity.clone(),
            identity,
        }
    }
}

impl AuthState for PlatformState {
    fn verifier(&self) -> &Arc<dyn TokenVerifier> {
        &self.verifier
    }
}

pub fn router(state: PlatformState) -> Router {
    let p = "/api/v1/projects/{project}";
    Router::new()
        .route("/api/.well-known/jwks.json", get(accounts::jwks))
        .route("/api/v1/auth/signup", post(accounts::sign_up))
        .route("/api/v1/auth/signin", post(accounts::sign_in))
        .route("/api/v1/auth/refresh", post(accounts::refresh))
        .route("/api/v1/auth/signout", post(accounts::sign_out))
        .route("/api/v1/auth/me", get(accounts::me))
        .route(
            "/api/v1/projects",
            get(projects::list).post(projects::create),
        )
        .route(
            p,
            get(projects::get)
                .patch(projects::rename)
                .delete(projects::delete),
        )
        .route(
            &format!("{p}/members"),
            get(projects::members).put(projects::put_member),
        )
        .route(
            &format!("{p}/members/{{account}}"),
            delete(projects::remove_member),
        )
        .route(
            &format!("{p}/keys"),
            get(projects::keys).post(projects::create_key),
        )
        .route(&format!("{p}/keys/{{key}}"), delete(projects::revoke_key))
        .route(&format!("{p}/auth/signup"), post(users::sign_up))
        .route(&format!("{p}/auth/signin"), post(users::sign_in))
        .route(&format!("{p}/auth/refresh"), post(users::refresh))
        .route(&format!("{p}/auth/signout"), post(users::sign_out))
        .route(&format!("{p}/auth/me"), get(users::me))
        .route(&format!("{p}/users"), get(users::list))
        .route(&format!("{p}/users/{{user}}"), delete(users::delete))
        .with_state(state)
}

/// The Platform API as a mountable service.
pub fn service(state: PlatformState) -> kit::Service {
    kit::Service {
        name: "platform".into(),
        router: router(state),
        health: Vec::new(),
        on_shutdown: None,
    }
}
