//! Helpers shared by the integration tests.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bunbase_client::sse::{SseEvent, SseParser};
use futures_util::{Stream, StreamExt};

pub const WAIT: Duration = Duration::from_secs(10);

/// A unique name for this test's topics, so tests share a server safely.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", bunbase_core::id::random_hex(4))
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Publishes over HTTP; returns the seq.
pub async fn publish(
    base: &str,
    token: &str,
    project: &str,
    topic: &str,
    data: serde_json::Value,
) -> u64 {
    let response = http()
        .post(format!(
            "{base}/events/v1/projects/{project}/topics/{topic}"
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({ "data": data }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
    assert_eq!(
        response.status(),
        201,
        "publish answered {}",
        response.status()
    );
    let body: serde_json::Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
    body["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq in {body}"))
}

/// Reads an SSE response frame by frame.
pub struct SseReader {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
}

impl SseReader {
    pub async fn open(
        base: &str,
        token: &str,
        project: &str,
        filter: &str,
        last_event_id: Option<u64>,
    ) -> SseReader {
        let mut request = http()
            .get(format!(
                "{base}/events/v1/projects/{project}/topics/{filter}/subscribe"
            ))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("subscribe: {e}"));
        let status = response.status().as_u16();
        assert_eq!(status, 200, "subscribe answered {status}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let mut reader = SseReader {
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            ready: VecDeque::new(),
        };
        // The opening frame arrives at once and carries the position.
        reader.fill().await;
        reader
    }

    /// The last id the stream set (the opening frame sets the position).
    pub fn last_event_id(&self) -> Option<u64> {
        self.parser.last_event_id().and_then(|s| s.parse().ok())
    }

    async fn fill(&mut self) -> bool {
        match tokio::time::timeout(WAIT, self.body.next()).await {
            Ok(Some(Ok(chunk))) => {
                self.ready.extend(self.parser.feed(&chunk));
                true
            }
            Ok(Some(Err(e))) => panic!("stream error: {e}"),
            Ok(None) => false,
            Err(_) => panic!("no SSE data within {WAIT:?}"),
        }
    }

    /// The next frame, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(frame);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next frame, which must be an event; returns (seq, data).
    pub async fn next_event(&mut self) -> (u64, serde_json::Value) {
        let frame = self.next().await.unwrap_or_else(|| panic!("stream ended"));
        assert_eq!(frame.event, "message", "expected an event, got {frame:?}");
        let value: serde_json::Value =
            serde_json::from_str(&frame.data).unwrap_or_else(|e| panic!("{e}"));
        let seq = value["seq"].as_u64().unwrap_or_else(|| panic!("no seq"));
        assert_eq!(
            frame.id.as_deref(),
            Some(seq.to_string().as_str()),
            "id is the seq"
        );
        (seq, value["data"].clone())
    }
}
