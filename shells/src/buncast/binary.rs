use super::{BuncastModule, EventsArgs};
use crate::cli::CredentialArgs;

crate::standalone! {
    /// Buncast: publish/subscribe events per project, over HTTP, SSE and WebSocket.
    BuncastArgs: "buncast", "BUNCAST", "127.0.0.1:8081",
    { #[command(flatten)] credentials: CredentialArgs, #[command(flatten)] events: EventsArgs },
    prepare(args, host) {
        host.accept_credentials("BUNCAST", &args.credentials)?;
        host.set_events(args.events.settings()?);
        Ok(vec![Box::new(BuncastModule)])
    }
}
