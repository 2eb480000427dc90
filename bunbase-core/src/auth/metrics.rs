use prometheus::{IntCounter, IntCounterVec};

use crate::error::Error;
use crate::metrics::{self, Registry};

/// Identity's domain metrics.
pub struct AuthMetrics {
    pub sign_ins: IntCounterVec,
    pub tokens_issued: IntCounterVec,
    pub verifications: IntCounterVec,
    pub rate_limited: IntCounter,
    pub cache: IntCounterVec,
}

impl AuthMetrics {
    pub fn new(registry: &Registry) -> Result<AuthMetrics, Error> {
        Ok(AuthMetrics {
            sign_ins: metrics::counter_vec(
                registry,
                "bunauth_sign_ins_total",
                "Sign-in attempts by subject kind and result (ok, invalid, rate_limited).",
                &["kind", "result"],
            )?,
            tokens_issued: metrics::counter_vec(
                registry,
                "bunauth_tokens_issued_total",
                "Access tokens issued, by subject kind.",
                &["kind"],
            )?,
            verifications: metrics::counter_vec(
                registry,
                "bunauth_verifications_total",
                "Credential resolutions by credential type and result.",
                &["credential", "result"],
            )?,
            rate_limited: metrics::counter(
                registry,
                "bunauth_rate_limited_total",
                "Sign-up and sign-in requests refused by the abuse limits.",
            )?,
            cache: metrics::counter_vec(
                registry,
                "bunauth_principal_cache_total",
                "Principal cache lookups by result (hit, miss, error: the cache is down).",
                &["result"],
            )?,
        })
    }

    pub fn unregistered() -> AuthMetrics {
        AuthMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("fresh registry: {e}"))
    }
}
