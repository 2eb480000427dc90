//! Waking clients blocked in BLPOP/BRPOP when a list they wait on gets
//! items.
//!
//! The engine itself never blocks: BLPOP pops or answers a null array.
//! A connection that wants to wait registers a [`ListWait`] for its keys
//! (then tries once more, so a push in between is not missed) and waits on
//! it. A push signals every waiter on that key; each retries and whoever
//! pops first wins, the others wait again. With no one waiting, a push
//! pays one relaxed atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::Engine;
use crate::kv::reply::Reply;

type Waiting = Vec<(u64, Arc<Notify>)>;

#[derive(Default)]
pub(super) struct Waiters {
    /// Registered waits (the push path's fast check).
    count: AtomicUsize,
    next_id: AtomicU64,
    by_key: Mutex<HashMap<(usize, Bytes), Waiting>>,
}

/// A connection's registration as blocked on some lists; dropping it
/// unregisters.
pub struct ListWait<'a> {
    waiters: &'a Waiters,
    id: u64,
    db: usize,
    keys: Vec<Bytes>,
    notify: Arc<Notify>,
}

impl ListWait<'_> {
    /// Resolves once a push happened on one of the keys since the last
    /// time it resolved (or since registration).
    pub async fn ready(&self) {
        self.notify.notified().await;
    }
}

impl Drop for ListWait<'_> {
    fn drop(&mut self) {
        let mut by_key = self
            .waiters
            .by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            let slot = (self.db, key.clone());
            if let Some(list) = by_key.get_mut(&slot) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    by_key.remove(&slot);
                }
            }
        }
        self.waiters.count.fetch_sub(1, Relaxed);
    }
}

impl Engine {
    /// Registers interest in pushes to `keys` of `db`.
    pub fn wait_for_lists(&self, db: usize, keys: &[Bytes]) -> ListWait<'_> {
        let waiters = &self.waiters;
        let id = waiters.next_id.fetch_add(1, Relaxed);
        let notify = Arc::new(Notify::new());
        {
            let mut by_key = waiters.by_key.lock().unwrap_or_else(|e| e.into_inner());
            for key in keys {
                by_key
                    .entry((db, key.clone()))
                    .or_default()
                    .push((id, notify.clone()));
            }
        }
        // After the registration: a push that misses it in the map is one
        // the caller's retry (which follows) will see.
        waiters.count.fetch_add(1, Relaxed);
        ListWait {
            waiters,
            id,
            db,
            keys: keys.to_vec(),
            notify,
        }
    }

    /// Clients blocked in BLPOP/BRPOP right now.
    pub fn blocked_clients(&self) -> usize {
        self.waiters.count.load(Relaxed)
    }

    /// Called after items were pushed to a list.
    pub(crate) fn list_pushed(&self, db: usize, key: &Bytes) {
        if self.waiters.count.load(Relaxed) == 0 {
            return;
        }
        let by_key = self
            .waiters
            .by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = by_key.get(&(db, key.clone())) {
            for (_, notify) in list {
                // Stores a permit if the waiter is between two waits.
                notify.notify_one();
            }
        }
    }
}

/// The timeout of BLPOP/BRPOP (float seconds; 0 = forever), with Redis's
/// error texts.
pub fn block_timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let secs = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| !s.is_nan())
        .ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    if secs < 0.0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    let ms = (secs * 1000.0).ceil();
    if !ms.is_finite() || ms > i64::MAX as f64 {
        return Err(Reply::error("ERR timeout is out of range"));
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}
