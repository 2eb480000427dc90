//! The Buncast service: what shells and embedders call.

use std::sync::Arc;

use super::bus::EventBus;
use super::hub::Subscription;
use super::metrics::EventMetrics;
use super::model::{Payload, Topic, TopicFilter, TopicInfo};
use crate::auth::{Access, Principal};
use crate::error::Error;
use crate::id::ProjectId;

/// Topics (and, with their dotted subtopics, families of topics) only the
/// platform's services publish to (clients subscribe): `kv` is Bunder
/// Manager's change feed, `bundoc.{collection}` Bundoc's.
pub const RESERVED_TOPICS: &[&str] = &["kv", "bundoc"];

/// Whether `topic` is reserved for the platform.
pub fn is_reserved(topic: &str) -> bool {
    RESERVED_TOPICS.iter().any(|r| {
        topic == *r
            || topic
                .strip_prefix(r)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Limits applied before anything reaches the bus.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Largest payload (compact JSON text), in bytes.
    pub max_payload_bytes: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_payload_bytes: 64 * 1024,
        }
    }
}

/// Validates, authorizes and counts; the bus does the rest.
#[derive(Clone)]
pub struct Events {
    bus: Arc<dyn EventBus>,
    limits: EventLimits,
    metrics: Arc<EventMetrics>,
}

impl Events {
    pub fn new(bus: Arc<dyn EventBus>, limits: EventLimits, metrics: Arc<EventMetrics>) -> Events {
        Events {
            bus,
            limits,
            metrics,
        }
    }

    pub fn limits(&self) -> EventLimits {
        self.limits
    }

    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// Publishes `data_json` (any JSON text) to `topic`; returns its seq.
    pub async fn publish(
        &self,
        who: &Principal,
        project: &ProjectId,
        topic: &str,
        data_json: &str,
    ) -> Result<u64, Error> {
        who.authorize(project, Access::Write)?;
        let topic = Topic::new(topic)?;
        if is_reserved(topic.as_str()) {
            return Err(Error::PermissionDenied(format!(
                "topic {topic} carries the platform's own change feed; only the platform publishes to it"
            )));
        }
        let data = Payload::from_json(data_json, self.limits.max_payload_bytes)?;
        self.publish_payload(project, &topic, data).await
    }

    /// Publishes an already-built payload (in-process writers such as the
    /// document change feed), still enforcing the size limit.
    pub async fn publish_payload(
        &self,
        project: &ProjectId,
        topic: &Topic,
        data: Payload,
    ) -> Result<u64, Error> {
        if data.len() > self.limits.max_payload_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "event payload is {} bytes; the limit is {}",
                data.len(),
                self.limits.max_payload_bytes
            )));
        }
        let seq = self.bus.publish(project, topic, data).await?;
        self.metrics.published.inc();
        Ok(seq)
    }

    /// Subscribes to a topic or pattern, resuming after `after` if given.
    pub async fn subscribe(
        &self,
        who: &Principal,
        project: &ProjectId,
        filter: &str,
        after: Option<u64>,
    ) -> Result<Subscription, Error> {
        who.authorize(project, Access::Read)?;
        let filter = TopicFilter::parse(filter)?;
        self.bus.subscribe(project, &filter, after).await
    }

    pub async fn topics(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Vec<TopicInfo>, Error> {
        who.authorize(project, Access::Read)?;
        self.bus.topics(project).await
    }

    pub async fn check(&self) -> Result<(), Error> {
        self.bus.check().await
    }

    /// A deleted project's retained events and topics; its streams end.
    pub async fn forget_project(&self, project: &ProjectId) -> Result<u64, Error> {
        self.bus.delete_project(project).await
    }

    pub fn shut_down(&self) {
        self.bus.shut_down();
    }
}

#[async_trait::async_trait]
impl crate::platform::ProjectData for Events {
    fn service(&self) -> &'static str {
        "events"
    }

    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error> {
        self.forget_project(project).await
    }
}
