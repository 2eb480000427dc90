//! BunKMS's HTTP shell: routes under `/kms/v1/projects/{project}/…`.
//!
//! - `POST keys` `{"name","purpose","algorithm"?,"rotation_period_secs"?}`,
//!   `GET keys`, `GET keys/{name}`
//! - `POST keys/{name}/{action}`: rotate, disable, enable,
//!   schedule-deletion `{"days"?}`, cancel-deletion, encrypt, decrypt,
//!   reencrypt, datakey, decrypt-datakey, sign, verify, mac, verify-mac
//! - `GET secrets`, `PUT|GET|DELETE secrets/{name}`
//! - `GET audit?from=&to=&key=&after=&limit=`, `GET audit/verify`
//!
//! Binary fields are standard base64.

mod config;
mod routes;

pub use config::{Built, KmsArgs, spawn_scheduler};

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use bunbase_core::auth::TokenVerifier;
use bunbase_core::kms::Kms;

use crate::kit::{self, AuthState};

#[derive(Clone)]
pub struct KmsState {
    pub kms: Kms,
    pub verifier: Arc<dyn TokenVerifier>,
}

impl AuthState for KmsState {
    fn verifier(&self) -> &Arc<dyn TokenVerifier> {
        &self.verifier
    }
}

pub const PREFIX: &str = "/kms/v1/projects/{project}";

pub fn router(state: KmsState) -> Router {
    Router::new()
        .route(
            &format!("{PREFIX}/keys"),
            get(routes::list_keys).post(routes::create_key),
        )
        .route(
            &format!("{PREFIX}/keys/{{name}}"),
            get(routes::describe_key),
        )
        .route(
            &format!("{PREFIX}/keys/{{name}}/{{action}}"),
            post(routes::key_action),
        )
        .route(&format!("{PREFIX}/secrets"), get(routes::list_secrets))
        .route(
            &format!("{PREFIX}/secrets/{{name}}"),
            put(routes::put_secret)
                .get(routes::get_secret)
                .delete(routes::delete_secret),
        )
        .route(&format!("{PREFIX}/audit"), get(routes::audit))
        .route(&format!("{PREFIX}/audit/verify"), get(routes::verify_audit))
        .with_state(state)
}

/// BunKMS as a mountable service for the shell kit.
pub fn service(state: KmsState) -> kit::Service {
    let kms = state.kms.clone();
    kit::Service {
        name: "bun-kms".into(),
        router: router(state),
        health: vec![kit::health_check_fn("kms-store", move || {
            let kms = kms.clone();
            async move { kms.check().await }
        })],
        on_shutdown: None,
    }
}
