use std::path::{Path, PathBuf};

use anyhow::Context;
use bunbase_core::kms::master::MasterKey;

use super::{KmsArgs, KmsModule};
use crate::cli::{CredentialArgs, DataDirArgs};

crate::standalone! {
    /// BunKMS: per-project keys, encryption, signatures, MACs and secrets.
    BunKmsArgs: "bun-kms", "BUNKMS", "127.0.0.1:8083",
    {
        /// Where the SQLite store (and a development master key) live.
        #[command(flatten)] data: DataDirArgs,
        #[command(flatten)] credentials: CredentialArgs,
        #[command(flatten)] kms: KmsArgs,
        #[command(subcommand)] command: Option<KmsCommand>,
    },
    prepare(args, host) {
        host.data_dir = args.data.data_dir.clone();
        host.accept_credentials("BUNKMS", &args.credentials)?;
        Ok(vec![Box::new(KmsModule::Configured(args.kms.clone()))])
    },
    command(args) {
        let KmsCommand::Rewrap { new_master_key_file } = args.command.as_ref()?;
        Some(rewrap(&args.kms, &args.data.data_dir, new_master_key_file).await)
    }
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

async fn rewrap(kms: &KmsArgs, data_dir: &Path, new_key_file: &Path) -> anyhow::Result<()> {
    let (old, _) = kms.master(kms.kms_dev.then_some(data_dir))?;
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
