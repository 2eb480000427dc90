//! Functions' shells: the HTTP trigger under `/functions/v1/projects/{project}/fn/{name}[/{path…}]`
//! (any method) and the management API under `/api/v1/projects/{project}/functions`:
//!
//! - `GET|POST functions` (deploy: `{"name", "files", …}`)
//! - `GET|DELETE functions/{name}`, `POST functions/{name}/versions` (deploy)
//! - `GET functions/{name}/versions`, `GET functions/{name}/source?version=`
//! - `POST functions/{name}/rollback` `{"version"}`
//! - `GET functions/logs?function=&before=&limit=` and `GET functions/logs/stream` (SSE)

mod binary;
pub mod cli;
mod config;
mod invoke;
mod manage;
mod remote;

pub use binary::FunctionsBinaryArgs;
pub use config::FunctionsArgs;
pub use remote::RemotePlatform;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use bunbase_core::Error;
use bunbase_core::functions::Functions;

use crate::assembly::{About, Host, ServiceModule, Started};
use crate::kit::{self, Routes, ShellState};

pub type FunctionsState = ShellState<Arc<Functions>>;

pub const PREFIX: &str = "/functions/v1/projects/{project}";
const MANAGE: &str = "/api/v1/projects/{project}/functions";

/// The management routes, listed (the isolation matrix reads them).
pub fn api() -> Routes<FunctionsState> {
    let f = format!("{MANAGE}/{{name}}");
    Routes::new()
        .get(MANAGE, manage::list)
        .post(MANAGE, manage::deploy_named)
        .get(&format!("{MANAGE}/logs"), manage::logs)
        .get(&format!("{MANAGE}/logs/stream"), manage::stream_logs)
        .get(&f, manage::get)
        .delete(&f, manage::delete)
        .post(&format!("{f}/versions"), manage::deploy)
        .get(&format!("{f}/versions"), manage::versions)
        .get(&format!("{f}/source"), manage::source)
        .post(&format!("{f}/rollback"), manage::rollback)
}

/// The HTTP trigger's routes: every method, with and without a path.
pub fn trigger() -> Routes<FunctionsState> {
    let base = format!("{PREFIX}/fn/{{name}}");
    let rest = format!("{base}/{{*path}}");
    let mut routes = Routes::new();
    for path in [&base, &rest] {
        routes = routes
            .get(path, invoke::invoke)
            .post(path, invoke::invoke)
            .put(path, invoke::invoke)
            .patch(path, invoke::invoke)
            .delete(path, invoke::invoke)
            .options(path, invoke::invoke);
    }
    routes
}

/// Functions in an assembly: the engine, the stores, the trigger runners,
/// the log pruning, and the routes.
pub struct FunctionsModule(pub FunctionsArgs);

static ABOUT: About = About::new("functions", &["fn"], "/functions");

#[async_trait]
impl ServiceModule for FunctionsModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let built = self.0.build(host).await?;
        let functions = built.functions;
        config::spawn_background(
            host,
            functions.clone(),
            built.events,
            self.0.trigger_settings(),
        );
        host.purge_on_project_deletion(functions.clone());
        host.provide(functions.clone());
        let state = host.shell(functions.clone())?;
        // Deploys carry whole bundles; invocations carry requests up to
        // the instance maximum and run up to their own wall-time limit.
        let deploy_limit = functions.limits().max_bundle_bytes * 2 + 64 * 1024;
        let managed = api()
            .with_state(state.clone())
            .layer(DefaultBodyLimit::max(deploy_limit));
        let invoked = trigger().with_state(state).layer(DefaultBodyLimit::max(
            functions.limits().maximum.request_bytes as usize,
        ));
        let service = kit::Service::new("functions", managed)
            .untimed(Router::new().merge(invoked))
            .check("functions-stores", functions.clone(), |f| async move {
                f.check().await
            });
        Ok(Started {
            service,
            summary: format!(
                "Functions: JavaScript/TypeScript in QuickJS ({})",
                built.summary
            ),
            warnings: built.warnings,
        })
    }

    fn about(&self) -> &'static About {
        &ABOUT
    }
}
