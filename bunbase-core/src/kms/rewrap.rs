//! Re-wrapping every stored key version and secret value under a new
//! master key (the offline `bun-kms rewrap` command; run it with the
//! service stopped).
//!
//! It is safe to run again after an interruption: rows already under the
//! new key are recognised and skipped, so a half-done run finishes rather
//! than strands anything.

use super::master::MasterKey;
use super::service::{key_aad, secret_aad};
use super::store::KmsStore;
use crate::error::Error;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrapped {
    pub key_versions: usize,
    pub secret_versions: usize,
    /// Rows already under the new master key (an earlier, interrupted run).
    pub already_done: usize,
}

/// Moves everything from `old` to `new`. A row that unwraps under neither
/// stops the run with an error naming it (nothing is guessed).
pub async fn rewrap(
    store: &dyn KmsStore,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Rewrapped, Error> {
    match store.master_key_id().await? {
        Some(id) if id != old.id() && id != new.id() => {
            return Err(Error::invalid(format!(
                "the store is wrapped under master key {id}, not {} (the current key given)",
                old.id()
            )));
        }
        _ => {}
    }
    let mut done = Rewrapped::default();
    for key in store.all_keys().await? {
        for version in &key.versions {
            let aad = key_aad(&key.project, &key.name, version.version);
            if new.unwrap(&aad, &version.wrapped).is_ok() {
                done.already_done += 1;
                continue;
            }
            let material = old.unwrap(&aad, &version.wrapped).map_err(|_| {
                Error::internal(format!(
                    "key {}/{} version {} unwraps under neither master key",
                    key.project, key.name, version.version
                ))
            })?;
            store
                .rewrap_key_version(
                    &key.project,
                    &key.name,
                    version.version,
                    new.wrap(&aad, &material)?,
                )
                .await?;
            done.key_versions += 1;
        }
    }
    for (project, name, version) in store.all_secrets().await? {
        let aad = secret_aad(&project, &name, version.version);
        if new.unwrap(&aad, &version.wrapped).is_ok() {
            done.already_done += 1;
            continue;
        }
        let value = old.unwrap(&aad, &version.wrapped).map_err(|_| {
            Error::internal(format!(
                "secret {project}/{name} version {} unwraps under neither master key",
                version.version
            ))
        })?;
        store
            .rewrap_secret_version(&project, &name, version.version, new.wrap(&aad, &value)?)
            .await?;
        done.secret_versions += 1;
    }
    store.set_master_key_id(new.id()).await?;
    Ok(done)
}
