//! The shell kit: what every BunBase HTTP service gets for free.
//!
//! [`serve`] takes the services' routers and adds `GET /health`,
//! `GET /metrics`, request metrics by route template, tracing, a body-size
//! limit, a request timeout, JSON errors for everything (including axum's own
//! rejections), and graceful shutdown on SIGINT/SIGTERM. Handlers get the
//! caller and its project from [`Caller`], bodies from [`ApiJson`], query
//! strings from [`ApiQuery`], and stream with [`sse`] and [`ws`].

mod auth;
mod client_ip;
pub mod codes;
mod error;
mod health;
mod http_metrics;
mod json;
mod json_errors;
mod query;
pub mod revocation;
mod routes;
mod server;
mod shutdown;
pub mod sse;
mod state;
pub mod ws;

pub use auth::{AuthState, Bearer, Caller, bearer_token, path_project, require_bearer};
pub use client_ip::ClientIp;
pub use error::{ApiError, error_body, error_response};
pub use health::{HealthCheck, health_check_fn};
pub use json::{ApiJson, body_error};
pub use query::ApiQuery;
pub use routes::{Route, Routes};
pub use server::{
    ServerConfig, Service, ShutdownHook, app, serve, serve_app, server_routes, shutdown_hooks,
};
pub use shutdown::{Shutdown, shutdown_on_signals};
pub use state::ShellState;

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
