//! Subscriptions over WebSocket. Server → client text frames: the event JSON
//! (`{"type":"event",…}`), `{"type":"gap",…}`, `{"type":"closed",…}` (then a
//! close frame). Client → server: `{"type":"publish","topic":…,"data":…,"ref":…}`
//! answered by `{"type":"published","seq":…,"ref":…}` or `{"type":"error",…}`.

use std::sync::Arc;

use axum::extract::WebSocketUpgrade;
use axum::extract::ws::{Message, Utf8Bytes};
use axum::response::Response;
use bunbase_core::ProjectId;
use bunbase_core::auth::Principal;
use bunbase_core::events::{Delivery, Subscription};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::BuncastState;
use crate::kit::Bearer;
use crate::kit::sse::closed_json;
use crate::kit::ws::{WsFrame, pump};

impl WsFrame for Delivery {
    fn message(&self) -> Message {
        match self {
            Delivery::Event(event) => Message::Text(Utf8Bytes::from(event.wire_json().as_ref())),
            Delivery::Gap(gap) => {
                let mut value = serde_json::to_value(gap).unwrap_or_default();
                value["type"] = json!("gap");
                Message::Text(value.to_string().into())
            }
            Delivery::Closed(reason) => Message::Text(closed_json(*reason).into()),
        }
    }

    fn closing(&self) -> Option<&str> {
        match self {
            Delivery::Closed(reason) => Some(reason.as_str()),
            _ => None,
        }
    }
}

pub fn upgrade(
    upgrade: WebSocketUpgrade,
    subscription: Subscription,
    credential: Bearer,
    state: BuncastState,
    who: Principal,
    project: ProjectId,
) -> Response {
    let max = state.limits().max_payload_bytes * 2 + 1024;
    let tasks = state.shutdown.tasks.clone();
    let keepalive = state.keepalive;
    let opening = format!(
        r#"{{"type":"subscribed","position":{}}}"#,
        subscription.position()
    );
    let frames = state.guard(subscription, credential, &project);
    let caller = Arc::new((state, who, project));
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            tasks.track_future(pump(
                socket,
                Some(opening),
                frames,
                keepalive,
                move |message| {
                    let caller = caller.clone();
                    async move {
                        let (state, who, project) = &*caller;
                        match message {
                            Message::Text(text) => {
                                Some(handle_client_frame(state, who, project, &text).await)
                            }
                            _ => Some(error_reply(
                                None,
                                "invalid_input",
                                "binary frames are not supported; send JSON text",
                            )),
                        }
                    }
                },
            ))
        })
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
) -> String {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(e) => return error_reply(None, "invalid_input", &format!("invalid frame: {e}")),
    };
    let reference = frame.reference.as_deref();
    if frame.kind != "publish" {
        return error_reply(
            reference,
            "invalid_input",
            &format!(
                "unknown frame type {:?}; the only one is \"publish\"",
                frame.kind
            ),
        );
    }
    let (Some(topic), Some(data)) = (frame.topic, frame.data) else {
        return error_reply(
            reference,
            "invalid_input",
            "a publish frame needs \"topic\" and \"data\"",
        );
    };
    match state.publish(who, project, &topic, data.get()).await {
        Ok(seq) => match reference {
            Some(r) => format!(r#"{{"type":"published","seq":{seq},"ref":{}}}"#, r.get()),
            None => format!(r#"{{"type":"published","seq":{seq}}}"#),
        },
        Err(e) => error_reply(reference, e.code().as_str(), &e.public_message()),
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
