//! The clock behind `setTimeout` and `setInterval`: one queue per context,
//! run by a single future spawned on the runtime while timers are pending.
//! Being a runtime task, it only runs while the host drives the runtime,
//! and it is dropped with the runtime: no timer outlives it.
//!
//! The callbacks stay in JavaScript (the prelude's `fire(id)`); this side
//! only knows ids and deadlines, so cleared timers leave nothing behind.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use rquickjs::{Ctx, Function, Object, Result};
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

/// Deadlines in firing order: ties go in the order they were set.
#[derive(Default)]
struct Queue {
    due: BTreeMap<(Instant, u64), u32>,
    by_id: HashMap<u32, (Instant, u64)>,
    sequence: u64,
    driving: bool,
}

#[derive(Default)]
struct Timers {
    queue: RefCell<Queue>,
    /// The earliest deadline changed (or the queue emptied).
    changed: Notify,
}

impl Timers {
    fn cancel(&self, id: u32) {
        let mut queue = self.queue.borrow_mut();
        if let Some(key) = queue.by_id.remove(&id) {
            queue.due.remove(&key);
            self.changed.notify_one();
        }
    }
}

pub(super) fn add<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> Result<()> {
    let timers = Rc::new(Timers::default());
    let scheduling = timers.clone();
    host.set(
        "schedule",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: u32, ms: f64, fire: Function<'js>| {
                schedule(&ctx, &scheduling, id, ms, fire)
            },
        )?,
    )?;
    host.set(
        "unschedule",
        Function::new(ctx.clone(), move |id: u32| timers.cancel(id))?,
    )?;
    Ok(())
}

/// (Re)sets timer `id` to call `fire(id)` in `ms` milliseconds.
fn schedule<'js>(ctx: &Ctx<'js>, timers: &Rc<Timers>, id: u32, ms: f64, fire: Function<'js>) {
    // `as` saturates: NaN and negatives are 0, as WebIDL's `long` truncates.
    let at = Instant::now() + Duration::from_millis(ms as u64);
    let mut queue = timers.queue.borrow_mut();
    if let Some(old) = queue.by_id.remove(&id) {
        queue.due.remove(&old);
    }
    queue.sequence += 1;
    let key = (at, queue.sequence);
    queue.due.insert(key, id);
    queue.by_id.insert(id, key);
    if !queue.driving {
        queue.driving = true;
        drop(queue);
        ctx.spawn(drive(ctx.clone(), timers.clone(), fire));
    } else if queue
        .due
        .first_key_value()
        .is_some_and(|(first, _)| *first == key)
    {
        timers.changed.notify_one();
    }
}

/// Fires due timers in order, each followed by its microtasks, until the
/// queue is empty.
async fn drive<'js>(ctx: Ctx<'js>, timers: Rc<Timers>, fire: Function<'js>) {
    loop {
        let next = timers
            .queue
            .borrow()
            .due
            .first_key_value()
            .map(|(key, _)| key.0);
        let Some(at) = next else { break };
        if at > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = timers.changed.notified() => continue,
            }
        } else {
            tokio::task::yield_now().await;
        }
        let now = Instant::now();
        loop {
            let id = {
                let mut queue = timers.queue.borrow_mut();
                match queue.due.first_key_value() {
                    Some((&(at, _), _)) if at <= now => queue.due.pop_first().map(|(_, id)| {
                        queue.by_id.remove(&id);
                        id
                    }),
                    _ => None,
                }
            };
            let Some(id) = id else { break };
            // `fire` catches what the callback throws; what gets through
            // is uncatchable (the host interrupted the runtime): stop.
            if fire.call::<_, ()>((id,)).is_err() {
                let thrown = ctx.catch();
                if thrown.is_uncatchable_error() {
                    ctx.throw(thrown);
                    timers.queue.borrow_mut().driving = false;
                    return;
                }
            }
            while ctx.execute_pending_job() {}
        }
    }
    timers.queue.borrow_mut().driving = false;
}
