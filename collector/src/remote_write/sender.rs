//! One receiver's sender: tails the store's outbox from its persisted cursor, sends one request
//! at a time, and moves the cursor (synced) only after the receiver accepted it.
//!
//! - 2xx: the cursor moves past the request's entries.
//! - 5xx, 429, no connection, a timeout: the same body again after a jittered backoff
//!   ([`Backoff`], 0.5 s to 30 s), counted in `failures`; the first failure of an outage and
//!   the recovery are logged, not every retry.
//! - Another answer (a 4xx: the receiver will never take it): counted in `rejected`, logged at
//!   warn the first time (debug after), and the entries skipped.
//! - Entries the outbox's bound dropped before they were sent: counted in `dropped`, skipped.
//!
//! Every few seconds ([`SenderOptions::live_every`]) the sender also sends the live series
//! (`fleet_host_up`, `fleet_collector_offset_seconds`) at the collector's time, once, outside the
//! outbox: they describe the present, and a missed one is replaced by the next.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use fleet_proto::backoff::Backoff;
use fleet_proto::clock::now_ms;
use fleet_proto::v1::HostIdentity;
use tokio::sync::watch;

use super::client::{Outcome, Receiver};
use super::names::{self, LabelSet};
use super::series::{Batch, Newest};
use super::wire;
use crate::rules::Live;
use crate::storage::{OutboxEntry, Store};

/// How a sender batches and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderOptions {
    /// A request stops taking entries once it holds this many samples.
    pub max_samples: usize,
    /// Most outbox entries read at once.
    pub read_entries: usize,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How often the live series are sent.
    pub live_every: Duration,
    /// Labels added to every series (never overriding).
    pub labels: Vec<(String, String)>,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            max_samples: 10_000,
            read_entries: 2_000,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            live_every: Duration::from_secs(5),
            labels: Vec::new(),
        }
    }
}

/// One receiver's counters (read by `/metrics`).
#[derive(Debug, Default)]
pub struct SenderStats {
    /// The receiver's URL without credentials or query: the `receiver` label.
    pub receiver: String,
    /// The next outbox seq the receiver has not accepted.
    pub cursor: AtomicU64,
    /// When the oldest entry not accepted yet was stored (Unix ms); 0 when caught up.
    pub oldest_unsent_ms: AtomicI64,
    /// Samples accepted.
    pub samples: AtomicU64,
    /// Requests accepted.
    pub requests: AtomicU64,
    /// Requests that failed and were retried.
    pub failures: AtomicU64,
    /// Requests refused for good (a 4xx): their entries skipped.
    pub rejected: AtomicU64,
    /// Entries dropped by the outbox's bound before they were sent.
    pub dropped: AtomicU64,
    /// Samples left out as not after their series' newest.
    pub out_of_order: AtomicU64,
}

/// What a sender needs.
pub(super) struct Sender {
    pub(super) store: Arc<Store>,
    pub(super) live: Arc<Live>,
    pub(super) receiver: Receiver,
    /// The cursor's key: the URL as configured.
    pub(super) key: String,
    pub(super) stats: Arc<SenderStats>,
    pub(super) opts: SenderOptions,
    /// Told the cursor moved (the trimmer deletes what every sender passed).
    pub(super) moved: Arc<tokio::sync::Notify>,
}

/// Why a send loop stopped waiting.
enum Wake {
    Stop,
    Entries,
    Live,
}

impl Sender {
    /// Runs until `stop` turns true.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let store = self.store.clone();
        let key = self.key.clone();
        let mut cursor = match blocking(&store, move |s| s.outbox_cursor(&key)).await {
            Ok(Some(c)) => c,
            Ok(None) => store.outbox_span().0,
            Err(e) => {
                tracing::error!(receiver = %self.stats.receiver, error = %e, "remote-write: cannot read the cursor; not sending");
                return;
            }
        };
        self.stats.cursor.store(cursor, Relaxed);
        let mut head = store.outbox_head();
        let mut newest = Newest::default();
        let mut live = tokio::time::interval(self.opts.live_every);
        live.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logged_rejection = false;
        loop {
            if *stop.borrow() {
                return;
            }
            let (first, next) = store.outbox_span();
            if cursor < first {
                let lost = first - cursor;
                self.stats.dropped.fetch_add(lost, Relaxed);
                tracing::warn!(receiver = %self.stats.receiver, entries = lost, "remote-write: the outbox's bound dropped entries this receiver had not accepted");
                cursor = first;
            }
            if cursor >= next {
                self.stats.oldest_unsent_ms.store(0, Relaxed);
                let wake = tokio::select! {
                    _ = stop.changed() => Wake::Stop,
                    r = head.changed() => if r.is_ok() { Wake::Entries } else { Wake::Stop },
                    _ = live.tick() => Wake::Live,
                };
                match wake {
                    Wake::Stop => return,
                    Wake::Entries => continue,
                    Wake::Live => {
                        self.send_live().await;
                        continue;
                    }
                }
            }
            let from = cursor;
            let n = self.opts.read_entries;
            let entries = match blocking(&store, move |s| s.outbox_read(from, n)).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(receiver = %self.stats.receiver, error = %e, "remote-write: cannot read the outbox");
                    if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(((_, oldest), _)) = entries.split_first() else {
                // Trimmed or dropped meanwhile: the span says where to go on.
                cursor = cursor.max(store.outbox_span().0);
                continue;
            };
            self.stats.oldest_unsent_ms.store(oldest.stored_ms, Relaxed);
            let (batch, upto) = self.batch(&entries, &mut newest);
            self.stats
                .out_of_order
                .fetch_add(batch.skipped_out_of_order, Relaxed);
            let samples = batch.samples as u64;
            if !batch.is_empty() {
                let st = store.clone();
                let hosts = move |num: u32| -> Option<HostIdentity> {
                    st.host_by_num(num).map(|r| r.identity)
                };
                let body = match wire::body(&batch.into_request(&hosts, &self.opts.labels)) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "remote-write: cannot compress a request; skipped");
                        Vec::new()
                    }
                };
                if !body.is_empty() {
                    match self.deliver(body, &mut stop, &mut logged_rejection).await {
                        Delivered::Stopped => return,
                        Delivered::Accepted => {
                            self.stats.samples.fetch_add(samples, Relaxed);
                            self.stats.requests.fetch_add(1, Relaxed);
                        }
                        Delivered::Rejected => {}
                    }
                }
            }
            cursor = upto;
            let key = self.key.clone();
            if let Err(e) = blocking(&store, move |s| s.set_outbox_cursor(&key, upto)).await {
                // The store refuses writes (a full disk): the receiver may get these again.
                tracing::debug!(error = %e, "remote-write: cursor not persisted");
            }
            self.stats.cursor.store(cursor, Relaxed);
            self.moved.notify_one();
        }
    }

    /// Entries into one batch of at most `max_samples` (at least one entry), and the seq after
    /// the last entry taken.
    fn batch(&self, entries: &[(u64, OutboxEntry)], newest: &mut Newest) -> (Batch, u64) {
        let mut batch = Batch::default();
        let mut upto = entries[0].0;
        for (seq, entry) in entries {
            if batch.samples >= self.opts.max_samples {
                break;
            }
            batch.add(entry, newest);
            upto = seq + 1;
        }
        (batch, upto)
    }

    /// Posts `body` until the receiver accepts or refuses it for good, or the collector stops.
    async fn deliver(
        &self,
        body: Vec<u8>,
        stop: &mut watch::Receiver<bool>,
        logged_rejection: &mut bool,
    ) -> Delivered {
        let mut backoff = Backoff::new(self.opts.backoff_base, self.opts.backoff_cap);
        let mut failing_since: Option<i64> = None;
        loop {
            let outcome = tokio::select! {
                o = self.receiver.post(body.clone()) => o,
                // A stop interrupts a slow post: what it carried is sent again after a restart.
                _ = stop.changed() => return Delivered::Stopped,
            };
            match outcome {
                Outcome::Accepted => {
                    if let Some(since) = failing_since {
                        tracing::info!(receiver = %self.stats.receiver, down_s = (now_ms() - since) / 1000, "remote-write: receiver accepts again");
                    }
                    return Delivered::Accepted;
                }
                Outcome::Rejected(why) => {
                    self.stats.rejected.fetch_add(1, Relaxed);
                    if *logged_rejection {
                        tracing::debug!(receiver = %self.stats.receiver, why, "remote-write: request refused; its entries skipped");
                    } else {
                        *logged_rejection = true;
                        tracing::warn!(receiver = %self.stats.receiver, why, "remote-write: request refused; its entries skipped (logged once; counted in fleet_collector_remote_write_rejected_total)");
                    }
                    return Delivered::Rejected;
                }
                Outcome::Retry(why) => {
                    self.stats.failures.fetch_add(1, Relaxed);
                    if failing_since.is_none() {
                        failing_since = Some(now_ms());
                        tracing::warn!(receiver = %self.stats.receiver, why, "remote-write: receiver failing; retrying with backoff");
                    }
                    if sleep_or_stop(stop, backoff.next_delay()).await {
                        return Delivered::Stopped;
                    }
                }
            }
        }
    }

    /// Sends the live series once (best effort).
    async fn send_live(&self) {
        let now = now_ms();
        let mut req = wire::WriteRequest::default();
        for host in self.store.hosts() {
            let base = names::host_labels(&host.identity, &self.opts.labels);
            let mut push = |metric: &str, base: &LabelSet, v: f64| {
                req.timeseries.push(wire::TimeSeries {
                    labels: (base.clone().into_sorted(metric).into_iter())
                        .map(|(name, value)| wire::Label { name, value })
                        .collect(),
                    samples: vec![wire::Sample {
                        value: v,
                        timestamp: now,
                    }],
                });
            };
            push(names::HOST_UP, &base, f64::from(u8::from(host.connected)));
            if let Some((offset_ms, _)) = self.live.with_host(host.num, |h| h.collector) {
                push(names::COLLECTOR_OFFSET, &base, offset_ms / 1000.0);
            }
        }
        if req.timeseries.is_empty() {
            return;
        }
        let Ok(body) = wire::body(&req) else { return };
        match self.receiver.post(body).await {
            Outcome::Accepted => {}
            Outcome::Retry(_) => {
                self.stats.failures.fetch_add(1, Relaxed);
            }
            Outcome::Rejected(why) => {
                self.stats.rejected.fetch_add(1, Relaxed);
                tracing::debug!(receiver = %self.stats.receiver, why, "remote-write: live series refused");
            }
        }
    }
}

enum Delivered {
    Accepted,
    Rejected,
    Stopped,
}

/// Sleeps `d`, or less when `stop` turns true first (then true).
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Runs a store call off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
