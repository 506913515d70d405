//! Outbox entries into time series ([`Batch`]), named by [`super::names`]: pure, given each
//! host's identity.
//!
//! sar values are rounded to two decimals as the store keeps them ([`quantize`]), so a receiver
//! holds what `fleetctl sar` shows.
//!
//! A [`Batch`] gathers the samples of many entries, one series per label set, each series'
//! samples in the order the entries came (the agents' order, by time). A sample at or before the
//! last one a series got in this sender's life is left out ([`Batch::skipped_out_of_order`]): a
//! receiver such as Prometheus refuses a whole request for one out-of-order sample. After a
//! restart the first entries may be sent again: the same values at the same times, which
//! receivers take as duplicates.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use fleet_proto::schema::{schema_of_i32, ACTIVITIES};
use fleet_proto::v1::{ClockStatus, HostIdentity};

use super::names::{self, LabelSet};
use super::wire;
use crate::storage::chunk::quantize;
use crate::storage::OutboxEntry;

/// One series' identity while batching: host, metric, and the labels the metric adds.
#[derive(Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    host_num: u32,
    metric: MetricId,
    extra: Extra,
}

/// The labels a metric adds to its host's (instance, NTP server, OOM victim).
type Extra = Vec<(&'static str, String)>;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum MetricId {
    /// Index in `ACTIVITIES`, column.
    Sar(usize, usize),
    Named(&'static str),
}

/// The newest sample time each series got, across batches of one sender, by a 64-bit hash of
/// the series (16 bytes a series however long its labels: a fleet of 50,000 hosts with 100
/// series each takes about 100 MB; two series sharing a hash, about one chance in 10¹² there,
/// would only leave out samples).
#[derive(Default)]
pub struct Newest(HashMap<u64, i64>);

impl SeriesKey {
    fn hash64(&self) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(self)
    }
}

impl Newest {
    /// Series remembered (bounded by what the fleet has).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The series of some entries, ready to become one request.
#[derive(Default)]
pub struct Batch {
    order: Vec<SeriesKey>,
    series: HashMap<SeriesKey, Vec<wire::Sample>>,
    /// Samples in the batch.
    pub samples: usize,
    /// Samples left out: not after their series' newest.
    pub skipped_out_of_order: u64,
}

impl Batch {
    /// Adds one entry's values; `newest` is the sender's memory of each series' last time.
    pub fn add(&mut self, entry: &OutboxEntry, newest: &mut Newest) {
        let host = entry.host_num;
        let mut push = |me: &mut Batch, metric, extra: Extra, t: i64, v| {
            let key = SeriesKey {
                host_num: host,
                metric,
                extra,
            };
            match newest.0.entry(key.hash64()) {
                Entry::Occupied(last) if *last.get() >= t => {
                    me.skipped_out_of_order += 1;
                    return;
                }
                Entry::Occupied(mut last) => {
                    last.insert(t);
                }
                Entry::Vacant(v) => {
                    v.insert(t);
                }
            }
            let samples = match me.series.get_mut(&key) {
                Some(s) => s,
                None => {
                    me.order.push(key.clone());
                    me.series.entry(key).or_default()
                }
            };
            samples.push(wire::Sample {
                value: v,
                timestamp: t,
            });
            me.samples += 1;
        };
        for s in &entry.samples {
            for r in &s.records {
                let Some(schema) = schema_of_i32(r.activity) else {
                    continue;
                };
                let index = ACTIVITIES
                    .iter()
                    .position(|a| a.activity == schema.activity)
                    .expect("a known activity is in ACTIVITIES");
                let extra = match names::instance_label(schema) {
                    Some(label) => vec![(label, r.instance.clone())],
                    None => Vec::new(),
                };
                for (col, v) in r.values.iter().enumerate() {
                    // As the store keeps it, and fleetctl shows it: two decimals.
                    let (metric, v) = (MetricId::Sar(index, col), quantize(*v));
                    push(self, metric, extra.clone(), s.time_ms, v);
                }
            }
            if let Some(k) = &entry.host_kills {
                push(
                    self,
                    MetricId::Named(names::OOM_KILLS),
                    Vec::new(),
                    s.time_ms,
                    k.total as f64,
                );
                if k.total > 0 {
                    let extra = vec![
                        (names::LABEL_VICTIM_COMM, k.last_comm.clone()),
                        (names::LABEL_VICTIM_PID, k.last_pid.to_string()),
                    ];
                    push(
                        self,
                        MetricId::Named(names::OOM_LAST_KILL_INFO),
                        extra,
                        s.time_ms,
                        1.0,
                    );
                }
            }
        }
        for m in &entry.clocks {
            if let Some(clock) = &m.clock {
                for (metric, extra, v) in clock_values(clock) {
                    push(self, MetricId::Named(metric), extra, m.time_ms, v);
                }
            }
        }
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// The batch split into `n` parts by a stable hash of each series' identity (its host,
    /// metric and labels), so that a series always lands in the same part: part `i` of every
    /// batch goes to shard `i`, which keeps the series' order. Parts may be empty.
    pub fn split(mut self, n: usize) -> Vec<Batch> {
        let n = n.max(1);
        let mut parts: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
        for key in self.order {
            let Some(samples) = self.series.remove(&key) else {
                continue;
            };
            let part = &mut parts[(key.hash64() % n as u64) as usize];
            part.samples += samples.len();
            part.order.push(key.clone());
            part.series.insert(key, samples);
        }
        parts
    }

    /// Appends `later`'s samples (of entries read after this batch's) to this batch: each
    /// series' samples stay in time order.
    pub fn append(&mut self, mut later: Batch) {
        for key in later.order {
            let Some(samples) = later.series.remove(&key) else {
                continue;
            };
            self.samples += samples.len();
            match self.series.get_mut(&key) {
                Some(s) => s.extend(samples),
                None => {
                    self.order.push(key.clone());
                    self.series.insert(key, samples);
                }
            }
        }
        self.skipped_out_of_order += later.skipped_out_of_order;
    }

    /// The request: each series with the labels of its host (`hosts`: identity by number; a
    /// series of an unknown host is left out) and the `extra` labels of the configuration.
    pub fn into_request(
        mut self,
        hosts: &dyn Fn(u32) -> Option<HostIdentity>,
        extra: &[(String, String)],
    ) -> wire::WriteRequest {
        let mut bases: HashMap<u32, Option<LabelSet>> = HashMap::new();
        let mut timeseries = Vec::with_capacity(self.order.len());
        for key in self.order {
            let Some(samples) = self.series.remove(&key) else {
                continue;
            };
            let base = bases
                .entry(key.host_num)
                .or_insert_with(|| hosts(key.host_num).map(|id| names::host_labels(&id, extra)));
            let Some(base) = base else { continue };
            let mut labels = base.clone();
            for (name, value) in &key.extra {
                labels.add(name, value);
            }
            let metric = match key.metric {
                MetricId::Sar(a, c) => names::sar_metrics()[a][c].as_str(),
                MetricId::Named(n) => n,
            };
            timeseries.push(wire::TimeSeries {
                labels: (labels.into_sorted(metric).into_iter())
                    .map(|(name, value)| wire::Label { name, value })
                    .collect(),
                samples,
            });
        }
        wire::WriteRequest { timeseries }
    }
}

/// The values of one NTP measurement: per server, then the kernel's clock.
fn clock_values(clock: &ClockStatus) -> Vec<(&'static str, Extra, f64)> {
    let mut out = Vec::new();
    for s in &clock.servers {
        let server = || vec![(names::LABEL_SERVER, s.server.clone())];
        out.push((
            names::NTP_REACHABLE,
            server(),
            f64::from(u8::from(s.reachable)),
        ));
        out.push((names::NTP_SYNCED, server(), f64::from(u8::from(s.synced))));
        if s.reachable {
            out.push((names::NTP_OFFSET, server(), s.offset_ms / 1000.0));
            out.push((names::NTP_DELAY, server(), s.delay_ms / 1000.0));
            out.push((names::NTP_STRATUM, server(), f64::from(s.stratum)));
        }
    }
    if let Some(k) = &clock.kernel {
        out.push((
            names::KERNEL_CLOCK_SYNCED,
            Vec::new(),
            f64::from(u8::from(k.synced)),
        ));
        out.push((
            names::KERNEL_CLOCK_EST_ERROR,
            Vec::new(),
            k.est_error_ms / 1000.0,
        ));
        out.push((names::KERNEL_CLOCK_FREQ, Vec::new(), k.freq_ppm));
    }
    out
}

#[cfg(test)]
mod tests {
    use fleet_proto::v1::{Activity, NtpMeasurement, NtpServerStatus, Record, Sample};

    use super::*;
    use crate::storage::outbox::HostKills;

    fn entry(host: u32, t: i64, idle: f64) -> OutboxEntry {
        OutboxEntry {
            host_num: host,
            samples: vec![Sample {
                time_ms: t,
                interval_ms: 1000,
                records: vec![Record {
                    activity: Activity::Cpu as i32,
                    instance: "all".into(),
                    values: vec![1.0, 0.0, 1.0, 0.0, 0.0, idle],
                }],
                ..Default::default()
            }],
            clocks: vec![NtpMeasurement {
                time_ms: t,
                clock: Some(ClockStatus {
                    servers: vec![NtpServerStatus {
                        server: "127.0.0.1:123".into(),
                        reachable: true,
                        offset_ms: 250.0,
                        ..Default::default()
                    }],
                    kernel: None,
                }),
            }],
            kills: Vec::new(),
            host_kills: Some(HostKills {
                total: 2,
                last_comm: "stress".into(),
                last_pid: 7,
            }),
            stored_ms: t,
        }
    }

    fn identity(host: u32) -> Option<HostIdentity> {
        (host < 3).then(|| HostIdentity {
            host_id: format!("h{host}"),
            hostname: format!("host{host}"),
            cluster: "c".into(),
            ..Default::default()
        })
    }

    fn find<'a>(req: &'a wire::WriteRequest, name: &str, host: &str) -> &'a wire::TimeSeries {
        req.timeseries
            .iter()
            .find(|ts| {
                let has = |n: &str, v: &str| ts.labels.iter().any(|l| l.name == n && l.value == v);
                has("__name__", name) && has("host_id", host)
            })
            .unwrap_or_else(|| panic!("{name} of {host}"))
    }

    #[test]
    fn entries_become_named_series_in_time_order() {
        let mut newest = Newest::default();
        let mut b = Batch::default();
        b.add(&entry(1, 1000, 97.0), &mut newest);
        b.add(&entry(2, 1000, 50.0), &mut newest);
        b.add(&entry(1, 2000, 96.0), &mut newest);
        b.add(&entry(9, 2000, 96.0), &mut newest);
        let req = b.into_request(&identity, &[("env".into(), "test".into())]);
        let idle = find(&req, "fleet_cpu_idle_percent", "h1");
        assert_eq!(
            idle.samples,
            [
                wire::Sample {
                    value: 97.0,
                    timestamp: 1000
                },
                wire::Sample {
                    value: 96.0,
                    timestamp: 2000
                }
            ]
        );
        assert!(idle
            .labels
            .iter()
            .any(|l| l.name == "cpu" && l.value == "all"));
        assert!(idle
            .labels
            .iter()
            .any(|l| l.name == "env" && l.value == "test"));
        assert!(idle.labels.windows(2).all(|w| w[0].name < w[1].name));
        let ntp = find(&req, "fleet_ntp_offset_seconds", "h2");
        assert_eq!(ntp.samples[0].value, 0.25);
        let kills = find(&req, "fleet_oom_kills_total", "h1");
        assert_eq!(kills.samples.len(), 2);
        assert_eq!(kills.samples[0].value, 2.0);
        let info = find(&req, "fleet_oom_last_kill_info", "h1");
        assert!(info
            .labels
            .iter()
            .any(|l| l.name == "victim_comm" && l.value == "stress"));
        // Host 9 is unknown: none of its series.
        assert!(req
            .timeseries
            .iter()
            .all(|ts| !ts.labels.iter().any(|l| l.value == "h9")));
    }

    /// Each series' labels and sample times in a request.
    fn series_of(req: &wire::WriteRequest) -> Vec<(String, Vec<i64>)> {
        (req.timeseries.iter())
            .map(|ts| {
                let labels = ts.labels.iter().map(|l| format!("{}={}", l.name, l.value));
                let times = ts.samples.iter().map(|s| s.timestamp).collect();
                (labels.collect::<Vec<_>>().join(","), times)
            })
            .collect()
    }

    #[test]
    fn a_series_always_lands_in_the_same_part_and_parts_join_in_order() {
        let mut newest = Newest::default();
        let parts_of = |entries: &[OutboxEntry], newest: &mut Newest| {
            let mut b = Batch::default();
            for e in entries {
                b.add(e, newest);
            }
            let total = b.samples;
            let parts = b.split(4);
            assert_eq!(parts.iter().map(|p| p.samples).sum::<usize>(), total);
            parts
        };
        let first = parts_of(&[entry(1, 1000, 97.0), entry(2, 1000, 50.0)], &mut newest);
        let second = parts_of(&[entry(1, 2000, 96.0), entry(2, 2000, 51.0)], &mut newest);
        assert!(first.iter().filter(|p| !p.is_empty()).count() > 1);
        let mut seen = HashMap::new();
        for (i, (a, b)) in first.into_iter().zip(second).enumerate() {
            let mut joined = a;
            joined.append(b);
            for (name, times) in series_of(&joined.into_request(&identity, &[])) {
                // Both batches' samples of a series in one part, the same for both, in order.
                assert_eq!(times, [1000, 2000], "{name}");
                assert_eq!(seen.insert(name, i), None);
            }
        }
        assert!(seen.len() > 10);
    }

    #[test]
    fn samples_not_after_a_series_newest_are_left_out() {
        let mut newest = Newest::default();
        let mut b = Batch::default();
        b.add(&entry(1, 2000, 97.0), &mut newest);
        let first = b.samples;
        let mut again = Batch::default();
        again.add(&entry(1, 2000, 97.0), &mut newest);
        again.add(&entry(1, 1500, 97.0), &mut newest);
        assert!(again.is_empty());
        assert_eq!(again.skipped_out_of_order as usize, 2 * first);
    }
}
