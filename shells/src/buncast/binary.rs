use bunbase_core::Error;

use super::{BuncastModule, EventsArgs};
use crate::assembly::ServiceModule;
use crate::cli::{CommonArgs, CredentialArgs};
use crate::standalone::Standalone;

/// Buncast: publish/subscribe events per project, over HTTP, SSE and WebSocket.
#[derive(clap::Parser, Debug)]
#[command(name = "buncast", version)]
pub struct BuncastArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    #[command(flatten)]
    pub events: EventsArgs,
}

impl Standalone for BuncastArgs {
    const NAME: &'static str = "buncast";
    const ENV: &'static str = "BUNCAST";
    const LISTEN: &'static str = "127.0.0.1:8081";

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
        Ok(vec![Box::new(BuncastModule)])
    }
}
