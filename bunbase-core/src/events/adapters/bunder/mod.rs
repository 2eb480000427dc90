//! Event bus over any Redis-protocol server (our Bunder, or Redis).
//!
//! Several Buncast instances pointed at one server share sequencing, history
//! and delivery. Layout, per project `P` (prefix `buncast` by default):
//! - `buncast:P:seq`          — the project's last sequence number;
//! - `buncast:P:topics`       — hash topic → last seq on that topic;
//! - `buncast:P:log:<topic>`  — list of the topic's retained events (wire JSON);
//! - `buncast:P:bytes`        — the project's retained bytes (all its logs);
//! - `buncast:P:topic_bytes`  — hash topic → retained bytes of its log;
//! - channel `buncast:ev:P`   — every event, as published.
//!
//! Publish is one optimistic transaction (WATCH seq, MULTI … PUBLISH, EXEC),
//! so sequence order, history order and delivery order are the same for every
//! instance. Each instance holds one pub/sub connection (PSUBSCRIBE
//! `buncast:ev:*`) and fans out locally through its [`Hub`]. If that
//! connection drops, local subscribers are closed with `resync` so they resume
//! from history instead of silently missing events. Subscriber counts are
//! shared too ([`presence`]), so any instance can list them for all.

mod presence;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Pool, Runtime};
use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use self::presence::Presence;
use super::{BusConfig, too_many_topics, topic_infos};
use crate::error::Error;
use crate::events::bus::EventBus;
use crate::events::hub::{Hub, Subscription};
use crate::events::metrics::EventMetrics;
use crate::events::model::{CloseReason, Event, Payload, Topic, TopicFilter, TopicInfo};
use crate::events::replay::{self, Span};
use crate::id::{ProjectId, now_millis};

/// Optimistic publish attempts before giving up (contention from other instances).
const MAX_PUBLISH_ATTEMPTS: u32 = 64;

pub struct BunderBus {
    pool: Pool,
    prefix: String,
    hub: Arc<Hub>,
    config: BusConfig,
    connected: Arc<AtomicBool>,
    // Serializes this instance's publishes per project, so our own
    // transactions don't conflict with each other.
    publish_locks: Mutex<HashMap<ProjectId, Arc<tokio::sync::Mutex<()>>>>,
    presence: Presence,
    stop: CancellationToken,
}

impl BunderBus {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`) and starts the
    /// pub/sub reader. Fails if the server does not answer.
    pub async fn connect(
        url: &str,
        prefix: &str,
        config: BusConfig,
        metrics: Arc<EventMetrics>,
    ) -> Result<BunderBus, Error> {
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err(Error::invalid(
                "event key prefix must be non-empty, without spaces",
            ));
        }
        let pool = deadpool_redis::Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| Error::invalid(format!("invalid Redis URL: {e}")))?;
        let client = redis::Client::open(url)
            .map_err(|e| Error::invalid(format!("invalid Redis URL: {e}")))?;
        let hub = Hub::new(config.hub, metrics);
        let bus = BunderBus {
            pool,
            prefix: prefix.to_string(),
            hub: hub.clone(),
            config,
            connected: Arc::new(AtomicBool::new(false)),
            publish_locks: Mutex::new(HashMap::new()),
            presence: Presence::new(prefix, crate::id::random_hex(8)),
            stop: CancellationToken::new(),
        };
        bus.check().await?;
        let pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
        let reader = Reader {
            client,
            hub,
            prefix: prefix.to_string(),
            connected: bus.connected.clone(),
            stop: bus.stop.clone(),
        };
        let ready = reader.subscribe(pubsub).await?;
        tokio::spawn(reader.run(ready));
        tokio::spawn(
            bus.presence
                .clone()
                .run(bus.pool.clone(), bus.hub.clone(), bus.stop.clone()),
        );
        Ok(bus)
    }

    fn key(&self, project: &ProjectId, what: &str) -> String {
        format!("{}:{project}:{what}", self.prefix)
    }

    fn log_key(&self, project: &ProjectId, topic: &str) -> String {
        format!("{}:{project}:log:{topic}", self.prefix)
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, Error> {
        self.pool.get().await.map_err(unavailable)
    }

    fn publish_lock(&self, project: &ProjectId) -> Arc<tokio::sync::Mutex<()>> {
        self.publish_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(project.clone())
            .or_default()
            .clone()
    }

    /// One optimistic attempt; `Ok(None)` when another writer got in first.
    async fn try_publish(
        &self,
        conn: &mut deadpool_redis::Connection,
        project: &ProjectId,
        topic: &Topic,
        data: &Payload,
    ) -> Result<Option<u64>, Error> {
        let seq_key = self.key(project, "seq");
        let topics_key = self.key(project, "topics");
        let bytes_key = self.key(project, "bytes");
        let sizes_key = self.key(project, "topic_bytes");
        let log_key = self.log_key(project, topic.as_str());
        #[allow(clippy::type_complexity)]
        let (head, prev, topic_count, bytes, topic_bytes, length): (
            Option<u64>,
            Option<u64>,
            u64,
            Option<i64>,
            Option<i64>,
            u64,
        ) = redis::pipe()
            .cmd("WATCH")
            .arg(&seq_key)
            .ignore()
            .get(&seq_key)
            .hget(&topics_key, topic.as_str())
            .hlen(&topics_key)
            .get(&bytes_key)
            .hget(&sizes_key, topic.as_str())
            .llen(&log_key)
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        if prev.is_none() && topic_count >= self.config.max_topics_per_project as u64 {
            let _: redis::RedisResult<()> = redis::cmd("UNWATCH").query_async(conn).await;
            return Err(too_many_topics(self.config.max_topics_per_project));
        }
        let seq = head.unwrap_or(0) + 1;
        let event = Event::new(
            seq,
            prev.unwrap_or(0),
            topic.clone(),
            data.clone(),
            now_millis(),
        );
        let wire = event.wire_json().as_ref();
        // What stays retained: this topic's count limit, then the
        // project's bytes (this topic's oldest first, then the largest
        // other topic's).
        let mut plan = Retention {
            bytes: bytes.unwrap_or(0).max(0) as u64 + wire.len() as u64,
            topics: HashMap::new(),
        };
        plan.topics.insert(
            topic.as_str().to_string(),
            TopicPlan {
                events: length + 1,
                bytes: topic_bytes.unwrap_or(0).max(0) as u64 + wire.len() as u64,
                dropped: 0,
            },
        );
        let retain = self.config.retain_per_topic.max(1) as u64;
        let max = self.config.max_retained_bytes_per_project as u64;
        while plan.events(topic.as_str()) > retain
            || (plan.bytes > max && plan.events(topic.as_str()) > 1)
        {
            if !self
                .drop_oldest(conn, project, &mut plan, topic.as_str())
                .await?
            {
                break;
            }
        }
        if plan.bytes > max {
            self.take_from_largest(conn, project, &mut plan, topic.as_str(), max)
                .await?;
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(&seq_key, seq)
            .ignore()
            .hset(&topics_key, topic.as_str(), seq)
            .ignore()
            .rpush(&log_key, wire)
            .ignore()
            .set(&bytes_key, plan.bytes)
            .ignore();
        for (name, t) in &plan.topics {
            let log = self.log_key(project, name);
            if t.dropped > 0 {
                pipe.ltrim(&log, t.dropped as isize, -1).ignore();
            }
            pipe.hset(&sizes_key, name.as_str(), t.bytes).ignore();
        }
        let committed: Option<()> = pipe
            .publish(format!("{}:ev:{project}", self.prefix), wire)
            .ignore()
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        Ok(committed.map(|_| seq))
    }
}

/// A publish's retention, worked out while the project's seq is watched:
/// what each touched topic and the project keep after it.
struct Retention {
    /// The project's retained bytes.
    bytes: u64,
    topics: HashMap<String, TopicPlan>,
}

struct TopicPlan {
    /// Retained events and their bytes.
    events: u64,
    bytes: u64,
    /// Oldest events to drop (trimmed from the front of the log).
    dropped: u64,
}

impl Retention {
    fn events(&self, topic: &str) -> u64 {
        self.topics.get(topic).map_or(0, |t| t.events)
    }
}

impl BunderBus {
    /// Plans dropping `topic`'s oldest retained event not yet dropped;
    /// `false` when it has none.
    async fn drop_oldest(
        &self,
        conn: &mut deadpool_redis::Connection,
        project: &ProjectId,
        plan: &mut Retention,
        topic: &str,
    ) -> Result<bool, Error> {
        let Some(t) = plan.topics.get_mut(topic) else {
            return Ok(false);
        };
        let log = self.log_key(project, topic);
        let oldest: Option<Vec<u8>> = conn
            .lindex(&log, t.dropped as isize)
            .await
            .map_err(unavailable)?;
        let Some(oldest) = oldest else {
            t.events = 0;
            return Ok(false);
        };
        let size = oldest.len() as u64;
        t.dropped += 1;
        t.events = t.events.saturating_sub(1);
        t.bytes = t.bytes.saturating_sub(size);
        plan.bytes = plan.bytes.saturating_sub(size);
        Ok(true)
    }

    /// Drops the oldest events of the project's largest other topics until
    /// it is under `max` (the rare case: the publishing topic holds only
    /// the new event).
    async fn take_from_largest(
        &self,
        conn: &mut deadpool_redis::Connection,
        project: &ProjectId,
        plan: &mut Retention,
        publishing: &str,
        max: u64,
    ) -> Result<(), Error> {
        let sizes: HashMap<String, i64> = conn
            .hgetall(self.key(project, "topic_bytes"))
            .await
            .map_err(unavailable)?;
        let mut largest: Vec<(String, i64)> = sizes
            .into_iter()
            .filter(|(name, bytes)| name != publishing && *bytes > 0)
            .collect();
        largest.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        for (name, bytes) in largest {
            if plan.bytes <= max {
                break;
            }
            let events: u64 = conn
                .llen(self.log_key(project, &name))
                .await
                .map_err(unavailable)?;
            plan.topics.insert(
                name.clone(),
                TopicPlan {
                    events,
                    bytes: bytes as u64,
                    dropped: 0,
                },
            );
            while plan.bytes > max && plan.events(&name) > 0 {
                if !self.drop_oldest(conn, project, plan, &name).await? {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Drop for BunderBus {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("event store (Redis protocol) unavailable: {e}"))
}

#[async_trait]
impl EventBus for BunderBus {
    async fn publish(
        &self,
        project: &ProjectId,
        topic: &Topic,
        data: Payload,
    ) -> Result<u64, Error> {
        let lock = self.publish_lock(project);
        let _serial = lock.lock().await;
        let mut conn = self.conn().await?;
        for attempt in 0..MAX_PUBLISH_ATTEMPTS {
            if let Some(seq) = self.try_publish(&mut conn, project, topic, &data).await? {
                return Ok(seq);
            }
            // Another instance published first: back off a little and retry.
            let jitter = rand::random::<u64>() % 200;
            tokio::time::sleep(Duration::from_micros(
                50 * u64::from(attempt.min(20)) + jitter,
            ))
            .await;
        }
        Err(Error::Unavailable(
            "too much contention publishing to this project; retry".into(),
        ))
    }

    async fn subscribe(
        &self,
        project: &ProjectId,
        filter: &TopicFilter,
        after: Option<u64>,
    ) -> Result<Subscription, Error> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(Error::unavailable(
                "event bus is reconnecting to its server",
            ));
        }
        // Register first: an event is then either in history or in the queue.
        let registration = self.hub.register(project, filter)?;
        let metrics = self.hub.metrics().clone();
        let mut conn = self.conn().await?;
        let Some(after) = after else {
            // Live only: start at the head as read *after* registering; events
            // at or below it that reach the queue are before this position.
            let head: Option<u64> = conn
                .get(self.key(project, "seq"))
                .await
                .map_err(unavailable)?;
            return Ok(Subscription::new(
                registration,
                Vec::new(),
                head.unwrap_or(0),
                metrics,
            ));
        };
        let (head, topics): (Option<u64>, HashMap<String, u64>) = redis::pipe()
            .get(self.key(project, "seq"))
            .hgetall(self.key(project, "topics"))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let matching: Vec<Topic> = topics
            .keys()
            .filter_map(|name| Topic::new(name).ok())
            .filter(|t| filter.matches(t))
            .collect();
        let mut pipe = redis::pipe();
        for topic in &matching {
            pipe.lrange(self.log_key(project, topic.as_str()), 0, -1);
        }
        let logs: Vec<Vec<String>> = if matching.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await.map_err(unavailable)?
        };
        let mut histories = Vec::with_capacity(matching.len());
        for (topic, raw) in matching.into_iter().zip(logs) {
            let events = raw
                .iter()
                .map(|text| Event::from_wire(text).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::internal(format!("corrupt event history for {topic}: {e}")))?;
            histories.push((topic, events));
        }
        // History was read after the head; anything newer than the head
        // comes through the live queue (the plan leaves it out), so a
        // topic read late can't push the resume point past an event of a
        // topic read early.
        let span = Span {
            floor: 0,
            head: head.unwrap_or(0),
        };
        let plan = replay::plan(after, span, histories);
        Ok(Subscription::new(
            registration,
            plan.deliveries,
            plan.after,
            metrics,
        ))
    }

    async fn topics(&self, project: &ProjectId) -> Result<Vec<TopicInfo>, Error> {
        let mut conn = self.conn().await?;
        let topics: HashMap<String, u64> = conn
            .hgetall(self.key(project, "topics"))
            .await
            .map_err(unavailable)?;
        let known: Vec<(Topic, u64)> = topics
            .into_iter()
            .filter_map(|(name, seq)| Topic::new(&name).ok().map(|t| (t, seq)))
            .collect();
        let mut pipe = redis::pipe();
        for (topic, _) in &known {
            pipe.llen(self.log_key(project, topic.as_str()));
        }
        let lengths: Vec<u64> = if known.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await.map_err(unavailable)?
        };
        let known = known
            .into_iter()
            .enumerate()
            .map(|(i, (topic, last_seq))| (topic, last_seq, lengths.get(i).copied().unwrap_or(0)))
            .collect();
        // This instance's subscribers from the hub (exact, current), the
        // other instances' from their shared reports.
        let mut filters = self.hub.filters(project);
        filters.extend(self.presence.others(&mut conn, project).await?);
        Ok(topic_infos(known, &filters))
    }

    async fn delete_project(&self, project: &ProjectId) -> Result<u64, Error> {
        let mut conn = self.conn().await?;
        let topics: Vec<String> = conn
            .hkeys(self.key(project, "topics"))
            .await
            .map_err(unavailable)?;
        let logs: Vec<String> = topics
            .iter()
            .filter_map(|name| Topic::new(name).ok())
            .map(|topic| self.log_key(project, topic.as_str()))
            .collect();
        let mut lengths: Vec<u64> = Vec::new();
        if !logs.is_empty() {
            let mut count = redis::pipe();
            for log in &logs {
                count.llen(log);
            }
            lengths = count.query_async(&mut conn).await.map_err(unavailable)?;
        }
        let mut delete = redis::pipe();
        delete.atomic();
        delete
            .del(self.key(project, "seq"))
            .ignore()
            .del(self.key(project, "topics"))
            .ignore()
            .del(self.key(project, "bytes"))
            .ignore()
            .del(self.key(project, "topic_bytes"))
            .ignore();
        for log in &logs {
            delete.del(log).ignore();
        }
        let () = delete.query_async(&mut conn).await.map_err(unavailable)?;
        self.hub.close_project(project, CloseReason::Revoked);
        Ok(lengths.iter().sum())
    }

    async fn check(&self) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn shut_down(&self) {
        self.stop.cancel();
        self.hub.shut_down();
    }
}

/// The instance's pub/sub connection, feeding the local hub.
struct Reader {
    client: redis::Client,
    hub: Arc<Hub>,
    prefix: String,
    connected: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl Reader {
    async fn subscribe(&self, mut pubsub: redis::aio::PubSub) -> Result<redis::aio::PubSub, Error> {
        pubsub
            .psubscribe(format!("{}:ev:*", self.prefix))
            .await
            .map_err(unavailable)?;
        self.connected.store(true, Ordering::Release);
        Ok(pubsub)
    }

    async fn run(self, first: redis::aio::PubSub) {
        let mut pubsub = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Some(conn) = pubsub.take() {
                backoff = Duration::from_millis(100);
                self.pump(conn).await;
                self.connected.store(false, Ordering::Release);
                if self.stop.is_cancelled() {
                    return;
                }
                tracing::warn!(
                    "event bus lost its pub/sub connection; closing subscribers with resync"
                );
                self.hub.close_all(CloseReason::Resync);
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            match self.client.get_async_pubsub().await {
                Ok(conn) => match self.subscribe(conn).await {
                    Ok(conn) => {
                        tracing::info!("event bus pub/sub connection restored");
                        pubsub = Some(conn);
                    }
                    Err(e) => tracing::warn!(error = %e, "event bus pub/sub subscribe failed"),
                },
                Err(e) => tracing::warn!(error = %e, "event bus pub/sub reconnect failed"),
            }
        }
    }

    async fn pump(&self, mut pubsub: redis::aio::PubSub) {
        let channel_prefix = format!("{}:ev:", self.prefix);
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                _ = self.stop.cancelled() => return,
                msg = messages.next() => match msg {
                    Some(msg) => msg,
                    None => return,
                },
            };
            let Some(project) = msg
                .get_channel_name()
                .strip_prefix(&channel_prefix)
                .and_then(|p| ProjectId::new(p).ok())
            else {
                continue;
            };
            let parsed = std::str::from_utf8(msg.get_payload_bytes())
                .map_err(|e| Error::invalid(e.to_string()))
                .and_then(Event::from_wire);
            match parsed {
                Ok(event) => self.hub.dispatch(&project, &Arc::new(event)),
                Err(e) => {
                    tracing::warn!(error = %e, %project, "ignoring malformed event on the bus")
                }
            }
        }
    }
}
