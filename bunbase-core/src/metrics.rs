//! Metrics registry helpers on the `prometheus` crate.
//!
//! Every service registers its domain metrics into a [`Registry`] it is given:
//! a standalone shell passes its own, the all-in-one passes one shared
//! registry so `/metrics` shows every service at once.

pub use prometheus::Registry;
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};

use crate::error::Error;

/// Registers `metric` in `registry` and hands it back.
pub fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    metric: C,
) -> Result<C, Error> {
    registry
        .register(Box::new(metric.clone()))
        .map_err(|e| Error::internal(format!("metric registration failed: {e}")))?;
    Ok(metric)
}

pub fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, Error> {
    let metric = IntCounter::new(name, help).map_err(Error::internal)?;
    register(registry, metric)
}

pub fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, Error> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).map_err(Error::internal)?;
    register(registry, metric)
}

pub fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, Error> {
    let metric = IntGauge::new(name, help).map_err(Error::internal)?;
    register(registry, metric)
}

/// A histogram with the default (latency, seconds) buckets per label set.
pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<HistogramVec, Error> {
    let metric =
        HistogramVec::new(HistogramOpts::new(name, help), labels).map_err(Error::internal)?;
    register(registry, metric)
}

/// A histogram with its own buckets (counts, sizes).
pub fn histogram_with(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, Error> {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .map_err(Error::internal)?;
    register(registry, metric)
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    String::from_utf8(out).unwrap_or_default()
}
