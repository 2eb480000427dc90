//! Which filters each instance's subscribers use, shared through the server,
//! so listing topics counts subscribers on every instance, not only the one
//! that answers.
//!
//! Per project `P`: `buncast:P:subs:<instance>` (hash filter → count, expires
//! unless refreshed) and `buncast:P:instances` (sorted set instance → last
//! refresh, ms). A crashed instance drops out after [`TTL`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::Pool;
use tokio_util::sync::CancellationToken;

use super::unavailable;
use crate::error::Error;
use crate::events::hub::Hub;
use crate::events::model::TopicFilter;
use crate::id::{ProjectId, now_millis};

/// How long an instance's report counts without a refresh.
const TTL: Duration = Duration::from_secs(30);
/// How often reports are refreshed when nothing changes.
const REFRESH: Duration = Duration::from_secs(10);
/// Coalesces bursts of subscribe/unsubscribe into one write.
const DEBOUNCE: Duration = Duration::from_millis(10);

#[derive(Clone)]
pub(super) struct Presence {
    prefix: String,
    instance: String,
}

impl Presence {
    pub(super) fn new(prefix: &str, instance: String) -> Presence {
        Presence {
            prefix: prefix.to_string(),
            instance,
        }
    }

    fn subs_key(&self, project: &ProjectId, instance: &str) -> String {
        format!("{}:{project}:subs:{instance}", self.prefix)
    }

    fn instances_key(&self, project: &ProjectId) -> String {
        format!("{}:{project}:instances", self.prefix)
    }

    /// Keeps this instance's report current until `stop`, then removes it.
    pub(super) async fn run(self, pool: Pool, hub: Arc<Hub>, stop: CancellationToken) {
        let changes = hub.changes();
        let mut reported: HashSet<ProjectId> = HashSet::new();
        loop {
            let current: HashSet<ProjectId> = hub.projects().into_iter().collect();
            let mut pipe = redis::pipe();
            pipe.atomic();
            let now = now_millis();
            let cutoff = now.saturating_sub(TTL.as_millis() as u64);
            for project in &current {
                let key = self.subs_key(project, &self.instance);
                pipe.del(&key).ignore();
                for (filter, count) in hub.filters(project) {
                    pipe.hset(&key, filter.as_str(), count).ignore();
                }
                pipe.expire(&key, TTL.as_secs() as i64).ignore();
                let instances = self.instances_key(project);
                pipe.zadd(&instances, &self.instance, now).ignore();
                pipe.zrembyscore(&instances, 0, cutoff).ignore();
                pipe.expire(&instances, TTL.as_secs() as i64).ignore();
            }
            for project in reported.difference(&current) {
                pipe.del(self.subs_key(project, &self.instance)).ignore();
                pipe.zrem(self.instances_key(project), &self.instance)
                    .ignore();
            }
            match pool.get().await {
                Ok(mut conn) => {
                    let written: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
                    match written {
                        Ok(()) => reported = current,
                        Err(e) => tracing::warn!(error = %e, "could not share subscriber counts"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not share subscriber counts"),
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = changes.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(REFRESH) => {}
            }
        }
        // Leave no stale counts behind (best effort: the TTL covers a crash).
        if let Ok(mut conn) = pool.get().await {
            let mut pipe = redis::pipe();
            for project in &reported {
                pipe.del(self.subs_key(project, &self.instance)).ignore();
                pipe.zrem(self.instances_key(project), &self.instance)
                    .ignore();
            }
            let _: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        }
    }

    /// The filters other live instances report for `project`.
    pub(super) async fn others(
        &self,
        conn: &mut deadpool_redis::Connection,
        project: &ProjectId,
    ) -> Result<Vec<(TopicFilter, u64)>, Error> {
        let cutoff = now_millis().saturating_sub(TTL.as_millis() as u64);
        let instances: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.instances_key(project))
            .arg(cutoff)
            .arg("+inf")
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        let others: Vec<&String> = instances.iter().filter(|i| **i != self.instance).collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for instance in &others {
            pipe.hgetall(self.subs_key(project, instance));
        }
        let reports: Vec<Vec<(String, u64)>> = pipe.query_async(conn).await.map_err(unavailable)?;
        Ok(reports
            .into_iter()
            .flatten()
            .filter_map(|(raw, count)| TopicFilter::parse(&raw).ok().map(|f| (f, count)))
            .collect())
    }
}
