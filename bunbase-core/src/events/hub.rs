//! Local fan-out: the subscribers of this process, each with a bounded queue.
//!
//! Both adapters deliver through a [`Hub`]: the memory bus dispatches as it
//! publishes; the Redis-protocol bus dispatches what its pub/sub connection
//! receives. Dispatch never blocks: a subscriber whose queue is full is marked
//! lagged, receives what is already queued, then [`CloseReason::Lagged`].

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{Notify, mpsc};

use super::metrics::EventMetrics;
use super::model::{CloseReason, Delivery, Event, Topic, TopicFilter};
use crate::error::Error;
use crate::id::ProjectId;

/// Limits of the local fan-out.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Events queued per subscriber before it counts as lagging.
    pub queue_capacity: usize,
    /// Subscriptions this process accepts at once (the last line).
    pub max_subscribers: usize,
    /// Subscriptions one project may hold open in this process at once
    /// (event streams, KV change streams and Bundoc realtime queries
    /// together), so that one project cannot take every slot.
    pub max_subscribers_per_project: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 1024,
            max_subscribers: 100_000,
            max_subscribers_per_project: 1000,
        }
    }
}

/// Shared between a slot in the hub and its [`Subscription`].
#[derive(Default)]
struct SlotState {
    closed: AtomicBool,
    reason: Mutex<Option<CloseReason>>,
}

impl SlotState {
    /// Marks the slot closed; the first reason wins.
    fn close(&self, reason: CloseReason) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        }
    }

    fn reason(&self) -> CloseReason {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(CloseReason::Shutdown)
    }
}

struct Slot {
    id: u64,
    filter: TopicFilter,
    tx: mpsc::Sender<Arc<Event>>,
    state: Arc<SlotState>,
}

#[derive(Default)]
struct ProjectSlots {
    exact: HashMap<Topic, Vec<Slot>>,
    patterns: Vec<Slot>,
    /// Slots in `exact` and `patterns` together.
    count: usize,
}

impl ProjectSlots {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }

    fn add(&mut self, slot: Slot) {
        match &slot.filter {
            TopicFilter::Exact(topic) => self.exact.entry(topic.clone()).or_default().push(slot),
            TopicFilter::Pattern(_) => self.patterns.push(slot),
        }
        self.count += 1;
    }

    fn remove(&mut self, id: u64, filter: &TopicFilter) -> Option<Slot> {
        let list = match filter {
            TopicFilter::Exact(topic) => self.exact.get_mut(topic)?,
            TopicFilter::Pattern(_) => &mut self.patterns,
        };
        let index = list.iter().position(|s| s.id == id)?;
        let slot = list.swap_remove(index);
        self.count -= 1;
        if let TopicFilter::Exact(topic) = filter
            && list.is_empty()
        {
            self.exact.remove(topic);
        }
        Some(slot)
    }
}

/// The subscribers of this process, by project.
pub struct Hub {
    projects: RwLock<HashMap<ProjectId, ProjectSlots>>,
    /// Signalled whenever a subscription starts or ends (presence sharing).
    changed: Arc<Notify>,
    next_id: AtomicU64,
    shut_down: AtomicBool,
    config: HubConfig,
    metrics: Arc<EventMetrics>,
}

/// A new slot: its receiving half, before replay is attached.
pub struct Registration {
    rx: mpsc::Receiver<Arc<Event>>,
    state: Arc<SlotState>,
    guard: SlotGuard,
}

impl Hub {
    pub fn new(config: HubConfig, metrics: Arc<EventMetrics>) -> Arc<Hub> {
        Arc::new(Hub {
            projects: RwLock::new(HashMap::new()),
            changed: Arc::new(Notify::new()),
            next_id: AtomicU64::new(1),
            shut_down: AtomicBool::new(false),
            config,
            metrics,
        })
    }

    pub fn metrics(&self) -> &Arc<EventMetrics> {
        &self.metrics
    }

    /// Adds a subscriber. Register *before* reading replay history: then an
    /// event is either in the history or arrives through the queue.
    pub fn register(
        self: &Arc<Self>,
        project: &ProjectId,
        filter: &TopicFilter,
    ) -> Result<Registration, Error> {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(Error::unavailable("event bus is shutting down"));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.config.queue_capacity.max(1));
        let state = Arc::new(SlotState::default());
        let slot = Slot {
            id,
            filter: filter.clone(),
            tx,
            state: state.clone(),
        };
        {
            let mut projects = self.write();
            let current = self.metrics.subscribers.get();
            if current >= self.config.max_subscribers as i64 {
                return Err(Error::Unavailable(format!(
                    "this server already has {current} subscriptions (its limit)"
                )));
            }
            let per_project = self.config.max_subscribers_per_project;
            if projects
                .get(project)
                .is_some_and(|s| s.count >= per_project)
            {
                return Err(Error::RateLimited {
                    message: format!(
                        "project {project} already has {per_project} open subscriptions on this server (its limit); close one first"
                    ),
                    retry_after: None,
                });
            }
            projects.entry(project.clone()).or_default().add(slot);
            self.metrics.subscribers.inc();
        }
        self.changed.notify_one();
        Ok(Registration {
            rx,
            state,
            guard: SlotGuard {
                hub: Arc::downgrade(self),
                project: project.clone(),
                filter: filter.clone(),
                id,
            },
        })
    }

    /// Delivers `event` to every matching subscriber of `project`, never
    /// waiting. Callers dispatch one project's events in sequence order.
    pub fn dispatch(&self, project: &ProjectId, event: &Arc<Event>) {
        let mut to_remove: Vec<(u64, TopicFilter)> = Vec::new();
        {
            let projects = self.read();
            let Some(slots) = projects.get(project) else {
                return;
            };
            let exact = slots.exact.get(&event.topic).into_iter().flatten();
            let patterns = slots
                .patterns
                .iter()
                .filter(|s| s.filter.matches(&event.topic));
            for slot in exact.chain(patterns) {
                if slot.state.closed.load(Ordering::Acquire) {
                    continue;
                }
                match slot.tx.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        slot.state.close(CloseReason::Lagged);
                        to_remove.push((slot.id, slot.filter.clone()));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        slot.state.close(CloseReason::Shutdown);
                        to_remove.push((slot.id, slot.filter.clone()));
                    }
                }
            }
        }
        if !to_remove.is_empty() {
            let mut projects = self.write();
            for (id, filter) in to_remove {
                self.remove_locked(&mut projects, project, id, &filter, true);
            }
        }
    }

    /// Each filter `project`'s subscribers use, with how many use it.
    pub fn filters(&self, project: &ProjectId) -> Vec<(TopicFilter, u64)> {
        let projects = self.read();
        let Some(slots) = projects.get(project) else {
            return Vec::new();
        };
        let mut counts: HashMap<TopicFilter, u64> = HashMap::new();
        let exact = slots.exact.values().flatten();
        for slot in exact.chain(&slots.patterns) {
            *counts.entry(slot.filter.clone()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// Projects with at least one subscriber here.
    pub fn projects(&self) -> Vec<ProjectId> {
        self.read().keys().cloned().collect()
    }

    /// Notified whenever a subscription starts or ends.
    pub fn changes(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Ends every subscription with `reason` (each still receives what is
    /// queued, then the reason).
    pub fn close_all(&self, reason: CloseReason) {
        let drained: Vec<ProjectSlots> = self.write().drain().map(|(_, slots)| slots).collect();
        for slots in drained {
            self.close_slots(slots, reason);
        }
        self.changed.notify_one();
    }

    /// Ends `project`'s subscriptions with `reason`.
    pub fn close_project(&self, project: &ProjectId, reason: CloseReason) {
        let removed = self.write().remove(project);
        if let Some(slots) = removed {
            self.close_slots(slots, reason);
            self.changed.notify_one();
        }
    }

    fn close_slots(&self, slots: ProjectSlots, reason: CloseReason) {
        for slot in slots.exact.into_values().flatten().chain(slots.patterns) {
            slot.state.close(reason);
            self.metrics.subscribers.dec();
            self.metrics
                .dropped
                .with_label_values(&[reason.as_str()])
                .inc();
        }
    }

    /// Refuses new subscriptions and ends the current ones with `shutdown`.
    pub fn shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
        self.close_all(CloseReason::Shutdown);
    }

    fn remove_locked(
        &self,
        projects: &mut HashMap<ProjectId, ProjectSlots>,
        project: &ProjectId,
        id: u64,
        filter: &TopicFilter,
        dropped: bool,
    ) {
        let Some(slots) = projects.get_mut(project) else {
            return;
        };
        if let Some(slot) = slots.remove(id, filter) {
            self.metrics.subscribers.dec();
            if dropped {
                let reason = slot.state.reason();
                self.metrics
                    .dropped
                    .with_label_values(&[reason.as_str()])
                    .inc();
            }
        }
        if slots.is_empty() {
            projects.remove(project);
        }
        self.changed.notify_one();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ProjectId, ProjectSlots>> {
        self.projects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ProjectId, ProjectSlots>> {
        self.projects.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes the slot when its subscription is dropped.
struct SlotGuard {
    hub: Weak<Hub>,
    project: ProjectId,
    filter: TopicFilter,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut projects = hub.write();
            hub.remove_locked(&mut projects, &self.project, self.id, &self.filter, false);
        }
    }
}

/// An ordered stream of [`Delivery`] items: replayed history first (with any
/// [`Delivery::Gap`]), then live events, and — if the server ends it —
/// exactly one final [`Delivery::Closed`]. Dropping it unsubscribes.
pub struct Subscription {
    backlog: VecDeque<Delivery>,
    rx: mpsc::Receiver<Arc<Event>>,
    /// Live events at or below this seq were already replayed (or are older
    /// than the resume point) and are skipped.
    skip_through: u64,
    /// The resume point this subscription started from: after the backlog,
    /// every event with a greater seq is delivered. A client that reconnects
    /// before seeing any event resumes from here.
    position: u64,
    state: Arc<SlotState>,
    _guard: SlotGuard,
    finished: bool,
    metrics: Arc<EventMetrics>,
}

impl Subscription {
    /// Attaches replayed `backlog` to a registration. `after` is the resume
    /// point in effect: what the subscriber gave, or for a live-only
    /// subscription the project's head when it registered.
    pub fn new(
        registration: Registration,
        backlog: Vec<Delivery>,
        after: u64,
        metrics: Arc<EventMetrics>,
    ) -> Subscription {
        let replayed_through = backlog
            .iter()
            .filter_map(|d| match d {
                Delivery::Event(e) => Some(e.seq),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Subscription {
            backlog: backlog.into(),
            rx: registration.rx,
            skip_through: replayed_through.max(after),
            position: after,
            state: registration.state,
            _guard: registration.guard,
            finished: false,
            metrics,
        }
    }

    /// The resume point this subscription started from (see the field).
    pub fn position(&self) -> u64 {
        self.position
    }

    fn count(&self, item: Delivery) -> Poll<Option<Delivery>> {
        if matches!(item, Delivery::Event(_)) {
            self.metrics.delivered.inc();
        }
        Poll::Ready(Some(item))
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("backlog", &self.backlog.len())
            .field("skip_through", &self.skip_through)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Stream for Subscription {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if let Some(item) = self.backlog.pop_front() {
            return self.count(item);
        }
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    if event.seq <= self.skip_through {
                        continue;
                    }
                    self.skip_through = event.seq;
                    return self.count(Delivery::Event(event));
                }
                Poll::Ready(None) => {
                    self.finished = true;
                    return Poll::Ready(Some(Delivery::Closed(self.state.reason())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
