//! Realtime queries: a subscriber gets the documents matching a filter
//! (a `snapshot`), then `added`, `changed` and `removed` events for that
//! filter as writes commit, checked against its list rule, in commit
//! order. Each event carries its position in the project's Buncast
//! stream; resuming after one replays what the subscriber missed (as
//! upserts and removals, so its view converges), or sends a new snapshot
//! when the bus no longer holds that history.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::access::Caller;
use super::bundoc::Bundoc;
use super::commit::{Change, changes_topic};
use crate::auth::Principal;
use crate::docs::model::{Collection, Operation};
use crate::docs::query::{MAX_LIMIT, Query};
use crate::error::Error;
use crate::events::{Delivery, Subscription, TopicFilter};
use crate::id::ProjectId;

/// Frames waiting for a slow subscriber before it is closed (it resumes).
const QUEUE: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// Every matching document, in the query's order: replaces the view.
    Snapshot {
        position: u64,
        documents: Vec<Value>,
    },
    Added {
        position: u64,
        doc: Value,
    },
    Changed {
        position: u64,
        doc: Value,
    },
    /// The document was deleted or no longer matches (or the rules no
    /// longer let this subscriber see it).
    Removed {
        position: u64,
        id: String,
    },
    /// The last frame: why the server ended the subscription (`lagged`,
    /// `shutdown`, `resync`, `error`); resume from the last position.
    Closed {
        reason: String,
    },
}

impl WatchEvent {
    pub fn name(&self) -> &'static str {
        match self {
            WatchEvent::Snapshot { .. } => "snapshot",
            WatchEvent::Added { .. } => "added",
            WatchEvent::Changed { .. } => "changed",
            WatchEvent::Removed { .. } => "removed",
            WatchEvent::Closed { .. } => "closed",
        }
    }

    /// Where to resume after this frame.
    pub fn position(&self) -> Option<u64> {
        match self {
            WatchEvent::Snapshot { position, .. }
            | WatchEvent::Added { position, .. }
            | WatchEvent::Changed { position, .. }
            | WatchEvent::Removed { position, .. } => Some(*position),
            WatchEvent::Closed { .. } => None,
        }
    }

    /// The frame's JSON.
    pub fn data(&self) -> Value {
        match self {
            WatchEvent::Snapshot { documents, .. } => json!({ "documents": documents }),
            WatchEvent::Added { doc, .. } | WatchEvent::Changed { doc, .. } => {
                json!({ "doc": doc })
            }
            WatchEvent::Removed { id, .. } => json!({ "id": id }),
            WatchEvent::Closed { reason } => json!({ "reason": reason }),
        }
    }
}

/// A running subscription; dropping it ends it.
#[derive(Debug)]
pub struct Watch {
    frames: mpsc::Receiver<WatchEvent>,
}

impl Stream for Watch {
    type Item = WatchEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        self.frames.poll_recv(cx)
    }
}

struct Watcher {
    docs: Bundoc,
    caller: Caller,
    project: ProjectId,
    collection: Arc<Collection>,
    query: Query,
    /// What the subscriber holds: id → version.
    view: HashMap<String, u64>,
    /// Resumed without a snapshot: the view is unknown, so removals are
    /// sent even for documents not in it.
    blind: bool,
    frames: mpsc::Sender<WatchEvent>,
}

impl Bundoc {
    /// Subscribes to the documents of `collection` matching the query's
    /// filter (sorted and projected as asked; at most 1000 may match).
    pub async fn watch(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        body: &Value,
        after: Option<u64>,
    ) -> Result<Watch, Error> {
        self.counted("watch", async {
            let (caller, collection, mut query) =
                self.read_query(who, project, collection, body).await?;
            if query.after.is_some() {
                return Err(Error::invalid(
                    "a subscription has no cursor; resume with Last-Event-ID",
                ));
            }
            query.limit = MAX_LIMIT;
            let subscription = subscribe(self, project, &collection.name, after).await?;
            let (frames, receiver) = mpsc::channel(QUEUE);
            let mut watcher = Watcher {
                docs: self.clone(),
                caller,
                project: project.clone(),
                collection,
                query,
                view: HashMap::new(),
                blind: after.is_some(),
                frames,
            };
            if after.is_none() {
                // Subscribed first, so nothing committed after the
                // snapshot's read is missed.
                watcher.snapshot(subscription.position()).await?;
            }
            let metrics = self.metrics().clone();
            metrics.subscribers.inc();
            tokio::spawn(async move {
                watcher.follow(subscription).await;
                metrics.subscribers.dec();
            });
            Ok(Watch { frames: receiver })
        })
        .await
    }
}

/// What applying a change came to.
enum Applied {
    /// What the subscriber must see of it was sent (maybe nothing).
    Sent,
    /// Resumed without a snapshot, the change removes a document whose
    /// earlier state the event does not carry: only a new snapshot can
    /// tell the subscriber without naming what it never saw.
    Undecidable,
}

/// Subscribes to a collection's change feed.
async fn subscribe(
    docs: &Bundoc,
    project: &ProjectId,
    collection: &str,
    after: Option<u64>,
) -> Result<Subscription, Error> {
    let filter = TopicFilter::parse(changes_topic(collection)?.as_str())?;
    docs.events().bus().subscribe(project, &filter, after).await
}

impl Watcher {
    /// Sends the matching documents; refuses filters matching too many.
    async fn snapshot(&mut self, position: u64) -> Result<(), Error> {
        let (page, _) = self
            .docs
            .run(&self.caller, &self.project, &self.collection, &self.query)
            .await?;
        if page.next_cursor.is_some() {
            return Err(Error::invalid(format!(
                "more than {MAX_LIMIT} documents match this subscription's filter; narrow it"
            )));
        }
        self.view = page
            .documents
            .iter()
            .filter_map(|d| Some((d["_id"].as_str()?.to_string(), d["_version"].as_u64()?)))
            .collect();
        self.blind = false;
        let mut documents = page.documents;
        for doc in &mut documents {
            self.docs.open(&self.project, &self.collection, doc).await?;
        }
        self.send(WatchEvent::Snapshot {
            position,
            documents,
        })
        .await
    }

    /// A live subscription to the collection's changes.
    async fn resubscribe(&self) -> Result<Subscription, Error> {
        subscribe(&self.docs, &self.project, &self.collection.name, None).await
    }

    async fn send(&self, frame: WatchEvent) -> Result<(), Error> {
        self.frames
            .send(frame)
            .await
            .map_err(|_| Error::Unavailable("the subscriber left".into()))
    }

    async fn follow(&mut self, mut subscription: Subscription) {
        while let Some(delivery) = subscription.next().await {
            let outcome = match delivery {
                Delivery::Event(event) => {
                    match serde_json::from_value::<Change>(event.data.to_value()) {
                        Ok(change) => match self.apply(event.seq, change).await {
                            Ok(Applied::Sent) => Ok(()),
                            Ok(Applied::Undecidable) => self.start_over(&mut subscription).await,
                            Err(e) => Err(e),
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable change event skipped");
                            Ok(())
                        }
                    }
                }
                // History the bus no longer holds: start over from now.
                Delivery::Gap(_) => self.start_over(&mut subscription).await,
                Delivery::Closed(reason) => {
                    let _ = self
                        .send(WatchEvent::Closed {
                            reason: reason.as_str().to_string(),
                        })
                        .await;
                    return;
                }
            };
            if let Err(e) = outcome {
                if !self.frames.is_closed() {
                    tracing::warn!(error = %e, "subscription ended");
                    let _ = self
                        .send(WatchEvent::Closed {
                            reason: "error".into(),
                        })
                        .await;
                }
                return;
            }
        }
    }

    /// Starts over from now, on a live subscription (the retained events
    /// left would only replay states older than the new snapshot).
    async fn start_over(&mut self, subscription: &mut Subscription) -> Result<(), Error> {
        *subscription = self.resubscribe().await?;
        self.snapshot(subscription.position()).await
    }

    /// Whether the subscriber sees `doc`: it matches the filter and the
    /// list rule lets it through.
    fn shows(&self, doc: &Value) -> bool {
        self.query.filter.matches(doc)
            && Bundoc::allowed(
                &self.caller,
                &self.collection,
                Operation::List,
                doc,
                &Value::Null,
            )
    }

    async fn apply(&mut self, position: u64, change: Change) -> Result<Applied, Error> {
        // The current definition (cached briefly): a rule changed since
        // the subscription began applies to what it sends next.
        self.collection = self
            .docs
            .definition(&self.project, &self.collection.name)
            .await?;
        if self
            .view
            .get(&change.id)
            .is_some_and(|&seen| seen >= change.version)
        {
            return Ok(Applied::Sent); // Already in the snapshot.
        }
        let doc = match (&change.doc, change.op.as_str()) {
            (_, "delete") => None,
            (Some(doc), _) => Some(doc.clone()),
            // Too big for the event: read it (it may have changed again;
            // later events bring that too).
            (None, _) => {
                self.docs
                    .store()
                    .get(&self.project, &self.collection.name, &change.id)
                    .await?
            }
        };
        let visible = doc.filter(|d| self.shows(d));
        match visible {
            Some(mut doc) => {
                let version = doc["_version"].as_u64().unwrap_or(change.version);
                let known = self.view.insert(change.id.clone(), version).is_some();
                self.docs
                    .open(&self.project, &self.collection, &mut doc)
                    .await?;
                let doc = self.query.project(&doc);
                let frame = if known || self.blind {
                    WatchEvent::Changed { position, doc }
                } else {
                    WatchEvent::Added { position, doc }
                };
                self.send(frame).await?;
                Ok(Applied::Sent)
            }
            None => {
                // Removed only from a view that held it: resumed without a
                // snapshot, the view is unknown, and the document's state
                // before this change tells whether the subscriber saw it —
                // an id it was never shown is never sent.
                let seen = self.view.remove(&change.id).is_some();
                let saw_before = match (&change.before, change.before_truncated) {
                    (Some(before), _) => self.shows(before),
                    (None, true) if self.blind => return Ok(Applied::Undecidable),
                    (None, _) => false,
                };
                if seen || (self.blind && saw_before) {
                    self.send(WatchEvent::Removed {
                        position,
                        id: change.id,
                    })
                    .await?;
                }
                Ok(Applied::Sent)
            }
        }
    }
}
