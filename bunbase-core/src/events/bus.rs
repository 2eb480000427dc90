use async_trait::async_trait;

use super::hub::Subscription;
use super::model::{Payload, Topic, TopicFilter, TopicInfo};
use crate::error::Error;
use crate::id::ProjectId;

/// The event transport: sequencing, retention for replay, fan-out.
///
/// Guarantees every adapter must keep (checked by the conformance suite):
/// - `publish` returns the event's project-wide sequence number, strictly
///   increasing in the order subscribers see events;
/// - every subscriber of a topic sees its events in that order, with none
///   skipped silently: a lagging subscriber is closed with a reason;
/// - `subscribe(…, Some(after))` first replays retained events with
///   `seq > after` (and a gap notice for any it no longer has), then goes live
///   without loss or duplicates at the seam;
/// - nothing crosses projects.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    async fn publish(
        &self,
        project: &ProjectId,
        topic: &Topic,
        data: Payload,
    ) -> Result<u64, Error>;

    async fn subscribe(
        &self,
        project: &ProjectId,
        filter: &TopicFilter,
        after: Option<u64>,
    ) -> Result<Subscription, Error>;

    /// Topics that have events or subscribers, sorted by name.
    async fn topics(&self, project: &ProjectId) -> Result<Vec<TopicInfo>, Error>;

    /// Forgets the project (its deletion): its retained events, topics and
    /// sequence, and ends its subscriptions here with `revoked`. Answers
    /// the number of events removed.
    async fn delete_project(&self, project: &ProjectId) -> Result<u64, Error>;

    /// Health: `Err(unavailable)` naming what does not answer.
    async fn check(&self) -> Result<(), Error>;

    /// Ends every subscription with `shutdown` and refuses new ones.
    fn shut_down(&self);
}
