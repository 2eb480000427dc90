use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts};

use crate::error::Error;
use crate::metrics::{self, Registry};

/// Storage's domain metrics.
pub struct StorageMetrics {
    /// Stored bytes of complete objects, by project.
    pub bytes: IntGaugeVec,
    /// Stored objects, by project.
    pub objects: IntGaugeVec,
    /// Operations by operation and result (`ok` or the error code).
    pub operations: IntCounterVec,
    /// Object bytes received and sent.
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

impl StorageMetrics {
    pub fn new(registry: &Registry) -> Result<StorageMetrics, Error> {
        let gauge = |name: &str, help: &str| {
            let g =
                IntGaugeVec::new(Opts::new(name, help), &["project"]).map_err(Error::internal)?;
            metrics::register(registry, g)
        };
        Ok(StorageMetrics {
            bytes: gauge("storage_bytes", "Bytes of stored objects, by project.")?,
            objects: gauge("storage_objects", "Stored objects, by project.")?,
            operations: metrics::counter_vec(
                registry,
                "storage_operations_total",
                "Storage operations by operation and result (ok or the error code).",
                &["op", "result"],
            )?,
            bytes_in: metrics::counter(
                registry,
                "storage_bytes_in_total",
                "Object bytes received (uploads and parts).",
            )?,
            bytes_out: metrics::counter(
                registry,
                "storage_bytes_out_total",
                "Object bytes sent (downloads).",
            )?,
        })
    }

    pub fn unregistered() -> StorageMetrics {
        StorageMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("fresh registry: {e}"))
    }

    /// Counts one operation's outcome.
    pub fn record<T>(&self, op: &str, result: &Result<T, Error>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.operations.with_label_values(&[op, outcome]).inc();
    }
}
