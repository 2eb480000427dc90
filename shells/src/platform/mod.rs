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
use bunbase_core::auth::Identity;

use crate::kit::{Routes, ShellState};

/// What a Platform API handler has: the identity service, which also
/// resolves the credentials of project-scoped routes.
pub type PlatformState = ShellState<Arc<Identity>>;

pub fn state(identity: Arc<Identity>) -> PlatformState {
    ShellState::new(identity.clone(), identity)
}

/// The Platform API's routes, listed (the isolation matrix reads them) and
/// handled.
pub fn api() -> Routes<PlatformState> {
    let p = "/api/v1/projects/{project}";
    Routes::new()
        .get("/api/.well-known/jwks.json", auth::jwks)
        .post("/api/v1/auth/signup", auth::sign_up)
        .post("/api/v1/auth/signin", auth::sign_in)
        .post("/api/v1/auth/refresh", auth::refresh)
        .post("/api/v1/auth/signout", auth::sign_out)
        .get("/api/v1/auth/me", auth::me)
        .post("/api/v1/accounts", auth::create_account)
        .get("/api/v1/projects", projects::list)
        .post("/api/v1/projects", projects::create)
        .get(p, projects::get)
        .patch(p, projects::rename)
        .delete(p, projects::delete)
        .get(&format!("{p}/members"), projects::members)
        .put(&format!("{p}/members"), projects::put_member)
        .delete(&format!("{p}/members/{{account}}"), projects::remove_member)
        .get(&format!("{p}/keys"), projects::keys)
        .post(&format!("{p}/keys"), projects::create_key)
        .delete(&format!("{p}/keys/{{key}}"), projects::revoke_key)
        .post(&format!("{p}/auth/signup"), auth::sign_up)
        .post(&format!("{p}/auth/signin"), auth::sign_in)
        .post(&format!("{p}/auth/refresh"), auth::refresh)
        .post(&format!("{p}/auth/signout"), auth::sign_out)
        .get(&format!("{p}/auth/me"), auth::me)
        .get(&format!("{p}/users"), users::list)
        .delete(&format!("{p}/users/{{user}}"), users::delete)
}

pub fn router(state: PlatformState) -> Router {
    api().with_state(state)
}
