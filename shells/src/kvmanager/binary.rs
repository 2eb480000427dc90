use super::KvArgs;
use crate::buncast::EventsArgs;
use crate::cli::CredentialArgs;

crate::standalone! {
    /// Bunder Manager: per-project key-value storage with quotas and a change stream.
    BunderManagerArgs: "bunder-manager", "BUNDER_MANAGER", "127.0.0.1:8085",
    {
        #[command(flatten)] credentials: CredentialArgs,
        #[command(flatten)] kv: KvArgs,
        /// The change stream's transport (use the `bunder` bus shared with Buncast,
        /// so /events subscribers to topic `kv` see the changes too).
        #[command(flatten)] events: EventsArgs,
    },
    prepare(args, host) {
        host.accept_credentials("BUNDER_MANAGER", &args.credentials)?;
        host.set_events(args.events.settings()?);
        Ok(vec![Box::new(args.kv.module(None)?)])
    }
}
