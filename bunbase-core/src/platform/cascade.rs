//! Deleting a project removes its data in every service: each service
//! registers its [`ProjectData`] with the identity service, which calls
//! them when a project is deleted.

use async_trait::async_trait;

use crate::error::Error;
use crate::id::ProjectId;

/// A service's data of each project.
#[async_trait]
pub trait ProjectData: Send + Sync + 'static {
    /// The service's name, for logs.
    fn service(&self) -> &'static str;
    /// Removes everything the service holds for `project` (BunKMS puts
    /// its keys into their scheduled deletion instead). Safe to run again;
    /// answers how many items (keys, events, collections…) it removed.
    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error>;
}

/// Where a service in another process learns which projects were deleted
/// (BunAuth over gRPC; the identity service itself in tests).
#[async_trait]
pub trait DeletionFeed: Send + Sync + 'static {
    /// Projects deleted at or after `since` (ms), oldest first, at most
    /// `limit`: `(id, deleted_at)`.
    async fn deleted_projects(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(ProjectId, u64)>, Error>;
}

/// Removes `project`'s data in every service of `cascade`; a service that
/// fails is logged, and the answer is whether all succeeded (the project
/// is already gone: the caller tries again later).
pub async fn purge_everywhere(
    cascade: &[std::sync::Arc<dyn ProjectData>],
    project: &ProjectId,
) -> bool {
    let mut complete = true;
    for data in cascade {
        match data.purge_project(project).await {
            Ok(removed) => {
                tracing::info!(%project, service = data.service(), removed, "deleted project's data removed")
            }
            Err(e) => {
                complete = false;
                tracing::warn!(%project, service = data.service(), error = %e, "could not remove a deleted project's data; trying again later");
            }
        }
    }
    complete
}

/// Deletions are read again this far back, for deletions recorded by a
/// platform instance whose clock runs behind (purges are idempotent).
const CLOCK_MARGIN_MS: u64 = 60_000;
const PAGE: usize = 500;

/// Follows `feed` every `every` until `stop`, removing each deleted
/// project's data in `cascade`. Starts from the beginning (a restarted
/// service purges what it may have missed while down; purging a project
/// with no data left costs one lookup per service).
pub async fn follow_deletions(
    feed: std::sync::Arc<dyn DeletionFeed>,
    cascade: Vec<std::sync::Arc<dyn ProjectData>>,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut since = 0;
    // Purged deletions at or after `since`, so a re-read skips them.
    let mut done: std::collections::HashMap<ProjectId, u64> = std::collections::HashMap::new();
    loop {
        // Pages from `since` onwards, each from the newest time seen (a
        // full page is not read again; the clock margin applies between
        // rounds, not between pages).
        let mut from = since;
        loop {
            let page = match feed.deleted_projects(from, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read deleted projects; trying again later");
                    break;
                }
            };
            let full = page.len() == PAGE;
            let mut newest = from;
            for (project, deleted_at) in page {
                newest = newest.max(deleted_at);
                if done.contains_key(&project) {
                    continue;
                }
                if purge_everywhere(&cascade, &project).await {
                    done.insert(project, deleted_at);
                }
            }
            let moved = newest > from;
            from = newest;
            if !full || !moved {
                break;
            }
        }
        // Keep what may be read again; forget older deletions.
        since = from.saturating_sub(CLOCK_MARGIN_MS).max(since);
        done.retain(|_, at| *at >= since);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    struct Feed(Mutex<Vec<(ProjectId, u64)>>);

    #[async_trait]
    impl DeletionFeed for Feed {
        async fn deleted_projects(
            &self,
            since: u64,
            limit: usize,
        ) -> Result<Vec<(ProjectId, u64)>, Error> {
            let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
            Ok(all
                .iter()
                .filter(|(_, at)| *at >= since)
                .take(limit)
                .cloned()
                .collect())
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<ProjectId>>);

    #[async_trait]
    impl ProjectData for Recorder {
        fn service(&self) -> &'static str {
            "recorder"
        }
        async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(project.clone());
            Ok(1)
        }
    }

    #[tokio::test]
    async fn every_deleted_project_is_purged_once() {
        let p = |s: &str| ProjectId::new(s).unwrap();
        let feed = Arc::new(Feed(Mutex::new(vec![(p("a"), 1_000), (p("b"), 1_000)])));
        let recorder = Arc::new(Recorder::default());
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(follow_deletions(
            feed.clone(),
            vec![recorder.clone()],
            std::time::Duration::from_millis(10),
            stop.clone(),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        feed.0.lock().unwrap().push((p("c"), 500_000)); // later
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.cancel();
        task.await.unwrap();
        let purged = recorder.0.lock().unwrap().clone();
        assert_eq!(purged, vec![p("a"), p("b"), p("c")]);
    }

    /// More deletions than a page within the clock margin: every one is
    /// read (a full page moves the read on, whatever the margin).
    #[tokio::test]
    async fn more_deletions_than_a_page_are_all_purged() {
        let deletions: Vec<(ProjectId, u64)> = (0..(2 * PAGE as u64 + 7))
            .map(|n| (ProjectId::new(format!("p{n}")).unwrap(), 1_000 + n))
            .collect();
        let count = deletions.len();
        let feed = Arc::new(Feed(Mutex::new(deletions)));
        let recorder = Arc::new(Recorder::default());
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(follow_deletions(
            feed,
            vec![recorder.clone()],
            std::time::Duration::from_millis(10),
            stop.clone(),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stop.cancel();
        task.await.unwrap();
        let mut purged = recorder.0.lock().unwrap().clone();
        purged.sort();
        purged.dedup();
        assert_eq!(purged.len(), count);
    }
}
