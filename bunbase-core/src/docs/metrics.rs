use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge};

use crate::error::Error;
use crate::metrics::{self, Registry};

/// Bundoc's domain metrics.
pub struct DocsMetrics {
    /// By operation and result (the error code, or `ok`).
    pub operations: IntCounterVec,
    /// Query time by plan (`index`, `scan`).
    pub query_seconds: HistogramVec,
    /// Documents a query read from the store to answer.
    pub documents_examined: Histogram,
    /// Open realtime subscriptions.
    pub subscribers: IntGauge,
    /// Batches committed per store transaction (group commit).
    pub commit_batches: Histogram,
    /// Change events that could not be published (the write stands).
    pub change_events_failed: IntCounter,
}

impl DocsMetrics {
    pub fn new(registry: &Registry) -> Result<DocsMetrics, Error> {
        Ok(DocsMetrics {
            operations: metrics::counter_vec(
                registry,
                "bundoc_operations_total",
                "Bundoc operations by type and result (ok or the error code).",
                &["op", "result"],
            )?,
            query_seconds: metrics::histogram_vec(
                registry,
                "bundoc_query_duration_seconds",
                "Query latency by plan (index or scan).",
                &["plan"],
            )?,
            documents_examined: metrics::histogram_with(
                registry,
                "bundoc_query_documents_examined",
                "Documents read from the store per query.",
                vec![1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0],
            )?,
            subscribers: metrics::gauge(
                registry,
                "bundoc_realtime_subscribers",
                "Open realtime query subscriptions.",
            )?,
            commit_batches: metrics::histogram_with(
                registry,
                "bundoc_commit_group_size",
                "Batches committed together in one store transaction.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            )?,
            change_events_failed: metrics::counter(
                registry,
                "bundoc_change_events_failed_total",
                "Committed writes whose change event could not be published.",
            )?,
        })
    }

    pub fn unregistered() -> DocsMetrics {
        DocsMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("fresh registry: {e}"))
    }
}
