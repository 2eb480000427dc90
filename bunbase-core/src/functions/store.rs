//! The `FunctionStore` trait: functions, their versions, the invocation log,
//! trigger cursors and the leases that let one of several instances run a
//! trigger. Compiled bundles are in a blob store, by each version's
//! `bundle_id`.

use async_trait::async_trait;

use super::model::{FunctionInfo, FunctionName, Invocation, LogQuery, Version};
use crate::error::Error;
use crate::id::ProjectId;

#[async_trait]
pub trait FunctionStore: Send + Sync + 'static {
    /// What it is, for logs (`sqlite`, `postgres`, `memory`).
    fn kind(&self) -> &'static str;

    /// Whether the store answers (health checks).
    async fn check(&self) -> Result<(), Error>;

    /// Records `version` as the next version of its function (creating the
    /// function on its first deploy) and makes it the active one. The store
    /// sets `number` (latest + 1, never reused, even after a rollback) and
    /// returns the version as stored.
    async fn add_version(&self, version: Version) -> Result<Version, Error>;

    async fn function(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<Option<FunctionInfo>, Error>;

    /// The project's functions, by name.
    async fn functions(&self, project: &ProjectId) -> Result<Vec<FunctionInfo>, Error>;

    async fn version(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        number: u32,
    ) -> Result<Option<Version>, Error>;

    /// The function's versions, newest first.
    async fn versions(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<Vec<Version>, Error>;

    /// Makes an existing version the active one (`not_found` if the function
    /// or the version is missing, and nothing changes). `latest` stays;
    /// `updated_at` becomes now.
    async fn activate(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        number: u32,
    ) -> Result<FunctionInfo, Error>;

    /// Forgets the function, its versions and cursors (its log stays until
    /// it expires; leases are named freely, not per function, and expire on
    /// their own: dropping a live one would let a second instance take it
    /// while the first still runs). Returns the removed versions, whose
    /// bundles the caller deletes; empty if there was no such function. A
    /// later deploy of the same name starts again at version 1.
    async fn delete_function(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<Vec<Version>, Error>;

    /// The active version of every function of every project that has at
    /// least one trigger besides HTTP (the trigger runners' work list), by
    /// project, then function.
    async fn triggered(&self) -> Result<Vec<Version>, Error>;

    /// Appends an invocation to the log (`already_exists` if its id is
    /// there already).
    async fn record(&self, invocation: &Invocation) -> Result<(), Error>;

    /// Appends several invocations (SQL stores: in one transaction, so a
    /// busy function pays one commit per batch, not one per call).
    async fn record_all(&self, invocations: &[Invocation]) -> Result<(), Error> {
        for invocation in invocations {
            self.record(invocation).await?;
        }
        Ok(())
    }

    /// The project's invocations, newest first (by id): only
    /// `query.function`'s if given, only ids below `query.before` if given,
    /// at most `query.limit` (taken within 1..=1000).
    async fn invocations(
        &self,
        project: &ProjectId,
        query: &LogQuery,
    ) -> Result<Vec<Invocation>, Error>;

    /// Drops invocations (of every project) started before `before_ms`: how
    /// many.
    async fn prune_invocations(&self, before_ms: u64) -> Result<u64, Error>;

    /// The last event sequence a trigger handled (`key` from
    /// [`super::model::Trigger::key`]).
    async fn cursor(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        key: &str,
    ) -> Result<Option<u64>, Error>;

    /// Sets (or moves) a trigger's cursor (`not_found` if the function is
    /// missing: a cursor never outlives its function).
    async fn set_cursor(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        key: &str,
        seq: u64,
    ) -> Result<(), Error>;

    /// Takes or renews the lease `name` for `holder` until `until_ms`, if
    /// it is free, expired (its stored `until_ms <= now_ms`) or already
    /// `holder`'s: whether `holder` holds it now. Two holders never both
    /// get `true` for the same unexpired lease.
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<bool, Error>;

    /// Forgets everything of the project: functions, versions, cursors and
    /// log (not leases, see [`FunctionStore::delete_function`]). Returns its
    /// versions, whose bundles the caller deletes.
    async fn forget_project(&self, project: &ProjectId) -> Result<Vec<Version>, Error>;
}
