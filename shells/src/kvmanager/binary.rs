use bunbase_core::Error;

use super::KvArgs;
use crate::assembly::ServiceModule;
use crate::buncast::EventsArgs;
use crate::cli::{CommonArgs, CredentialArgs};
use crate::standalone::Standalone;

/// Bunder Manager: per-project key-value storage with quotas and a change stream.
#[derive(clap::Parser, Debug)]
#[command(name = "bunder-manager", version)]
pub struct BunderManagerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    #[command(flatten)]
    pub kv: KvArgs,
    /// The change stream's transport (use the `bunder` bus shared with Buncast,
    /// so /events subscribers to topic `kv` see the changes too).
    #[command(flatten)]
    pub events: EventsArgs,
}

impl Standalone for BunderManagerArgs {
    const NAME: &'static str = "bunder-manager";
    const ENV: &'static str = "BUNDER_MANAGER";
    const LISTEN: &'static str = "127.0.0.1:8085";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn credentials(&self) -> Option<&CredentialArgs> {
        Some(&self.credentials)
    }

    fn events(&self) -> Option<&EventsArgs> {
        Some(&self.events)
    }

    fn modules(&self) -> Result<Vec<Box<dyn ServiceModule>>, Error> {
        Ok(vec![Box::new(self.kv.module(None)?)])
    }
}
