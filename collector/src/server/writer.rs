//! The group-commit writer: one OS thread that drains a bounded queue of ingest batches into one
//! synced RocksDB write at a time, so hundreds of agents share each fsync.
//!
//! A session [`Writer::submit`]s a batch and gets a [`Written`] receiver that resolves once the
//! write holding the batch returned; only then does the session acknowledge the batch. When the
//! disk is slow the queue fills and `submit` waits, which stops the sessions from reading their
//! streams (backpressure down to the agents' spools). The thread ends when every [`Writer`] is
//! dropped and the queue is drained.
//!
//! While the store is not writable (a write failed: a full disk; see
//! [`crate::storage::health`]) the writer answers every batch at once with the store's refusal,
//! without writing: the sessions end their streams with `Unavailable`, nothing is acknowledged,
//! and the agents keep their spools until the store is writable again. Logging that is the
//! store's, once per change of state, never per batch.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use fleet_proto::clock::now_ms;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Histogram;
use crate::storage::{IngestItem, Store, StoreState, WriteOutcome};

/// Capacity of the writer queue (batches), shared by all streams.
pub const WRITE_QUEUE: usize = 4096;
/// Most batches one group commit takes.
const GROUP_MAX_BATCHES: usize = 2048;

/// How one batch's write ended: its outcome, or the storage error in words.
pub type Written = oneshot::Receiver<Result<WriteOutcome, String>>;

/// One batch waiting for the writer, and where to say how its write ended.
struct WriteReq {
    item: IngestItem,
    done: oneshot::Sender<Result<WriteOutcome, String>>,
}

/// What the writer thread has done since start (the metrics endpoint reads it).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Batches stored for the first time (not duplicates, not refused).
    pub batches: AtomicU64,
    /// The sar values (one per column of each record) of those batches.
    pub values: AtomicU64,
    /// How long each group commit's RocksDB write took.
    pub commits: Histogram,
}

/// The sending side of the writer queue; every session holds a clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<WriteReq>,
    pub stats: Arc<WriterStats>,
}

impl Writer {
    /// Starts the writer thread over `store`. It runs until every [`Writer`] clone is dropped,
    /// then drains the queue and ends: join the handle to wait for the last write.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn start(store: Arc<Store>) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let (queue, rx) = mpsc::channel(WRITE_QUEUE);
        let stats = Arc::new(WriterStats::default());
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("fleet-writer".into())
            .spawn(move || writer_thread(&store, rx, &s))?;
        Ok((Writer { queue, stats }, thread))
    }

    /// Batches waiting in the queue now (at most [`WRITE_QUEUE`]).
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Queues a batch for the next group commit, waiting while the queue is full (backpressure).
    /// None when the writer has stopped.
    pub async fn submit(&self, item: IngestItem) -> Option<Written> {
        let (done, written) = oneshot::channel();
        self.queue.send(WriteReq { item, done }).await.ok()?;
        Some(written)
    }
}

/// The group-commit writer thread: drains the queue into one RocksDB write at a time, or
/// refuses what it drained while the store is not writable.
fn writer_thread(store: &Store, mut rx: mpsc::Receiver<WriteReq>, stats: &WriterStats) {
    while let Some(first) = rx.blocking_recv() {
        let mut reqs = vec![first];
        while reqs.len() < GROUP_MAX_BATCHES {
            match rx.try_recv() {
                Ok(r) => reqs.push(r),
                Err(_) => break,
            }
        }
        let (items, dones): (Vec<_>, Vec<_>) = reqs.into_iter().map(|r| (r.item, r.done)).unzip();
        let written = match store.state() {
            StoreState::Writable => {
                let started = Instant::now();
                let w = store.write(&items, now_ms()).map_err(|e| e.to_string());
                stats.commits.observe(started.elapsed());
                w
            }
            refusing => Err(refusing.refusal()),
        };
        match written {
            Ok(outcomes) => {
                for (item, outcome) in items.iter().zip(&outcomes) {
                    if outcome.is_stored() {
                        let values: usize = (item.samples.iter())
                            .flat_map(|s| &s.records)
                            .map(|r| r.values.len())
                            .sum();
                        stats.batches.fetch_add(1, Relaxed);
                        stats.values.fetch_add(values as u64, Relaxed);
                    }
                }
                for (done, outcome) in dones.into_iter().zip(outcomes) {
                    let _ = done.send(Ok(outcome));
                }
            }
            // A failed write made the store failing (logged there, once); the agents resend.
            Err(e) => {
                for done in dones {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
    }
}
