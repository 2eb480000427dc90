use prometheus::{IntCounter, IntCounterVec, IntGauge};

use crate::error::Error;
use crate::metrics::{self, Registry};

/// Buncast's domain metrics.
pub struct EventMetrics {
    pub published: IntCounter,
    pub delivered: IntCounter,
    pub dropped: IntCounterVec,
    pub subscribers: IntGauge,
}

impl EventMetrics {
    pub fn new(registry: &Registry) -> Result<EventMetrics, Error> {
        Ok(EventMetrics {
            published: metrics::counter(
                registry,
                "buncast_events_published_total",
                "Events accepted by publish.",
            )?,
            delivered: metrics::counter(
                registry,
                "buncast_events_delivered_total",
                "Events handed to subscribers (one per event per subscriber).",
            )?,
            dropped: metrics::counter_vec(
                registry,
                "buncast_subscribers_dropped_total",
                "Subscriptions the server ended, by reason (lagged, shutdown, resync).",
                &["reason"],
            )?,
            subscribers: metrics::gauge(
                registry,
                "buncast_subscribers",
                "Subscriptions currently open on this server.",
            )?,
        })
    }

    /// Metrics in a private registry (tests, embedders that don't scrape).
    pub fn unregistered() -> EventMetrics {
        // A fresh registry cannot already hold these names.
        EventMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("fresh registry: {e}"))
    }
}
