//! Live host state: what the collector knows of each connected host right now, from its stream.
//!
//! The ingest sessions feed [`Live`] (the latest sar values, NTP measurement and clock probe, and
//! the recent OOM kill times); the rules loop ([`super::evaluate`]) and `fleetctl ntp` read it.
//! It is memory only, rebuilt from the streams after a restart.
//!
//! A batch is observed only once the store has stored it for the first time: the session takes
//! an [`Observation`] out of it before it is written and hands it to [`Live::observe`] after
//! the write, less the kills the host already had. A replayed batch (a lost ack) or a kill read
//! again from the kernel log is no news, so one kill never counts twice in `oom_kill_burst`.
//! Only OOM events of kind kill count: a report that ended in a panic or killed nothing is
//! listed by `fleetctl oom`, never counted as a kill.
//!
//! The sar values are those of the host's latest sample. An instance (a CPU, disk or interface)
//! missing from [`MISSED_SAMPLES`] samples in a row leaves the live state: a removed disk or
//! veth stops feeding rules, and a host keeps at most that many samples' worth of instances.
//!
//! Cost: ingest sessions of different hosts never wait for each other (a lock per host; the
//! table of hosts, indexed by host number, is locked for writing only when a new host comes),
//! a host keeps its latest sample as the flat copy the session made (no hashing, no allocation
//! per record; an instance that went missing is copied aside until it expires), and readers
//! look at a host's state in place ([`Live::with_host`]) instead of cloning it.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use fleet_proto::clock::now_ms;
use fleet_proto::v1::{Batch, ClockStatus, OomKind, Record};
use tokio::sync::futures::Notified;

/// How long the kill times of a host are kept in memory for `oom_kill_burst`.
const KILL_MEMORY_MS: i64 = 3_600_000;
/// Most kill times kept per host, even if a host reports kills in a storm.
const MAX_KILLS_KEPT: usize = 10_000;
/// An instance absent from this many of the host's samples in a row leaves its live state.
pub const MISSED_SAMPLES: u64 = 3;

/// What the collector knows of each host right now, from its stream: the latest sar values, NTP
/// measurement, clock offset against the collector, and recent OOM kills. Feeds the rules and
/// `fleetctl ntp`; rebuilt from the streams after a restart.
#[derive(Default)]
pub struct Live {
    /// Indexed by host number (the store numbers hosts densely from 1).
    hosts: RwLock<Vec<Mutex<HostLive>>>,
    /// Woken when an OOM kill arrives, so `oom_kill_burst` is evaluated at once rather than at
    /// the next tick.
    kill_arrived: tokio::sync::Notify,
}

/// One host's live state (see [`Live`]).
#[derive(Debug, Default)]
pub struct HostLive {
    /// (measured at, status) of the latest NTP measurement (shared with the rules' view).
    pub clock: Option<(i64, Arc<ClockStatus>)>,
    /// (offset ms, delay ms) of the latest probe over the stream.
    pub collector: Option<(f64, f64)>,
    /// Times of the host's OOM kills within the last hour, oldest first.
    pub oom_kills: VecDeque<i64>,
    /// The records of the latest sample with any.
    latest: Latest,
    /// Instances missing from the latest sample but seen in one of the last
    /// [`MISSED_SAMPLES`]: their last values.
    missing: Vec<Missing>,
    /// Samples with sar records observed so far.
    samples: u64,
}

/// An instance absent from the host's latest sample: its last values and the number (in
/// `samples`) of the last sample that reported it.
#[derive(Debug)]
struct Missing {
    activity: i32,
    instance: String,
    values: Vec<f64>,
    seen: u64,
}

impl HostLive {
    /// Latest values per (activity, instance).
    pub fn sar(&self) -> impl Iterator<Item = (i32, &str, &[f64])> {
        self.latest.iter().chain(
            self.missing
                .iter()
                .map(|m| (m.activity, m.instance.as_str(), m.values.as_slice())),
        )
    }

    /// Latest values of one series.
    pub fn sar_values(&self, activity: i32, instance: &str) -> Option<&[f64]> {
        self.sar()
            .find(|&(a, i, _)| a == activity && i == instance)
            .map(|(_, _, v)| v)
    }

    /// Takes in a sample's records (see the module doc for instances that went missing).
    fn take_latest(&mut self, latest: Latest) {
        self.samples += 1;
        let this = self.samples;
        let old = std::mem::replace(&mut self.latest, latest);
        let same = old.same_instances(&self.latest);
        if same && self.missing.is_empty() {
            return;
        }
        let now: HashSet<(i32, &str)> = self.latest.iter().map(|(a, i, _)| (a, i)).collect();
        self.missing.retain(|m| {
            this - m.seen < MISSED_SAMPLES && !now.contains(&(m.activity, &*m.instance))
        });
        if !same {
            for (activity, instance, values) in old.iter() {
                if !now.contains(&(activity, instance)) {
                    self.missing.push(Missing {
                        activity,
                        instance: instance.to_owned(),
                        values: values.to_vec(),
                        seen: this - 1,
                    });
                }
            }
        }
    }
}

/// The sar records of a batch's latest sample, copied flat: three allocations per batch, not
/// two per record (the session copies them before the batch is written; the live state takes
/// them after).
#[derive(Debug, Default, Clone, PartialEq)]
struct Latest {
    /// Per record: activity, end of its instance in `instances`, end of its values in `values`.
    records: Vec<(i32, usize, usize)>,
    instances: String,
    values: Vec<f64>,
}

impl Latest {
    fn copy(records: &[Record]) -> Latest {
        let mut l = Latest {
            records: Vec::with_capacity(records.len()),
            instances: String::with_capacity(records.iter().map(|r| r.instance.len()).sum()),
            values: Vec::with_capacity(records.iter().map(|r| r.values.len()).sum()),
        };
        for r in records {
            l.instances.push_str(&r.instance);
            l.values.extend_from_slice(&r.values);
            l.records
                .push((r.activity, l.instances.len(), l.values.len()));
        }
        l
    }

    /// Whether `other` has the same records' activities and instances, in the same order (a
    /// host's samples nearly always do).
    fn same_instances(&self, other: &Latest) -> bool {
        self.instances == other.instances
            && self.records.len() == other.records.len()
            && self
                .records
                .iter()
                .zip(&other.records)
                .all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }

    fn iter(&self) -> impl Iterator<Item = (i32, &str, &[f64])> {
        let mut start = (0, 0);
        self.records.iter().map(move |&(activity, i_end, v_end)| {
            let (i, v) = std::mem::replace(&mut start, (i_end, v_end));
            (activity, &self.instances[i..i_end], &self.values[v..v_end])
        })
    }
}

/// What one batch tells the live state (see the module doc): its latest sar values, its clock
/// readings and its kill times.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Observation {
    /// The records of the batch's latest sample that has any.
    latest: Option<Latest>,
    /// (measured at, status) of each clock reading.
    clocks: Vec<(i64, ClockStatus)>,
    /// For each OOM event, in batch order, its time if it is a kill (`None` for a panic or an
    /// invocation that killed nothing).
    kills: Vec<Option<i64>>,
}

impl Observation {
    /// Takes the clock readings out of `batch`'s samples (they are live state, not stored with
    /// the samples) and copies its latest sar values and its kill times. `extra_clocks` are
    /// readings already taken out of it (from samples that will not be stored).
    pub fn take(batch: &mut Batch, extra_clocks: Vec<(i64, ClockStatus)>) -> Observation {
        let mut clocks = extra_clocks;
        for s in &mut batch.samples {
            if let Some(c) = s.clock.take() {
                clocks.push((s.time_ms, c));
            }
        }
        let latest = batch
            .samples
            .iter()
            .filter(|s| !s.records.is_empty())
            .max_by_key(|s| s.time_ms)
            .map(|s| Latest::copy(&s.records));
        Observation {
            latest,
            clocks,
            kills: batch
                .oom_events
                .iter()
                // A kind this collector does not know is not counted as a kill.
                .map(|e| (e.kind == i32::from(OomKind::Kill)).then_some(e.time_ms))
                .collect(),
        }
    }

    /// The clock readings taken out of the batch: (measured at, status), in batch order. The
    /// session stores them too (NTP history).
    pub fn clocks(&self) -> &[(i64, ClockStatus)] {
        &self.clocks
    }

    /// Leaves out the kills at these indices (already stored before: no news).
    pub fn forget_kills(&mut self, indices: &[u32]) {
        if indices.is_empty() {
            return;
        }
        let mut i = 0u32;
        self.kills.retain(|_| {
            i += 1;
            !indices.contains(&(i - 1))
        });
    }
}

impl Live {
    /// Takes in what a batch of host `num` said, once it is stored for the first time. A clock
    /// reading stamped after now counts as taken now, so a host's clock that was ahead for a
    /// while cannot hold back its later readings.
    pub fn observe(&self, num: u32, obs: Observation) {
        let now = now_ms();
        let mut kills = 0;
        self.update(num, |h| {
            if let Some(latest) = obs.latest {
                h.take_latest(latest);
            }
            for (t, c) in obs.clocks {
                let t = t.min(now);
                if h.clock.as_ref().is_none_or(|(old, _)| *old <= t) {
                    h.clock = Some((t, Arc::new(c)));
                }
            }
            let horizon = now - KILL_MEMORY_MS;
            for t in obs.kills.into_iter().flatten() {
                kills += 1;
                if t >= horizon {
                    h.oom_kills.push_back(t);
                }
            }
            while h.oom_kills.front().is_some_and(|t| *t < horizon) {
                h.oom_kills.pop_front();
            }
            while h.oom_kills.len() > MAX_KILLS_KEPT {
                h.oom_kills.pop_front();
            }
        });
        if kills > 0 {
            self.kill_arrived.notify_one();
        }
    }

    /// Runs `f` on host `num`'s state, made on first sight.
    fn update(&self, num: u32, f: impl FnOnce(&mut HostLive)) {
        let i = num as usize;
        {
            let hosts = self.hosts.read().expect("live lock");
            if let Some(h) = hosts.get(i) {
                f(&mut lock(h));
                return;
            }
        }
        let mut hosts = self.hosts.write().expect("live lock");
        if hosts.len() <= i {
            hosts.resize_with(i + 1, Mutex::default);
        }
        f(&mut lock(&hosts[i]));
    }

    /// Records the offset and delay of host `num`'s clock, measured over its stream.
    pub fn collector_offset(&self, num: u32, offset_ms: f64, delay_ms: f64) {
        self.update(num, |h| h.collector = Some((offset_ms, delay_ms)));
    }

    /// `f` of host `num`'s state (empty if nothing arrived from it since start), read in place:
    /// the host's ingest waits meanwhile, so `f` copies out what it needs and returns.
    pub fn with_host<R>(&self, num: u32, f: impl FnOnce(&HostLive) -> R) -> R {
        let hosts = self.hosts.read().expect("live lock");
        match hosts.get(num as usize) {
            Some(h) => f(&lock(h)),
            None => f(&HostLive::default()),
        }
    }

    /// Resolves when an OOM kill arrives (or arrived since the last wait).
    pub fn kill_arrived(&self) -> Notified<'_> {
        self.kill_arrived.notified()
    }
}

fn lock(h: &Mutex<HostLive>) -> MutexGuard<'_, HostLive> {
    h.lock().expect("live host lock")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_proto::v1::{Activity, OomEvent, Sample};

    fn disk(name: &str, util: f64) -> Record {
        Record {
            activity: Activity::Disk as i32,
            instance: name.into(),
            values: vec![util],
        }
    }

    fn batch(time_ms: i64, records: Vec<Record>, kills: &[i64]) -> Batch {
        Batch {
            seq: 1,
            samples: vec![Sample {
                time_ms,
                interval_ms: 1000,
                records,
                ..Sample::default()
            }],
            oom_events: kills
                .iter()
                .map(|&t| OomEvent {
                    time_ms: t,
                    ..OomEvent::default()
                })
                .collect(),
            ..Batch::default()
        }
    }

    fn disks(live: &Live) -> Vec<String> {
        let mut d: Vec<String> =
            live.with_host(1, |h| h.sar().map(|(_, i, _)| i.to_owned()).collect());
        d.sort();
        d
    }

    #[test]
    fn the_latest_sample_is_copied_flat_and_read_back_record_by_record() {
        let records = vec![
            Record {
                activity: Activity::Cpu as i32,
                instance: "all".into(),
                values: vec![1.0, 2.0, 3.0],
            },
            disk("nvme0n1", 4.0),
            Record {
                activity: Activity::Cpu as i32,
                instance: "0".into(),
                values: vec![],
            },
        ];
        let flat = Latest::copy(&records);
        let back: Vec<(i32, &str, &[f64])> = flat.iter().collect();
        let want: Vec<(i32, &str, &[f64])> = records
            .iter()
            .map(|r| (r.activity, r.instance.as_str(), r.values.as_slice()))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn an_instance_missing_from_a_few_samples_leaves_the_live_state() {
        let live = Live::default();
        let t = now_ms();
        let both = || vec![disk("sda", 10.0), disk("sdb", 99.0)];
        live.observe(1, Observation::take(&mut batch(t, both(), &[]), vec![]));
        assert_eq!(disks(&live), ["sda", "sdb"]);
        // sdb is removed: it stays for MISSED_SAMPLES - 1 samples, then goes.
        for i in 1..MISSED_SAMPLES {
            let mut b = batch(t + i as i64, vec![disk("sda", 11.0)], &[]);
            live.observe(1, Observation::take(&mut b, vec![]));
            assert_eq!(disks(&live), ["sda", "sdb"], "after {i} samples without it");
        }
        let mut b = batch(t + 10, vec![disk("sda", 12.0)], &[]);
        live.observe(1, Observation::take(&mut b, vec![]));
        assert_eq!(disks(&live), ["sda"]);
        let sda = live.with_host(1, |h| {
            h.sar_values(Activity::Disk as i32, "sda")
                .map(<[f64]>::to_vec)
        });
        assert_eq!(sda, Some(vec![12.0]));
        // A sample without records (a ranking alone) is no interval of the sar sources.
        for _ in 0..2 * MISSED_SAMPLES {
            let mut b = batch(t + 20, vec![], &[]);
            live.observe(1, Observation::take(&mut b, vec![]));
        }
        assert_eq!(disks(&live), ["sda"]);
        // Instances that change all the time (veths) never pile up.
        for i in 0..100 {
            let mut b = batch(t + 30 + i, vec![disk(&format!("veth{i}"), 1.0)], &[]);
            live.observe(1, Observation::take(&mut b, vec![]));
        }
        let count = live.with_host(1, |h| h.sar().count());
        assert_eq!(count as u64, MISSED_SAMPLES);
    }

    #[test]
    fn kills_already_stored_are_left_out_and_future_clock_readings_count_as_now() {
        let live = Live::default();
        let t = now_ms();
        let mut b = batch(t, vec![], &[t - 3, t - 2, t - 1]);
        let mut obs = Observation::take(&mut b, vec![(t + 3_600_000, ClockStatus::default())]);
        obs.forget_kills(&[0, 2]);
        live.observe(1, obs);
        let (kills, clock) = live.with_host(1, |h| (h.oom_kills.clone(), h.clock.clone()));
        assert_eq!(kills, [t - 2]);
        let (at, _) = clock.expect("a reading");
        assert!(at <= now_ms(), "a reading from the future is taken as now");
        // A later reading replaces it.
        let later = now_ms() + 1;
        live.observe(
            1,
            Observation {
                clocks: vec![(later, ClockStatus::default())],
                ..Observation::default()
            },
        );
        assert!(live.with_host(1, |h| h.clock.as_ref().unwrap().0) >= at);
    }

    #[test]
    fn only_kills_count_not_panics_nor_invocations_that_killed_nothing() {
        let live = Live::default();
        let t = now_ms();
        let mut b = batch(t, vec![], &[t - 4, t - 3, t - 2, t - 1]);
        b.oom_events[1].kind = OomKind::Panic.into();
        b.oom_events[2].kind = OomKind::NoKill.into();
        let mut obs = Observation::take(&mut b, vec![]);
        // Indices stay those of the batch's events, whatever their kind.
        obs.forget_kills(&[3]);
        live.observe(1, obs);
        assert_eq!(live.with_host(1, |h| h.oom_kills.clone()), [t - 4]);
        // A batch of non-kills only is no kill arriving.
        let mut b = batch(t, vec![], &[t]);
        b.oom_events[0].kind = OomKind::NoKill.into();
        live.observe(2, Observation::take(&mut b, vec![]));
        assert!(live.with_host(2, |h| h.oom_kills.is_empty()));
    }
}
