use std::path::PathBuf;

use bunbase_core::Error;

use super::DocsArgs;
use crate::assembly::ServiceModule;
use crate::buncast::EventsArgs;
use crate::cli::{CommonArgs, CredentialArgs, DataDirArgs};
use crate::standalone::Standalone;

/// Bundoc: per-project JSON documents with indexes, rules, field encryption
/// and realtime queries.
#[derive(clap::Parser, Debug)]
#[command(name = "bundoc", version)]
pub struct BundocArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where the default SQLite store (bundoc.db) lives.
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    #[command(flatten)]
    pub docs: DocsArgs,
    /// The change feed's transport (use the `bunder` bus shared with Buncast, so
    /// /events subscribers to topic `bundoc.<collection>` see the changes, and
    /// several bundoc instances share realtime queries).
    #[command(flatten)]
    pub events: EventsArgs,
}

impl Standalone for BundocArgs {
    const NAME: &'static str = "bundoc";
    const ENV: &'static str = "BUNDOC";
    const LISTEN: &'static str = "127.0.0.1:8082";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn credentials(&self) -> Option<&CredentialArgs> {
        Some(&self.credentials)
    }

    fn data_dir(&self) -> PathBuf {
        self.data.data_dir.clone()
    }

    fn events(&self) -> Option<&EventsArgs> {
        Some(&self.events)
    }

    fn modules(&self) -> Result<Vec<Box<dyn ServiceModule>>, Error> {
        Ok(vec![Box::new(self.docs.module()?)])
    }
}
