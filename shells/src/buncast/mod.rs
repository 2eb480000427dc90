//! Buncast's HTTP shell: routes under `/events/v1/projects/{project}/…`.
//!
//! - `POST   …/topics/{topic}`            publish `{"data": <any JSON>}` → `{"seq": n}`
//! - `GET    …/topics`                    topics with last seq, retained, subscribers
//! - `GET    …/topics/{topic}/subscribe`  Server-Sent Events (`Last-Event-ID` / `?after=`)
//! - `GET    …/topics/{topic}/ws`         WebSocket (also accepts publish frames)
//!
//! `{topic}` may be a pattern for subscriptions (`orders.*`, `orders.>`).

mod config;
pub(crate) mod routes;
pub(crate) mod sse;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bunbase_core::auth::TokenVerifier;
use bunbase_core::events::Events;

pub use config::EventsArgs;

use crate::kit::{self, AuthState, Shutdown};

/// Everything a Buncast handler needs.
#[derive(Clone)]
pub struct BuncastState {
    pub events: Events,
    pub verifier: Arc<dyn TokenVerifier>,
    /// Comment frames on idle SSE streams, so proxies keep them open.
    pub keepalive: Duration,
    pub shutdown: Shutdown,
}

impl AuthState for BuncastState {
    fn verifier(&self) -> &Arc<dyn TokenVerifier> {
        &self.verifier
    }
}

pub const PREFIX: &str = "/events/v1/projects/{project}";

pub fn router(state: BuncastState) -> Router {
    Router::new()
        .route(&format!("{PREFIX}/topics"), get(routes::list_topics))
        .route(&format!("{PREFIX}/topics/{{topic}}"), post(routes::publish))
        .route(
            &format!("{PREFIX}/topics/{{topic}}/subscribe"),
            get(sse::subscribe),
        )
        .route(&format!("{PREFIX}/topics/{{topic}}/ws"), get(ws::subscribe))
        .with_state(state)
}

/// Buncast as a mountable service for the shell kit.
pub fn service(state: BuncastState) -> kit::Service {
    let events = state.events.clone();
    let health_events = state.events.clone();
    kit::Service {
        name: "buncast".into(),
        router: router(state),
        health: vec![kit::health_check_fn("buncast", move || {
            let events = health_events.clone();
            async move { events.check().await }
        })],
        on_shutdown: Some(Arc::new(move || events.shut_down())),
    }
}
