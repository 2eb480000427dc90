//! BunKMS's HTTP shell: routes under `/kms/v1/projects/{project}/…`.
//!
//! - `POST keys` `{"name","purpose","algorithm"?,"rotation_period_secs"?}`,
//!   `GET keys`, `GET keys/{name}`
//! - `POST keys/{name}/{action}`: rotate, disable, enable,
//!   schedule-deletion `{"days"?}`, cancel-deletion, encrypt, decrypt,
//!   reencrypt, datakey, decrypt-datakey, sign, verify, mac, verify-mac
//! - `GET secrets`, `PUT|GET|DELETE secrets/{name}`
//! - `GET audit?from=&to=&key=&after=&limit=`, `GET audit/verify`
//!
//! Binary fields are standard base64.

mod binary;
mod config;
mod routes;

pub use binary::{BunKmsArgs, KmsCommand};
pub use config::{Built, KmsArgs, spawn_scheduler};

use async_trait::async_trait;
use axum::Router;
use bunbase_core::Error;
use bunbase_core::kms::Kms;
use bunbase_core::kms::master::{DEV_FILE, Origin};

use crate::assembly::{About, Host, ServiceModule, Started};
use crate::kit::{self, Routes, ShellState};

/// What a BunKMS handler has: the KMS.
pub type KmsState = ShellState<Kms>;

pub const PREFIX: &str = "/kms/v1/projects/{project}";

/// BunKMS's routes, listed (the isolation matrix reads them) and handled.
pub fn api() -> Routes<KmsState> {
    Routes::new()
        .get(&format!("{PREFIX}/keys"), routes::list_keys)
        .post(&format!("{PREFIX}/keys"), routes::create_key)
        .get(&format!("{PREFIX}/keys/{{name}}"), routes::describe_key)
        .post(
            &format!("{PREFIX}/keys/{{name}}/{{action}}"),
            routes::key_action,
        )
        .get(&format!("{PREFIX}/secrets"), routes::list_secrets)
        .put(&format!("{PREFIX}/secrets/{{name}}"), routes::put_secret)
        .get(&format!("{PREFIX}/secrets/{{name}}"), routes::get_secret)
        .delete(&format!("{PREFIX}/secrets/{{name}}"), routes::delete_secret)
        .get(&format!("{PREFIX}/audit"), routes::audit)
        .get(&format!("{PREFIX}/audit/verify"), routes::verify_audit)
}

pub fn router(state: KmsState) -> Router {
    api().with_state(state)
}

/// BunKMS in an assembly: its store and master key (or a KMS given by a
/// test), the scheduler of due rotations and deletions, its routes under
/// `/kms`; other services of the process use it for their keys.
pub enum KmsModule {
    Configured(KmsArgs),
    Given(Kms),
}

static ABOUT: About = About::new("kms", &["bun-kms"], "/kms");

#[async_trait]
impl ServiceModule for KmsModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let mut warnings = Vec::new();
        let (kms, on) = match self {
            KmsModule::Given(kms) => (kms.clone(), "given store".to_string()),
            KmsModule::Configured(args) => {
                let built = args
                    .build(&host.data_dir, host.embedded, &host.registry)
                    .await?;
                if built.origin == Origin::Development {
                    warnings.push(format!(
                        "DEVELOPMENT master key in {}: anyone who can read it can read every key. \
                         For production set BUNKMS_MASTER_KEY_FILE (32 bytes: openssl rand -hex 32).",
                        host.data_dir.join(DEV_FILE).display()
                    ));
                }
                let on = format!("{}, master key {}", built.store, built.kms.master_key_id());
                (built.kms, on)
            }
        };
        let scheduler = spawn_scheduler(kms.clone(), host.shutdown.token.clone());
        host.finish_with(async move {
            let _ = scheduler.await;
        });
        host.provide_kms(kms.clone());
        host.purge_on_project_deletion(std::sync::Arc::new(kms.clone()));
        let service = kit::Service::new("bun-kms", router(host.shell(kms.clone())?)).check(
            "kms-store",
            kms,
            |kms| async move { kms.check().await },
        );
        Ok(Started {
            service,
            summary: format!("BunKMS: keys, encryption, signing, secrets, audit ({on})"),
            warnings,
        })
    }

    fn about(&self) -> &'static About {
        &ABOUT
    }
}
