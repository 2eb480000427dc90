//! Realtime queries over Server-Sent Events and WebSocket. Both carry
//! core's `WatchEvent`s as they come: SSE as `event: <name>` /
//! `id: <position>` / `data: <JSON>` (a `closed` frame has no id, so it
//! never moves the resume point); WebSocket as text messages
//! `{"event": name, "id": position|null, "data": …}`, then a close frame.

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bunbase_core::auth::Principal;
use bunbase_core::docs::{Watch, WatchEvent};
use bunbase_core::{Error, ProjectId};
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::json;

use super::DocsState;
use super::routes::{CollectionPath, QueryString};
use crate::kit::sse::{SseFrame, resume_point, sse_response, write_frame};
use crate::kit::ws::{WsFrame, pump};
use crate::kit::{ApiQuery, ApiResult, Bearer, Caller};

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
}

impl WatchParams {
    fn body(&self) -> Result<serde_json::Value, Error> {
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

impl SseFrame for WatchEvent {
    fn write(&self, buf: &mut BytesMut) {
        write_frame(
            buf,
            Some(self.name()),
            self.position(),
            &self.data().to_string(),
        );
    }

    fn is_last(&self) -> bool {
        matches!(self, WatchEvent::Closed { .. })
    }
}

impl WsFrame for WatchEvent {
    fn message(&self) -> Message {
        let text = json!({ "event": self.name(), "id": self.position(), "data": self.data() });
        Message::Text(text.to_string().into())
    }

    fn closing(&self) -> Option<&str> {
        match self {
            WatchEvent::Closed { reason } => Some(reason),
            _ => None,
        }
    }
}

async fn start(
    state: &DocsState,
    who: &Principal,
    project: &ProjectId,
    collection: &str,
    params: &WatchParams,
    after: Option<u64>,
) -> ApiResult<Watch> {
    let body = params.body()?;
    Ok(state.watch(who, project, collection, &body, after).await?)
}

pub async fn subscribe(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    credential: Bearer,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiQuery(params): ApiQuery<WatchParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = resume_point(headers.get("last-event-id"), params.after.as_deref())?;
    let watch = start(&state, &who, &project, &collection, &params, after).await?;
    let frames = state.guard(watch, credential, &project);
    Ok(sse_response(frames, None, state.keepalive))
}

pub async fn websocket(
    State(state): State<DocsState>,
    Caller { who, project }: Caller,
    credential: Bearer,
    Path(CollectionPath { collection }): Path<CollectionPath>,
    ApiQuery(params): ApiQuery<WatchParams>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let after = resume_point(None, params.after.as_deref())?;
    // Subscribe before upgrading, so errors are plain HTTP errors.
    let watch = start(&state, &who, &project, &collection, &params, after).await?;
    let watch = state.guard(watch, credential, &project);
    let tasks = state.shutdown.tasks.clone();
    let keepalive = state.keepalive;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            // The socket only sends; what the client sends is ignored.
            tasks.track_future(pump(socket, None, watch, keepalive, |_| async { None }))
        }))
}
