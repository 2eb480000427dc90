//! Functions: what a deployment is, what a version records, and what each
//! invocation leaves in the log.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::ProjectId;

/// A function's name: 1–64 of `a-z 0-9 - _`, starting with a letter or digit.
/// It appears in URLs (`/fn/{name}`) and metric labels as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionName(String);

impl FunctionName {
    pub fn new(raw: &str) -> Result<FunctionName, Error> {
        let ok_first = raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let ok_rest = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if raw.is_empty() || raw.len() > 64 || !ok_first || !ok_rest {
            return Err(Error::invalid(format!(
                "invalid function name {raw:?}: use 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit"
            )));
        }
        Ok(FunctionName(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FunctionName {
    type Error = Error;
    fn try_from(raw: String) -> Result<FunctionName, Error> {
        FunctionName::new(&raw)
    }
}

impl From<FunctionName> for String {
    fn from(name: FunctionName) -> String {
        name.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One file of a deployment, as the developer wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// Relative path inside the function's folder (`index.ts`, `lib/util.js`).
    pub path: String,
    pub code: String,
}

/// Who may call a function over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Anyone, without a credential (webhooks).
    Public,
    /// Any credential of the project: keys, members, end users.
    #[default]
    Project,
    /// Signed-in end users of the project only.
    EndUsers,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Public => "public",
            AuthMode::Project => "project",
            AuthMode::EndUsers => "end_users",
        }
    }
}

/// What else, besides HTTP, runs a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Events published to a Buncast topic or pattern (`orders.*`).
    Event { topic: String },
    /// A cron expression (five fields, UTC).
    Schedule { cron: String },
    /// Changes of a Bundoc collection.
    Document { collection: String },
}

impl Trigger {
    pub fn kind(&self) -> TriggerKind {
        match self {
            Trigger::Event { .. } => TriggerKind::Event,
            Trigger::Schedule { .. } => TriggerKind::Schedule,
            Trigger::Document { .. } => TriggerKind::Document,
        }
    }

    /// A stable name of this trigger within its function (leases, cursors).
    pub fn key(&self) -> String {
        match self {
            Trigger::Event { topic } => format!("event:{topic}"),
            Trigger::Schedule { cron } => format!("schedule:{cron}"),
            Trigger::Document { collection } => format!("document:{collection}"),
        }
    }
}

/// How an invocation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Http,
    Event,
    Schedule,
    Document,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Http => "http",
            TriggerKind::Event => "event",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Document => "document",
        }
    }

    pub fn parse(raw: &str) -> Result<TriggerKind, Error> {
        [
            TriggerKind::Http,
            TriggerKind::Event,
            TriggerKind::Schedule,
            TriggerKind::Document,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
        .ok_or_else(|| Error::invalid(format!("unknown trigger {raw:?}")))
    }
}

/// Limits a deployment asks for; each within the instance's maximum
/// (absent: the instance's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    pub memory_mb: Option<u32>,
    pub cpu_ms: Option<u32>,
    pub wall_ms: Option<u32>,
    pub request_bytes: Option<u32>,
    pub response_bytes: Option<u32>,
    pub concurrency: Option<u32>,
}

/// The limits each invocation of a version runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The JavaScript heap of one runtime.
    pub memory_mb: u32,
    /// CPU time of one invocation.
    pub cpu_ms: u32,
    /// Time from start to response, awaiting included.
    pub wall_ms: u32,
    pub request_bytes: u32,
    pub response_bytes: u32,
    /// Invocations of this function running at once (per instance).
    pub concurrency: u32,
}

/// What a developer sends to deploy a new version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub files: Vec<SourceFile>,
    /// The module whose default export handles invocations (default:
    /// `index.ts`, else `index.js`, else the only file).
    #[serde(default)]
    pub entry: Option<String>,
    /// Plain variables, in `ctx.env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of the project's BunKMS secrets put in `ctx.env` too.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub auth: AuthMode,
    #[serde(default)]
    pub limits: LimitsRequest,
    /// Hosts `fetch` may reach (`api.example.com`, `*.example.com`).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
}

/// An immutable deployed version of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub project: ProjectId,
    pub function: FunctionName,
    /// 1, 2, … in deployment order; set by the store.
    pub number: u32,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Who deployed it (the credential's subject).
    pub deployed_by: String,
    /// Where the compiled bundle is, in the bundle store.
    pub bundle_id: String,
    pub bundle_bytes: u64,
    /// Hex SHA-256 of the stored bundle.
    pub bundle_sha256: String,
    pub entry: String,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub triggers: Vec<Trigger>,
    pub auth: AuthMode,
    pub limits: Limits,
    pub allow_hosts: Vec<String>,
}

/// A function as listed: its name and which version serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub project: ProjectId,
    pub name: FunctionName,
    /// The version that serves (changed by deploys and rollbacks).
    pub active: u32,
    /// The highest version number.
    pub latest: u32,
    pub created_at: u64,
    pub updated_at: u64,
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The handler returned a response (whatever its status).
    Ok,
    /// The handler threw, or returned something that is not a Response.
    Error,
    /// Wall time ran out.
    Timeout,
    /// CPU time ran out.
    CpuLimit,
    /// The JavaScript heap reached its limit.
    MemoryLimit,
    /// The response was larger than allowed.
    ResponseTooLarge,
    /// Refused before running: too many at once.
    Throttled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::CpuLimit => "cpu_limit",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::ResponseTooLarge => "response_too_large",
            Outcome::Throttled => "throttled",
        }
    }
}

/// One `console.*` line of an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `log`, `info`, `warn`, `error`, `debug`.
    pub level: String,
    pub message: String,
}

/// The record each invocation leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Time-ordered and unique (`{started_at:013}-{random}`).
    pub id: String,
    pub project: ProjectId,
    pub function: FunctionName,
    pub version: u32,
    pub trigger: TriggerKind,
    pub outcome: Outcome,
    /// The HTTP status of the response, if there was one.
    pub status: Option<u16>,
    /// Milliseconds since the Unix epoch.
    pub started_at: u64,
    pub duration_us: u64,
    /// Whether it started a new runtime.
    pub cold: bool,
    /// What went wrong, for outcomes other than `ok`.
    pub error: Option<String>,
    pub logs: Vec<LogLine>,
    /// Whether console lines were dropped or cut to stay within bounds.
    pub logs_truncated: bool,
}

/// Which invocations a log query wants, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogQuery {
    pub function: Option<FunctionName>,
    /// Only ids before this one (the previous page's last id).
    pub before: Option<String>,
    pub limit: usize,
}
