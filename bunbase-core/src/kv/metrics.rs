use prometheus::{IntCounter, IntCounterVec};

use crate::error::Error;
use crate::metrics::{self, Registry};

/// Bunder Manager's domain metrics.
pub struct KvMetrics {
    /// By operation (get, put, delete, incr, ttl, scan, usage, changes) and
    /// result (the error code, or `ok`).
    pub operations: IntCounterVec,
    /// Change events that could not be published (the write stands).
    pub change_events_failed: IntCounter,
}

impl KvMetrics {
    pub fn new(registry: &Registry) -> Result<KvMetrics, Error> {
        Ok(KvMetrics {
            operations: metrics::counter_vec(
                registry,
                "bunder_manager_operations_total",
                "KV operations by operation and result (ok or the error code).",
                &["op", "result"],
            )?,
            change_events_failed: metrics::counter(
                registry,
                "bunder_manager_change_events_failed_total",
                "Writes whose change event could not be published to topic kv.",
            )?,
        })
    }

    pub fn unregistered() -> KvMetrics {
        KvMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("fresh registry: {e}"))
    }
}
