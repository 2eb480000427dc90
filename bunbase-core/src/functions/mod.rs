//! Functions: JavaScript and TypeScript deployed per project and run in
//! QuickJS inside the process, with limits, triggers and a log.
//!
//! A deployment is compiled once (TypeScript stripped, syntax and the
//! default export checked) into a bundle kept in a blob store; its
//! description is an immutable [`Version`] in a [`FunctionStore`].

pub mod adapters;
mod bindings;
pub mod compile;
pub mod cron;
mod invoke;
mod metrics;
pub mod model;
pub mod outbound;
pub mod platform;
pub mod runtime;
mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod triggers;
pub mod web;

pub use invoke::{HttpCall, Invoked, admit, function_principal};
pub use metrics::FunctionMetrics;
pub use model::{
    AuthMode, Deployment, FunctionInfo, FunctionName, Invocation, Limits, LimitsRequest, LogLine,
    LogQuery, Outcome, SourceFile, Trigger, TriggerKind, Version,
};
pub use service::{FunctionDetail, FunctionLimits, Functions, StoredBundle};
pub use store::FunctionStore;
