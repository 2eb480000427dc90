use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use bunbase_core::Error;
use bunbase_core::kms::master::MasterKey;

use super::{KmsArgs, KmsModule};
use crate::assembly::ServiceModule;
use crate::cli::{CommonArgs, CredentialArgs, DataDirArgs};
use crate::standalone::Standalone;

/// BunKMS: per-project keys, encryption, signatures, MACs and secrets.
#[derive(clap::Parser, Debug)]
#[command(name = "bun-kms", version)]
pub struct BunKmsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where the SQLite store (and a development master key) live.
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(subcommand)]
    pub command: Option<KmsCommand>,
}

#[derive(clap::Subcommand, Debug)]
pub enum KmsCommand {
    /// Offline: re-wrap every stored key version and secret under a new master
    /// key (stop the service first). The current key comes from
    /// BUNKMS_MASTER_KEY(_FILE); afterwards start the service with the new one.
    /// Safe to run again if interrupted.
    Rewrap {
        /// File holding the new master key (64 hex digits or base64; chmod 600).
        #[arg(long)]
        new_master_key_file: PathBuf,
    },
}

#[async_trait]
impl Standalone for BunKmsArgs {
    const NAME: &'static str = "bun-kms";
    const ENV: &'static str = "BUNKMS";
    const LISTEN: &'static str = "127.0.0.1:8083";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn credentials(&self) -> Option<&CredentialArgs> {
        Some(&self.credentials)
    }

    fn data_dir(&self) -> PathBuf {
        self.data.data_dir.clone()
    }

    fn modules(&self) -> Result<Vec<Box<dyn ServiceModule>>, Error> {
        Ok(vec![Box::new(KmsModule::Configured(self.kms.clone()))])
    }

    async fn command(&self) -> Option<anyhow::Result<()>> {
        let KmsCommand::Rewrap {
            new_master_key_file,
        } = self.command.as_ref()?;
        Some(rewrap(&self.kms, &self.data.data_dir, new_master_key_file).await)
    }
}

async fn rewrap(kms: &KmsArgs, data_dir: &Path, new_key_file: &Path) -> anyhow::Result<()> {
    let (old, _) = kms.master(kms.dev.then_some(data_dir))?;
    let new = MasterKey::parse(bunbase_core::config::read_secret_file(new_key_file)?.expose())
        .context("the new master key")?;
    anyhow::ensure!(
        old.id() != new.id(),
        "the new master key is the current one"
    );
    let url = kms.store_url(data_dir)?;
    let store = bunbase_core::kms::adapters::open(&url).await?;
    let done = bunbase_core::kms::rewrap::rewrap(&*store, &old, &new).await?;
    println!(
        "re-wrapped {} key versions and {} secret versions in the {} store from master key {} to {} ({} already done)",
        done.key_versions,
        done.secret_versions,
        url.kind(),
        old.id(),
        new.id(),
        done.already_done
    );
    println!("start bun-kms with the new master key now; keep the old one until you have checked.");
    Ok(())
}
