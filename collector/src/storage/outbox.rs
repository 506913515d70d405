//! The remote-write outbox: what [`Store::write`] stored, appended in the same synced write, for
//! the remote-write senders to read in order; and each receiver's cursor.
//!
//! # On disk (column family `outbox`)
//!
//! | key                            | value                                                   |
//! |--------------------------------|---------------------------------------------------------|
//! | `0x01` · seq (u64 BE)          | one stored batch: prost [`OutboxEntry`]                 |
//! | `0x02` · receiver (UTF-8)      | the receiver's cursor: the next seq it has not accepted (u64 BE) |
//! | `0x03` · host number (u32 BE)  | the host's kills appended so far: prost [`HostKills`]    |
//! | `0x04` · receiver (UTF-8)      | the receiver's frontier: the seq after the last entry handed to its shards (u64 BE) |
//!
//! Seqs grow by one per stored batch that carried anything to send, from 1, and never repeat
//! (the next one is the last stored plus one, and never below a receiver's cursor: read at open
//! and after a reopen, when trimming may have left no entry). The outbox is written only while it is enabled ([`StoreOptions::outbox_limit`]);
//! opened disabled, it is emptied. It is bounded: when it holds more than the limit, the
//! oldest entries go in the same write as the new one, and are counted
//! ([`OutboxStats::dropped`]); a sender whose cursor was among them skips to the oldest left.
//! Entries every sender has passed are deleted by [`Store::outbox_trim`].
//!
//! An entry holds the batch's sar records (not its top-oom ranking), its NTP measurements and
//! the time, pid and command of its new OOM kills (not the kernel's report): what a receiver
//! gets, in the order the store took it. Each entry also carries its host's kill count and last
//! victim after it ([`HostKills`], kept per host across restarts and never reset), so the
//! `fleet_oom_kills_total` a sender writes at a sample's time is the same when it is sent again.
//!
//! [`StoreOptions::outbox_limit`]: super::StoreOptions::outbox_limit

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use fleet_proto::v1::{NtpMeasurement, OomEvent, Sample};
use prost::Message;
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};
use tokio::sync::watch;

use super::engine::lock;
use super::{IngestItem, StorageError, Store, CF_OUTBOX};

const ENTRY: u8 = 0x01;
const CURSOR: u8 = 0x02;
const KILLS: u8 = 0x03;
const FRONTIER: u8 = 0x04;

/// A host's OOM kills appended to the outbox so far.
#[derive(Clone, PartialEq, Message)]
pub struct HostKills {
    #[prost(uint64, tag = "1")]
    pub total: u64,
    #[prost(string, tag = "2")]
    pub last_comm: String,
    #[prost(int64, tag = "3")]
    pub last_pid: i64,
}

/// One stored batch as the senders read it.
#[derive(Clone, PartialEq, Message)]
pub struct OutboxEntry {
    #[prost(uint32, tag = "1")]
    pub host_num: u32,
    /// The batch's samples: time, interval and sar records only.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub clocks: Vec<NtpMeasurement>,
    /// The batch's new kills: time, victim pid and command only.
    #[prost(message, repeated, tag = "4")]
    pub kills: Vec<OomEvent>,
    /// The host's kills so far, these included.
    #[prost(message, optional, tag = "5")]
    pub host_kills: Option<HostKills>,
    /// When the collector stored it (Unix ms): the senders' lag is measured from it.
    #[prost(int64, tag = "6")]
    pub stored_ms: i64,
}

fn entry_key(seq: u64) -> [u8; 9] {
    let mut k = [ENTRY; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// A receiver's key under `prefix` (`CURSOR`, `FRONTIER`).
fn receiver_key(prefix: u8, receiver: &str) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(receiver.as_bytes());
    k
}

fn cursor_key(receiver: &str) -> Vec<u8> {
    receiver_key(CURSOR, receiver)
}

fn kills_key(host_num: u32) -> [u8; 5] {
    let mut k = [KILLS; 5];
    k[1..].copy_from_slice(&host_num.to_be_bytes());
    k
}

fn decode_seq(bytes: &[u8], what: &'static str) -> Result<u64, StorageError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        what,
        detail: format!("{} bytes, not 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// The outbox's bounds in memory: `first..next` are the seqs it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    first: u64,
    next: u64,
}

/// The outbox's state (a field of [`Store`]).
pub(super) struct Outbox {
    /// Most entries kept; `None`: disabled.
    limit: Option<u64>,
    /// Changed only under the store's `write_lock`, after the write that changes it commits.
    span: Mutex<Span>,
    /// Each host's kills so far; changed like `span`.
    kills: Mutex<HashMap<u32, HostKills>>,
    /// The next seq, published after each write (senders wait on it).
    head: watch::Sender<u64>,
    pub(super) stats: OutboxStats,
}

/// What the outbox has done since start.
#[derive(Debug, Default)]
pub struct OutboxStats {
    /// Entries deleted unsent by the bound.
    pub dropped: AtomicU64,
}

/// The entries one [`Store::write`] appends, committed with it.
pub(super) struct Appending {
    span: Span,
    start: u64,
    /// The kill counts this write changes.
    kills: HashMap<u32, HostKills>,
}

impl Outbox {
    pub(super) fn new(limit: Option<u64>) -> Outbox {
        Outbox {
            limit,
            span: Mutex::new(Span { first: 1, next: 1 }),
            kills: Mutex::new(HashMap::new()),
            head: watch::Sender::new(1),
            stats: OutboxStats::default(),
        }
    }

    /// Reads the span from `db` (at open and after a reopen); a disabled outbox is emptied
    /// (`writable` opens only).
    pub(super) fn load(&self, db: &DB, writable: bool) -> Result<(), StorageError> {
        let Some(handle) = db.cf_handle(CF_OUTBOX) else {
            return Ok(());
        };
        let seq_at = |mode| -> Result<Option<u64>, StorageError> {
            let mut it = db.iterator_cf(handle, mode);
            match it.next() {
                Some(Ok((k, _))) if k.first() == Some(&ENTRY) => {
                    decode_seq(&k[1..], "outbox key").map(Some)
                }
                Some(Err(e)) => Err(e.into()),
                _ => Ok(None),
            }
        };
        let first = seq_at(IteratorMode::From(&[ENTRY], Direction::Forward))?;
        let last = seq_at(IteratorMode::From(&[CURSOR], Direction::Reverse))?;
        // Every entry may have been trimmed (all receivers caught up): the seqs then go on
        // after the furthest cursor, never below it, or a receiver would skip what comes next.
        let mut after_cursors = 1;
        for kv in db.iterator_cf(handle, IteratorMode::From(&[CURSOR], Direction::Forward)) {
            let (k, v) = kv?;
            if k.first() != Some(&CURSOR) {
                break;
            }
            after_cursors = after_cursors.max(decode_seq(&v, "outbox cursor")?);
        }
        let span = match (first, last) {
            (Some(f), Some(l)) => Span {
                first: f,
                next: (l + 1).max(after_cursors),
            },
            _ => Span {
                first: after_cursors,
                next: after_cursors,
            },
        };
        if self.limit.is_none() && writable && span.next > span.first {
            db.delete_range_cf(handle, entry_key(0), entry_key(u64::MAX))?;
            tracing::info!(
                entries = span.next - span.first,
                "remote-write is off: its outbox emptied"
            );
        }
        let mut kills = HashMap::new();
        for kv in db.iterator_cf(handle, IteratorMode::From(&[KILLS], Direction::Forward)) {
            let (k, v) = kv?;
            if k.first() != Some(&KILLS) {
                break;
            }
            let num: [u8; 4] = k[1..].try_into().map_err(|_| StorageError::Corrupt {
                what: "outbox kill count key",
                detail: format!("{} bytes", k.len()),
            })?;
            let count = HostKills::decode(&*v).map_err(|e| StorageError::Corrupt {
                what: "outbox kill count",
                detail: e.to_string(),
            })?;
            kills.insert(u32::from_be_bytes(num), count);
        }
        *lock(&self.kills) = kills;
        *lock(&self.span) = span;
        self.head.send_replace(span.next);
        Ok(())
    }

    /// Starts the appends of one write (under the store's `write_lock`); `None` when disabled.
    pub(super) fn begin(&self) -> Option<Appending> {
        self.limit?;
        let span = *lock(&self.span);
        Some(Appending {
            span,
            start: span.next,
            kills: HashMap::new(),
        })
    }

    /// After the write committed.
    pub(super) fn commit(&self, a: Appending) {
        if a.span.next == a.start {
            return;
        }
        let mut span = lock(&self.span);
        self.stats
            .dropped
            .fetch_add(a.span.first.saturating_sub(span.first), Relaxed);
        *span = a.span;
        drop(span);
        lock(&self.kills).extend(a.kills);
        self.head.send_replace(a.span.next);
    }
}

impl Appending {
    /// Appends what `item` (just stored, with `repeated_kills` not new) sends.
    pub(super) fn append(
        &mut self,
        batch: &mut WriteBatch,
        outbox_cf: &rocksdb::ColumnFamily,
        outbox: &Outbox,
        item: &IngestItem,
        repeated_kills: &[u32],
        now_ms: i64,
    ) {
        let Some(limit) = outbox.limit else { return };
        let mut entry = OutboxEntry {
            host_num: item.host_num,
            samples: (item.samples.iter())
                .filter(|s| !s.records.is_empty())
                .map(|s| Sample {
                    time_ms: s.time_ms,
                    interval_ms: s.interval_ms,
                    records: s.records.clone(),
                    top_oom: Vec::new(),
                    clock: None,
                })
                .collect(),
            clocks: (item.clocks.iter())
                .map(|(t, c)| NtpMeasurement {
                    time_ms: *t,
                    clock: Some(c.clone()),
                })
                .collect(),
            kills: (item.oom_events.iter().enumerate())
                .filter(|(i, _)| !repeated_kills.contains(&(*i as u32)))
                .map(|(_, e)| OomEvent {
                    time_ms: e.time_ms,
                    victim_pid: e.victim_pid,
                    victim_comm: e.victim_comm.clone(),
                    ..Default::default()
                })
                .collect(),
            host_kills: None,
            stored_ms: now_ms,
        };
        if entry.samples.is_empty() && entry.clocks.is_empty() && entry.kills.is_empty() {
            return;
        }
        let mut kills = match self.kills.get(&item.host_num) {
            Some(k) => k.clone(),
            None => (lock(&outbox.kills).get(&item.host_num).cloned()).unwrap_or_default(),
        };
        if let Some(last) = entry.kills.last() {
            kills.total += entry.kills.len() as u64;
            kills.last_comm = last.victim_comm.clone().unwrap_or_default();
            kills.last_pid = last.victim_pid.unwrap_or(0);
            batch.put_cf(outbox_cf, kills_key(item.host_num), kills.encode_to_vec());
            self.kills.insert(item.host_num, kills.clone());
        }
        entry.host_kills = Some(kills);
        let outbox = outbox_cf;
        batch.put_cf(outbox, entry_key(self.span.next), entry.encode_to_vec());
        self.span.next += 1;
        let keep_from = self.span.next.saturating_sub(limit);
        if keep_from > self.span.first {
            batch.delete_range_cf(outbox, entry_key(self.span.first), entry_key(keep_from));
            self.span.first = keep_from;
        }
    }
}

impl Store {
    /// Most entries the outbox keeps, `None` when remote-write is off.
    pub fn outbox_limit(&self) -> Option<u64> {
        self.outbox.limit
    }

    /// The outbox's counters.
    pub fn outbox_stats(&self) -> &OutboxStats {
        &self.outbox.stats
    }

    /// The seqs the outbox holds now: `first..next`.
    pub fn outbox_span(&self) -> (u64, u64) {
        let s = *lock(&self.outbox.span);
        (s.first, s.next)
    }

    /// A receiver of the next seq to be written, changed after every write that appended.
    pub fn outbox_head(&self) -> watch::Receiver<u64> {
        self.outbox.head.subscribe()
    }

    /// Up to `max` entries from seq `from` on, in order, with their seqs (fewer at the end).
    ///
    /// # Errors
    /// [`StorageError::Rocks`] on a read error, a corruption error if an entry does not decode.
    pub fn outbox_read(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, OutboxEntry)>, StorageError> {
        let db = self.db()?;
        let handle = db.cf(CF_OUTBOX)?;
        let start = entry_key(from);
        let mut out = Vec::new();
        for kv in db.iterator_cf(handle, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = kv?;
            if k.first() != Some(&ENTRY) || out.len() >= max {
                break;
            }
            let seq = decode_seq(&k[1..], "outbox key")?;
            let entry = OutboxEntry::decode(&*v).map_err(|e| StorageError::Corrupt {
                what: "outbox entry",
                detail: e.to_string(),
            })?;
            out.push((seq, entry));
        }
        Ok(out)
    }

    /// The persisted cursor of `receiver` (the next seq it has not accepted), if any.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] on a read error, a corruption error for a bad value.
    pub fn outbox_cursor(&self, receiver: &str) -> Result<Option<u64>, StorageError> {
        self.receiver_seq(&cursor_key(receiver), "outbox cursor")
    }

    /// The seq under a receiver's `key`, if any.
    fn receiver_seq(&self, key: &[u8], what: &'static str) -> Result<Option<u64>, StorageError> {
        let db = self.db()?;
        match db.get_cf(db.cf(CF_OUTBOX)?, key)? {
            Some(v) => decode_seq(&v, what).map(Some),
            None => Ok(None),
        }
    }

    /// Persists (synced) the cursor of `receiver`: every entry before `seq` was accepted.
    ///
    /// # Errors
    /// As any write: refused while the store is not writable, [`StorageError::Rocks`].
    pub fn set_outbox_cursor(&self, receiver: &str, seq: u64) -> Result<(), StorageError> {
        let db = self.db()?;
        let mut batch = WriteBatch::default();
        batch.put_cf(db.cf(CF_OUTBOX)?, cursor_key(receiver), seq.to_be_bytes());
        db.commit(batch)
    }

    /// The frontier of `receiver`, if any: every entry its shards may have delivered is before
    /// it (a sender resends the entries between its cursor and its frontier one at a time).
    ///
    /// # Errors
    /// [`StorageError::Rocks`] on a read error, a corruption error for a bad value.
    pub fn outbox_frontier(&self, receiver: &str) -> Result<Option<u64>, StorageError> {
        self.receiver_seq(&receiver_key(FRONTIER, receiver), "outbox frontier")
    }

    /// Persists the frontier of `receiver` before entries up to `seq` go to its shards: in the
    /// write-ahead log, not synced (it survives a crash of the process, and is only a hint).
    ///
    /// # Errors
    /// As any write.
    pub fn set_outbox_frontier(&self, receiver: &str, seq: u64) -> Result<(), StorageError> {
        let db = self.db()?;
        let mut batch = WriteBatch::default();
        let key = receiver_key(FRONTIER, receiver);
        batch.put_cf(db.cf(CF_OUTBOX)?, key, seq.to_be_bytes());
        db.commit_unsynced(batch)
    }

    /// Deletes the entries before `seq` (every sender has passed them).
    ///
    /// # Errors
    /// As any write.
    pub fn outbox_trim(&self, seq: u64) -> Result<(), StorageError> {
        let db = self.db()?;
        let handle = db.cf(CF_OUTBOX)?;
        let _w = lock(&self.write_lock);
        let mut span = *lock(&self.outbox.span);
        let to = seq.min(span.next);
        if to <= span.first {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(handle, entry_key(span.first), entry_key(to));
        db.commit_unsynced(batch)?;
        span.first = to;
        *lock(&self.outbox.span) = span;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{identity, item, kill, kills_item, opts, T0};
    use super::*;

    fn open(dir: &tempfile::TempDir, limit: Option<u64>) -> Store {
        let o = super::super::StoreOptions {
            outbox_limit: limit,
            ..opts()
        };
        Store::open(dir.path(), o).expect("open")
    }

    #[test]
    fn stored_batches_are_appended_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir, Some(100));
        let h = store.upsert_host(&identity("a"), T0, true).unwrap().num;
        let head = store.outbox_head();
        store
            .write(
                &[item(h, 1, 1, &[T0, T0 + 1000]), item(h, 1, 2, &[T0 + 2000])],
                T0,
            )
            .unwrap();
        // A duplicate appends nothing; a kill already stored is not sent again.
        store.write(&[item(h, 1, 2, &[T0 + 2000])], T0).unwrap();
        store
            .write(
                &[kills_item(h, 1, 3, vec![kill(T0 + 500, Some(7), 42)])],
                T0,
            )
            .unwrap();
        store
            .write(
                &[kills_item(h, 1, 4, vec![kill(T0 + 500, Some(7), 42)])],
                T0,
            )
            .unwrap();
        assert_eq!(*head.borrow(), 4);
        let read = store.outbox_read(1, 10).unwrap();
        assert_eq!(read.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(read[0].1.samples.len(), 2);
        assert_eq!(read[0].1.samples[0].records.len(), 3);
        assert_eq!(read[2].1.kills[0].victim_comm.as_deref(), Some("proc42"));
        assert!(read[2].1.kills[0].detail_json.is_empty());
        assert_eq!(read[0].1.host_kills.as_ref().unwrap().total, 0);
        assert_eq!(read[2].1.host_kills.as_ref().unwrap().total, 1);
        assert_eq!(store.outbox_read(2, 1).unwrap()[0].0, 2);

        assert_eq!(store.outbox_cursor("r").unwrap(), None);
        assert_eq!(store.outbox_frontier("r").unwrap(), None);
        store.set_outbox_frontier("r", 4).unwrap();
        store.set_outbox_cursor("r", 2).unwrap();
        store.outbox_trim(2).unwrap();
        drop(store);
        let store = open(&dir, Some(100));
        assert_eq!(store.outbox_cursor("r").unwrap(), Some(2));
        assert_eq!(store.outbox_frontier("r").unwrap(), Some(4));
        assert_eq!(store.outbox_span(), (2, 4));
        store.write(&[item(h, 1, 5, &[T0 + 3000])], T0).unwrap();
        let seqs: Vec<u64> = store
            .outbox_read(0, 10)
            .unwrap()
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(seqs, [2, 3, 4]);

        // Every entry accepted and trimmed: after a reopen the seqs go on after the cursor.
        store.set_outbox_cursor("r", 5).unwrap();
        store.outbox_trim(5).unwrap();
        drop(store);
        let store = open(&dir, Some(100));
        assert_eq!(store.outbox_span(), (5, 5));
        store.write(&[item(h, 1, 6, &[T0 + 4000])], T0).unwrap();
        assert_eq!(store.outbox_read(5, 10).unwrap()[0].0, 5);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir, Some(3));
        let h = store.upsert_host(&identity("a"), T0, true).unwrap().num;
        for seq in 1..=5 {
            store
                .write(&[item(h, 1, seq, &[T0 + seq as i64 * 1000])], T0)
                .unwrap();
        }
        assert_eq!(store.outbox_span(), (3, 6));
        assert_eq!(store.outbox_stats().dropped.load(Relaxed), 2);
        let seqs: Vec<u64> = store
            .outbox_read(1, 10)
            .unwrap()
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(seqs, [3, 4, 5]);
    }

    #[test]
    fn off_appends_nothing_and_empties_what_was_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir, Some(10));
        let h = store.upsert_host(&identity("a"), T0, true).unwrap().num;
        store.write(&[item(h, 1, 1, &[T0])], T0).unwrap();
        drop(store);
        let store = open(&dir, None);
        store.write(&[item(h, 1, 2, &[T0 + 1000])], T0).unwrap();
        assert!(store.outbox_read(0, 10).unwrap().is_empty());
    }
}
