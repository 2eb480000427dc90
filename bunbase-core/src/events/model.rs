//! Event types: topics, patterns, events and deliveries.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 200;
/// Most dot-separated segments in a topic.
pub const MAX_TOPIC_SEGMENTS: usize = 16;

/// A topic name: dot-separated segments of `A-Z a-z 0-9 _ -`
/// (`orders`, `orders.created`, `chat.room-42`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Topic(Arc<str>);

impl Topic {
    pub fn new(name: &str) -> Result<Topic, Error> {
        check_shape("topic", name)?;
        for segment in name.split('.') {
            if !is_literal_segment(segment) {
                return Err(invalid_segment("topic", name));
            }
        }
        Ok(Topic(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Topic::new(&raw).map_err(serde::de::Error::custom)
    }
}

fn check_shape(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_TOPIC_LEN {
        return Err(Error::invalid(format!(
            "{what} must be 1 to {MAX_TOPIC_LEN} bytes"
        )));
    }
    if name.split('.').count() > MAX_TOPIC_SEGMENTS {
        return Err(Error::invalid(format!(
            "{what} may have at most {MAX_TOPIC_SEGMENTS} segments"
        )));
    }
    Ok(())
}

fn is_literal_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn invalid_segment(what: &str, name: &str) -> Error {
    Error::invalid(format!(
        "invalid {what} {name:?}: segments are separated by '.' and use only A-Z, a-z, 0-9, '_' and '-'{}",
        if what == "topic" {
            ""
        } else {
            "; '*' matches one segment and '>' (last only) one or more"
        }
    ))
}

/// What a subscriber listens to: one topic, or a pattern where `*` matches
/// exactly one segment and a final `>` matches one or more segments
/// (`orders.*` matches `orders.created`, `orders.>` also `orders.eu.created`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicFilter {
    Exact(Topic),
    Pattern(Pattern),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    raw: Arc<str>,
    segments: Vec<PatternSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PatternSegment {
    Literal(String),
    One,
    Rest,
}

impl TopicFilter {
    pub fn parse(raw: &str) -> Result<TopicFilter, Error> {
        if !raw.contains(['*', '>']) {
            return Topic::new(raw).map(TopicFilter::Exact);
        }
        check_shape("topic pattern", raw)?;
        let count = raw.split('.').count();
        let mut segments = Vec::with_capacity(count);
        for (i, segment) in raw.split('.').enumerate() {
            segments.push(match segment {
                "*" => PatternSegment::One,
                ">" if i + 1 == count => PatternSegment::Rest,
                s if is_literal_segment(s) => PatternSegment::Literal(s.to_string()),
                _ => return Err(invalid_segment("topic pattern", raw)),
            });
        }
        Ok(TopicFilter::Pattern(Pattern {
            raw: Arc::from(raw),
            segments,
        }))
    }

    pub fn as_str(&self) -> &str {
        match self {
            TopicFilter::Exact(t) => t.as_str(),
            TopicFilter::Pattern(p) => &p.raw,
        }
    }

    pub fn matches(&self, topic: &Topic) -> bool {
        match self {
            TopicFilter::Exact(t) => t == topic,
            TopicFilter::Pattern(p) => {
                let mut names = topic.segments();
                for segment in &p.segments {
                    match segment {
                        PatternSegment::Rest => return names.next().is_some(),
                        PatternSegment::One => {
                            if names.next().is_none() {
                                return false;
                            }
                        }
                        PatternSegment::Literal(lit) => {
                            if names.next() != Some(lit.as_str()) {
                                return false;
                            }
                        }
                    }
                }
                names.next().is_none()
            }
        }
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's payload: any JSON value, kept as its compact JSON text so it is
/// parsed once at publish and never re-encoded on the way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(Arc<str>);

impl Payload {
    /// Validates `text` as JSON and checks it against `max_bytes`.
    ///
    /// Single-line JSON is kept as given (validated without building a
    /// tree, the common and fast case); JSON with line breaks between
    /// tokens is re-encoded compactly, since event frames (SSE `data:`
    /// lines) must be one line.
    pub fn from_json(text: &str, max_bytes: usize) -> Result<Payload, Error> {
        if text.len() > max_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "event payload is {} bytes; the limit is {max_bytes}",
                text.len()
            )));
        }
        if text.bytes().any(|b| b == b'\n' || b == b'\r') {
            let value: serde_json::Value = serde_json::from_str(text)?;
            return Ok(Payload::from_value(&value));
        }
        serde_json::from_str::<serde::de::IgnoredAny>(text)?;
        Ok(Payload(Arc::from(text.trim())))
    }

    pub fn from_value(value: &serde_json::Value) -> Payload {
        Payload(Arc::from(value.to_string()))
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

/// A published event. `seq` is the project-wide sequence number: strictly
/// increasing in publish order across all of the project's topics, so one
/// number is a resume point for a single topic and for a pattern alike.
/// `prev_seq` is the seq of the previous event on the same topic (0 if none):
/// with it a subscriber can tell whether it missed events of that topic.
#[derive(Debug)]
pub struct Event {
    pub seq: u64,
    pub prev_seq: u64,
    pub topic: Topic,
    pub data: Payload,
    /// Milliseconds since the Unix epoch.
    pub published_at: u64,
    wire: OnceLock<Arc<str>>,
}

impl Event {
    pub fn new(seq: u64, prev_seq: u64, topic: Topic, data: Payload, published_at: u64) -> Event {
        Event {
            seq,
            prev_seq,
            topic,
            data,
            published_at,
            wire: OnceLock::new(),
        }
    }

    /// The event's JSON form (computed once, shared by every subscriber):
    /// `{"type":"event","seq":…,"prev_seq":…,"topic":"…","published_at":…,"data":…}`.
    pub fn wire_json(&self) -> &Arc<str> {
        self.wire.get_or_init(|| {
            let topic = serde_json::to_string(self.topic.as_str()).unwrap_or_default();
            Arc::from(format!(
                r#"{{"type":"event","seq":{},"prev_seq":{},"topic":{topic},"published_at":{},"data":{}}}"#,
                self.seq,
                self.prev_seq,
                self.published_at,
                self.data.as_json()
            ))
        })
    }

    /// Parses the form written by [`Event::wire_json`] (the Redis adapter
    /// stores and publishes it; clients receive it).
    pub fn from_wire(text: &str) -> Result<Event, Error> {
        #[derive(Deserialize)]
        struct Wire {
            seq: u64,
            #[serde(default)]
            prev_seq: u64,
            topic: Topic,
            published_at: u64,
            data: serde_json::Value,
        }
        let w: Wire = serde_json::from_str(text)?;
        Ok(Event::new(
            w.seq,
            w.prev_seq,
            w.topic,
            Payload::from_value(&w.data),
            w.published_at,
        ))
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.prev_seq == other.prev_seq
            && self.topic == other.topic
            && self.data == other.data
            && self.published_at == other.published_at
    }
}

/// Why events a subscriber asked for can't be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// Older than the retained history of the topic.
    Evicted,
    /// The resume point is ahead of anything this bus has published (its
    /// history was reset, e.g. an in-memory bus restarted).
    UnknownPosition,
}

/// Sent before replayed events when some could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The topic with missing events; `None` when the whole position is unknown.
    pub topic: Option<Topic>,
    /// The resume point the subscriber asked for.
    pub after: u64,
    /// The first sequence number that will be delivered for that topic (0 if
    /// nothing is retained).
    pub next_seq: u64,
    pub reason: GapReason,
}

/// Why a subscription ended. The subscriber always learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The subscriber did not keep up: its queue filled. It got every event
    /// up to that point; it may resume from the last one it saw.
    Lagged,
    /// The server is shutting down.
    Shutdown,
    /// The bus lost its connection to the shared server; resume to catch up.
    Resync,
    /// The stream's credential no longer holds: the key was revoked, the
    /// token expired or its session ended, or the project was deleted.
    /// Resuming needs a valid credential.
    Revoked,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Lagged => "lagged",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Resync => "resync",
            CloseReason::Revoked => "revoked",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            CloseReason::Lagged => {
                "subscriber fell behind and its queue filled; resume from the last event seen"
            }
            CloseReason::Shutdown => "server is shutting down; reconnect to resume",
            CloseReason::Resync => "event bus reconnected to its server; resume to catch up",
            CloseReason::Revoked => {
                "the credential no longer holds (revoked, expired, signed out, or the project was deleted); resume with a valid one"
            }
        }
    }
}

/// What a subscription yields, in order.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<Event>),
    Gap(Gap),
    /// Always the last item of a subscription that the server ended.
    Closed(CloseReason),
}

/// A topic and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub topic: Topic,
    /// Sequence number of the newest event on the topic (0 if none yet).
    pub last_seq: u64,
    /// Events kept for replay.
    pub retained: u64,
    /// Subscriptions (exact or pattern) currently receiving this topic.
    pub subscribers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_validated() {
        for ok in ["a", "orders.created", "chat.room-42", "A_b.C-d", "x.y.z"] {
            assert!(Topic::new(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        let deep = vec!["a"; MAX_TOPIC_SEGMENTS + 1].join(".");
        for bad in [
            "", ".", "a.", ".a", "a..b", "a b", "a/b", "a*", "é", &long, &deep,
        ] {
            assert!(Topic::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns_match_segments() {
        let f = |p: &str| TopicFilter::parse(p).unwrap();
        let t = |n: &str| Topic::new(n).unwrap();
        assert!(f("orders.*").matches(&t("orders.created")));
        assert!(!f("orders.*").matches(&t("orders")));
        assert!(!f("orders.*").matches(&t("orders.eu.created")));
        assert!(f("orders.>").matches(&t("orders.eu.created")));
        assert!(!f("orders.>").matches(&t("orders")));
        assert!(f("*.created").matches(&t("orders.created")));
        assert!(f(">").matches(&t("anything.at.all")));
        assert!(f("orders").matches(&t("orders")));
        assert!(!f("orders").matches(&t("orders.created")));
        for bad in ["orders.>.x", "orders.*x", "a..*", "**", "a.>>"] {
            assert!(TopicFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payloads_are_json_and_bounded() {
        assert_eq!(
            Payload::from_json(" {\"a\": 1} ", 100).unwrap().as_json(),
            "{\"a\": 1}"
        );
        let multi_line = Payload::from_json("{\n  \"a\": \"x\\ny\"\n}", 100).unwrap();
        assert_eq!(multi_line.as_json(), r#"{"a":"x\ny"}"#);
        assert!(
            !multi_line.as_json().contains('\n'),
            "frames stay on one line"
        );
        assert!(Payload::from_json("1 2", 100).is_err());
        assert!(Payload::from_json("", 100).is_err());
        assert!(Payload::from_json("{oops", 100).is_err());
        let err = Payload::from_json("\"0123456789\"", 5).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn wire_form_round_trips() {
        let e = Event::new(
            7,
            3,
            Topic::new("a.b").unwrap(),
            Payload::from_value(&serde_json::json!({"x":[1,"y"]})),
            99,
        );
        let back = Event::from_wire(e.wire_json()).unwrap();
        assert_eq!(back, e);
    }
}
