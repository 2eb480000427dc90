//! Publish/subscribe between connections: channels and glob patterns.
//! Each subscriber has a bounded queue; one that falls that far behind is
//! disconnected (as Redis does with its output-buffer limit) rather than
//! slowing publishers down.

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::glob;

/// A message for one subscriber: (pattern it matched, channel, payload).
pub type Message = (Option<Bytes>, Bytes, Bytes);

/// Messages queued per subscriber before it is dropped.
pub const QUEUE: usize = 16 * 1024;

/// A connection's inbox: the queue, and the flag set when it overflowed
/// (the connection then closes, so no message is skipped silently).
#[derive(Clone)]
pub struct Inbox {
    pub tx: mpsc::Sender<Message>,
    pub overflowed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Inbox {
    fn deliver(&self, message: Message) -> bool {
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed
                    .store(true, std::sync::atomic::Ordering::Release);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

struct Subscriber {
    id: u64,
    inbox: Inbox,
}

#[derive(Default)]
pub struct PubSub {
    channels: RwLock<HashMap<Bytes, Vec<Subscriber>>>,
    patterns: RwLock<Vec<(Bytes, Subscriber)>>,
}

impl PubSub {
    pub fn subscribe(&self, channel: Bytes, id: u64, inbox: &Inbox) {
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        let list = channels.entry(channel).or_default();
        if !list.iter().any(|s| s.id == id) {
            list.push(Subscriber {
                id,
                inbox: inbox.clone(),
            });
        }
    }

    pub fn unsubscribe(&self, channel: &Bytes, id: u64) {
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = channels.get_mut(channel) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                channels.remove(channel);
            }
        }
    }

    pub fn psubscribe(&self, pattern: Bytes, id: u64, inbox: &Inbox) {
        let mut patterns = self.patterns.write().unwrap_or_else(|e| e.into_inner());
        if !patterns.iter().any(|(p, s)| *p == pattern && s.id == id) {
            patterns.push((
                pattern,
                Subscriber {
                    id,
                    inbox: inbox.clone(),
                },
            ));
        }
    }

    pub fn punsubscribe(&self, pattern: &Bytes, id: u64) {
        self.patterns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, s)| !(p == pattern && s.id == id));
    }

    /// Removes every subscription of a connection.
    pub fn forget(&self, id: u64) {
        self.channels
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, list| {
                list.retain(|s| s.id != id);
                !list.is_empty()
            });
        self.patterns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, s)| s.id != id);
    }

    /// Delivers to every subscriber; returns how many received it.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) -> i64 {
        let mut delivered = 0;
        if let Some(list) = self
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
        {
            for s in list {
                if s.inbox.deliver((None, channel.clone(), payload.clone())) {
                    delivered += 1;
                }
            }
        }
        for (pattern, s) in self
            .patterns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if glob::matches(pattern, channel)
                && s.inbox
                    .deliver((Some(pattern.clone()), channel.clone(), payload.clone()))
            {
                delivered += 1;
            }
        }
        delivered
    }
}
