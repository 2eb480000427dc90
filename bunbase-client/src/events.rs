//! Buncast from Rust: publish, list topics, and subscribe with a stream that
//! reconnects and resumes by itself.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bunbase_core::Error;
use bunbase_core::events::{CloseReason, Event, Gap, TopicInfo};
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use crate::sse::SseParser;
use crate::transport::{Client, EventBody, segment, transport};

/// What a subscription stream yields.
#[derive(Debug, Clone)]
pub enum StreamItem {
    Event(Arc<Event>),
    /// Some events could not be replayed after a reconnect (too old).
    Gap(Gap),
}

/// Buncast calls.
#[derive(Clone)]
pub struct EventsClient {
    client: Client,
}

impl Client {
    /// Buncast (`/events`): publish and subscribe.
    pub fn events(&self) -> EventsClient {
        EventsClient::new(self.clone())
    }
}

impl EventsClient {
    pub(crate) fn new(client: Client) -> Self {
        EventsClient { client }
    }

    fn topic_url(&self, project: &str, topic: &str) -> String {
        self.client.url(&format!(
            "/events/v1/projects/{}/topics/{}",
            segment(project),
            segment(topic)
        ))
    }

    /// Publishes `data` to `topic`; returns the event's sequence number.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        project: &str,
        topic: &str,
        data: &T,
    ) -> Result<u64, Error> {
        #[derive(Serialize)]
        struct Body<'a, T: ?Sized> {
            data: &'a T,
        }
        let request = self
            .client
            .http
            .post(self.topic_url(project, topic))
            .json(&Body { data });
        let response = self.client.call(request).await?;
        let body: serde_json::Value = response.json().await.map_err(transport)?;
        body["seq"]
            .as_u64()
            .ok_or_else(|| Error::internal("publish answer has no seq"))
    }

    /// The project's topics with their subscriber counts.
    pub async fn topics(&self, project: &str) -> Result<Vec<TopicInfo>, Error> {
        let url = self
            .client
            .url(&format!("/events/v1/projects/{}/topics", segment(project)));
        let response = self.client.call(self.client.http.get(url)).await?;
        #[derive(serde::Deserialize)]
        struct Body {
            topics: Vec<TopicInfo>,
        }
        let body: Body = response.json().await.map_err(transport)?;
        Ok(body.topics)
    }

    /// Subscribes to a topic or pattern from now on. Returns once the server
    /// has confirmed the subscription: every event published after that is
    /// delivered.
    pub async fn subscribe(&self, project: &str, filter: &str) -> Result<EventStream, Error> {
        self.subscribe_after(project, filter, None).await
    }

    /// Subscribes, first replaying events after `after` (a sequence number;
    /// `Some(0)` replays everything the server retains).
    ///
    /// Errors from the first connection are returned here. After that the
    /// stream reconnects by itself (with backoff) when the connection drops
    /// or the server ends it (lagging, restart), resuming after the last
    /// event it yielded, so nothing is missed while the server still retains
    /// it (else a [`StreamItem::Gap`] says what was lost). It ends with an
    /// `Err` only for errors retrying can't fix: revoked credentials, an
    /// invalid topic.
    pub async fn subscribe_after(
        &self,
        project: &str,
        filter: &str,
        after: Option<u64>,
    ) -> Result<EventStream, Error> {
        let url = format!("{}/subscribe", self.topic_url(project, filter));
        stream_at(&self.client, url, after).await
    }
}

/// Opens a resuming event stream on any Buncast-style SSE endpoint (also
/// Bunder Manager's change stream).
pub(crate) async fn stream_at(
    client: &Client,
    url: String,
    after: Option<u64>,
) -> Result<EventStream, Error> {
    {
        let body = client.open_stream(&url, after).await?;
        let mut state = StreamState {
            client: client.clone(),
            url,
            position: after,
            body: Some(body),
            parser: SseParser::new(),
            pending: VecDeque::new(),
            backoff: INITIAL_BACKOFF,
            reconnecting: false,
            done: false,
        };
        state.await_opening().await?;
        Ok(EventStream {
            inner: Box::pin(futures_util::stream::unfold(state, StreamState::next)),
        })
    }
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const OPENING_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

type Body = EventBody;

struct StreamState {
    client: Client,
    url: String,
    /// The resume point: the last event seen, or the position the server
    /// gave when subscribing.
    position: Option<u64>,
    body: Option<Body>,
    parser: SseParser,
    pending: VecDeque<Result<StreamItem, Error>>,
    backoff: Duration,
    reconnecting: bool,
    done: bool,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<StreamItem, Error>, StreamState)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                if self.reconnecting {
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
                self.reconnecting = true;
                match self.client.open_stream(&self.url, self.position).await {
                    Ok(body) => {
                        self.body = Some(body);
                        self.parser = SseParser::new();
                    }
                    Err(e) if !e.code().retryable() => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                    Err(e) => tracing::debug!(error = %e, "subscription connect failed; retrying"),
                }
                continue;
            };
            match body.next().await {
                Some(Ok(chunk)) => self.absorb(&chunk),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "subscription stream broke; reconnecting");
                    self.body = None;
                }
                None => self.body = None,
            }
        }
    }

    /// Reads until the opening frame has given the subscription's position
    /// (events arriving with it are kept for the stream).
    async fn await_opening(&mut self) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + OPENING_TIMEOUT;
        while self.parser.last_event_id().is_none() {
            let Some(body) = self.body.as_mut() else {
                return Err(Error::unavailable("subscription closed before it opened"));
            };
            match tokio::time::timeout_at(deadline, body.next()).await {
                Ok(Some(Ok(chunk))) => self.absorb(&chunk),
                Ok(Some(Err(e))) => return Err(transport(e)),
                Ok(None) => return Err(Error::unavailable("subscription closed before it opened")),
                Err(_) => {
                    return Err(Error::unavailable(
                        "server did not confirm the subscription in time",
                    ));
                }
            }
        }
        Ok(())
    }

    fn absorb(&mut self, chunk: &[u8]) {
        for frame in self.parser.feed(chunk) {
            match frame.event.as_str() {
                "message" => match Event::from_wire(&frame.data) {
                    Ok(event) => {
                        self.backoff = INITIAL_BACKOFF;
                        self.position = Some(event.seq);
                        self.pending
                            .push_back(Ok(StreamItem::Event(Arc::new(event))));
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring malformed event"),
                },
                "gap" => match serde_json::from_str::<Gap>(&frame.data) {
                    Ok(gap) => self.pending.push_back(Ok(StreamItem::Gap(gap))),
                    Err(e) => tracing::warn!(error = %e, "ignoring malformed gap notice"),
                },
                "closed" => {
                    let reason = serde_json::from_str::<serde_json::Value>(&frame.data)
                        .ok()
                        .and_then(|v| {
                            serde_json::from_value::<CloseReason>(v["reason"].clone()).ok()
                        });
                    tracing::debug!(?reason, "server ended the subscription; resuming");
                    self.body = None;
                }
                _ => {}
            }
        }
        // An id-only frame (the opening one) moves the resume point too.
        if let Some(id) = self
            .parser
            .last_event_id()
            .and_then(|id| id.parse::<u64>().ok())
            && self.position.is_none_or(|p| id > p)
        {
            self.position = Some(id);
        }
    }
}

/// A subscription: an endless stream of events (see
/// [`EventsClient::subscribe_after`]). Drop it to unsubscribe.
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Result<StreamItem, Error>> + Send>>,
}

impl Stream for EventStream {
    type Item = Result<StreamItem, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
