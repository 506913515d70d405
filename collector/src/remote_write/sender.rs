//! One receiver's sender: a reader that tails the store's outbox from the receiver's persisted
//! cursor, turns the entries into series ([`Batch`], with the [`Newest`] filter), splits each
//! read batch across [`SenderOptions::shards`] shards ([`super::shard`]) by a stable hash of
//! each series, and moves the cursor (synced) over the batches every shard is done with
//! ([`super::window`]).
//!
//! - A read batch takes entries until it holds [`SenderOptions::max_samples`] samples; entries
//!   read from the store and not taken yet wait in memory (at most
//!   [`SenderOptions::read_entries`]).
//! - At most two batches per shard are in flight (the window): when a shard is slow or failing,
//!   the reader stops there, and memory stays bounded however long the receiver is down.
//! - Entries the outbox's bound dropped before they were read: counted in `dropped`, skipped.
//! - Before a batch goes to the shards, the frontier (the seq after its last entry) is written
//!   (not synced). After a restart, the entries between the cursor and the frontier, which
//!   some shards may have delivered, are resent one entry per request: each shard's part of an
//!   entry was delivered whole or not at all, so a receiver that refuses a whole request for a
//!   sample it already has (Prometheus) refuses only what it has (counted in `rejected`).
//!
//! Every few seconds ([`SenderOptions::live_every`]) while caught up, the sender also sends the
//! live series (`fleet_host_up`, `fleet_collector_offset_seconds`) at the collector's time,
//! once, outside the outbox: they describe the present, and a missed one is replaced by the
//! next.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use fleet_proto::clock::now_ms;
use tokio::sync::{mpsc, watch, Notify};

use super::client::Outcome;
use super::names::{self, LabelSet};
use super::series::{Batch, Newest};
use super::shard::{self, Part, Target};
use super::window::Window;
use super::wire;
use crate::rules::Live;
use crate::storage::{off_thread, OutboxEntry};

/// Shards per receiver unless `remote_write_shards` says otherwise.
pub const DEFAULT_SHARDS: usize = 4;

/// How a sender batches and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderOptions {
    /// A read batch stops taking entries once it holds this many samples, and a shard's
    /// request joins its waiting parts up to this many.
    pub max_samples: usize,
    /// Most outbox entries read at once.
    pub read_entries: usize,
    /// Requests in flight at once (each shard sends one at a time); 1: one request at a time.
    pub shards: usize,
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
            shards: DEFAULT_SHARDS,
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
    /// Its shards.
    pub shards: usize,
    /// The next outbox seq the receiver has not accepted.
    pub cursor: AtomicU64,
    /// When the oldest entry not accepted yet was stored (Unix ms); 0 when caught up.
    pub oldest_unsent_ms: AtomicI64,
    /// Requests being sent or retried now (at most one per shard).
    pub in_flight: AtomicU64,
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
    pub(super) target: Arc<Target>,
    pub(super) live: Arc<Live>,
    /// The cursor's key: the URL as configured.
    pub(super) key: String,
    /// Told the cursor moved (the trimmer deletes what every sender passed).
    pub(super) moved: Arc<Notify>,
}

/// Why the reader stopped waiting.
enum Wake {
    Stop,
    Done(u64),
    Entries,
    Live,
}

/// The reader's state.
struct Reader {
    /// The persisted cursor: every entry before it was accepted (or refused for good).
    cursor: u64,
    /// The next seq to read from the store.
    read_from: u64,
    /// The frontier found at start: entries before it are resent one at a time.
    resend_until: u64,
    /// The frontier persisted.
    frontier: u64,
    /// Entries read and not in a batch yet.
    read: VecDeque<(u64, OutboxEntry)>,
    window: Window,
    newest: Newest,
    /// Each shard's queue of parts.
    shards: Vec<mpsc::Sender<Part>>,
}

impl Sender {
    /// Runs until `stop` turns true; the shards stop with it.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let store = self.target.store.clone();
        let stats = self.target.stats.clone();
        let key = self.key.clone();
        let s = store.clone();
        let cursor = match off_thread(move || s.outbox_cursor(&key)).await {
            Ok(Some(c)) => c,
            Ok(None) => store.outbox_span().0,
            Err(e) => {
                tracing::error!(receiver = %stats.receiver, error = %e, "remote-write: cannot read the cursor; not sending");
                return;
            }
        };
        stats.cursor.store(cursor, Relaxed);
        let key = self.key.clone();
        let s = store.clone();
        let frontier = match off_thread(move || s.outbox_frontier(&key)).await {
            Ok(f) => f.unwrap_or(cursor).max(cursor),
            // Only a hint: without it, a resend may join delivered and new samples.
            Err(_) => cursor,
        };
        let n = self.target.opts.shards.max(1);
        // Two batches per shard: one being sent, one waiting, so every shard has work while
        // the reader reads.
        let cap = 2 * n;
        let (done_tx, mut done) = mpsc::channel(cap * n);
        let mut reader = Reader {
            cursor,
            read_from: cursor,
            resend_until: frontier,
            frontier,
            read: VecDeque::new(),
            window: Window::new(cap),
            newest: Newest::default(),
            shards: Vec::with_capacity(n),
        };
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            // Never full: a shard holds at most one part of each batch in the window.
            let (tx, rx) = mpsc::channel(cap);
            reader.shards.push(tx);
            tasks.push(tokio::spawn(shard::run(
                self.target.clone(),
                rx,
                done_tx.clone(),
                stop.clone(),
            )));
        }
        drop(done_tx);
        let mut head = store.outbox_head();
        let mut live = tokio::time::interval(self.target.opts.live_every);
        live.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *stop.borrow() {
                break;
            }
            while let Ok(id) = done.try_recv() {
                reader.window.done(id);
            }
            self.advance(&mut reader).await;
            let (first, next) = store.outbox_span();
            if reader.read_from < first {
                let lost = first - reader.read_from;
                stats.dropped.fetch_add(lost, Relaxed);
                tracing::warn!(receiver = %stats.receiver, entries = lost, "remote-write: the outbox's bound dropped entries this receiver had not accepted");
                reader.read_from = first;
            }
            let can_read = !reader.read.is_empty() || reader.read_from < next;
            if can_read && !reader.window.is_full() {
                if reader.read.is_empty() {
                    if !self.read(&mut reader, &mut stop).await {
                        break;
                    }
                } else if !self.dispatch(&mut reader).await {
                    break;
                }
                continue;
            }
            let idle = !can_read && reader.window.is_empty();
            if idle {
                stats.oldest_unsent_ms.store(0, Relaxed);
            }
            let wake = tokio::select! {
                _ = stop.changed() => Wake::Stop,
                id = done.recv() => id.map_or(Wake::Stop, Wake::Done),
                r = head.changed(), if !can_read => if r.is_ok() { Wake::Entries } else { Wake::Stop },
                _ = live.tick(), if idle => Wake::Live,
            };
            match wake {
                Wake::Stop => break,
                Wake::Done(id) => reader.window.done(id),
                Wake::Entries => {}
                Wake::Live => self.send_live().await,
            }
        }
        // The shards see the stop too; their queues close with the reader's. What they
        // finished meanwhile still moves the cursor.
        drop(std::mem::take(&mut reader.shards));
        for t in tasks {
            let _ = t.await;
        }
        while let Ok(id) = done.try_recv() {
            reader.window.done(id);
        }
        self.advance(&mut reader).await;
    }

    /// Reads the next entries from the store into `r.read`; false when stopped meanwhile.
    async fn read(&self, r: &mut Reader, stop: &mut watch::Receiver<bool>) -> bool {
        let store = &self.target.store;
        let (from, n) = (r.read_from, self.target.opts.read_entries);
        let s = store.clone();
        match off_thread(move || s.outbox_read(from, n)).await {
            Ok(entries) => {
                match entries.last() {
                    Some((seq, _)) => r.read_from = seq + 1,
                    // Trimmed or dropped meanwhile: the span says where to go on.
                    None => r.read_from = r.read_from.max(store.outbox_span().0),
                }
                r.read.extend(entries);
                true
            }
            Err(e) => {
                tracing::warn!(receiver = %self.target.stats.receiver, error = %e, "remote-write: cannot read the outbox");
                !sleep_or_stop(stop, Duration::from_secs(1)).await
            }
        }
    }

    /// Takes read entries into one batch of at most `max_samples` (at least one entry) and
    /// hands its parts to the shards; false when the shards are gone (stopping).
    async fn dispatch(&self, r: &mut Reader) -> bool {
        let stats = &self.target.stats;
        let Some((first, oldest)) = r.read.front() else {
            return true;
        };
        let oldest_ms = oldest.stored_ms;
        let alone = *first < r.resend_until;
        let mut batch = Batch::default();
        let mut upto = 0;
        while let Some((seq, entry)) = r.read.front() {
            if upto > 0 && (alone || batch.samples >= self.target.opts.max_samples) {
                break;
            }
            batch.add(entry, &mut r.newest);
            upto = seq + 1;
            r.read.pop_front();
        }
        if upto > r.frontier {
            let key = self.key.clone();
            let s = self.target.store.clone();
            if let Err(e) = off_thread(move || s.set_outbox_frontier(&key, upto)).await {
                tracing::debug!(error = %e, "remote-write: frontier not written");
            }
            r.frontier = upto;
        }
        stats
            .out_of_order
            .fetch_add(batch.skipped_out_of_order, Relaxed);
        if r.window.is_empty() {
            stats.oldest_unsent_ms.store(oldest_ms, Relaxed);
        }
        let parts = batch.split(r.shards.len());
        let sending = parts.iter().filter(|p| !p.is_empty()).count();
        let id = r.window.push(upto, sending, oldest_ms);
        for (queue, batch) in r.shards.iter().zip(parts) {
            if !batch.is_empty() && queue.send(Part { id, batch, alone }).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Moves the cursor over the batches every shard is done with, persisted (synced).
    async fn advance(&self, r: &mut Reader) {
        let Some(upto) = r.window.advance() else {
            return;
        };
        let stats = &self.target.stats;
        r.cursor = upto;
        let key = self.key.clone();
        let s = self.target.store.clone();
        if let Err(e) = off_thread(move || s.set_outbox_cursor(&key, upto)).await {
            // The store refuses writes (a full disk): the receiver may get these again.
            tracing::debug!(error = %e, "remote-write: cursor not persisted");
        }
        stats.cursor.store(upto, Relaxed);
        let oldest = (r.window.oldest_ms()).or_else(|| r.read.front().map(|e| e.1.stored_ms));
        if let Some(ms) = oldest {
            stats.oldest_unsent_ms.store(ms, Relaxed);
        }
        self.moved.notify_one();
    }

    /// Sends the live series once (best effort).
    async fn send_live(&self) {
        let now = now_ms();
        let labels = &self.target.opts.labels;
        let stats = &self.target.stats;
        let mut req = wire::WriteRequest::default();
        for host in self.target.store.hosts() {
            let base = names::host_labels(&host.identity, labels);
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
        match self.target.receiver.post(body).await {
            Outcome::Accepted => {}
            Outcome::Retry(_) => {
                stats.failures.fetch_add(1, Relaxed);
            }
            Outcome::Rejected(why) => {
                stats.rejected.fetch_add(1, Relaxed);
                tracing::debug!(receiver = %stats.receiver, why, "remote-write: live series refused");
            }
        }
    }
}

/// Sleeps `d`, or less when `stop` turns true first (then true).
pub(super) async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
