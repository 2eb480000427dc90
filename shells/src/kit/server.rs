use std::future::IntoFuture;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use prometheus::Registry;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::ApiError;
use super::client_ip;
use super::health::{self, HealthCheck};
use super::http_metrics::{self, HttpMetrics};
use super::json_errors::json_errors;
use super::routes::{Route, Routes};
use super::shutdown::Shutdown;
use bunbase_core::Error;

/// One service mounted on a server: its routes (already under its gateway
/// prefix), the dependencies `/health` asks about, and what to do when
/// shutdown starts (end open streams so connections can finish).
pub struct Service {
    pub name: String,
    pub router: Router,
    /// Routes no request timeout applies to: they stream large bodies in
    /// (an upload of GiBs takes minutes before its response starts).
    pub untimed: Option<Router>,
    pub health: Vec<Arc<dyn HealthCheck>>,
    pub on_shutdown: Option<ShutdownHook>,
}

impl Service {
    pub fn new(name: impl Into<String>, router: Router) -> Service {
        Service {
            name: name.into(),
            router,
            untimed: None,
            health: Vec::new(),
            on_shutdown: None,
        }
    }

    /// Adds routes served without the request timeout (see
    /// [`Service::untimed`]).
    pub fn untimed(mut self, router: Router) -> Service {
        self.untimed = Some(router);
        self
    }

    /// A dependency `/health` asks about: `check` on a clone of `value`.
    pub fn check<T, F, Fut>(mut self, name: &str, value: T, check: F) -> Service
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.health
            .push(super::health_check_fn(name, move || check(value.clone())));
        self
    }
}

/// Limits every server applies.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Longest time to produce response headers (streams run longer).
    pub request_timeout: Duration,
    /// Longest wait for in-flight requests and streams at shutdown.
    pub shutdown_grace: Duration,
    /// Take the client address from X-Forwarded-For (behind Traefik).
    pub trust_proxy: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            trust_proxy: false,
        }
    }
}

/// Builds the full application router: the services' routes plus `/health`,
/// `/metrics` and every cross-cutting layer. [`serve`] runs it; tests can
/// call it in process.
pub fn app(
    services: &[Service],
    registry: &Registry,
    config: &ServerConfig,
) -> Result<Router, Error> {
    let metrics = HttpMetrics::new(registry)?;
    let checks: Arc<Vec<Arc<dyn HealthCheck>>> = Arc::new(
        services
            .iter()
            .flat_map(|s| s.health.iter().cloned())
            .collect(),
    );
    let mut router = root(checks, registry.clone()).into_router();
    for service in services {
        router = router.merge(service.router.clone());
    }
    // The timeout wraps the routes merged so far, not the untimed ones.
    router = router.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        config.request_timeout,
    ));
    for service in services {
        if let Some(untimed) = &service.untimed {
            router = router.merge(untimed.clone());
        }
    }
    Ok(router
        .fallback(|| async { ApiError(Error::NotFound("no such route".into())).into_response() })
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn({
            let trust = config.trust_proxy;
            move |req, next| client_ip::client_ip(trust, req, next)
        }))
        .layer(middleware::from_fn_with_state(metrics, http_metrics::track))
        .layer(TraceLayer::new_for_http().make_span_with(request_span)))
}

/// The routes every server serves besides its services': `/health` and
/// `/metrics`.
fn root(checks: Arc<Vec<Arc<dyn HealthCheck>>>, registry: Registry) -> Routes {
    Routes::new()
        .get("/health", move || {
            let checks = checks.clone();
            async move { health::report(&checks).await }
        })
        .get("/metrics", move || {
            let text = bunbase_core::metrics::render(&registry);
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
        })
}

/// What [`app`] serves besides the services' routes (the isolation matrix
/// reads them).
pub fn server_routes() -> Vec<Route> {
    root(Arc::new(Vec::new()), Registry::new()).list().to_vec()
}

/// The request's log span: method and path only. Never the query string,
/// which may carry an `access_token`.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
}

/// Serves `services` on `listener` until `shutdown` triggers, then stops
/// accepting, ends open streams, lets in-flight requests finish (at most
/// `shutdown_grace`) and returns.
pub async fn serve(
    listener: TcpListener,
    services: Vec<Service>,
    registry: &Registry,
    config: ServerConfig,
    shutdown: Shutdown,
) -> io::Result<()> {
    let app = app(&services, registry, &config).map_err(io::Error::other)?;
    serve_app(listener, app, shutdown_hooks(&services), config, shutdown).await
}

/// What the services do when shutdown starts.
pub fn shutdown_hooks(services: &[Service]) -> Vec<ShutdownHook> {
    services
        .iter()
        .filter_map(|s| s.on_shutdown.clone())
        .collect()
}

pub type ShutdownHook = Arc<dyn Fn() + Send + Sync>;

/// Serves an application [`app`] built, calling `hooks` when shutdown
/// starts (see [`serve`]).
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    hooks: Vec<ShutdownHook>,
    config: ServerConfig,
    shutdown: Shutdown,
) -> io::Result<()> {
    let token = shutdown.token.clone();
    let graceful = async move {
        token.cancelled().await;
        for hook in hooks {
            hook();
        }
    };
    // Events are small writes that must leave at once: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(graceful)
    .into_future();
    // One grace period, from the moment shutdown starts, covers both the
    // HTTP connections and the upgraded (WebSocket) ones.
    let grace_ends = {
        let token = shutdown.token.clone();
        async move {
            token.cancelled().await;
            tokio::time::Instant::now() + config.shutdown_grace
        }
    };
    tokio::pin!(grace_ends);
    tokio::pin!(server);
    let deadline = tokio::select! {
        result = &mut server => {
            result?;
            // Shutdown began when the server stopped (it only stops then).
            tokio::time::Instant::now() + config.shutdown_grace
        }
        deadline = &mut grace_ends => {
            tokio::select! {
                result = &mut server => result?,
                _ = tokio::time::sleep_until(deadline) => tracing::warn!(
                    grace = ?config.shutdown_grace,
                    "requests still running after the shutdown grace period; exiting anyway"
                ),
            }
            deadline
        }
    };
    if !shutdown.drain(deadline).await {
        tracing::warn!("WebSocket connections still open after the grace period");
    }
    Ok(())
}
