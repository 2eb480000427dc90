//! Server-Sent Events for every streaming route: Buncast subscriptions,
//! Bunder Manager's change stream and Bundoc's realtime queries.
//!
//! The first chunk leaves at once (`retry: 1000`, the stream's position as
//! `id:` when it has one, `: subscribed`), so a client knows it is
//! subscribed and a reconnect before any frame still resumes without loss.
//! Frames ready together are packed into one chunk; an idle stream gets a
//! `: keepalive` comment so proxies keep it open.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bunbase_core::Error;
use bunbase_core::events::{CloseReason, Delivery};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Interval, MissedTickBehavior};

/// Ready frames are packed into one chunk up to this size (fewer writes).
const CHUNK: usize = 32 * 1024;

/// One frame of an event stream.
pub trait SseFrame {
    /// Appends the frame's lines and the blank line that ends it.
    fn write(&self, buf: &mut BytesMut);
    /// Whether this is the stream's last frame (it ends after it).
    fn is_last(&self) -> bool;
}

/// Appends one frame: `event:` (none is the default `message` type, so
/// `EventSource.onmessage` gets it), `id:` (where a reconnect resumes;
/// frames without one never move it) and one `data:` line.
pub fn write_frame(buf: &mut BytesMut, event: Option<&str>, id: Option<u64>, data: &str) {
    if let Some(event) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(event.as_bytes());
        buf.put_slice(b"\n");
    }
    if let Some(id) = id {
        buf.put_slice(b"id: ");
        buf.put_slice(id.to_string().as_bytes());
        buf.put_slice(b"\n");
    }
    buf.put_slice(b"data: ");
    buf.put_slice(data.as_bytes());
    buf.put_slice(b"\n\n");
}

/// A Buncast delivery: an event is `id: <seq>` + `data: <event JSON>`;
/// `gap` and `closed` carry no id so they never move the resume point.
impl SseFrame for Delivery {
    fn write(&self, buf: &mut BytesMut) {
        match self {
            Delivery::Event(event) => write_frame(buf, None, Some(event.seq), event.wire_json()),
            Delivery::Gap(gap) => {
                let data = serde_json::to_string(gap).unwrap_or_default();
                write_frame(buf, Some("gap"), None, &data)
            }
            Delivery::Closed(reason) => {
                write_frame(buf, Some("closed"), None, &closed_json(*reason))
            }
        }
    }

    fn is_last(&self) -> bool {
        matches!(self, Delivery::Closed(_))
    }
}

/// Why a Buncast stream ended, as its last frame's JSON.
pub fn closed_json(reason: CloseReason) -> String {
    serde_json::json!({ "type": "closed", "reason": reason.as_str(), "message": reason.message() })
        .to_string()
}

/// Where a subscriber resumes: `Last-Event-ID` (what a reconnecting
/// EventSource sends) wins over `?after=`.
pub fn resume_point(
    last_event_id: Option<&HeaderValue>,
    after: Option<&str>,
) -> Result<Option<u64>, Error> {
    let raw = match last_event_id {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| Error::invalid("Last-Event-ID must be a sequence number"))?
                .trim()
                .to_string(),
        ),
        None => after.map(str::to_string),
    };
    match raw {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            Error::invalid(format!(
                "resume point {s:?} is not a sequence number (a non-negative integer)"
            ))
        }),
    }
}

/// `frames` as a `text/event-stream` response; `position` is the opening
/// frame's id.
pub fn sse_response<S, F>(frames: S, position: Option<u64>, keepalive: Duration) -> Response
where
    S: Stream<Item = F> + Send + Unpin + 'static,
    F: SseFrame + Send + 'static,
{
    let mut response = Response::new(Body::from_stream(SseBody::new(frames, position, keepalive)));
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

struct SseBody<S> {
    frames: S,
    keepalive: Interval,
    opening: Option<Bytes>,
    done: bool,
}

impl<S> SseBody<S> {
    fn new(frames: S, position: Option<u64>, keepalive: Duration) -> SseBody<S> {
        let mut interval =
            tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let id = position.map(|p| format!("id: {p}\n")).unwrap_or_default();
        SseBody {
            frames,
            keepalive: interval,
            opening: Some(Bytes::from(format!("retry: 1000\n{id}: subscribed\n\n"))),
            done: false,
        }
    }
}

impl<S, F> Stream for SseBody<S>
where
    S: Stream<Item = F> + Unpin,
    F: SseFrame,
{
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
            match Pin::new(&mut self.frames).poll_next(cx) {
                Poll::Ready(Some(frame)) => {
                    frame.write(&mut buf);
                    if frame.is_last() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_resume_points() {
        let mut buf = BytesMut::new();
        write_frame(&mut buf, Some("added"), Some(7), r#"{"a":1}"#);
        write_frame(&mut buf, None, None, "x");
        assert_eq!(
            &buf[..],
            b"event: added\nid: 7\ndata: {\"a\":1}\n\ndata: x\n\n"
        );
        let header = HeaderValue::from_static(" 12 ");
        assert_eq!(resume_point(Some(&header), Some("3")).unwrap(), Some(12));
        assert_eq!(resume_point(None, Some("3")).unwrap(), Some(3));
        assert_eq!(resume_point(None, Some("")).unwrap(), None);
        assert!(resume_point(None, Some("-1")).is_err());
    }
}
