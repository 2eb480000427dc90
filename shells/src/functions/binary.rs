use super::{FunctionsArgs, FunctionsModule};
use crate::buncast::EventsArgs;
use crate::cli::{CredentialArgs, DataDirArgs};

crate::standalone! {
    /// Functions: JavaScript and TypeScript run in QuickJS, with HTTP, event,
    /// schedule and document triggers and an invocation log.
    FunctionsBinaryArgs: "functions", "FUNCTIONS", "127.0.0.1:8084",
    {
        /// Where the default SQLite store and the bundles live.
        #[command(flatten)] data: DataDirArgs,
        #[command(flatten)] credentials: CredentialArgs,
        #[command(flatten)] functions: FunctionsArgs,
        /// The event bus shared with Buncast and Bundoc (event and document
        /// triggers subscribe there; dead letters are published there).
        #[command(flatten)] events: EventsArgs,
    },
    prepare(args, host) {
        host.data_dir = args.data.data_dir.clone();
        host.accept_credentials("FUNCTIONS", &args.credentials)?;
        host.set_events(args.events.settings()?);
        Ok(vec![Box::new(FunctionsModule(args.functions.clone()))])
    }
}
