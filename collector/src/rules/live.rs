//! Live host state: what the collector knows of each connected host right now, from its stream.
//!
//! The ingest sessions feed [`Live`] (the latest sar values, NTP measurement and clock probe, and
//! the recent OOM kill times); the rules loop ([`super::evaluate`]) and `fleetctl ntp` read it.
//! It is memory only, rebuilt from the streams after a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use fleet_proto::clock::now_ms;
use fleet_proto::v1::{Batch, ClockStatus};
use tokio::sync::futures::Notified;

/// How long the kill times of a host are kept in memory for `oom_kill_burst`.
const KILL_MEMORY_MS: i64 = 3_600_000;
/// Most kill times kept per host, even if a host reports kills in a storm.
const MAX_KILLS_KEPT: usize = 10_000;

/// What the collector knows of each host right now, from its stream: the latest sar values, NTP
/// measurement, clock offset against the collector, and recent OOM kills. Feeds the rules and
/// `fleetctl ntp`; rebuilt from the streams after a restart.
#[derive(Default)]
pub struct Live {
    hosts: Mutex<HashMap<u32, HostLive>>,
    /// Woken when an OOM kill arrives, so `oom_kill_burst` is evaluated at once rather than at
    /// the next tick.
    kill_arrived: tokio::sync::Notify,
}

/// One host's live state (see [`Live`]).
#[derive(Debug, Default, Clone)]
pub struct HostLive {
    /// (measured at, status) of the latest NTP measurement.
    pub clock: Option<(i64, ClockStatus)>,
    /// (offset ms, delay ms) of the latest probe over the stream.
    pub collector: Option<(f64, f64)>,
    /// Latest values per (activity, instance).
    pub sar: HashMap<(i32, String), Vec<f64>>,
    /// Times of the host's OOM kills within the last hour, oldest first.
    pub oom_kills: VecDeque<i64>,
}

impl Live {
    /// Takes in a batch of host `num` before it is written. The clock status is live state, not a
    /// time series: it is taken out of the samples and not stored with them.
    pub fn observe(&self, num: u32, batch: &mut Batch) {
        let mut hosts = self.hosts.lock().expect("live lock");
        let h = hosts.entry(num).or_default();
        if let Some(last) = batch.samples.iter().max_by_key(|s| s.time_ms) {
            for r in &last.records {
                h.sar
                    .insert((r.activity, r.instance.clone()), r.values.clone());
            }
        }
        for s in &mut batch.samples {
            if let Some(c) = s.clock.take() {
                if h.clock.as_ref().is_none_or(|(t, _)| *t <= s.time_ms) {
                    h.clock = Some((s.time_ms, c));
                }
            }
        }
        let horizon = now_ms() - KILL_MEMORY_MS;
        for e in &batch.oom_events {
            if e.time_ms >= horizon {
                h.oom_kills.push_back(e.time_ms);
            }
        }
        while h.oom_kills.front().is_some_and(|t| *t < horizon) {
            h.oom_kills.pop_front();
        }
        while h.oom_kills.len() > MAX_KILLS_KEPT {
            h.oom_kills.pop_front();
        }
        drop(hosts);
        if !batch.oom_events.is_empty() {
            self.kill_arrived.notify_one();
        }
    }

    /// Records the offset and delay of host `num`'s clock, measured over its stream.
    pub fn collector_offset(&self, num: u32, offset_ms: f64, delay_ms: f64) {
        let mut hosts = self.hosts.lock().expect("live lock");
        hosts.entry(num).or_default().collector = Some((offset_ms, delay_ms));
    }

    /// A copy of host `num`'s state (empty if nothing arrived from it since start).
    pub fn get(&self, num: u32) -> HostLive {
        self.hosts
            .lock()
            .expect("live lock")
            .get(&num)
            .cloned()
            .unwrap_or_default()
    }

    /// Resolves when an OOM kill arrives (or arrived since the last wait).
    pub fn kill_arrived(&self) -> Notified<'_> {
        self.kill_arrived.notified()
    }
}
