//! Bunder's Prometheus metrics, read from the engine when scraped (nothing
//! on the command path but one atomic add per command).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bunbase_core::kv::Engine;
use bunbase_core::kv::aof::Aof;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// Collects on scrape: every value is set from the engine, then reported.
pub struct BunderCollector {
    engine: Arc<Engine>,
    aof: Option<Arc<Aof>>,
    commands: IntCounterVec,
    keys: IntGaugeVec,
    clients: IntGauge,
    blocked_clients: IntGauge,
    used_memory: IntGauge,
    max_memory: IntGauge,
    evicted: IntCounter,
    resident_memory: IntGauge,
    aof_unsynced_bytes: IntGauge,
    aof_seconds_since_fsync: IntGauge,
    aof_rewrite_growth: IntGauge,
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

impl BunderCollector {
    pub fn new(engine: Arc<Engine>, aof: Option<Arc<Aof>>) -> BunderCollector {
        BunderCollector {
            engine,
            aof,
            commands: IntCounterVec::new(
                Opts::new("bunder_commands_total", "Commands run, by command."),
                &["command"],
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            keys: IntGaugeVec::new(Opts::new("bunder_keys", "Live keys per database."), &["db"])
                .unwrap_or_else(|e| panic!("metric: {e}")),
            clients: gauge("bunder_connected_clients", "Open client connections."),
            blocked_clients: gauge("bunder_blocked_clients", "Clients waiting in BLPOP/BRPOP."),
            used_memory: gauge(
                "bunder_used_memory_bytes",
                "Estimated memory of keys and values (what maxmemory limits).",
            ),
            max_memory: gauge("bunder_maxmemory_bytes", "The maxmemory limit; 0 = none."),
            evicted: IntCounter::new(
                "bunder_evicted_keys_total",
                "Keys evicted to stay under maxmemory.",
            )
            .unwrap_or_else(|e| panic!("metric: {e}")),
            resident_memory: gauge(
                "bunder_process_resident_memory_bytes",
                "The process's resident memory (RSS).",
            ),
            aof_unsynced_bytes: gauge(
                "bunder_aof_unsynced_bytes",
                "Append-only file bytes written but not yet fsynced (what a power loss could take).",
            ),
            aof_seconds_since_fsync: gauge(
                "bunder_aof_seconds_since_fsync",
                "Seconds since the append-only file was last fsynced with writes pending (0 when nothing is pending).",
            ),
            aof_rewrite_growth: gauge(
                "bunder_aof_commands_since_rewrite",
                "Commands appended since the last rewrite (compaction).",
            ),
        }
    }

    fn gauges(&self) -> [&IntGauge; 8] {
        [
            &self.clients,
            &self.blocked_clients,
            &self.used_memory,
            &self.max_memory,
            &self.resident_memory,
            &self.aof_unsynced_bytes,
            &self.aof_seconds_since_fsync,
            &self.aof_rewrite_growth,
        ]
    }

    fn refresh(&self) {
        let engine = &self.engine;
        for (name, calls) in engine.command_calls() {
            let counter = self.commands.with_label_values(&[name]);
            counter.inc_by(calls.saturating_sub(counter.get()));
        }
        for db in 0..engine.databases() {
            let n = engine.dbsize(db);
            if n > 0 || db == 0 {
                self.keys
                    .with_label_values(&[&db.to_string()])
                    .set(n as i64);
            } else {
                let _ = self.keys.remove_label_values(&[&db.to_string()]);
            }
        }
        self.clients
            .set(engine.clients.load(Ordering::Relaxed) as i64);
        self.blocked_clients.set(engine.blocked_clients() as i64);
        let memory = engine.memory_stats();
        self.used_memory.set(memory.used as i64);
        self.max_memory.set(memory.max.unwrap_or(0) as i64);
        self.evicted
            .inc_by(engine.evicted_keys().saturating_sub(self.evicted.get()));
        self.resident_memory
            .set(resident_bytes().unwrap_or(0) as i64);
        if let Some(aof) = &self.aof {
            let lag = aof.lag();
            self.aof_unsynced_bytes.set(lag.unsynced_bytes as i64);
            self.aof_seconds_since_fsync
                .set(lag.pending_for.map(|d| d.as_secs() as i64).unwrap_or(0));
            self.aof_rewrite_growth.set(aof.growth() as i64);
        }
    }
}

/// RSS from /proc (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Collector for BunderCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.commands.desc();
        descs.extend(self.keys.desc());
        descs.extend(self.evicted.desc());
        for g in self.gauges() {
            descs.extend(g.desc());
        }
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.commands.collect();
        families.extend(self.keys.collect());
        families.extend(self.evicted.collect());
        for g in self.gauges() {
            families.extend(g.collect());
        }
        if self.aof.is_none() {
            families.retain(|f| !f.name().starts_with("bunder_aof_"));
        }
        families
    }
}
