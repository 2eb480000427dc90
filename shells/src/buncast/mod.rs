//! Buncast's HTTP shell: routes under `/events/v1/projects/{project}/…`.
//!
//! - `POST   …/topics/{topic}`            publish `{"data": <any JSON>}` → `{"seq": n}`
//! - `GET    …/topics`                    topics with last seq, retained, subscribers
//! - `GET    …/topics/{topic}/subscribe`  Server-Sent Events (`Last-Event-ID` / `?after=`)
//! - `GET    …/topics/{topic}/ws`         WebSocket (also accepts publish frames)
//!
//! `{topic}` may be a pattern for subscriptions (`orders.*`, `orders.>`).

mod binary;
mod config;
mod routes;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::{get, post};
use bunbase_core::Error;
use bunbase_core::auth::TokenVerifier;
use bunbase_core::events::Events;

pub use binary::BuncastArgs;
pub use config::{BusChoice, EventsArgs, EventsSettings};

use crate::assembly::{Host, ServiceModule, Started};
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
            get(routes::subscribe),
        )
        .route(
            &format!("{PREFIX}/topics/{{topic}}/ws"),
            get(routes::websocket),
        )
        .with_state(state)
}

/// Buncast in an assembly: the host's event bus, served under `/events`.
pub struct BuncastModule;

#[async_trait]
impl ServiceModule for BuncastModule {
    fn name(&self) -> &'static str {
        "events"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["buncast"]
    }

    fn prefix(&self) -> &'static str {
        "/events"
    }

    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let events = host.events().await?;
        let state = BuncastState {
            events: events.clone(),
            verifier: host.verifier()?,
            keepalive: host.events_settings().keepalive,
            shutdown: host.shutdown.clone(),
        };
        let service = kit::Service {
            name: "buncast".into(),
            router: router(state),
            health: vec![kit::health_check_fn("buncast", move || {
                let events = events.clone();
                async move { events.check().await }
            })],
            on_shutdown: None,
        };
        let summary = format!("Buncast pub/sub ({})", host.events_settings().describe());
        Ok(Started::new(service, summary))
    }
}
