//! The Platform API (port 3001, prefix `/api`): the public HTTP face of the
//! identity service.
//!
//! - `/api/v1/auth/{signup,signin,refresh,signout,me}` — developer accounts
//! - `/api/v1/projects[/{project}]` — projects; `…/members`, `…/keys`
//! - `/api/v1/projects/{project}/auth/{signup,signin,refresh,signout,me}` —
//!   the project's end users (with the project's publishable key)
//! - `/api/v1/projects/{project}/users` — admin listing and deleting
//! - `/api/.well-known/jwks.json` — the token-signing public keys

mod auth;
mod extract;
mod projects;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use bunbase_core::auth::Identity;

use crate::kit::ShellState;

/// What a Platform API handler has: the identity service, which also
/// resolves the credentials of project-scoped routes.
pub type PlatformState = ShellState<Arc<Identity>>;

pub fn state(identity: Arc<Identity>) -> PlatformState {
    ShellState::new(identity.clone(), identity)
}

pub fn router(state: PlatformState) -> Router {
    let p = "/api/v1/projects/{project}";
    Router::new()
        .route("/api/.well-known/jwks.json", get(auth::jwks))
        .route("/api/v1/auth/signup", post(auth::sign_up))
        .route("/api/v1/auth/signin", post(auth::sign_in))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/signout", post(auth::sign_out))
        .route("/api/v1/auth/me", get(auth::me))
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
        .route(&format!("{p}/auth/signup"), post(auth::sign_up))
        .route(&format!("{p}/auth/signin"), post(auth::sign_in))
        .route(&format!("{p}/auth/refresh"), post(auth::refresh))
        .route(&format!("{p}/auth/signout"), post(auth::sign_out))
        .route(&format!("{p}/auth/me"), get(auth::me))
        .route(&format!("{p}/users"), get(users::list))
        .route(&format!("{p}/users/{{user}}"), delete(users::delete))
        .with_state(state)
}
