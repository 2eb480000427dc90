//! The invocation path: who may call, the concurrency gates, the env, the
//! engine, and the record each invocation leaves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::bindings::FunctionBindings;
use super::model::{AuthMode, FunctionName, Invocation, Outcome, TriggerKind, Version};
use super::runtime::{self, Call, InstanceKey, Job, Output};
use super::service::Functions;
use super::web::{HttpRequest, HttpResponse};
use crate::auth::{Principal, PrincipalKind, Rights};
use crate::error::Error;
use crate::id::{ProjectId, now_millis, random_hex};

/// Resolved env (variables and secrets) is reused this long, so a rotated
/// secret reaches functions within it.
const ENV_TTL: Duration = Duration::from_secs(30);

/// How long a function's serving version is reused without asking the
/// store: deploys and rollbacks made on this instance apply at once, those
/// made on another within this.
pub const SERVING_TTL: Duration = Duration::from_secs(1);

/// Invocation records waiting for the store; past this they are dropped
/// (and counted in the warning) rather than held without bound.
const LOG_QUEUE: usize = 10_000;
/// Records written in one transaction at most.
const LOG_BATCH: usize = 256;

/// An HTTP request for a function.
pub struct HttpCall {
    /// Who called (none: no credential).
    pub caller: Option<Principal>,
    pub project: ProjectId,
    pub function: String,
    pub request: HttpRequest,
}

/// A function's answer.
#[derive(Debug)]
pub struct Invoked {
    /// The invocation's id (its log record).
    pub id: String,
    pub version: u32,
    pub response: HttpResponse,
}

/// What started an invocation, as the function sees it in `ctx.trigger`.
pub struct Start {
    pub kind: TriggerKind,
    /// `ctx.trigger` (its `type` is set from `kind`).
    pub details: Map<String, Value>,
    /// `ctx.auth`: the caller, if any.
    pub caller: Option<Principal>,
}

impl Functions {
    /// Runs the serving version of a function for an HTTP request.
    pub async fn invoke_http(&self, call: HttpCall) -> Result<Invoked, Error> {
        let name = FunctionName::new(&call.function)?;
        let version = self.serving_version(&call.project, &name).await?;
        // Only those who may call learn whether a function exists.
        let mode = version.as_ref().map_or(AuthMode::Project, |v| v.auth);
        admit(mode, call.caller.as_ref(), &call.project)?;
        let version = version.ok_or_else(|| {
            Error::NotFound(format!("no function {name} in project {}", call.project))
        })?;
        if call.request.body.len() > version.limits.request_bytes as usize {
            return Err(Error::PayloadTooLarge(format!(
                "the request body is {} bytes; function {name} accepts at most {}",
                call.request.body.len(),
                version.limits.request_bytes
            )));
        }
        let start = Start {
            kind: TriggerKind::Http,
            details: Map::new(),
            caller: call.caller,
        };
        let version: &Version = &version;
        let (record, response) = self.run(version, start, call.request).await?;
        match response {
            Some(response) => Ok(Invoked {
                id: record.id.clone(),
                version: version.number,
                response,
            }),
            None => Err(failure(&record)),
        }
    }

    /// Runs `version` once: gates, env, engine, record, metrics. Refusals
    /// before running (throttled, a missing secret) are errors; what the
    /// function did is in the record.
    pub(super) async fn run(
        &self,
        version: &Version,
        start: Start,
        request: HttpRequest,
    ) -> Result<(Arc<Invocation>, Option<HttpResponse>), Error> {
        let id = format!("{:013}-{}", now_millis(), random_hex(6));
        let started_at = now_millis();
        let permits = match self.admit_concurrency(version) {
            Ok(permits) => permits,
            Err(e) => {
                self.count(version, Outcome::Throttled);
                return Err(e);
            }
        };
        let env = self.env(version).await?;
        let mut trigger = start.details;
        trigger.insert("type".into(), json!(start.kind.as_str()));
        let details = runtime::details(
            &env,
            Map::from_iter([
                ("project".into(), json!(version.project.as_str())),
                ("function".into(), json!(version.function.as_str())),
                ("version".into(), json!(version.number)),
                ("invocation".into(), json!(id)),
                ("trigger".into(), Value::Object(trigger)),
                ("auth".into(), auth_details(start.caller.as_ref())),
            ]),
        );
        let bundle = self.bundle(version).await?;
        let job = Job {
            key: InstanceKey {
                project: version.project.as_str().to_string(),
                function: version.function.as_str().to_string(),
                version: version.number,
                bundle: version.bundle_sha256.clone(),
            },
            bundle,
            limits: version.limits,
            bindings: Arc::new(FunctionBindings {
                platform: self.platform.clone(),
                outbound: self.outbound.clone(),
                who: function_principal(version),
                allow_hosts: version.allow_hosts.clone(),
            }),
            call: Call { request, details },
        };
        self.metrics.active.inc();
        let clock = Instant::now();
        let output = self.engine.run(job).await;
        self.metrics.active.dec();
        drop(permits);
        let record = Arc::new(self.record(id, started_at, version, start.kind, &output, clock));
        Ok((record, output.response))
    }

    fn record(
        &self,
        id: String,
        started_at: u64,
        version: &Version,
        trigger: TriggerKind,
        output: &Output,
        clock: Instant,
    ) -> Invocation {
        self.count(version, output.outcome);
        if output.cold {
            self.metrics.cold_starts.inc();
        }
        self.metrics
            .duration
            .with_label_values(&[trigger.as_str()])
            .observe(clock.elapsed().as_secs_f64());
        let record = Invocation {
            id,
            project: version.project.clone(),
            function: version.function.clone(),
            version: version.number,
            trigger,
            outcome: output.outcome,
            status: output.response.as_ref().map(|r| r.status),
            started_at,
            duration_us: output.duration.as_micros() as u64,
            cold: output.cold,
            error: output.error.clone(),
            logs: output.logs.clone(),
            logs_truncated: output.logs_truncated,
        };
        let shared = Arc::new(record.clone());
        let _ = self.live.send(shared);
        self.queue_record(record.clone());
        record
    }

    /// The version that serves `name`, from the short-lived cache or the
    /// store; `None` if there is no such function.
    async fn serving_version(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<Option<Arc<Version>>, Error> {
        let key = format!("{project}/{name}");
        if let Some((at, version)) = self
            .serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && at.elapsed() < SERVING_TTL
        {
            return Ok(Some(version.clone()));
        }
        let Some(info) = self.store.function(project, name).await? else {
            return Ok(None);
        };
        let version = Arc::new(self.version_of(project, name, info.active).await?);
        self.serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (Instant::now(), version.clone()));
        Ok(Some(version))
    }

    /// Hands a record to the log writer: the log is written after the
    /// answer, in batches, so a slow store never slows a function down.
    fn queue_record(&self, record: Invocation) {
        let sender = self.log_writer.get_or_init(|| {
            let (sender, receiver) = tokio::sync::mpsc::channel(LOG_QUEUE);
            tokio::spawn(write_logs(self.store.clone(), receiver));
            sender
        });
        if let Err(e) = sender.try_send(record) {
            tracing::warn!(error = %e, "the function log is behind; an invocation record was dropped");
        }
    }

    fn count(&self, version: &Version, outcome: Outcome) {
        self.metrics
            .invocations
            .with_label_values(&[
                version.project.as_str(),
                version.function.as_str(),
                outcome.as_str(),
            ])
            .inc();
    }

    /// One permit of the function version's gate and one of the project's,
    /// or `rate_limited` at once (callers retry; queueing would only hide
    /// the overload).
    fn admit_concurrency(
        &self,
        version: &Version,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), Error> {
        let (function_gate, project_gate) = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            let function_key = format!(
                "{}/{}/{}",
                version.project, version.function, version.limits.concurrency
            );
            let function_gate = gates
                .entry(function_key)
                .or_insert_with(|| Arc::new(Semaphore::new(version.limits.concurrency as usize)))
                .clone();
            let project_gate = gates
                .entry(version.project.as_str().to_string())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.limits.project_concurrency as usize))
                })
                .clone();
            (function_gate, project_gate)
        };
        let function = function_gate
            .try_acquire_owned()
            .map_err(|_| Error::RateLimited {
                message: format!(
                    "function {} is running {} invocations, its limit; retry shortly",
                    version.function, version.limits.concurrency
                ),
                retry_after: Some(Duration::from_secs(1)),
            })?;
        let project = project_gate
            .try_acquire_owned()
            .map_err(|_| Error::RateLimited {
                message: format!(
                    "project {} is running {} function invocations, its limit; retry shortly",
                    version.project, self.limits.project_concurrency
                ),
                retry_after: Some(Duration::from_secs(1)),
            })?;
        Ok((function, project))
    }

    /// `ctx.env`: the variables, then the named secrets' values.
    async fn env(&self, version: &Version) -> Result<Arc<BTreeMap<String, String>>, Error> {
        if version.secrets.is_empty() {
            return Ok(Arc::new(version.env.clone()));
        }
        let key = format!(
            "{}/{}/{}",
            version.project, version.function, version.number
        );
        if let Some((at, env)) = self
            .env_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && at.elapsed() < ENV_TTL
        {
            return Ok(env.clone());
        }
        // A missing or unusable secret is the deployment's fault, not the
        // caller's: not a 404 or 400 that reads as "no such function" or
        // "bad request".
        let secrets = self
            .platform
            .secrets(&function_principal(version), &version.secrets)
            .await
            .map_err(|e| match e {
                Error::NotFound(message) | Error::InvalidInput(message) => {
                    Error::FunctionFailed(format!(
                        "function {} version {} cannot run: {message} (a secret its deployment names)",
                        version.function, version.number
                    ))
                }
                other => other,
            })?;
        let mut env = version.env.clone();
        env.extend(secrets);
        let env = Arc::new(env);
        self.env_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (Instant::now(), env.clone()));
        Ok(env)
    }
}

/// Whether `caller` may call a function with this mode in `project`.
pub fn admit(mode: AuthMode, caller: Option<&Principal>, project: &ProjectId) -> Result<(), Error> {
    // Another project's credential is refused whatever the mode: a public
    // function would otherwise take it for one of its own in `ctx.auth`.
    if let Some(caller) = caller
        && &caller.project != project
    {
        return Err(Error::PermissionDenied(format!(
            "credential is not valid for project {project}"
        )));
    }
    if mode == AuthMode::Public {
        return Ok(());
    }
    let Some(caller) = caller else {
        return Err(Error::Unauthenticated(
            "this function needs a credential of its project".into(),
        ));
    };
    if &caller.project != project {
        return Err(Error::PermissionDenied(format!(
            "credential is not valid for project {project}"
        )));
    }
    if mode == AuthMode::EndUsers && caller.kind != PrincipalKind::EndUser {
        return Err(Error::PermissionDenied(
            "this function is for signed-in end users of the project".into(),
        ));
    }
    Ok(())
}

/// The credential a function acts with: its project's, read and write,
/// named after the function (so audit logs and rules can tell).
pub fn function_principal(version: &Version) -> Principal {
    Principal {
        subject: format!("function:{}", version.function),
        kind: PrincipalKind::SecretKey,
        project: version.project.clone(),
        rights: Rights::READ_WRITE,
    }
}

fn auth_details(caller: Option<&Principal>) -> Value {
    match caller {
        Some(p) => json!({ "kind": p.kind.as_str(), "subject": p.subject }),
        None => Value::Null,
    }
}

/// The error an HTTP caller gets when a function failed.
pub fn failure(record: &Invocation) -> Error {
    let what = match record.outcome {
        Outcome::Error => "the function failed".to_string(),
        Outcome::ResponseTooLarge => "the function's response was too large".to_string(),
        other => format!("the function was stopped ({})", other.as_str()),
    };
    Error::FunctionFailed(format!("{what}; see invocation {} in its log", record.id))
}

/// Writes queued invocation records in batches until every sender is gone.
async fn write_logs(
    store: Arc<dyn super::store::FunctionStore>,
    mut receiver: tokio::sync::mpsc::Receiver<Invocation>,
) {
    let mut batch = Vec::with_capacity(LOG_BATCH);
    while receiver.recv_many(&mut batch, LOG_BATCH).await > 0 {
        if let Err(e) = store.record_all(&batch).await {
            tracing::warn!(records = batch.len(), error = %e, "cannot record function invocations");
        }
        batch.clear();
    }
}
