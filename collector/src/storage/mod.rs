//! The collector's store: hosts, samples, sealed chunks, OOM kills and top-oom rankings in one
//! RocksDB database.
//!
//! # Layout
//!
//! Formats (pure, no I/O), each with its on-disk format in its module doc:
//! - [`keys`]: the key encoding.
//! - [`values`]: the value encoding of every record but chunks, with checked decoders.
//! - [`chunk`]: the columnar chunk codec, with the value format and the precision rules.
//!
//! [`Store`], the RocksDB-backed implementation of the API below, one file per record family,
//! each an `impl Store` block:
//! - `engine`: the [`Store`] itself (its locks and cache), open and reopen, column family
//!   tuning, flush and compaction, and the one path of every write (`Store::db`'s `commit`).
//! - [`health`]: whether the store takes writes ([`StoreState`]: writable, failing, read-only)
//!   and the loop that reopens the database after a write error.
//! - `hosts`: the host registry: numbers, identities, connected, each spool's epoch and last
//!   seq.
//! - `samples`: the write path of agent batches ([`Store::write`]) and queries over raw samples
//!   and chunks.
//! - [`buckets`]: the downsampled query ([`Store::query_buckets`]): min, max, mean and count
//!   per time bucket, computed while reading.
//! - `oom`: OOM kills with their dedup index, and top-oom rankings.
//! - `ntp`: the history of each host's NTP measurements.
//! - `blobs`: named opaque values (the alert book).
//! - `policies`: OOM policy versions and host statuses, as key/value records.
//! - [`maintenance`]: sealing closed windows, retention, and the loop that runs them.
//!
//! # Column families
//!
//! | CF            | holds                                                                  |
//! |---------------|------------------------------------------------------------------------|
//! | [`CF_HOSTS`]  | the host registry (one record per host), store metadata and blobs      |
//! | [`CF_RAW`]    | samples not sealed yet, one prost-encoded `Sample` per key             |
//! | [`CF_CHUNKS`] | sealed series: one compressed columnar chunk per series per window     |
//! | [`CF_EVENTS`] | OOM kills, one prost-encoded `OomEvent` per key, and their dedup index |
//! | [`CF_TOPOOM`] | top-oom rankings, one per host per sample that carried one             |
//! | [`CF_POLICIES`] | OOM policy versions (with who and when) and each host's policy status |
//! | [`CF_NTP`]    | NTP measurements, one per host per sample that carried one             |
//! | [`CF_OUTBOX`] | what remote-write has still to send, and each receiver's cursor ([`outbox`]) |
//!
//! # Data path
//!
//! [`Store::write`] appends batches of many hosts to `raw` in one synced `WriteBatch` (group
//! commit) together with each host's dedup state, so an acknowledged batch is durable and a
//! crash never keeps data without its seq or a seq without its data. A write that fails makes
//! the store refuse every write until [`Store::resume`] reopened the database, which reloads
//! the dedup state from what is on disk (see [`health`]). [`Store::seal`] later turns
//! the raw samples of each closed window into one chunk per series (in the benchmark,
//! `benches/store.rs`: 0.7 bytes per value on disk, against 3.6 for the LZ4-compressed raw
//! samples) and deletes them from `raw`. [`Store::query`] reads both.
//! [`Store::enforce_retention`] drops whole expired windows with one range delete per CF.
//! [`maintenance::run`] seals every `seal_every` and enforces retention at most once an hour.
//!
//! The OOM kills and the top-oom ranking of a batch travel in the same write as its samples
//! (and a batch may carry kills alone). A kill is stored once even when the agent sends it again
//! in a new batch (see [`keys`], "OOM events"). The ranking is split off the sample into
//! `topoom`; the latest one of each host is also kept in memory for [`Store::top_oom_latest`].
//! [`Store::oom_kills`], [`Store::oom_kill`] and [`Store::top_oom_before`] read the store.
//! The NTP measurements of a batch ([`IngestItem::clocks`]) go to `ntp` in the same write, and
//! expire with the samples; [`Store::ntp_history`] reads them.

mod blobs;
pub mod buckets;
pub mod chunk;
mod engine;
#[cfg(test)]
mod fixtures;
pub mod health;
mod hosts;
pub mod keys;
pub mod maintenance;
mod ntp;
mod oom;
pub mod outbox;
mod policies;
mod samples;
pub mod values;

use std::time::Duration;

use fleet_proto::v1::{ClockStatus, HostIdentity, KmsgStatus, OomEvent, Sample};
use rocksdb::ReadOptions;
use thiserror::Error;

pub use engine::Store;
pub use health::StoreState;
pub use ntp::{NtpHistory, StoredNtp};
pub use outbox::{OutboxEntry, OutboxStats};
pub use policies::KeyValue;

/// The host registry and store metadata.
pub const CF_HOSTS: &str = "hosts";
/// Unsealed samples (the write path).
pub const CF_RAW: &str = "raw";
/// Sealed, compressed chunks.
pub const CF_CHUNKS: &str = "chunks";
/// OOM kills and their deduplication index.
pub const CF_EVENTS: &str = "events";
/// Top-oom rankings.
pub const CF_TOPOOM: &str = "topoom";
/// OOM policy versions and per-host policy status.
pub const CF_POLICIES: &str = "policies";
/// NTP measurements.
pub const CF_NTP: &str = "ntp";
/// What remote-write has still to send, and its receivers' cursors.
pub const CF_OUTBOX: &str = "outbox";
/// Every column family of the store (RocksDB also keeps an unused `default`).
pub const COLUMN_FAMILIES: [&str; 8] = [
    CF_HOSTS,
    CF_RAW,
    CF_CHUNKS,
    CF_EVENTS,
    CF_TOPOOM,
    CF_POLICIES,
    CF_NTP,
    CF_OUTBOX,
];

/// Everything that can go wrong in the store.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("column family {0:?} is missing")]
    MissingColumnFamily(&'static str),
    #[error("corrupt key: {0}")]
    Key(#[from] keys::KeyError),
    #[error("corrupt chunk: {0}")]
    Chunk(#[from] chunk::ChunkError),
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("unknown host number {0}")]
    UnknownHost(u32),
    #[error("invalid sample: {0}")]
    InvalidSample(String),
    #[error("invalid OOM event: {0}")]
    InvalidEvent(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A write refused because the store is not writable (see [`health`]), or any call while
    /// no database is open.
    #[error("{0}")]
    Unavailable(String),
    /// A call run by [`off_thread`] that panicked or was cancelled.
    #[error("storage task failed: {0}")]
    TaskFailed(String),
}

/// Runs a store call from async code on tokio's blocking threads, where RocksDB's waits (disk
/// reads, syncs, compaction stalls) belong; one that panicked is [`StorageError::TaskFailed`].
pub async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::TaskFailed(e.to_string()))?
}

/// How the store is configured.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long samples are kept. Expiry is per chunk window: a window is dropped once all of it
    /// is older than `now - retention`. Default 30 days.
    pub retention: Duration,
    /// The length of a chunk: one chunk per series per window. A whole number of seconds, at
    /// least one second. Fixed when a store is created (keys embed window starts): reopening
    /// with a different value keeps the stored one and logs a warning. Default 1 hour.
    pub chunk_window: Duration,
    /// Most entries (stored batches) the remote-write outbox keeps (see [`outbox`]); `None`
    /// (the default): remote-write is off and nothing is appended.
    pub outbox_limit: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: Duration::from_secs(30 * 24 * 3600),
            chunk_window: Duration::from_secs(3600),
            outbox_limit: None,
        }
    }
}

/// A registered host as the store knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct HostRecord {
    /// Small id assigned on first sight (from 1); used in every key instead of the host id.
    pub num: u32,
    pub identity: HostIdentity,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Whether a session is open. Every host reads as disconnected after [`Store::open`].
    pub connected: bool,
    /// The agent's cumulative count of samples it had to discard in `epoch`, as last reported.
    pub dropped_samples: u64,
    /// The agent's spool epoch of the last stored batch.
    pub epoch: u64,
    /// The watermark of `epoch`: every batch up to it that the agent sent is stored (see
    /// [`IngestItem::after_seq`]), so the agent may drop them from its spool.
    pub last_seq: u64,
    /// The agent's kernel log health, as last reported (zeros until a batch carries it).
    pub kmsg: KmsgStatus,
}

/// One agent batch to store. It may carry samples, OOM events, or both.
#[derive(Clone, Debug, Default)]
pub struct IngestItem {
    pub host_num: u32,
    pub epoch: u64,
    pub seq: u64,
    /// The highest seq its stream sent before it (for a stream's first batch, the `last_seq`
    /// its welcome said): the item is stored only once the host's watermark in `epoch` has
    /// reached it, so a batch whose predecessor was not stored (its write failed) is never
    /// stored past it ([`WriteOutcome::Blocked`]). 0: nothing before it.
    pub after_seq: u64,
    pub dropped_samples: u64,
    pub samples: Vec<Sample>,
    /// OOM kills, checked by [`validate_oom_event`].
    pub oom_events: Vec<OomEvent>,
    /// The agent's kernel log health; `None` keeps the host's last reported one.
    pub kmsg: Option<KmsgStatus>,
    /// The NTP measurements the batch's samples carried, with when each was taken (Unix ms, not
    /// negative), stored in `ntp`. The session takes them out of the samples (they are not kept
    /// in `raw`).
    pub clocks: Vec<(i64, ClockStatus)>,
}

/// One stored OOM kill.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredOomKill {
    /// The kill's printable id, `{host_num:x}-{time_ms:x}-{disc:x}` (see [`keys::kill_id`]):
    /// [`Store::oom_kill`] finds it with one get.
    pub id: String,
    pub host_num: u32,
    pub event: OomEvent,
}

/// What [`Store::write`] did with one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored for the first time (durably, once `write` returns `Ok`). `repeated_kills` are the
    /// indices (in `oom_events`) of the kills the host already had stored (the agent re-read its
    /// kernel log): not stored again, and no news to the live state.
    Stored { repeated_kills: Vec<u32> },
    /// Already stored earlier: `seq <= last_seq` in the same epoch. Acknowledge it again.
    Duplicate,
    /// Not stored: the host's watermark has not reached its `after_seq` (a batch before it in
    /// its stream was not stored). Never acknowledged: the stream ends and the agent sends
    /// both again from the watermark.
    Blocked,
}

impl WriteOutcome {
    /// Stored, every kill (if any) for the first time.
    pub const STORED: WriteOutcome = WriteOutcome::Stored {
        repeated_kills: Vec::new(),
    };

    /// Whether the item was stored by this write.
    pub fn is_stored(&self) -> bool {
        matches!(self, WriteOutcome::Stored { .. })
    }
}

/// One row of a query result.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    pub time_ms: i64,
    pub interval_ms: u32,
    pub instance: String,
    /// In the activity's schema order, rounded to two decimals (see [`chunk::quantize`]).
    pub values: Vec<f64>,
}

/// What one [`Store::seal`] run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealStats {
    /// (window, host) groups sealed.
    pub groups: u64,
    /// Writes (steps of at most `SEAL_STEP_BYTES` of raw samples) they took: one per group
    /// unless a host sent more than a step for one window. A chunk rewritten by several steps
    /// counts in `chunks`, `merged_chunks`, `rows`, `values` and `chunk_bytes` each time.
    pub steps: u64,
    /// Raw samples consumed (and deleted from `raw`).
    pub samples: u64,
    /// Chunks written.
    pub chunks: u64,
    /// Of those, chunks that merged late data into an existing chunk.
    pub merged_chunks: u64,
    /// Rows written in chunks (including the rows of merged chunks).
    pub rows: u64,
    /// Values written in chunks (rows × columns).
    pub values: u64,
    /// Encoded chunk bytes written, before RocksDB block compression.
    pub chunk_bytes: u64,
}

/// The time range of a read, `from..=to` in Unix ms (never before 0), with the windows holding
/// its ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) from: u64,
    pub(super) to: u64,
    pub(super) w_from: u64,
    pub(super) w_to: u64,
}

impl Span {
    /// `from_ms..=to_ms` in windows of `window_s` (a start before 1970 reads from 0); `None`
    /// when the range is empty.
    pub(super) fn new(from_ms: i64, to_ms: i64, window_s: u64) -> Option<Span> {
        let from_ms = from_ms.max(0);
        if to_ms < from_ms {
            return None;
        }
        let (from, to) = (from_ms as u64, to_ms as u64);
        Some(Span {
            from,
            to,
            w_from: keys::window_start_s(from, window_s),
            w_to: keys::window_start_s(to, window_s),
        })
    }

    /// Whether `time_ms` is in the range.
    pub(super) fn contains(&self, time_ms: u64) -> bool {
        time_ms >= self.from && time_ms <= self.to
    }

    /// [`Span::contains`] for a time read from a chunk (any `i64`).
    pub(super) fn contains_i64(&self, time_ms: i64) -> bool {
        u64::try_from(time_ms).is_ok_and(|t| self.contains(t))
    }

    /// Read options of an iterator over the `chunks` keys of the span's windows.
    pub(super) fn chunk_reads(&self) -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::chunk_window_prefix(self.w_to.saturating_add(1)).to_vec());
        ro
    }

    /// Read options of an iterator over the `raw` keys of the span's windows.
    pub(super) fn raw_reads(&self) -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::raw_window_prefix(self.w_to.saturating_add(1)).to_vec());
        ro
    }
}

/// `hosts` sorted, each once: the order of the keys, for binary searches and seeks.
pub(super) fn sorted_hosts(hosts: &[u32]) -> Vec<u32> {
    let mut hosts = hosts.to_vec();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

/// Checks an OOM event before it is stored: a non-negative time, and a `kmsg_seq`, when
/// present, below 2⁶³ (the high bit of an event key's discriminator marks the events without
/// one; the kernel's sequence numbers never get near it). The gRPC server should call it on
/// receipt, like [`validate_sample`].
///
/// # Errors
/// [`StorageError::InvalidEvent`] naming the problem.
pub fn validate_oom_event(event: &OomEvent) -> Result<(), StorageError> {
    if event.time_ms < 0 {
        return Err(StorageError::InvalidEvent(format!(
            "time_ms {} is before 1970",
            event.time_ms
        )));
    }
    if let Some(seq) = event.kmsg_seq {
        if seq & keys::DISC_NO_SEQ != 0 {
            return Err(StorageError::InvalidEvent(format!(
                "kmsg_seq {seq} is 2^63 or more"
            )));
        }
    }
    Ok(())
}

/// Checks a sample before it is stored: a non-negative time, known activities, values matching
/// the activity's schema, an instance name of at most [`keys::MAX_INSTANCE_BYTES`] bytes, and at
/// most [`fleet_proto::limits::MAX_RECORDS_PER_SAMPLE`] records. The gRPC server calls it on
/// receipt so one bad batch is rejected alone instead of failing a whole group commit.
///
/// # Errors
/// [`StorageError::InvalidSample`] naming the first problem.
pub fn validate_sample(sample: &Sample) -> Result<(), StorageError> {
    let bad = |m: String| Err(StorageError::InvalidSample(m));
    if sample.time_ms < 0 {
        return bad(format!("time_ms {} is before 1970", sample.time_ms));
    }
    if sample.records.len() > fleet_proto::limits::MAX_RECORDS_PER_SAMPLE {
        return bad(format!("{} records in one sample", sample.records.len()));
    }
    for r in &sample.records {
        let Some(schema) = fleet_proto::schema::schema_of_i32(r.activity) else {
            return bad(format!("unknown activity {}", r.activity));
        };
        if r.values.len() != schema.columns.len() {
            return bad(format!(
                "{} record {:?} has {} values, the schema has {} columns",
                schema.name,
                r.instance,
                r.values.len(),
                schema.columns.len()
            ));
        }
        if r.instance.len() > keys::MAX_INSTANCE_BYTES {
            return bad(format!(
                "{} instance name of {} bytes",
                schema.name,
                r.instance.len()
            ));
        }
    }
    Ok(())
}
