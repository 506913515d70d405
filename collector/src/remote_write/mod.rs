//! Remote-write: every stored sample, NTP reading and OOM kill sent to Prometheus remote-write
//! receivers (protocol 1.0: a snappy-compressed protobuf `prometheus.WriteRequest`).
//!
//! - [`names`]: the naming contract (metric names and labels), README's table.
//! - [`wire`]: the protobuf messages and the snappy body.
//! - [`series`]: outbox entries into labelled series (pure).
//! - [`client`]: the HTTP client of one receiver (TLS, credentials) and what an answer means.
//! - [`sender`]: one receiver's reader: outbox to read batches, split across its shards, the
//!   persisted cursor.
//! - [`shard`]: one shard of a receiver's send queue: requests, retries.
//! - [`window`]: the read batches in flight, and how far the cursor may move (pure).
//!
//! # Durable, ordered per series, and never in ingest's way
//!
//! The writer appends each stored batch to the store's outbox in the same synced write as the
//! data ([`crate::storage::outbox`]), so nothing stored is missed, even across a SIGKILL. Each
//! receiver has a reader that reads the outbox from the receiver's own persisted cursor, turns
//! the entries into series, and splits each read batch across N shards
//! ([`SenderOptions::shards`], `remote_write_shards`, 4 by default) by a stable hash of each
//! series, so that a series always goes to the same shard and keeps its order. Each shard sends
//! one request at a time and retries it until the receiver accepts or refuses it for good. The
//! cursor moves (synced) only over the read batches that every shard is done with: a shard
//! that fails holds it back while the others go on, at most two batches per shard ahead, so the
//! reader's memory is bounded however long a receiver is slow or down.
//!
//! Why shards: one request in flight per receiver is bound by the receiver's latency; with N
//! shards, N requests are in flight and their encoding runs on the runtime's threads. Where the
//! receiver shares the collector's cores the sender is CPU-bound instead, and shards add
//! little (README "Benchmarks": there, most of the gain over the single queue of before came
//! from reading each outbox entry once). With `remote_write_shards = 1` one request is in
//! flight, in the order of the outbox.
//!
//! At least once: after a receiver outage or a restart the reader resends everything from the
//! cursor. Batches after it that some shards had already delivered are then sent again: the
//! same values at the same times, which VictoriaMetrics keeps once with
//! `-dedup.minScrapeInterval` (README "Remote-write"). Prometheus refuses a whole request
//! with a sample older than its series' newest; so that a resent request never joins samples
//! a shard had delivered with ones it had not, the reader persists its frontier before handing
//! a batch to the shards, and after a restart resends the entries between the cursor and the
//! frontier one entry per request ([`sender`]). (With another shard count after the restart,
//! an entry's part may again join both, and a receiver like Prometheus may lose that part.)
//!
//! Ingest never waits on a receiver: the writer only appends, and the outbox is bounded
//! ([`RemoteWriteOptions::queue_entries`], the oldest dropped and counted), so a dead receiver
//! cannot fill the disk. Entries every receiver accepted are deleted.

pub mod client;
pub mod names;
pub mod sender;
pub mod series;
pub mod shard;
pub mod window;
pub mod wire;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use client::ClientOptions;
pub use sender::{SenderOptions, SenderStats, DEFAULT_SHARDS};

use crate::rules::Live;
use crate::storage::Store;

/// Default bound of the outbox, in stored batches (one batch is one agent's sample, or a few):
/// about 3 hours of 1,000 agents at a 10 s interval.
pub const DEFAULT_QUEUE_ENTRIES: u64 = 1_000_000;

/// What remote-write is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteWriteOptions {
    /// The receivers' URLs; empty: remote-write is off.
    pub urls: Vec<String>,
    pub client: ClientOptions,
    pub sender: SenderOptions,
    /// The outbox's bound (the store is opened with it).
    pub queue_entries: u64,
}

/// The running senders.
pub struct RemoteWrite {
    stats: Vec<Arc<SenderStats>>,
    tasks: Vec<JoinHandle<()>>,
}

/// A URL without its credentials and query, for logs and labels.
pub fn display_url(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme_str().unwrap_or("http"),
            u.authority()
                .map(|a| a.as_str().rsplit('@').next().unwrap_or("").to_owned())
                .unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(bad url)".into(),
    }
}

impl RemoteWrite {
    /// Starts one sender (a reader and its shards) per URL and the task that deletes what all of them accepted; they stop
    /// when `stop` turns true ([`RemoteWrite::shutdown`] waits for them).
    ///
    /// # Errors
    /// A message naming a bad URL or a file of the client options that does not load.
    pub fn start(
        store: Arc<Store>,
        live: Arc<Live>,
        opts: &RemoteWriteOptions,
        stop: watch::Receiver<bool>,
    ) -> Result<RemoteWrite, String> {
        let moved = Arc::new(Notify::new());
        let mut stats = Vec::new();
        let mut tasks = Vec::new();
        for url in &opts.urls {
            let receiver = client::Receiver::new(url, &opts.client)?;
            let st = Arc::new(SenderStats {
                receiver: display_url(url),
                shards: opts.sender.shards.max(1),
                ..Default::default()
            });
            let target =
                shard::Target::new(store.clone(), receiver, st.clone(), opts.sender.clone());
            let s = sender::Sender {
                target: Arc::new(target),
                live: live.clone(),
                key: url.clone(),
                moved: moved.clone(),
            };
            stats.push(st);
            tasks.push(tokio::spawn(s.run(stop.clone())));
        }
        tasks.push(tokio::spawn(trim(store, stats.clone(), moved, stop)));
        Ok(RemoteWrite { stats, tasks })
    }

    /// Each receiver's counters.
    pub fn stats(&self) -> &[Arc<SenderStats>] {
        &self.stats
    }

    /// Waits for the senders (after the stop): an interrupted request is sent again after the
    /// next start.
    pub async fn shutdown(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Deletes the outbox entries every sender has passed, at most once a second.
async fn trim(
    store: Arc<Store>,
    stats: Vec<Arc<SenderStats>>,
    moved: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = moved.notified() => {}
            _ = stop.changed() => return,
        }
        let Some(min) = stats.iter().map(|s| s.cursor.load(Relaxed)).min() else {
            return;
        };
        let s = store.clone();
        let trimmed = tokio::task::spawn_blocking(move || s.outbox_trim(min)).await;
        if let Ok(Err(e)) = trimmed {
            tracing::debug!(error = %e, "remote-write: outbox not trimmed");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests;
