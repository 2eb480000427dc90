use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bunbase_core::Error;
use bunbase_core::config::{Secret, resolve_secret};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::adapters::bunder::BunderBus;
use bunbase_core::events::adapters::memory::MemoryBus;
use bunbase_core::events::hub::HubConfig;
use bunbase_core::events::{EventBus, EventLimits, EventMetrics, Events};
use bunbase_core::metrics::Registry;

use crate::cli::parse_size_arg;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// In this process only.
    Memory,
    /// Through a Redis-protocol server (our Bunder, or Redis), shared by
    /// every Buncast instance pointed at it.
    Bunder,
}

/// Buncast's options (the same names in `buncast` and the all-in-one).
#[derive(clap::Args, Debug, Clone)]
pub struct EventsArgs {
    /// Event transport.
    #[arg(long, env = "BUNCAST_BUS", value_enum, default_value = "memory")]
    pub events_bus: BusKind,
    /// Redis-protocol server for the `bunder` bus: redis://[:password@]host:port[/db].
    #[arg(long, env = "BUNCAST_REDIS_URL", hide_env_values = true)]
    pub events_redis_url: Option<String>,
    /// File holding the Redis URL (it may carry a password); must be chmod 600.
    #[arg(long, env = "BUNCAST_REDIS_URL_FILE")]
    pub events_redis_url_file: Option<PathBuf>,
    /// Key prefix on the Redis-protocol server.
    #[arg(long, env = "BUNCAST_KEY_PREFIX", default_value = "buncast")]
    pub events_key_prefix: String,
    /// Events kept per topic for resuming subscribers.
    #[arg(long, env = "BUNCAST_RETAIN", default_value_t = 1000)]
    pub events_retain: usize,
    /// Events queued per subscriber before it is disconnected as lagging.
    #[arg(long, env = "BUNCAST_QUEUE", default_value_t = 1024)]
    pub events_queue: usize,
    /// Largest event payload (compact JSON), e.g. 64KiB.
    #[arg(long, env = "BUNCAST_MAX_PAYLOAD", default_value = "64KiB", value_parser = parse_size_arg)]
    pub events_max_payload: usize,
    /// Topics one project may have.
    #[arg(long, env = "BUNCAST_MAX_TOPICS", default_value_t = 10_000)]
    pub events_max_topics: usize,
    /// Bytes of retained events one project may keep across its topics,
    /// e.g. 32MiB (at least BUNCAST_MAX_PAYLOAD).
    #[arg(long, env = "BUNCAST_MAX_RETAINED_BYTES", default_value = "32MiB", value_parser = parse_size_arg)]
    pub events_max_retained_bytes: usize,
    /// Open subscriptions this server accepts.
    #[arg(long, env = "BUNCAST_MAX_SUBSCRIBERS", default_value_t = 100_000)]
    pub events_max_subscribers: usize,
    /// Open subscriptions one project may hold on this server (event and KV
    /// change streams, Bundoc realtime queries together).
    #[arg(
        long,
        env = "BUNCAST_MAX_SUBSCRIBERS_PER_PROJECT",
        default_value_t = 1000
    )]
    pub events_max_subscribers_per_project: usize,
    /// Seconds between keep-alive comments on idle SSE streams.
    #[arg(long, env = "BUNCAST_KEEPALIVE_SECS", default_value_t = 15)]
    pub events_keepalive_secs: u64,
    /// Seconds between checks of an open stream's credential (1–30): a
    /// revoked key, ended session or deleted project ends its streams.
    #[arg(long, env = "BUNCAST_RECHECK_SECS", default_value_t = 10)]
    pub events_recheck_secs: u64,
}

impl EventsArgs {
    /// The bus and limits these options describe (checked).
    pub fn settings(&self) -> Result<EventsSettings, Error> {
        if self.events_max_retained_bytes < self.events_max_payload {
            return Err(Error::invalid(
                "--events-max-retained-bytes must be at least --events-max-payload",
            ));
        }
        if self.events_retain == 0 || self.events_queue == 0 {
            return Err(Error::invalid(
                "--events-retain and --events-queue must be at least 1",
            ));
        }
        let bus = match self.events_bus {
            BusKind::Memory => BusChoice::Memory,
            BusKind::Bunder => {
                let url = resolve_secret(
                    "BUNCAST_REDIS_URL",
                    self.events_redis_url.clone(),
                    self.events_redis_url_file.as_deref(),
                )?
                .ok_or_else(|| {
                    Error::invalid(
                        "the bunder bus needs BUNCAST_REDIS_URL (or BUNCAST_REDIS_URL_FILE)",
                    )
                })?;
                BusChoice::Redis {
                    url,
                    key_prefix: self.events_key_prefix.clone(),
                }
            }
        };
        Ok(EventsSettings {
            bus,
            config: BusConfig {
                retain_per_topic: self.events_retain,
                max_topics_per_project: self.events_max_topics,
                max_retained_bytes_per_project: self.events_max_retained_bytes,
                hub: HubConfig {
                    queue_capacity: self.events_queue,
                    max_subscribers: self.events_max_subscribers,
                    max_subscribers_per_project: self.events_max_subscribers_per_project,
                },
            },
            limits: EventLimits {
                max_payload_bytes: self.events_max_payload,
            },
            keepalive: Duration::from_secs(self.events_keepalive_secs.max(1)),
            recheck: Duration::from_secs(self.events_recheck_secs.clamp(1, 30)),
        })
    }
}

/// Which transport carries events.
#[derive(Debug, Clone)]
pub enum BusChoice {
    /// In this process only.
    Memory,
    /// Through a Redis-protocol server, shared by every instance on it.
    Redis { url: Secret, key_prefix: String },
}

/// The event bus a process runs (Buncast's, and the change feeds of Bunder
/// Manager and Bundoc), resolved from [`EventsArgs`] or given by a test.
#[derive(Debug, Clone)]
pub struct EventsSettings {
    pub bus: BusChoice,
    pub config: BusConfig,
    pub limits: EventLimits,
    /// Between keep-alive comments and pings on idle streams.
    pub keepalive: Duration,
    /// How often an open stream's credential is checked again; a stream
    /// whose credential no longer holds ends with `revoked`.
    pub recheck: Duration,
}

impl Default for EventsSettings {
    fn default() -> Self {
        EventsSettings {
            bus: BusChoice::Memory,
            config: BusConfig::default(),
            limits: EventLimits::default(),
            keepalive: Duration::from_secs(15),
            recheck: DEFAULT_RECHECK,
        }
    }
}

/// With the credential cache's 10 s, a revoked credential's streams end
/// within about 20 s.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(10);

impl EventsSettings {
    pub fn describe(&self) -> &'static str {
        match self.bus {
            BusChoice::Memory => "memory bus",
            BusChoice::Redis { .. } => "Redis-protocol bus",
        }
    }

    /// Starts the bus, registering its metrics in `registry`.
    pub async fn build(&self, registry: &Registry) -> Result<Events, Error> {
        let metrics = Arc::new(EventMetrics::new(registry)?);
        let bus: Arc<dyn EventBus> = match &self.bus {
            BusChoice::Memory => Arc::new(MemoryBus::new(self.config, metrics.clone())),
            BusChoice::Redis { url, key_prefix } => Arc::new(
                BunderBus::connect(url.expose(), key_prefix, self.config, metrics.clone()).await?,
            ),
        };
        Ok(Events::new(bus, self.limits, metrics))
    }
}
