//! Store maintenance: sealing the raw samples of closed windows into chunks
//! ([`Store::seal`]), dropping expired windows ([`Store::enforce_retention`]), and the periodic
//! loop that runs both ([`run`]).
//!
//! Both rewrite data the write path wrote, under `maintenance_lock` only: sealing reads a
//! snapshot of closed windows, which `write` only adds to with new keys; retention deletes
//! whole windows with range deletes, and `retention_floor_s` keeps it from doing any work while
//! nothing has expired.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use fleet_proto::clock::now_ms;
use rocksdb::{ReadOptions, WriteBatch};
use tokio::sync::watch;

use super::chunk::{self, Row};
use super::engine::{lock, Db};
use super::keys::{self, ChunkKey};
use super::samples::{dedup_keep_last, times_key, ChunkDecoder, TIMES_ACTIVITY};
use super::values;
use super::{
    off_thread, SealStats, StorageError, Store, CF_CHUNKS, CF_EVENTS, CF_NTP, CF_RAW, CF_TOPOOM,
};

/// How often [`run`] enforces retention at most.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Encoded raw sample bytes one sealing step reads at most (a step takes one sample at least):
/// about 100,000 samples of a host with a few dozen instances, far more than a host sends in
/// a window, so a normal window is one step.
pub const SEAL_STEP_BYTES: usize = 8 << 20;

/// Seals closed windows every `every` (the first time at once) and enforces retention at most
/// once an hour, each on a blocking thread, until `stop` changes (or its sender is dropped).
/// A failure is logged and retried at the next tick: raw data stays readable.
pub async fn run(store: Arc<Store>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention = None::<tokio::time::Instant>;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        // Both rewrite data: nothing to do while the store refuses writes (a full disk), and
        // nothing to log each time (the store logged its state once).
        if !store.is_writable() {
            continue;
        }
        // A write that failed because the store began refusing writes meanwhile (the disk
        // filled during the seal) is that same state, already logged once: not warned again.
        let s = store.clone();
        match off_thread(move || s.seal(now_ms())).await {
            Ok(stats) => tracing::debug!(?stats, "sealed closed windows"),
            Err(e) if !store.is_writable() => {
                tracing::debug!(error = %e, "sealing stopped: the store refuses writes");
            }
            Err(e) => {
                tracing::warn!(error = %e, "sealing failed; raw data stays readable");
            }
        }
        if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            last_retention = Some(tokio::time::Instant::now());
            let s = store.clone();
            match off_thread(move || s.enforce_retention(now_ms())).await {
                Ok(()) => {}
                Err(e) if !store.is_writable() => {
                    tracing::debug!(error = %e, "retention stopped: the store refuses writes");
                }
                Err(e) => tracing::warn!(error = %e, "retention failed"),
            }
        }
    }
}

/// Raw samples of one host in one window, being sealed: at most [`SEAL_STEP_BYTES`] of them.
struct Step {
    window_s: u64,
    host_num: u32,
    raw_keys: Vec<Vec<u8>>,
    /// Encoded bytes of the samples read.
    bytes: usize,
    series: BTreeMap<(u8, String), Vec<Row>>,
}

impl Store {
    /// Converts the raw samples of closed windows (window end plus one grace window at or before
    /// `now_ms`) into chunks, one per series per window, merging with an existing chunk when late
    /// data arrives for a window sealed before. Works one (window, host) at a time, in steps of
    /// at most [`SEAL_STEP_BYTES`] of raw samples, each step one atomic write that merges its
    /// rows into the chunks and deletes its samples: memory stays bounded by a step and the
    /// chunks it touches, however much a host sent for one window, and a crash leaves every
    /// sample either raw or sealed, never both or neither. The chunks come out the same as in
    /// one step (a later step merges into the chunks of the earlier ones as late data does).
    ///
    /// # Errors
    /// A corruption error if a raw key, sample or existing chunk does not decode (the steps
    /// sealed before it stay sealed); [`StorageError::Rocks`] on read or write errors.
    pub fn seal(&self, now_ms: i64) -> Result<SealStats, StorageError> {
        self.seal_in_steps(now_ms, SEAL_STEP_BYTES)
    }

    /// [`Store::seal`] with steps of at most `step_bytes` of raw samples.
    pub(super) fn seal_in_steps(
        &self,
        now_ms: i64,
        step_bytes: usize,
    ) -> Result<SealStats, StorageError> {
        let _m = lock(&self.maintenance_lock);
        let mut stats = SealStats::default();
        let now_s = now_ms.div_euclid(1000);
        let Some(cutoff) = u64::try_from(now_s)
            .ok()
            .and_then(|s| s.checked_sub(2 * self.window_s))
        else {
            return Ok(stats);
        };
        // Window w is closed when w + 2 * window <= now, i.e. w <= cutoff.
        let last_closed = cutoff - cutoff % self.window_s;
        let db = self.db()?;
        let raw_cf = db.cf(CF_RAW)?;

        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(vec![keys::PREFIX_RAW]);
        ro.set_iterate_upper_bound(keys::raw_window_prefix(last_closed + 1).to_vec());
        // The iterator reads a snapshot taken now; samples written meanwhile wait for the next
        // run (they have other keys: a batch seq is never stored twice).
        let mut it = db.raw_iterator_cf_opt(raw_cf, ro);
        it.seek_to_first();
        let mut step: Option<Step> = None;
        let mut group = None;
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            let rk = keys::decode_raw_key(key)?;
            let sample = values::decode_raw_sample(&rk, value)?;
            let this = (rk.window_start_s, rk.host_num);
            if step
                .as_ref()
                .is_some_and(|s| (s.window_s, s.host_num) != this || s.bytes >= step_bytes)
            {
                if let Some(done) = step.take() {
                    self.seal_step(&db, done, &mut stats)?;
                }
            }
            if group != Some(this) {
                group = Some(this);
                stats.groups += 1;
            }
            let g = step.get_or_insert_with(|| Step {
                window_s: rk.window_start_s,
                host_num: rk.host_num,
                raw_keys: Vec::new(),
                bytes: 0,
                series: BTreeMap::new(),
            });
            g.raw_keys.push(key.to_vec());
            g.bytes += value.len();
            for rec in sample.records {
                let Ok(act) = u8::try_from(rec.activity) else {
                    return Err(StorageError::Corrupt {
                        what: "raw sample",
                        detail: format!("activity {}", rec.activity),
                    });
                };
                g.series.entry((act, rec.instance)).or_default().push(Row {
                    time_ms: sample.time_ms,
                    interval_ms: sample.interval_ms,
                    values: rec.values,
                });
            }
            it.next();
        }
        it.status()?;
        if let Some(done) = step.take() {
            self.seal_step(&db, done, &mut stats)?;
        }
        if stats.groups > 0 {
            tracing::debug!(
                groups = stats.groups,
                steps = stats.steps,
                samples = stats.samples,
                chunks = stats.chunks,
                merged = stats.merged_chunks,
                values = stats.values,
                bytes = stats.chunk_bytes,
                "sealed"
            );
        }
        Ok(stats)
    }

    /// Merges a step's rows into their series' chunks (each chunk looked up by its key: late
    /// data, or an earlier step of the same window) and deletes its samples, in one write.
    fn seal_step(&self, db: &Db<'_>, g: Step, stats: &mut SealStats) -> Result<(), StorageError> {
        let chunks_cf = db.cf(CF_CHUNKS)?;
        let raw_cf = db.cf(CF_RAW)?;
        let mut batch = WriteBatch::default();
        let mut decoder = ChunkDecoder::new(|key: &[u8]| Ok(db.get_cf(chunks_cf, key)?));
        // The times chunks of this step's series (usually one), the ones the chunks it rewrites
        // referred to, and the chunks it writes.
        let mut times_chunks = BTreeMap::new();
        let mut old_times = BTreeSet::new();
        let mut written = BTreeSet::new();
        for ((activity, instance), new_rows) in g.series {
            let ck = ChunkKey {
                window_start_s: g.window_s,
                host_num: g.host_num,
                activity,
                instance,
            };
            let key = keys::chunk_key(&ck);
            let rows = match db.get_pinned_cf(chunks_cf, &key)? {
                Some(existing) => {
                    stats.merged_chunks += 1;
                    old_times.extend(chunk::times_id(&existing)?);
                    let mut old = decoder.rows(&ck, &existing)?;
                    old.extend(new_rows);
                    old
                }
                None => new_rows,
            };
            let rows = normalize_rows(rows);
            let (bytes, times) = chunk::encode_shared(&rows)?;
            if let Some(t) = times {
                times_chunks.insert(t.id, t.bytes);
            }
            stats.chunks += 1;
            stats.rows += rows.len() as u64;
            stats.values += rows.iter().map(|r| r.values.len() as u64).sum::<u64>();
            stats.chunk_bytes += bytes.len() as u64;
            batch.put_cf(chunks_cf, &key, bytes);
            written.insert(key);
        }
        old_times.retain(|id| !times_chunks.contains_key(id));
        if !old_times.is_empty() {
            self.unreferenced(db, g.window_s, g.host_num, &written, &mut old_times)?;
            for id in old_times {
                batch.delete_cf(chunks_cf, times_key(g.window_s, g.host_num, id));
            }
        }
        // Written again when a later step or late data has the same times: the same bytes.
        for (id, bytes) in times_chunks {
            stats.chunk_bytes += bytes.len() as u64;
            batch.put_cf(chunks_cf, times_key(g.window_s, g.host_num, id), bytes);
        }
        for k in &g.raw_keys {
            batch.delete_cf(raw_cf, k);
        }
        // Not synced: losing it in a crash leaves the samples raw, to be sealed again.
        db.commit_unsynced(batch)?;
        stats.steps += 1;
        stats.samples += g.raw_keys.len() as u64;
        Ok(())
    }

    /// Keeps in `ids` the times chunks of host `host_num` in window `window_s` that no series
    /// chunk refers to once the chunks in `rewritten` are replaced (they refer to others).
    ///
    /// # Errors
    /// A chunk error if a chunk's header does not decode; [`StorageError::Rocks`] on read
    /// errors.
    fn unreferenced(
        &self,
        db: &Db<'_>,
        window_s: u64,
        host_num: u32,
        rewritten: &BTreeSet<Vec<u8>>,
        ids: &mut BTreeSet<u64>,
    ) -> Result<(), StorageError> {
        let prefix = keys::chunk_series_prefix(window_s, host_num, 0);
        let host = &prefix[..prefix.len() - 1];
        let mut it = db.raw_iterator_cf(db.cf(CF_CHUNKS)?);
        it.seek(keys::chunk_series_prefix(
            window_s,
            host_num,
            TIMES_ACTIVITY + 1,
        ));
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if !key.starts_with(host) || ids.is_empty() {
                break;
            }
            if !rewritten.contains(key) {
                if let Some(id) = chunk::times_id(value)? {
                    ids.remove(&id);
                }
            }
            it.next();
        }
        Ok(it.status()?)
    }

    /// Deletes every window that lies entirely before `now_ms - retention`: one range delete per
    /// column family (keys are time-first) followed by a compaction of just that key range, which
    /// reclaims the space. A window partly inside retention is kept whole. Samples, chunks, OOM
    /// kills, rankings and NTP measurements expire alike; the kills' deduplication index, which is not time-first,
    /// is scanned (one small entry per kill) for the entries of expired kills, deleted in the
    /// same write. Expired rankings also leave the in-memory latest ones. Cheap when there is
    /// nothing to delete.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if the scan or the delete fails; a corruption error if an index
    /// entry does not decode.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<(), StorageError> {
        let _m = lock(&self.maintenance_lock);
        let Some(cutoff) = u64::try_from(now_ms.div_euclid(1000))
            .ok()
            .and_then(|s| s.checked_sub(self.retention_s))
        else {
            return Ok(());
        };
        // Windows starting before `end` end at or before the cutoff.
        let end = cutoff - cutoff % self.window_s;
        let db = self.db()?;
        let raw_cf = db.cf(CF_RAW)?;
        let chunks_cf = db.cf(CF_CHUNKS)?;
        let events_cf = db.cf(CF_EVENTS)?;
        let topoom_cf = db.cf(CF_TOPOOM)?;
        let ntp_cf = db.cf(CF_NTP)?;
        let ranges = [
            (
                raw_cf,
                keys::raw_window_prefix(0),
                keys::raw_window_prefix(end),
            ),
            (
                chunks_cf,
                keys::chunk_window_prefix(0),
                keys::chunk_window_prefix(end),
            ),
            (
                events_cf,
                keys::event_window_prefix(0),
                keys::event_window_prefix(end),
            ),
            (
                topoom_cf,
                keys::topoom_window_prefix(0),
                keys::topoom_window_prefix(end),
            ),
            (
                ntp_cf,
                keys::ntp_window_prefix(0),
                keys::ntp_window_prefix(end),
            ),
        ];
        if end <= *lock(&self.retention_floor_s) {
            return Ok(());
        }
        // Not under `write_lock`: an index entry is only ever added (by `write`) or deleted (here,
        // serialised by `maintenance_lock`), so the entries found stay valid. One added meanwhile
        // for an expired kill outlives it until the next run, when the kill's window is again
        // below the cutoff; until then it only keeps an expired kill from being stored again.
        let stale_index = self.expired_event_index(&db, end)?;
        {
            // `write` lowers the floor, never raises it, so `end` is still above it.
            let mut floor = lock(&self.retention_floor_s);
            let mut batch = WriteBatch::default();
            for (cf, from, to) in &ranges {
                batch.delete_range_cf(*cf, from, to);
            }
            for k in &stale_index {
                batch.delete_cf(events_cf, k);
            }
            db.commit_unsynced(batch)?;
            *floor = end;
        }
        self.forget_expired_rankings(end);
        for (cf, from, to) in &ranges {
            db.compact_range_cf(*cf, Some(from), Some(to));
        }
        tracing::info!(before_s = end, "retention: dropped expired windows");
        Ok(())
    }
}

/// Sorts rows by time keeping the last of equal timestamps (rows arrive oldest write first) and
/// pads short rows with NaN to the widest row: a row narrower than its series can only come from
/// a schema that gained columns, and NaN says "not measured".
fn normalize_rows(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| r.time_ms);
    dedup_keep_last(&mut rows, |a, b| a.time_ms == b.time_ms);
    let width = rows.iter().map(|r| r.values.len()).max().unwrap_or(0);
    for r in &mut rows {
        r.values.resize(width, f64::NAN);
    }
    rows
}

#[cfg(test)]
mod tests;
