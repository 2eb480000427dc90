use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec};

use crate::error::Error;
use crate::metrics::{self, Registry};

/// BunKMS's domain metrics.
pub struct KmsMetrics {
    /// By operation and result (`ok` or the error code).
    pub operations: IntCounterVec,
    /// Time spent in each operation (store and crypto included).
    pub duration: HistogramVec,
    /// Refused calls not written to the audit log (a credential over its
    /// budget of refusals; see `kms::refusals`).
    pub audit_suppressed: IntCounter,
}

impl KmsMetrics {
    pub fn new(registry: &Registry) -> Result<KmsMetrics, Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "bunkms_operation_duration_seconds",
                "Time spent in KMS operations, by operation.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 1.0,
            ]),
            &["op"],
        )
        .map_err(Error::internal)?;
        Ok(KmsMetrics {
            operations: metrics::counter_vec(
                registry,
                "bunkms_operations_total",
                "KMS operations by operation and result (ok or the error code).",
                &["op", "result"],
            )?,
            duration: metrics::register(registry, duration)?,
            audit_suppressed: metrics::counter(
                registry,
                "bunkms_audit_suppressed_total",
                "Refused calls not written to the audit log: a credential over its budget of refusals.",
            )?,
        })
    }

    pub fn unregistered() -> KmsMetrics {
        KmsMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("fresh registry: {e}"))
    }
}
