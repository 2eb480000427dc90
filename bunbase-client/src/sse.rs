//! A Server-Sent Events parser (the WHATWG event-stream format).

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub event: String,
    pub data: String,
    /// The `id:` field of this event, if it had one.
    pub id: Option<String>,
}

/// Incremental parser: feed bytes as they arrive, take events as they
/// complete. Handles `\n`, `\r\n` and `\r` line ends, comments, multi-line
/// data and chunks split anywhere (even inside a UTF-8 character).
#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
    last_event_id: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns the events they completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buffer.len() {
            let b = self.buffer[i];
            if b == b'\n' || b == b'\r' {
                // A lone '\r' at the end may be followed by '\n' in the next chunk.
                if b == b'\r' && i + 1 == self.buffer.len() {
                    break;
                }
                let line = String::from_utf8_lossy(&self.buffer[start..i]).into_owned();
                if b == b'\r' && self.buffer.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                i += 1;
                start = i;
                if let Some(event) = self.line(&line) {
                    events.push(event);
                }
                continue;
            }
            i += 1;
        }
        self.buffer.drain(..start);
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
        None
    }

    /// The last event id the stream set (by an event or an id-only frame),
    /// as a browser's EventSource tracks it for reconnecting.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let id = self.id.take();
        if id.is_some() {
            self.last_event_id.clone_from(&id);
        }
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_split_anywhere() {
        let stream = b"retry: 1000\n: hi\n\nid: 1\ndata: {\"a\":1}\n\nevent: gap\r\ndata: x\r\ndata: y\r\n\r\n";
        for split in 0..stream.len() {
            let mut p = SseParser::new();
            let mut got = p.feed(&stream[..split]);
            got.extend(p.feed(&stream[split..]));
            assert_eq!(
                got,
                vec![
                    SseEvent {
                        event: "message".into(),
                        data: "{\"a\":1}".into(),
                        id: Some("1".into())
                    },
                    SseEvent {
                        event: "gap".into(),
                        data: "x\ny".into(),
                        id: None
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        let mut p = SseParser::new();
        assert!(p.feed(b"event: x\n\n: comment\n\n").is_empty());
        assert!(p.feed(b"id: 7\n\n").is_empty());
        assert_eq!(p.last_event_id(), Some("7"));
    }

    #[test]
    fn utf8_split_inside_a_character_survives() {
        let text = "data: héllo\n\n".as_bytes();
        let mut p = SseParser::new();
        let mut got = p.feed(&text[..8]);
        got.extend(p.feed(&text[8..]));
        assert_eq!(got[0].data, "héllo");
    }
}
