use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge};

use crate::error::Error;
use crate::metrics::{self, Registry};

/// Functions' domain metrics.
pub struct FunctionMetrics {
    /// Invocations by project, function and outcome (`ok`, `error`,
    /// `timeout`, `cpu_limit`, `memory_limit`, `response_too_large`,
    /// `throttled`).
    pub invocations: IntCounterVec,
    /// Seconds from start to response, by trigger.
    pub duration: HistogramVec,
    /// Invocations that had to start a new runtime.
    pub cold_starts: IntCounter,
    /// Invocations running now.
    pub active: IntGauge,
    /// Deploys by result (`ok` or the error code).
    pub deploys: IntCounterVec,
    /// Trigger deliveries that failed every attempt and went to the
    /// dead-letter topic.
    pub dead_letters: IntCounter,
}

impl FunctionMetrics {
    pub fn new(registry: &Registry) -> Result<FunctionMetrics, Error> {
        Ok(FunctionMetrics {
            invocations: metrics::counter_vec(
                registry,
                "fn_invocations_total",
                "Function invocations by project, function and status (ok or what stopped it).",
                &["project", "function", "status"],
            )?,
            duration: metrics::histogram_vec(
                registry,
                "fn_duration_seconds",
                "Function invocation time from start to response, by trigger.",
                &["trigger"],
            )?,
            cold_starts: metrics::counter(
                registry,
                "fn_cold_starts_total",
                "Invocations that started a new runtime.",
            )?,
            active: metrics::gauge(
                registry,
                "fn_active_invocations",
                "Invocations running now.",
            )?,
            deploys: metrics::counter_vec(
                registry,
                "fn_deploys_total",
                "Function deploys by result (ok or the error code).",
                &["result"],
            )?,
            dead_letters: metrics::counter(
                registry,
                "fn_dead_letters_total",
                "Trigger deliveries that failed every attempt and went to the dead-letter topic.",
            )?,
        })
    }

    pub fn unregistered() -> FunctionMetrics {
        FunctionMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("fresh registry: {e}"))
    }
}
