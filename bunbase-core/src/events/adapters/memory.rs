//! In-process event bus: sequencing, retention and fan-out in this process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{BusConfig, retained_size, too_many_topics, topic_infos};
use crate::error::Error;
use crate::events::bus::EventBus;
use crate::events::hub::{Hub, Subscription};
use crate::events::metrics::EventMetrics;
use crate::events::model::{CloseReason, Event, Payload, Topic, TopicFilter, TopicInfo};
use crate::events::replay::{self, Span};
use crate::id::{ProjectId, now_micros, now_millis};

#[derive(Default)]
struct TopicLog {
    last_seq: u64,
    events: VecDeque<Arc<Event>>,
    /// Retained size of `events`.
    bytes: usize,
}

impl TopicLog {
    /// Drops the oldest event: its size.
    fn drop_oldest(&mut self) -> usize {
        let size = self.events.pop_front().map_or(0, |e| retained_size(&e));
        self.bytes -= size;
        size
    }
}

struct ProjectLog {
    head_seq: u64,
    topics: HashMap<Topic, TopicLog>,
    /// Retained size of every topic's events.
    bytes: usize,
}

impl ProjectLog {
    /// Over `max` bytes, drops `topic`'s oldest events (keeping its
    /// newest), then the largest other topic's, until under it.
    fn enforce_bytes(&mut self, topic: &Topic, max: usize) {
        while self.bytes > max {
            let publishing = self.topics.get_mut(topic).filter(|t| t.events.len() > 1);
            let victim = match publishing {
                Some(log) => log,
                None => match self
                    .topics
                    .iter_mut()
                    .filter(|(name, log)| *name != topic && !log.events.is_empty())
                    .max_by_key(|(_, log)| log.bytes)
                {
                    Some((_, log)) => log,
                    None => return,
                },
            };
            let freed = victim.drop_oldest();
            self.bytes -= freed;
        }
    }
}

/// Everything lives in this process and is gone when it exits.
///
/// Sequence numbers start from the microsecond clock at creation rather than
/// 1, so a client resuming with a position from before a restart is below
/// this bus's first number and gets an `unknown_position` gap instead of a
/// silently wrong replay (as long as the previous run averaged fewer than a
/// million events a second).
pub struct MemoryBus {
    hub: Arc<Hub>,
    /// The last number issued before this bus existed.
    base_seq: u64,
    // One lock orders sequencing, retention and dispatch, so subscribers see
    // events in seq order and a subscribe sees a consistent snapshot.
    logs: Mutex<HashMap<ProjectId, ProjectLog>>,
    config: BusConfig,
}

impl MemoryBus {
    pub fn new(config: BusConfig, metrics: Arc<EventMetrics>) -> MemoryBus {
        MemoryBus {
            hub: Hub::new(config.hub, metrics),
            base_seq: now_micros(),
            logs: Mutex::new(HashMap::new()),
            config,
        }
    }

    fn logs(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, ProjectLog>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(
        &self,
        project: &ProjectId,
        topic: &Topic,
        data: Payload,
    ) -> Result<u64, Error> {
        let mut logs = self.logs();
        let log = logs.entry(project.clone()).or_insert_with(|| ProjectLog {
            head_seq: self.base_seq,
            topics: HashMap::new(),
            bytes: 0,
        });
        if !log.topics.contains_key(topic) && log.topics.len() >= self.config.max_topics_per_project
        {
            return Err(too_many_topics(self.config.max_topics_per_project));
        }
        log.head_seq += 1;
        let seq = log.head_seq;
        let topic_log = log.topics.entry(topic.clone()).or_default();
        let event = Arc::new(Event::new(
            seq,
            topic_log.last_seq,
            topic.clone(),
            data,
            now_millis(),
        ));
        topic_log.last_seq = seq;
        let size = retained_size(&event);
        topic_log.events.push_back(event.clone());
        topic_log.bytes += size;
        let mut freed = 0;
        while topic_log.events.len() > self.config.retain_per_topic.max(1) {
            freed += topic_log.drop_oldest();
        }
        log.bytes = log.bytes + size - freed;
        log.enforce_bytes(topic, self.config.max_retained_bytes_per_project);
        self.hub.dispatch(project, &event);
        Ok(seq)
    }

    async fn subscribe(
        &self,
        project: &ProjectId,
        filter: &TopicFilter,
        after: Option<u64>,
    ) -> Result<Subscription, Error> {
        let logs = self.logs();
        let registration = self.hub.register(project, filter)?;
        let head_seq = logs.get(project).map_or(self.base_seq, |log| log.head_seq);
        let Some(after) = after else {
            // Live only: the subscription starts at the current head.
            return Ok(Subscription::new(
                registration,
                Vec::new(),
                head_seq,
                self.hub.metrics().clone(),
            ));
        };
        let (head, histories) = match logs.get(project) {
            None => (self.base_seq, Vec::new()),
            Some(log) => (
                log.head_seq,
                log.topics
                    .iter()
                    .filter(|(topic, _)| filter.matches(topic))
                    .map(|(topic, t)| (topic.clone(), t.events.iter().cloned().collect()))
                    .collect(),
            ),
        };
        let span = Span {
            floor: self.base_seq,
            head,
        };
        let plan = replay::plan(after, span, histories);
        Ok(Subscription::new(
            registration,
            plan.deliveries,
            plan.after,
            self.hub.metrics().clone(),
        ))
    }

    async fn topics(&self, project: &ProjectId) -> Result<Vec<TopicInfo>, Error> {
        let known = match self.logs().get(project) {
            None => Vec::new(),
            Some(log) => log
                .topics
                .iter()
                .map(|(topic, t)| (topic.clone(), t.last_seq, t.events.len() as u64))
                .collect(),
        };
        Ok(topic_infos(known, &self.hub.filters(project)))
    }

    async fn delete_project(&self, project: &ProjectId) -> Result<u64, Error> {
        let removed = self.logs().remove(project);
        self.hub.close_project(project, CloseReason::Revoked);
        Ok(removed.map_or(0, |log| {
            log.topics.values().map(|t| t.events.len() as u64).sum()
        }))
    }

    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    fn shut_down(&self) {
        self.hub.shut_down();
    }
}

// The conformance suite runs on this adapter in tests/integration, beside
// the Redis-protocol one.
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_from_before_a_restart_are_reported() {
        use futures_util::StreamExt;
        let make = || MemoryBus::new(BusConfig::default(), Arc::new(EventMetrics::unregistered()));
        let project = ProjectId::new("p").unwrap();
        let topic = Topic::new("t").unwrap();
        let data = || Payload::from_value(&serde_json::json!(1));
        let before = make();
        let mut seen = 0;
        for _ in 0..3 {
            seen = before.publish(&project, &topic, data()).await.unwrap();
        }
        drop(before);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let after = make(); // "restarted"
        let mut fresh = Vec::new();
        for _ in 0..5 {
            fresh.push(after.publish(&project, &topic, data()).await.unwrap());
        }
        assert!(fresh[0] > seen, "numbers keep increasing across restarts");
        let filter = TopicFilter::Exact(topic);
        let mut sub = after
            .subscribe(&project, &filter, Some(seen))
            .await
            .unwrap();
        match sub.next().await {
            Some(crate::events::Delivery::Gap(gap)) => {
                assert_eq!(gap.reason, crate::events::GapReason::UnknownPosition)
            }
            other => panic!("expected a gap, got {other:?}"),
        }
        for seq in fresh {
            match sub.next().await {
                Some(crate::events::Delivery::Event(e)) => assert_eq!(e.seq, seq),
                other => panic!("{other:?}"),
            }
        }
    }
}
