//! EventBus adapters: `memory` (in-process) and `bunder` (any Redis-protocol
//! server, so several Buncast instances share events).

#[cfg(feature = "bunder")]
pub mod bunder;
pub mod memory;

/// Retention and limits shared by the adapters.
#[derive(Debug, Clone, Copy)]
pub struct BusConfig {
    /// Events kept per topic for replay.
    pub retain_per_topic: usize,
    /// Topics one project may have.
    pub max_topics_per_project: usize,
    pub hub: super::hub::HubConfig,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            retain_per_topic: 1000,
            max_topics_per_project: 10_000,
            hub: super::hub::HubConfig::default(),
        }
    }
}

pub(crate) fn too_many_topics(limit: usize) -> crate::Error {
    crate::Error::RateLimited {
        message: format!("project has reached its limit of {limit} topics"),
        retry_after: None,
    }
}
