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

use async_trait::async_trait;
use axum::Router;
use bunbase_core::Error;
use bunbase_core::events::Events;

pub use binary::BuncastArgs;
pub use config::{BusChoice, EventsArgs, EventsSettings};

use crate::assembly::{About, Host, ServiceModule, Started};
use crate::kit::{self, Routes, ShellState};

/// What a Buncast handler has: the events service.
pub type BuncastState = ShellState<Events>;

pub const PREFIX: &str = "/events/v1/projects/{project}";

/// Buncast's routes, listed (the isolation matrix reads them) and handled.
pub fn api() -> Routes<BuncastState> {
    Routes::new()
        .get(&format!("{PREFIX}/topics"), routes::list_topics)
        .post(&format!("{PREFIX}/topics/{{topic}}"), routes::publish)
        .get(
            &format!("{PREFIX}/topics/{{topic}}/subscribe"),
            routes::subscribe,
        )
        .get(&format!("{PREFIX}/topics/{{topic}}/ws"), routes::websocket)
}

pub fn router(state: BuncastState) -> Router {
    api().with_state(state)
}

static ABOUT: About = About::new("events", &["buncast"], "/events");

/// Buncast in an assembly: the host's event bus, served under `/events`.
pub struct BuncastModule;

#[async_trait]
impl ServiceModule for BuncastModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let events = host.events().await?;
        let service = kit::Service::new("buncast", router(host.shell(events.clone())?)).check(
            "buncast",
            events,
            |events| async move { events.check().await },
        );
        let summary = format!("Buncast pub/sub ({})", host.events_settings().describe());
        Ok(Started::new(service, summary))
    }

    fn about(&self) -> &'static About {
        &ABOUT
    }
}
