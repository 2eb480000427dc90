//! Buncast: pub/sub events per project.
//!
//! - [`model`]: topics, patterns, events, what a subscriber receives.
//! - [`Events`] (service): validation, authorization and metrics around an
//!   [`EventBus`] — what shells and embedders call.
//! - [`EventBus`]: the transport trait. [`adapters::memory`] runs in-process;
//!   [`adapters::bunder`] goes through any Redis-protocol server so several
//!   Buncast instances deliver to each other's subscribers.
//! - [`hub`]: local fan-out with bounded per-subscriber queues, shared by both
//!   adapters. [`replay`]: resuming after a sequence number.

pub mod adapters;
mod bus;
pub mod hub;
mod metrics;
pub mod model;
pub mod replay;
mod service;
#[cfg(feature = "testing")]
pub mod testing;

pub use bus::EventBus;
pub use hub::Subscription;
pub use metrics::EventMetrics;
pub use model::{
    CloseReason, Delivery, Event, Gap, GapReason, Payload, Topic, TopicFilter, TopicInfo,
};
pub use service::{EventLimits, Events, RESERVED_TOPICS, is_reserved};
