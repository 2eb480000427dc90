//! The shell kit: what every BunBase HTTP service gets for free.
//!
//! [`serve`] takes the services' routers and adds `GET /health`,
//! `GET /metrics`, request metrics by route template, tracing, a body-size
//! limit, a request timeout, JSON errors for everything (including axum's own
//! rejections), and graceful shutdown on SIGINT/SIGTERM.

mod auth;
mod client_ip;
pub mod codes;
mod error;
mod health;
mod http_metrics;
mod json;
mod json_errors;
mod server;
mod shutdown;

pub use auth::{Auth, AuthState, bearer_token};
pub use client_ip::ClientIp;
pub use error::{ApiError, error_body};
pub use health::{HealthCheck, health_check_fn};
pub use json::{ApiJson, body_error};
pub use server::{ServerConfig, Service, app, serve};
pub use shutdown::{Shutdown, shutdown_on_signals};

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
