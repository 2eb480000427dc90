use super::DocsArgs;
use crate::buncast::EventsArgs;
use crate::cli::{CredentialArgs, DataDirArgs};

crate::standalone! {
    /// Bundoc: per-project JSON documents with indexes, rules, field encryption
    /// and realtime queries.
    BundocArgs: "bundoc", "BUNDOC", "127.0.0.1:8082",
    {
        /// Where the default SQLite store (bundoc.db) lives.
        #[command(flatten)] data: DataDirArgs,
        #[command(flatten)] credentials: CredentialArgs,
        #[command(flatten)] docs: DocsArgs,
        /// The change feed's transport (use the `bunder` bus shared with Buncast, so
        /// /events subscribers to topic `bundoc.<collection>` see the changes, and
        /// several bundoc instances share realtime queries).
        #[command(flatten)] events: EventsArgs,
    },
    prepare(args, host) {
        host.data_dir = args.data.data_dir.clone();
        host.accept_credentials("BUNDOC", &args.credentials)?;
        host.set_events(args.events.settings()?);
        Ok(vec![Box::new(args.docs.module()?)])
    }
}
