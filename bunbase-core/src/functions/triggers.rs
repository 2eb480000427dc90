//! Trigger runners: events and document changes (at least once, with
//! retries and a dead-letter topic) and schedules (once per tick across
//! instances). Each runs where it holds the trigger's lease in the store,
//! so several instances share the work without running a trigger twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::cron::Schedule;
use super::invoke::{Start, function_principal};
use super::model::{Outcome, Trigger, TriggerKind, Version};
use super::service::Functions;
use super::web::HttpRequest;
use crate::error::Error;
use crate::events::{Delivery, Event, Events, Payload, Topic};
use crate::id::{now_millis, random_hex};

/// How trigger runners behave.
#[derive(Debug, Clone, Copy)]
pub struct TriggerSettings {
    /// Attempts per event before it goes to the dead-letter topic.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each next one.
    pub backoff: Duration,
    /// How long a lease lasts without renewal (an instance that dies gives
    /// its triggers up after this).
    pub lease: Duration,
    /// How often the list of triggered functions is read again.
    pub refresh: Duration,
}

impl Default for TriggerSettings {
    fn default() -> TriggerSettings {
        TriggerSettings {
            attempts: 3,
            backoff: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            refresh: Duration::from_secs(5),
        }
    }
}

/// The topic a trigger's undeliverable events go to.
pub fn dead_letter_topic(function: &str) -> String {
    format!("functions.{function}.dead_letter")
}

/// Runs the triggers of every project's functions until `stop`.
pub async fn run_triggers(
    functions: Arc<Functions>,
    events: Option<Events>,
    settings: TriggerSettings,
    stop: CancellationToken,
) {
    let holder = format!("fn-{}", random_hex(8));
    let mut consumers: HashMap<String, (u32, CancellationToken)> = HashMap::new();
    let mut schedules: Vec<(Version, String, Schedule)> = Vec::new();
    let mut last_minute = now_millis() / 60_000;
    let mut refresh = tokio::time::interval(settings.refresh);
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = refresh.tick() => {
                match functions.store.triggered().await {
                    Ok(versions) => {
                        schedules = schedules_of(&versions);
                        if let Some(events) = &events {
                            reconcile(&functions, events, &versions, &mut consumers, &holder, settings, &stop);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list triggered functions"),
                }
            }
            _ = clock.tick() => {
                let minute = now_millis() / 60_000;
                if minute != last_minute {
                    last_minute = minute;
                    fire_schedules(&functions, &schedules, minute * 60, &holder, settings).await;
                }
            }
        }
    }
    for (_, (_, token)) in consumers {
        token.cancel();
    }
}

fn schedules_of(versions: &[Version]) -> Vec<(Version, String, Schedule)> {
    let mut out = Vec::new();
    for version in versions {
        for trigger in &version.triggers {
            if let Trigger::Schedule { cron } = trigger {
                match Schedule::parse(cron) {
                    Ok(schedule) => out.push((version.clone(), trigger.key(), schedule)),
                    Err(e) => {
                        tracing::warn!(function = %version.function, error = %e, "a stored schedule does not parse")
                    }
                }
            }
        }
    }
    out
}

/// Runs every schedule that fires in the minute starting at `minute_secs`,
/// where this instance wins the schedule's lease for that minute.
async fn fire_schedules(
    functions: &Arc<Functions>,
    schedules: &[(Version, String, Schedule)],
    minute_secs: u64,
    holder: &str,
    settings: TriggerSettings,
) {
    for (version, key, schedule) in schedules {
        if !schedule.matches(minute_secs) {
            continue;
        }
        // One lease per schedule, held past the minute's end: another
        // instance can take it only in a later minute, so no minute runs
        // twice.
        let name = format!("fn-cron:{}/{}/{key}", version.project, version.function);
        let now = now_millis();
        let until = (minute_secs + 60) * 1000 + settings.lease.as_millis() as u64 / 2;
        match functions.store.lease(&name, holder, now, until).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take a schedule lease");
                continue;
            }
        }
        let functions = functions.clone();
        let version = version.clone();
        let details = Map::from_iter([
            ("cron".into(), json!(key.trim_start_matches("schedule:"))),
            ("scheduled_at".into(), json!(minute_secs * 1000)),
        ]);
        tokio::spawn(async move {
            let body = Value::Object(details.clone());
            let ran = functions
                .run(
                    &version,
                    start(TriggerKind::Schedule, details),
                    trigger_request(&version, &body),
                )
                .await;
            if let Err(e) = ran {
                tracing::warn!(function = %version.function, error = %e, "a scheduled run was refused");
            }
        });
    }
}

/// Starts consumers for new event and document triggers, stops those whose
/// trigger is gone or whose function now serves another version.
fn reconcile(
    functions: &Arc<Functions>,
    events: &Events,
    versions: &[Version],
    consumers: &mut HashMap<String, (u32, CancellationToken)>,
    holder: &str,
    settings: TriggerSettings,
    stop: &CancellationToken,
) {
    let mut wanted: HashMap<String, (Version, Trigger)> = HashMap::new();
    for version in versions {
        for trigger in &version.triggers {
            if matches!(trigger, Trigger::Event { .. } | Trigger::Document { .. }) {
                let key = format!("{}/{}/{}", version.project, version.function, trigger.key());
                wanted.insert(key, (version.clone(), trigger.clone()));
            }
        }
    }
    consumers.retain(|key, (number, token)| {
        let keep = wanted.get(key).is_some_and(|(v, _)| v.number == *number);
        if !keep {
            token.cancel();
        }
        keep
    });
    for (key, (version, trigger)) in wanted {
        if consumers.contains_key(&key) {
            continue;
        }
        let token = stop.child_token();
        consumers.insert(key.clone(), (version.number, token.clone()));
        let consumer = Consumer {
            functions: functions.clone(),
            events: events.clone(),
            version,
            trigger,
            lease: format!("fn-trigger:{key}"),
            holder: holder.to_string(),
            settings,
        };
        tokio::spawn(async move { consumer.run(token).await });
    }
}

struct Consumer {
    functions: Arc<Functions>,
    events: Events,
    version: Version,
    trigger: Trigger,
    lease: String,
    holder: String,
    settings: TriggerSettings,
}

impl Consumer {
    async fn run(self, stop: CancellationToken) {
        let pause = self.settings.lease / 3;
        while !stop.is_cancelled() {
            match self.hold().await {
                Ok(true) => {
                    if let Err(e) = self.consume(&stop).await {
                        tracing::warn!(function = %self.version.function, error = %e, "trigger consumer stopped; retrying");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot take a trigger lease"),
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn hold(&self) -> Result<bool, Error> {
        let now = now_millis();
        let until = now + self.settings.lease.as_millis() as u64;
        self.functions
            .store
            .lease(&self.lease, &self.holder, now, until)
            .await
    }

    /// Delivers events from the stored cursor on, renewing the lease, until
    /// stopped, the lease is lost or the subscription ends.
    async fn consume(&self, stop: &CancellationToken) -> Result<(), Error> {
        let (filter, kind) = match &self.trigger {
            Trigger::Event { topic } => (topic.clone(), TriggerKind::Event),
            Trigger::Document { collection } => {
                (format!("bundoc.{collection}"), TriggerKind::Document)
            }
            Trigger::Schedule { .. } => return Ok(()),
        };
        let store = &self.functions.store;
        let key = self.trigger.key();
        let (project, name) = (&self.version.project, &self.version.function);
        let after = store.cursor(project, name, &key).await?;
        let who = function_principal(&self.version);
        let mut subscription = self.events.subscribe(&who, project, &filter, after).await?;
        if after.is_none() {
            // From now on: record where this trigger starts.
            store
                .set_cursor(project, name, &key, subscription.position())
                .await?;
        }
        let mut renew = tokio::time::interval(self.settings.lease / 3);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = renew.tick() => {
                    if !self.hold().await? {
                        return Ok(());
                    }
                }
                item = subscription.next() => match item {
                    Some(Delivery::Event(event)) => {
                        self.deliver(kind, &event).await;
                        store.set_cursor(project, name, &key, event.seq).await?;
                    }
                    Some(Delivery::Gap(gap)) => {
                        tracing::warn!(function = %name, ?gap, "a trigger missed events (older than the retained history)");
                    }
                    Some(Delivery::Closed(reason)) => {
                        return Err(Error::Unavailable(format!("subscription closed: {}", reason.as_str())));
                    }
                    None => return Ok(()),
                },
            }
        }
    }

    /// Runs the function for one event, retrying with backoff; after the
    /// last attempt the event goes to the dead-letter topic.
    async fn deliver(&self, kind: TriggerKind, event: &Event) {
        let data = event.data.to_value();
        let mut wait = self.settings.backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.settings.attempts.max(1) {
            let details = Map::from_iter([
                ("topic".into(), json!(event.topic.as_str())),
                ("seq".into(), json!(event.seq)),
                ("published_at".into(), json!(event.published_at)),
                ("attempt".into(), json!(attempt)),
            ]);
            let body = json!({
                "topic": event.topic.as_str(),
                "seq": event.seq,
                "published_at": event.published_at,
                "data": data,
            });
            let request = trigger_request(&self.version, &body);
            match self
                .functions
                .run(&self.version, start(kind, details), request)
                .await
            {
                Ok((record, response)) => {
                    let status = response.as_ref().map(|r| r.status).unwrap_or(0);
                    if record.outcome == Outcome::Ok && status < 500 {
                        return;
                    }
                    last_error = record
                        .error
                        .clone()
                        .unwrap_or_else(|| format!("the function answered {status}"));
                }
                Err(e) => last_error = e.to_string(),
            }
            if attempt < self.settings.attempts {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        self.dead_letter(event, &data, &last_error).await;
    }

    async fn dead_letter(&self, event: &Event, data: &Value, error: &str) {
        self.functions.metrics.dead_letters.inc();
        let letter = json!({
            "function": self.version.function.as_str(),
            "version": self.version.number,
            "trigger": self.trigger,
            "attempts": self.settings.attempts,
            "error": error,
            "event": { "topic": event.topic.as_str(), "seq": event.seq, "data": data },
        });
        let published = match Topic::new(&dead_letter_topic(self.version.function.as_str())) {
            Ok(topic) => {
                self.events
                    .publish_payload(&self.version.project, &topic, Payload::from_value(&letter))
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = published {
            tracing::warn!(function = %self.version.function, error = %e, "cannot publish a dead letter");
        }
    }
}

fn start(kind: TriggerKind, details: Map<String, Value>) -> Start {
    Start {
        kind,
        details,
        caller: None,
    }
}

/// The request a trigger hands the function: a POST of the trigger's JSON.
fn trigger_request(version: &Version, body: &Value) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: format!("http://functions.internal/{}", version.function),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// Runs, as `holder`, the schedules that fire in the minute starting at
/// `minute_secs` (what the runner does each minute; tests and operators
/// call it to catch up a missed tick). Answers how many were due; each
/// runs where its lease is won.
pub async fn run_schedules_at(
    functions: &Arc<Functions>,
    minute_secs: u64,
    holder: &str,
) -> Result<usize, Error> {
    let schedules = schedules_of(&functions.store.triggered().await?);
    let due = schedules
        .iter()
        .filter(|(_, _, s)| s.matches(minute_secs))
        .count();
    fire_schedules(
        functions,
        &schedules,
        minute_secs,
        holder,
        TriggerSettings::default(),
    )
    .await;
    Ok(due)
}
