use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::BuncastState;
use super::ws;
use crate::kit::sse::{resume_point, sse_response};
use crate::kit::{ApiJson, ApiQuery, ApiResult, Bearer, Caller};

#[derive(Deserialize)]
pub struct TopicPath {
    topic: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    data: Box<RawValue>,
}

pub async fn publish(
    State(state): State<BuncastState>,
    Caller { who, project }: Caller,
    Path(TopicPath { topic }): Path<TopicPath>,
    ApiJson(body): ApiJson<PublishBody>,
) -> ApiResult<(StatusCode, ApiJson<serde_json::Value>)> {
    let seq = state
        .publish(&who, &project, &topic, body.data.get())
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(json!({ "seq": seq, "topic": topic })),
    ))
}

pub async fn list_topics(
    State(state): State<BuncastState>,
    Caller { who, project }: Caller,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let topics = state.topics(&who, &project).await?;
    Ok(ApiJson(json!({ "topics": topics })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeQuery {
    after: Option<String>,
}

/// Server-Sent Events: each event is `id: <seq>` + `data: <event JSON>`.
pub async fn subscribe(
    State(state): State<BuncastState>,
    Caller { who, project }: Caller,
    credential: Bearer,
    Path(TopicPath { topic }): Path<TopicPath>,
    ApiQuery(query): ApiQuery<SubscribeQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = resume_point(headers.get("last-event-id"), query.after.as_deref())?;
    let subscription = state.subscribe(&who, &project, &topic, after).await?;
    let position = subscription.position();
    let frames = state.guard(subscription, credential, &project);
    Ok(sse_response(frames, Some(position), state.keepalive))
}

/// WebSocket: the same events, and publishing on the same socket.
pub async fn websocket(
    State(state): State<BuncastState>,
    Caller { who, project }: Caller,
    credential: Bearer,
    Path(TopicPath { topic }): Path<TopicPath>,
    ApiQuery(query): ApiQuery<SubscribeQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let after = resume_point(None, query.after.as_deref())?;
    // Subscribe before upgrading, so errors are plain HTTP errors.
    let subscription = state.subscribe(&who, &project, &topic, after).await?;
    Ok(ws::upgrade(
        upgrade,
        subscription,
        credential,
        state,
        who,
        project,
    ))
}
