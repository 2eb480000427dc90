//! Realtime queries over Server-Sent Events and WebSocket. Both carry
//! core's `WatchEvent`s as they come: SSE as `event: <name>` /
//! `id: <position>` / `data: <JSON>` (a `closed` frame has no id, so it
//! never moves the resume point); WebSocket as text messages
//! `{"event": name, "id": position|null, "data": …}`, then a close frame.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bunbase_core::ProjectId;
use bunbase_core::docs::{Watch, WatchEvent};
use futures_util::{SinkExt, StreamExt, stream};
use serde::Deserialize;
use serde_json::json;

use super::DocsState;
use super::routes::{CollectionPath, QueryString};
use crate::buncast::routes::resume_point;
use crate::kit::{ApiResult, Auth};

/// Client messages on the socket are ignored; this bounds what one may cost.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    filter: Option<String>,
    sort: Option<String>,
    fields: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
    #[allow(dead_code)]
    access_token: Option<String>,
}

impl WatchParams {
    fn body(&self) -> Result<serde_json::Value, bunbase_core::Error> {
        QueryString {
            filter: self.filter.as_deref(),
            sort: self.sort.as_deref(),
            fields: self.fields.as_deref(),
            limit: self.limit,
            cursor: None,
        }
        .body()
    }
}

async fn start(
    state: &DocsState,
    who: &bunbase_core::auth::Principal,
    project: String,
    collection: &str,
    params: &WatchParams,
    after: Option<u64>,
) -> ApiResult<Watch> {
    let project = ProjectId::new(project)?;
    let body = params.body()?;
    Ok(state
        .docs
        .watch(who, &project, collection, &body, after)
        .await?)
}

fn sse_event(frame: &WatchEvent) -> Event {
    let event = Event::default()
        .event(frame.name())
        .data(frame.data().to_string());
    match frame.position() {
        Some(position) => event.id(position.to_string()),
        None => event,
    }
}

pub async fn subscribe(
    State(state): State<DocsState>,
    Auth(who): Auth,
    Path((project, collection)): CollectionPath,
    Query(params): Query<WatchParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = resume_point(headers.get("last-event-id"), params.after.as_deref())?;
    let watch = start(&state, &who, project, &collection, &params, after).await?;
    // Sent at once, so the client knows it is subscribed even when a
    // resume has nothing to replay, and gets the reconnect delay.
    let opening = Event::default()
        .retry(Duration::from_secs(1))
        .comment("subscribed");
    let frames = stream::once(async { opening })
        .chain(watch.map(|frame| sse_event(&frame)))
        .map(Ok::<_, Infallible>);
    let mut response = Sse::new(frames)
        .keep_alive(KeepAlive::new().interval(state.keepalive).text("keepalive"))
        .into_response();
    // Tell nginx-style proxies not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

pub async fn websocket(
    State(state): State<DocsState>,
    Auth(who): Auth,
    Path((project, collection)): CollectionPath,
    Query(params): Query<WatchParams>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let after = resume_point(None, params.after.as_deref())?;
    // Subscribe before upgrading, so errors are plain HTTP errors.
    let watch = start(&state, &who, project, &collection, &params, after).await?;
    let tasks = state.shutdown.tasks.clone();
    let keepalive = state.keepalive;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| tasks.track_future(run(socket, watch, keepalive))))
}

fn close_code(reason: &str) -> u16 {
    match reason {
        "shutdown" => 1001, // going away
        "lagged" => 4001,
        "resync" => 4002,
        _ => 1011, // the server hit an error
    }
}

async fn run(socket: WebSocket, mut watch: Watch, keepalive: Duration) {
    let (mut sink, mut incoming) = socket.split();
    // Pings keep idle connections open through proxies with idle timeouts.
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            frame = watch.next() => {
                let Some(frame) = frame else {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                };
                let text = json!({ "event": frame.name(), "id": frame.position(), "data": frame.data() });
                if sink.send(Message::Text(text.to_string().into())).await.is_err() {
                    return;
                }
                if let WatchEvent::Closed { reason } = &frame {
                    let close = CloseFrame { code: close_code(reason), reason: reason.as_str().into() };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    return;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // The socket only sends; pings are answered by the library.
                Some(Ok(_)) => {}
            }
        }
    }
}
