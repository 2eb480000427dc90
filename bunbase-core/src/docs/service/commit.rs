//! Commits: one committer task per project takes the batches waiting,
//! commits them in one store transaction (group commit) and publishes
//! their changes on Buncast topic `bundoc.{collection}` in that order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::docs::metrics::DocsMetrics;
use crate::docs::store::{Batch, DocStore, Refusal};
use crate::error::Error;
use crate::events::{Events, Payload, Topic};
use crate::id::ProjectId;

/// Change events carry documents up to this size; bigger ones are sent
/// without (`"doc": null, "truncated": true`), readers fetch them.
pub const EVENT_DOC_MAX: usize = 32 * 1024;
/// What a change event carries of both versions at most (`before` goes
/// only if it fits beside `doc`), well under Buncast's payload limit.
pub const EVENT_DOCS_MAX: usize = 48 * 1024;
/// Most batches one store transaction commits.
const GROUP_MAX: usize = 64;

/// `bundoc.{collection}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    /// `create`, `update` or `delete`.
    pub op: String,
    pub id: String,
    pub version: u64,
    /// The document as stored (encrypted fields as ciphertext); `null` on
    /// delete, or when larger than [`EVENT_DOC_MAX`].
    pub doc: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The document before this write (as stored), for updates and
    /// deletes: a resumed subscription tells with it whether the
    /// subscriber could see what it removes. Left out when it does not fit
    /// beside `doc` (`before_truncated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub before_truncated: bool,
}

/// The topic a collection's changes are published on.
pub fn changes_topic(collection: &str) -> Result<Topic, Error> {
    Topic::new(&format!("bundoc.{collection}"))
}

struct Job {
    batch: Batch,
    changes: Vec<Change>,
    reply: oneshot::Sender<Result<(), Refusal>>,
}

/// The committers of every project this instance has written to.
pub(super) struct Committers {
    store: Arc<dyn DocStore>,
    events: Events,
    metrics: Arc<DocsMetrics>,
    running: Mutex<HashMap<ProjectId, mpsc::Sender<Job>>>,
}

impl Committers {
    pub(super) fn new(
        store: Arc<dyn DocStore>,
        events: Events,
        metrics: Arc<DocsMetrics>,
    ) -> Committers {
        Committers {
            store,
            events,
            metrics,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Hands a batch to the project's committer and waits for its result.
    pub(super) async fn commit(
        &self,
        project: &ProjectId,
        batch: Batch,
        changes: Vec<Change>,
    ) -> Result<(), Refusal> {
        let (reply, result) = oneshot::channel();
        let job = Job {
            batch,
            changes,
            reply,
        };
        let stopped =
            || Refusal::Failed(Error::Unavailable("the document committer stopped".into()));
        self.committer(project)
            .send(job)
            .await
            .map_err(|_| stopped())?;
        result.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn committer(&self, project: &ProjectId) -> mpsc::Sender<Job> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = running.get(project)
            && !sender.is_closed()
        {
            return sender.clone();
        }
        let (sender, jobs) = mpsc::channel(1024);
        tokio::spawn(run_committer(
            project.clone(),
            jobs,
            self.store.clone(),
            self.events.clone(),
            self.metrics.clone(),
        ));
        running.insert(project.clone(), sender.clone());
        sender
    }
}

/// One project's committer: takes the batches waiting, commits them in
/// one store transaction, publishes their changes in that order, answers.
async fn run_committer(
    project: ProjectId,
    mut jobs: mpsc::Receiver<Job>,
    store: Arc<dyn DocStore>,
    events: Events,
    metrics: Arc<DocsMetrics>,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (batches, waiting): (Vec<Batch>, Vec<_>) = group
            .into_iter()
            .map(|j| (j.batch, (j.changes, j.reply)))
            .unzip();
        metrics.commit_batches.observe(batches.len() as f64);
        let results = store.commit(&project, &batches).await;
        for ((batch, (changes, reply)), result) in batches.iter().zip(waiting).zip(results) {
            if result.is_ok() {
                publish(&events, &metrics, &project, &batch.collection, &changes).await;
            }
            let _ = reply.send(result);
        }
    }
}

async fn publish(
    events: &Events,
    metrics: &DocsMetrics,
    project: &ProjectId,
    collection: &str,
    changes: &[Change],
) {
    let topic = match changes_topic(collection) {
        Ok(topic) => topic,
        Err(e) => {
            tracing::error!(error = %e, "no topic for collection {collection}");
            return;
        }
    };
    for change in changes {
        let payload = Payload::from_value(&json!(change));
        if let Err(e) = events.publish_payload(project, &topic, payload).await {
            metrics.change_events_failed.inc();
            tracing::warn!(error = %e, %project, collection, id = change.id, "change event not published");
        }
    }
}

/// The error a store's refusal means to the caller.
pub(super) fn refusal_error(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Changed { id } => Error::Conflict(format!("{id} changed meanwhile")),
        Refusal::Duplicate { index } => Error::Conflict(format!(
            "unique index {index}: another document has the same value"
        )),
        Refusal::Stale => {
            Error::Conflict("the collection's definition kept changing; try again".into())
        }
        Refusal::Quota(message) => Error::QuotaExceeded(message),
        Refusal::Failed(e) => e,
    }
}
