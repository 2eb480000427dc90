use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// `http_requests_total` and `http_request_duration_seconds`, by method,
/// route template (never the raw path: ids would explode cardinality) and
/// status.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> Result<Arc<HttpMetrics>, bunbase_core::Error> {
        let labels = ["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route template and status.",
            ),
            &labels,
        )
        .map_err(bunbase_core::Error::internal)?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to produce response headers, by method, route template and status.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &labels,
        )
        .map_err(bunbase_core::Error::internal)?;
        Ok(Arc::new(HttpMetrics {
            requests: bunbase_core::metrics::register(registry, requests)?,
            duration: bunbase_core::metrics::register(registry, duration)?,
        }))
    }
}

pub async fn track(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    metrics.requests.with_label_values(&labels).inc();
    metrics
        .duration
        .with_label_values(&labels)
        .observe(start.elapsed().as_secs_f64());
    response
}
