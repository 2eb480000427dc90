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
    /// Bytes of retained events (their wire JSON) one project may keep
    /// across its topics. Over it, the topic being published to gives up
    /// its oldest events first, then the project's largest topic.
    pub max_retained_bytes_per_project: usize,
    pub hub: super::hub::HubConfig,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            retain_per_topic: 1000,
            max_topics_per_project: 10_000,
            max_retained_bytes_per_project: 32 * 1024 * 1024,
            hub: super::hub::HubConfig::default(),
        }
    }
}

/// What a retained event counts against its project's retained bytes.
pub(crate) fn retained_size(event: &super::Event) -> usize {
    event.wire_json().len()
}

pub(crate) fn too_many_topics(limit: usize) -> crate::Error {
    crate::Error::RateLimited {
        message: format!("project has reached its limit of {limit} topics"),
        retry_after: None,
    }
}

/// Builds the topic listing: `known` topics (name, last seq, retained), plus
/// topics subscribers name exactly but nobody has published to yet, each
/// with the number of subscriptions (`filters`: filter → count) receiving it.
pub(crate) fn topic_infos(
    known: Vec<(super::Topic, u64, u64)>,
    filters: &[(super::TopicFilter, u64)],
) -> Vec<super::TopicInfo> {
    use super::{TopicFilter, TopicInfo};
    let mut infos: Vec<TopicInfo> = known
        .into_iter()
        .map(|(topic, last_seq, retained)| TopicInfo {
            topic,
            last_seq,
            retained,
            subscribers: 0,
        })
        .collect();
    for (filter, _) in filters {
        if let TopicFilter::Exact(topic) = filter
            && !infos.iter().any(|i| &i.topic == topic)
        {
            infos.push(TopicInfo {
                topic: topic.clone(),
                last_seq: 0,
                retained: 0,
                subscribers: 0,
            });
        }
    }
    for info in &mut infos {
        info.subscribers = filters
            .iter()
            .filter(|(filter, _)| filter.matches(&info.topic))
            .map(|(_, count)| count)
            .sum();
    }
    infos.sort_by(|a, b| a.topic.cmp(&b.topic));
    infos
}
