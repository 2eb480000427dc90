use super::{StorageArgs, StorageModule};
use crate::cli::{CredentialArgs, DataDirArgs};

crate::standalone! {
    /// Storage: per-project buckets and objects, signed URLs and an S3 API.
    StorageBinaryArgs: "storage", "STORAGE", "127.0.0.1:8086",
    {
        /// Where the SQLite store and (by default) the objects live.
        #[command(flatten)] data: DataDirArgs,
        #[command(flatten)] credentials: CredentialArgs,
        #[command(flatten)] storage: StorageArgs,
    },
    prepare(args, host) {
        host.data_dir = args.data.data_dir.clone();
        host.accept_credentials("STORAGE", &args.credentials)?;
        Ok(vec![Box::new(StorageModule::Configured(args.storage.clone()))])
    }
}
