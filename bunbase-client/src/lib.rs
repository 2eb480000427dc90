//! Typed client for BunBase services.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bunbase_core::Error> {
//! use futures_util::StreamExt;
//! let client = bunbase_client::Client::new("http://127.0.0.1:8080")?.with_token("bb_dev_…");
//! let events = client.events();
//! let mut stream = events.subscribe("demo", "orders.*").await?;
//! events.publish("demo", "orders.created", &serde_json::json!({"id": 1})).await?;
//! while let Some(item) = stream.next().await { println!("{:?}", item?); }
//! # Ok(()) }
//! ```

mod docs;
mod events;
mod functions;
pub mod grpc;
mod kms;
mod kv;
mod platform;
pub mod sse;
mod storage;
mod transport;

pub use docs::{CollectionsClient, DocPage, DocWatch, DocsCollection, DocsUsage, Find, WatchFrame};
pub use events::{EventStream, EventsClient, StreamItem};
pub use functions::{
    AuthMode, Deployment, FunctionDetail, FunctionInfo, FunctionResponse, FunctionSource,
    FunctionVersion, FunctionsClient, Invocation, LimitsRequest, LogPage, SourceFile, Trigger,
};
pub use kms::{DataKey, KmsClient, KmsKey, KmsKeyVersion, RemoteKeys, Sealed, SecretEntry};
pub use kv::{KeyPage, KvClient, KvUsage, Put, PutCondition};
pub use platform::{
    CreatedKey, EndUserAuth, KeyInfo, PlatformClient, ProjectInfo, Tokens, UsersPage,
};
pub use storage::{
    Bucket, BucketPatch, BucketSettings, Download, NewS3Credential, ObjectInfo, ObjectPage,
    PutOptions, S3CredentialInfo, SignRequest, SignedMethod, SignedUrl, StorageClient,
    StorageUsage, Upload, UploadedPart,
};
pub use transport::Client;
