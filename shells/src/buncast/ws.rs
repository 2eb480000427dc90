//! Subscriptions over WebSocket. Server → client text frames: the event JSON
//! (`{"type":"event",…}`), `{"type":"gap",…}`, `{"type":"closed",…}` (then a
//! close frame). Client → server: `{"type":"publish","topic":…,"data":…,"ref":…}`
//! answered by `{"type":"published","seq":…,"ref":…}` or `{"type":"error",…}`.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bunbase_core::ProjectId;
use bunbase_core::auth::Principal;
use bunbase_core::events::{CloseReason, Delivery, Subscription};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::BuncastState;
use super::routes::{SubscribeQuery, resume_point};
use super::sse::closed_json;
use crate::kit::{ApiResult, Auth};

/// Ready deliveries sent before one flush.
const BATCH: usize = 64;

pub async fn subscribe(
    State(state): State<BuncastState>,
    Auth(who): Auth,
    Path((project, topic)): Path<(String, String)>,
    Query(query): Query<SubscribeQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let project = ProjectId::new(project)?;
    let after = resume_point(None, query.after.as_deref())?;
    // Subscribe before upgrading, so errors are plain HTTP errors.
    let subscription = state
        .events
        .subscribe(&who, &project, &topic, after)
        .await?;
    let max = state.events.limits().max_payload_bytes * 2 + 1024;
    let tasks = state.shutdown.tasks.clone();
    Ok(upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            tasks.track_future(run(socket, subscription, state, who, project))
        }))
}

fn frame(delivery: &Delivery) -> Message {
    match delivery {
        Delivery::Event(event) => Message::Text(Utf8Bytes::from(event.wire_json().as_ref())),
        Delivery::Gap(gap) => {
            let mut value = serde_json::to_value(gap).unwrap_or_default();
            value["type"] = json!("gap");
            Message::Text(value.to_string().into())
        }
        Delivery::Closed(reason) => Message::Text(closed_json(*reason).into()),
    }
}

fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::Shutdown => 1001, // going away
        CloseReason::Lagged => 4001,
        CloseReason::Resync => 4002,
    }
}

async fn run(
    socket: WebSocket,
    mut subscription: Subscription,
    state: BuncastState,
    who: Principal,
    project: ProjectId,
) {
    let (mut sink, mut incoming) = socket.split();
    let opening = format!(
        r#"{{"type":"subscribed","position":{}}}"#,
        subscription.position()
    );
    if sink.send(Message::Text(opening.into())).await.is_err() {
        return;
    }
    // Pings keep idle connections open through proxies with idle timeouts.
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + state.keepalive,
        state.keepalive,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            delivery = subscription.next() => {
                let Some(delivery) = delivery else { break };
                let mut closing = match_closed(&delivery);
                if sink.feed(frame(&delivery)).await.is_err() {
                    return;
                }
                let mut sent = 1;
                while closing.is_none() && sent < BATCH {
                    let Some(Some(next)) = subscription.next().now_or_never() else { break };
                    closing = match_closed(&next);
                    if sink.feed(frame(&next)).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
                if sink.flush().await.is_err() {
                    return;
                }
                if let Some(reason) = closing {
                    let close = CloseFrame { code: close_code(reason), reason: reason.as_str().into() };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    return;
                }
            }
            message = incoming.next() => {
                let reply = match message {
                    Some(Ok(Message::Text(text))) => handle_client_frame(&state, &who, &project, &text).await,
                    Some(Ok(Message::Binary(_))) => Some(error_reply(None, "invalid_input", "binary frames are not supported; send JSON text")),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => None, // ping/pong are answered by the library
                };
                if let Some(reply) = reply
                    && sink.send(Message::Text(reply.into())).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

fn match_closed(delivery: &Delivery) -> Option<CloseReason> {
    match delivery {
        Delivery::Closed(reason) => Some(*reason),
        _ => None,
    }
}

/// A client frame. (Not an internally tagged enum: serde buffers those,
/// which `RawValue` payloads can't go through.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    topic: Option<String>,
    data: Option<Box<RawValue>>,
    #[serde(rename = "ref")]
    reference: Option<Box<RawValue>>,
}

async fn handle_client_frame(
    state: &BuncastState,
    who: &Principal,
    project: &ProjectId,
    text: &str,
) -> Option<String> {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(e) => {
            return Some(error_reply(
                None,
                "invalid_input",
                &format!("invalid frame: {e}"),
            ));
        }
    };
    let reference = frame.reference.as_deref();
    if frame.kind != "publish" {
        return Some(error_reply(
            reference,
            "invalid_input",
            &format!(
                "unknown frame type {:?}; the only one is \"publish\"",
                frame.kind
            ),
        ));
    }
    let (Some(topic), Some(data)) = (frame.topic, frame.data) else {
        return Some(error_reply(
            reference,
            "invalid_input",
            "a publish frame needs \"topic\" and \"data\"",
        ));
    };
    match state.events.publish(who, project, &topic, data.get()).await {
        Ok(seq) => Some(match reference {
            Some(r) => format!(r#"{{"type":"published","seq":{seq},"ref":{}}}"#, r.get()),
            None => format!(r#"{{"type":"published","seq":{seq}}}"#),
        }),
        Err(e) => Some(error_reply(
            reference,
            e.code().as_str(),
            &e.public_message(),
        )),
    }
}

fn error_reply(reference: Option<&RawValue>, code: &str, message: &str) -> String {
    let mut value = json!({ "type": "error", "error": { "code": code, "message": message } });
    if let Some(r) = reference
        && let Ok(r) = serde_json::from_str::<serde_json::Value>(r.get())
    {
        value["ref"] = r;
    }
    value.to_string()
}
