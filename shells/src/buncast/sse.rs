//! Subscriptions over Server-Sent Events.
//!
//! Frames: an event is `id: <seq>` + `data: <event JSON>` (the default
//! `message` type, so `EventSource.onmessage` works and a reconnecting
//! EventSource sends `Last-Event-ID` by itself); `event: gap` and
//! `event: closed` carry no id so they never move the resume point.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bunbase_core::ProjectId;
use bunbase_core::events::{CloseReason, Delivery, Subscription};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Interval, MissedTickBehavior};

use super::BuncastState;
use super::routes::{SubscribeQuery, resume_point};
use crate::kit::{ApiResult, Auth};

/// Ready events are packed into one chunk up to this size (fewer writes).
const CHUNK: usize = 32 * 1024;

pub async fn subscribe(
    State(state): State<BuncastState>,
    Auth(who): Auth,
    Path((project, topic)): Path<(String, String)>,
    Query(query): Query<SubscribeQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let project = ProjectId::new(project)?;
    let after = resume_point(headers.get("last-event-id"), query.after.as_deref())?;
    let subscription = state
        .events
        .subscribe(&who, &project, &topic, after)
        .await?;
    Ok(stream_response(subscription, state.keepalive))
}

/// A subscription as a `text/event-stream` response (also Bunder
/// Manager's change stream).
pub fn stream_response(subscription: Subscription, keepalive: Duration) -> Response {
    let stream = SseStream::new(subscription, keepalive);
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Writes one delivery as an SSE frame.
pub fn write_frame(buf: &mut BytesMut, delivery: &Delivery) {
    match delivery {
        Delivery::Event(event) => {
            buf.put_slice(b"id: ");
            buf.put_slice(event.seq.to_string().as_bytes());
            buf.put_slice(b"\ndata: ");
            buf.put_slice(event.wire_json().as_bytes());
            buf.put_slice(b"\n\n");
        }
        Delivery::Gap(gap) => {
            buf.put_slice(b"event: gap\ndata: ");
            buf.put_slice(serde_json::to_string(gap).unwrap_or_default().as_bytes());
            buf.put_slice(b"\n\n");
        }
        Delivery::Closed(reason) => {
            buf.put_slice(b"event: closed\ndata: ");
            buf.put_slice(closed_json(*reason).as_bytes());
            buf.put_slice(b"\n\n");
        }
    }
}

pub fn closed_json(reason: CloseReason) -> String {
    serde_json::json!({ "type": "closed", "reason": reason.as_str(), "message": reason.message() })
        .to_string()
}

struct SseStream {
    subscription: Subscription,
    keepalive: Interval,
    opening: Option<Bytes>,
    done: bool,
}

impl SseStream {
    fn new(subscription: Subscription, keepalive: Duration) -> SseStream {
        let mut interval =
            tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        SseStream {
            keepalive: interval,
            // Sent at once: the client knows the subscription is live, gets
            // the reconnect delay, and its last event id becomes the
            // subscription's position, so a reconnect before any event
            // still resumes without loss.
            opening: Some(Bytes::from(format!(
                "retry: 1000\nid: {}\n: subscribed\n\n",
                subscription.position()
            ))),
            subscription,
            done: false,
        }
    }
}

impl Stream for SseStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(opening) = self.opening.take() {
            return Poll::Ready(Some(Ok(opening)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let mut buf = BytesMut::new();
        while buf.len() < CHUNK {
            match Pin::new(&mut self.subscription).poll_next(cx) {
                Poll::Ready(Some(delivery)) => {
                    write_frame(&mut buf, &delivery);
                    if matches!(delivery, Delivery::Closed(_)) {
                        self.done = true;
                        break;
                    }
                }
                Poll::Ready(None) => {
                    self.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if !buf.is_empty() {
            self.keepalive.reset();
            return Poll::Ready(Some(Ok(buf.freeze())));
        }
        if self.done {
            return Poll::Ready(None);
        }
        if self.keepalive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(b": keepalive\n\n"))));
        }
        Poll::Pending
    }
}
