//! [`Store`]: the RocksDB engine behind the storage API.
//!
//! Values (keys are in [`super::keys`]):
//!
//! - host record (`hosts` CF, key `0x01 · host_id`), version 2, big-endian:
//!   `2:u8 · num:u32 · first_seen_ms:i64 · last_seen_ms:i64 · connected:u8 · dropped_samples:u64
//!   · epoch:u64 · last_seq:u64 · top_oom_ms:i64 · kmsg_len:u16 · kmsg · identity` where
//!   `top_oom_ms` is the time of the host's latest top-oom ranking (−1: none), `kmsg` the
//!   `kmsg_len` bytes of the prost-encoded `KmsgStatus` last reported, and `identity` (the rest)
//!   the prost-encoded `HostIdentity`. Version 1 records (written before OOM support) are still
//!   read: the same without `top_oom_ms`, `kmsg_len` and `kmsg`; they are rewritten as version 2
//!   on the host's next change.
//! - meta (`hosts` CF): `next_host_num` u32 BE, `chunk_window_s` u64 BE; `blob/NAME`: the
//!   opaque bytes of [`Store::put_blob`] (the rules engine's alert book, as JSON).
//! - raw sample (`raw` CF): the prost-encoded `fleet.v1.Sample` as received, less its `top_oom`.
//! - chunk (`chunks` CF): see [`super::chunk`].
//! - event (`events` CF, key `0x30 · …`): the prost-encoded `fleet.v1.OomEvent` as received.
//! - event index (`events` CF, key `0x31 · …`): the 29-byte event key the kill is stored under.
//! - top-oom ranking (`topoom` CF): a prost message with one field,
//!   `repeated fleet.v1.OomProcess processes = 1`, highest `oom_score` first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use fleet_proto::v1::{Activity, HostIdentity, KmsgStatus, OomEvent, OomProcess, Sample};
use prost::Message;
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DBCompressionType, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use super::chunk::{self, Row};
use super::keys::{self, ChunkKey, EventKey, RawKey, TopOomKey};
use super::{
    validate_oom_event, validate_sample, HostRecord, IngestItem, SealStats, StorageError,
    StoreOptions, StoredOomKill, StoredRow, WriteOutcome, CF_CHUNKS, CF_EVENTS, CF_HOSTS,
    CF_POLICIES, CF_RAW, CF_TOPOOM, COLUMN_FAMILIES,
};

const HOST_RECORD_VERSION: u8 = 2;
/// The fixed part of a version 1 record (everything before the identity).
const HOST_RECORD_V1_FIXED_LEN: usize = 1 + 4 + 8 + 8 + 1 + 8 + 8 + 8;
/// The fixed part of a version 2 record (everything before the `kmsg` bytes).
const HOST_RECORD_V2_FIXED_LEN: usize = HOST_RECORD_V1_FIXED_LEN + 8 + 2;
/// `top_oom_ms` of a host without a ranking.
const NO_TOP_OOM: i64 = -1;

/// The value of a `topoom` key.
#[derive(Clone, PartialEq, prost::Message)]
struct TopOomRanking {
    #[prost(message, repeated, tag = "1")]
    processes: Vec<OomProcess>,
}

/// The collector's store. `Send + Sync`: share it in an `Arc`.
pub struct Store {
    db: DB,
    /// The chunk window in seconds, as stored in the database (see [`StoreOptions`]).
    window_s: u64,
    retention_s: u64,
    /// Serialises every change of a host record (`upsert_host`, `set_connected`, `write`). Each
    /// reads a record, decides (deduplication: is `seq` new?) and writes it back; two writers
    /// interleaving could both accept the same seq. Held across the synced write, so the cache
    /// never runs ahead of the disk.
    write_lock: Mutex<()>,
    /// The host registry, cached (every record is small and read on every batch), with each
    /// host's latest top-oom ranking. Changed only under `write_lock`, after the change is
    /// durable (retention also drops expired rankings from it); readers hold it briefly.
    registry: RwLock<Registry>,
    /// Serialises `seal` and `enforce_retention`: both rewrite chunks, and a seal racing a
    /// retention run could write back a chunk of a window just dropped.
    maintenance_lock: Mutex<()>,
    /// The lowest window start that may still hold data older than retention: retention does
    /// nothing (no range delete, no compaction) while its cutoff is at or below it. Lowered by
    /// `write` when it stores an old sample, raised by `enforce_retention`.
    retention_floor_s: Mutex<u64>,
}

#[derive(Default)]
struct Registry {
    by_num: BTreeMap<u32, HostRecord>,
    by_id: HashMap<String, u32>,
    next_num: u32,
    /// The latest ranking of each host that has one, for `top_oom_latest` without a disk read
    /// (about 1 to 2 KiB per host for a top 10). Its time is persisted in the host record; the
    /// ranking itself is read back from `topoom` at open, one get per host.
    top_oom: HashMap<u32, LatestTopOom>,
}

#[derive(Clone)]
struct LatestTopOom {
    time_ms: i64,
    processes: Vec<OomProcess>,
}

impl Registry {
    /// The persisted `top_oom_ms` of a host.
    fn top_oom_ms(&self, num: u32) -> Option<i64> {
        self.top_oom.get(&num).map(|l| l.time_ms)
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, loads the host registry and marks every
    /// host disconnected (no session survives a restart).
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for a chunk window that is not a whole, non-zero number
    /// of seconds; [`StorageError::Rocks`] if RocksDB cannot open the directory; a corruption
    /// error if a host record does not decode.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StorageError> {
        let window_s = opts.chunk_window.as_secs();
        if window_s == 0 || opts.chunk_window.subsec_nanos() != 0 {
            return Err(StorageError::InvalidArgument(format!(
                "chunk_window {:?} must be a whole, non-zero number of seconds",
                opts.chunk_window
            )));
        }

        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        // Bound the WAL: `hosts` sees a trickle of writes that would otherwise pin old log files.
        db_opts.set_max_total_wal_size(256 << 20);
        db_opts.set_keep_log_file_num(4);
        db_opts.set_bytes_per_sync(1 << 20);

        let cfs = COLUMN_FAMILIES
            .iter()
            .map(|&name| ColumnFamilyDescriptor::new(name, cf_options(name)));
        let db = DB::open_cf_descriptors(&db_opts, dir, cfs)?;

        let mut store = Store {
            db,
            window_s,
            retention_s: opts.retention.as_secs(),
            write_lock: Mutex::new(()),
            registry: RwLock::new(Registry::default()),
            maintenance_lock: Mutex::new(()),
            retention_floor_s: Mutex::new(0),
        };
        store.window_s = store.load_window(window_s)?;
        let registry = store.load_registry()?;
        *store
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = registry;
        Ok(store)
    }

    /// Reads the stored chunk window, storing `requested` on first open.
    fn load_window(&self, requested: u64) -> Result<u64, StorageError> {
        let hosts = self.cf(CF_HOSTS)?;
        let key = keys::meta_key(keys::META_CHUNK_WINDOW_S);
        match self.db.get_cf(hosts, &key)? {
            Some(v) => {
                let stored = u64::from_be_bytes(v.as_slice().try_into().map_err(|_| {
                    StorageError::Corrupt {
                        what: "meta chunk_window_s",
                        detail: format!("{} bytes", v.len()),
                    }
                })?);
                if stored == 0 {
                    return Err(StorageError::Corrupt {
                        what: "meta chunk_window_s",
                        detail: "zero".into(),
                    });
                }
                if stored != requested {
                    tracing::warn!(
                        stored_s = stored,
                        requested_s = requested,
                        "chunk_window differs from the one this store was created with; keeping the stored one"
                    );
                }
                Ok(stored)
            }
            None => {
                self.db
                    .put_cf_opt(hosts, key, requested.to_be_bytes(), &sync_write())?;
                Ok(requested)
            }
        }
    }

    fn load_registry(&self) -> Result<Registry, StorageError> {
        let hosts = self.cf(CF_HOSTS)?;
        let mut reg = Registry::default();
        let mut it = self.db.raw_iterator_cf(hosts);
        it.seek(keys::host_prefix());
        let mut batch = WriteBatch::default();
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if key[0] != keys::PREFIX_HOST {
                break;
            }
            let host_id = keys::decode_host_key(key)?;
            let (mut rec, top_oom_ms) = decode_host_record(value)?;
            if rec.identity.host_id != host_id {
                return Err(StorageError::Corrupt {
                    what: "host record",
                    detail: format!(
                        "key says {host_id:?}, record says {:?}",
                        rec.identity.host_id
                    ),
                });
            }
            if rec.connected {
                rec.connected = false;
                batch.put_cf(hosts, key, encode_host_record(&rec, top_oom_ms));
            }
            if let Some(t) = top_oom_ms {
                if let Some(latest) = self.load_top_oom(rec.num, t) {
                    reg.top_oom.insert(rec.num, latest);
                }
            }
            reg.by_id.insert(rec.identity.host_id.clone(), rec.num);
            reg.by_num.insert(rec.num, rec);
            it.next();
        }
        it.status()?;
        drop(it);

        let stored_next = match self
            .db
            .get_cf(hosts, keys::meta_key(keys::META_NEXT_HOST_NUM))?
        {
            Some(v) => {
                u32::from_be_bytes(v.as_slice().try_into().map_err(|_| StorageError::Corrupt {
                    what: "meta next_host_num",
                    detail: format!("{} bytes", v.len()),
                })?)
            }
            None => 1,
        };
        let after_max = reg
            .by_num
            .keys()
            .next_back()
            .map_or(1, |n| n.saturating_add(1));
        reg.next_num = stored_next.max(after_max).max(1);
        if !batch.is_empty() {
            self.db.write_opt(batch, &sync_write())?;
        }
        Ok(reg)
    }

    /// Reads back the ranking a host record names as the host's latest. `None` when retention
    /// dropped it, and also (with a warning) when it does not decode: a damaged ranking must not
    /// keep the collector from starting, and `top_oom_before` still reports it as an error.
    fn load_top_oom(&self, host_num: u32, time_ms: i64) -> Option<LatestTopOom> {
        let t = u64::try_from(time_ms).ok()?;
        let key = keys::topoom_key(&TopOomKey {
            window_start_s: keys::window_start_s(t, self.window_s),
            host_num,
            time_ms: t,
        });
        let loaded = self
            .cf(CF_TOPOOM)
            .and_then(|cf| Ok(self.db.get_pinned_cf(cf, key)?))
            .and_then(|v| v.map(|v| decode_ranking(&v)).transpose());
        match loaded {
            Ok(Some(processes)) => Some(LatestTopOom { time_ms, processes }),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(host_num, time_ms, %error, "latest top-oom ranking unreadable; ignored");
                None
            }
        }
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or(StorageError::MissingColumnFamily(name))
    }

    /// Registers or updates a host (assigning a small numeric id on first sight), marks it
    /// connected or not, and returns its record. The identity fields other than `host_id` are
    /// replaced by the new ones.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for an empty or over-long host id or when the id space
    /// is exhausted; [`StorageError::Rocks`] if the write fails.
    pub fn upsert_host(
        &self,
        identity: &HostIdentity,
        now_ms: i64,
        connected: bool,
    ) -> Result<HostRecord, StorageError> {
        let id = identity.host_id.as_str();
        if id.is_empty() || id.len() > keys::MAX_HOST_ID_BYTES {
            return Err(StorageError::InvalidArgument(format!(
                "host_id must be 1..={} bytes, got {}",
                keys::MAX_HOST_ID_BYTES,
                id.len()
            )));
        }
        let hosts = self.cf(CF_HOSTS)?;
        let _w = lock(&self.write_lock);
        let (existing, next_num, top_oom_ms) = {
            let reg = self.read_registry();
            let existing = reg.by_id.get(id).and_then(|n| reg.by_num.get(n)).cloned();
            let top_oom_ms = existing.as_ref().and_then(|r| reg.top_oom_ms(r.num));
            (existing, reg.next_num, top_oom_ms)
        };
        let mut batch = WriteBatch::default();
        let rec = match existing {
            Some(mut rec) => {
                rec.identity = identity.clone();
                rec.last_seen_ms = rec.last_seen_ms.max(now_ms);
                rec.connected = connected;
                rec
            }
            None => {
                let after = next_num.checked_add(1).ok_or_else(|| {
                    StorageError::InvalidArgument("host number space exhausted".into())
                })?;
                batch.put_cf(
                    hosts,
                    keys::meta_key(keys::META_NEXT_HOST_NUM),
                    after.to_be_bytes(),
                );
                HostRecord {
                    num: next_num,
                    identity: identity.clone(),
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    connected,
                    dropped_samples: 0,
                    epoch: 0,
                    last_seq: 0,
                    kmsg: KmsgStatus::default(),
                }
            }
        };
        batch.put_cf(
            hosts,
            keys::host_key(id),
            encode_host_record(&rec, top_oom_ms),
        );
        self.db.write_opt(batch, &sync_write())?;

        let mut reg = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if rec.num == reg.next_num {
            reg.next_num += 1;
            tracing::info!(host_id = id, host_num = rec.num, "new host registered");
        }
        reg.by_id.insert(id.to_owned(), rec.num);
        reg.by_num.insert(rec.num, rec.clone());
        Ok(rec)
    }

    /// Marks a host connected or not and updates its last-seen time.
    ///
    /// # Errors
    /// [`StorageError::UnknownHost`] if `host_num` was never registered; [`StorageError::Rocks`]
    /// if the write fails.
    pub fn set_connected(
        &self,
        host_num: u32,
        connected: bool,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let hosts = self.cf(CF_HOSTS)?;
        let _w = lock(&self.write_lock);
        let mut rec = self
            .host_by_num(host_num)
            .ok_or(StorageError::UnknownHost(host_num))?;
        rec.connected = connected;
        rec.last_seen_ms = rec.last_seen_ms.max(now_ms);
        let top_oom_ms = self.read_registry().top_oom_ms(host_num);
        self.db.put_cf_opt(
            hosts,
            keys::host_key(&rec.identity.host_id),
            encode_host_record(&rec, top_oom_ms),
            &sync_write(),
        )?;
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .by_num
            .insert(host_num, rec);
        Ok(())
    }

    /// Every registered host, by number, from the in-memory cache.
    pub fn hosts(&self) -> Vec<HostRecord> {
        self.read_registry().by_num.values().cloned().collect()
    }

    /// One host by number, from the in-memory cache.
    pub fn host_by_num(&self, num: u32) -> Option<HostRecord> {
        self.read_registry().by_num.get(&num).cloned()
    }

    /// The highest seq stored for (host, epoch); 0 if none, if the host is unknown, or if the
    /// host's last stored batch belongs to another epoch.
    pub fn last_seq(&self, host_num: u32, epoch: u64) -> u64 {
        self.read_registry()
            .by_num
            .get(&host_num)
            .filter(|r| r.epoch == epoch)
            .map_or(0, |r| r.last_seq)
    }

    fn read_registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a group of batches (possibly from many hosts) in one atomic, synced RocksDB write
    /// (group commit). An item whose `seq` is at or below its host's last stored seq in the same
    /// epoch is skipped as [`WriteOutcome::Duplicate`]; an item of another epoch starts that
    /// epoch (a wiped agent spool restarts its numbering). The hosts' epoch, last seq, last-seen
    /// time, dropped-sample count and kernel log status are updated in the same write, so a crash
    /// never keeps data without its seq or a seq without its data. Returns one outcome per item,
    /// in order; when it returns `Ok`, every `Stored` item is durable.
    ///
    /// An item stores its samples in `raw` (less their `top_oom`, which goes to `topoom`; a
    /// sample that carried nothing else is not stored in `raw`), and its OOM events in `events`.
    /// An event with a `kmsg_seq` that the host already has stored for the same boot (from an
    /// earlier batch or earlier in this group) is skipped: the agent re-read the kernel log.
    ///
    /// # Errors
    /// Nothing is written when it fails: [`StorageError::UnknownHost`] for an unregistered
    /// `host_num`, [`StorageError::InvalidSample`] if a sample fails [`validate_sample`] and
    /// [`StorageError::InvalidEvent`] if an event fails [`validate_oom_event`] (the server should
    /// validate each batch on receipt), [`StorageError::Rocks`] if a read or the write fails.
    pub fn write(
        &self,
        items: &[IngestItem],
        now_ms: i64,
    ) -> Result<Vec<WriteOutcome>, StorageError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        for item in items {
            for s in &item.samples {
                validate_sample(s).map_err(|e| {
                    StorageError::InvalidSample(format!(
                        "host {} seq {}: {e}",
                        item.host_num, item.seq
                    ))
                })?;
            }
            for ev in &item.oom_events {
                validate_oom_event(ev).map_err(|e| {
                    StorageError::InvalidEvent(format!(
                        "host {} seq {}: {e}",
                        item.host_num, item.seq
                    ))
                })?;
            }
        }
        let raw = self.cf(CF_RAW)?;
        let hosts = self.cf(CF_HOSTS)?;
        let events = self.cf(CF_EVENTS)?;
        let topoom = self.cf(CF_TOPOOM)?;

        let _w = lock(&self.write_lock);
        // The records this group changes, starting from the cached ones, with the time of each
        // host's latest ranking.
        let mut changed: HashMap<u32, HostRecord> = HashMap::new();
        let mut top_oom_ms: HashMap<u32, i64> = HashMap::new();
        {
            let reg = self.read_registry();
            for item in items {
                if let std::collections::hash_map::Entry::Vacant(e) = changed.entry(item.host_num) {
                    let rec = reg
                        .by_num
                        .get(&item.host_num)
                        .ok_or(StorageError::UnknownHost(item.host_num))?;
                    e.insert(rec.clone());
                    if let Some(t) = reg.top_oom_ms(item.host_num) {
                        top_oom_ms.insert(item.host_num, t);
                    }
                }
            }
        }

        let mut batch = WriteBatch::default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut buf = Vec::new();
        let mut min_window = u64::MAX;
        // Rankings newer than the host's latest, to cache once the write is durable.
        let mut new_latest: HashMap<u32, LatestTopOom> = HashMap::new();
        // Event index keys this group adds (the database does not show them yet).
        let mut new_index: HashSet<[u8; keys::EVENT_SEQ_KEY_LEN]> = HashSet::new();
        let mut repeated_events = 0u64;
        for item in items {
            let rec = changed
                .get_mut(&item.host_num)
                .expect("every host was looked up above");
            if rec.epoch == item.epoch && item.seq <= rec.last_seq {
                outcomes.push(WriteOutcome::Duplicate);
                continue;
            }
            rec.epoch = item.epoch;
            rec.last_seq = item.seq;
            rec.dropped_samples = item.dropped_samples;
            rec.last_seen_ms = rec.last_seen_ms.max(now_ms);
            if let Some(k) = item.kmsg {
                rec.kmsg = k;
            }
            for s in &item.samples {
                // validate_sample checked time_ms >= 0.
                let time_ms = s.time_ms as u64;
                let window = keys::window_start_s(time_ms, self.window_s);
                min_window = min_window.min(window);
                let sar_only;
                let sar = if s.top_oom.is_empty() {
                    s
                } else {
                    let mut processes = s.top_oom.clone();
                    // Stable: equal scores keep the agent's order.
                    processes.sort_by_key(|p| std::cmp::Reverse(p.oom_score));
                    let key = keys::topoom_key(&TopOomKey {
                        window_start_s: window,
                        host_num: item.host_num,
                        time_ms,
                    });
                    let ranking = TopOomRanking { processes };
                    batch.put_cf(topoom, key, ranking.encode_to_vec());
                    // At or after: a later write of the same time replaced the stored ranking.
                    let latest = top_oom_ms.entry(item.host_num).or_insert(NO_TOP_OOM);
                    if s.time_ms >= *latest {
                        *latest = s.time_ms;
                        new_latest.insert(
                            item.host_num,
                            LatestTopOom {
                                time_ms: s.time_ms,
                                processes: ranking.processes,
                            },
                        );
                    }
                    if s.records.is_empty() {
                        continue;
                    }
                    sar_only = Sample {
                        time_ms: s.time_ms,
                        interval_ms: s.interval_ms,
                        records: s.records.clone(),
                        top_oom: Vec::new(),
                        clock: None,
                    };
                    &sar_only
                };
                let key = keys::raw_key(&RawKey {
                    window_start_s: window,
                    host_num: item.host_num,
                    time_ms,
                    seq: item.seq,
                });
                buf.clear();
                sar.encode(&mut buf)
                    .map_err(|e| StorageError::InvalidSample(e.to_string()))?;
                batch.put_cf(raw, key, &buf);
            }
            for (index, ev) in item.oom_events.iter().enumerate() {
                // validate_oom_event checked time_ms >= 0 and kmsg_seq < 2^63.
                let time_ms = ev.time_ms as u64;
                let window = keys::window_start_s(time_ms, self.window_s);
                let key = keys::event_key(&EventKey {
                    window_start_s: window,
                    host_num: item.host_num,
                    time_ms,
                    disc: match ev.kmsg_seq {
                        Some(seq) => seq,
                        None => keys::kmsgless_disc(item.epoch, item.seq, index as u64),
                    },
                });
                if let Some(seq) = ev.kmsg_seq {
                    let index_key =
                        keys::event_seq_key(item.host_num, keys::boot_id_hash(&ev.boot_id), seq);
                    if new_index.contains(&index_key)
                        || self.db.get_pinned_cf(events, index_key)?.is_some()
                    {
                        repeated_events += 1;
                        continue;
                    }
                    new_index.insert(index_key);
                    batch.put_cf(events, index_key, key);
                }
                min_window = min_window.min(window);
                batch.put_cf(events, key, ev.encode_to_vec());
            }
            outcomes.push(WriteOutcome::Stored);
        }
        if repeated_events > 0 {
            tracing::debug!(
                events = repeated_events,
                "OOM events already stored; skipped"
            );
        }
        // Records of hosts whose items were all duplicates are rewritten unchanged: harmless.
        if outcomes.contains(&WriteOutcome::Stored) {
            for rec in changed.values() {
                let t = top_oom_ms.get(&rec.num).copied().filter(|&t| t >= 0);
                batch.put_cf(
                    hosts,
                    keys::host_key(&rec.identity.host_id),
                    encode_host_record(rec, t),
                );
            }
            self.db.write_opt(batch, &sync_write())?;
            let mut reg = self
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for (num, rec) in changed {
                reg.by_num.insert(num, rec);
            }
            reg.top_oom.extend(new_latest);
        }
        if min_window != u64::MAX {
            let mut floor = lock(&self.retention_floor_s);
            *floor = (*floor).min(min_window);
        }
        Ok(outcomes)
    }

    /// Rows of one activity of one host with `from_ms <= time_ms <= to_ms`, ordered by time then
    /// instance, from sealed chunks and unsealed samples alike (one consistent snapshot). Values
    /// are rounded to two decimals whether sealed or not (see [`chunk::quantize`]). When a
    /// (time, instance) was stored twice, the later write wins.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for `Activity::Unspecified`; a corruption error if a
    /// key, sample or chunk in the range does not decode; [`StorageError::Rocks`] on read errors.
    pub fn query(
        &self,
        host_num: u32,
        activity: Activity,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredRow>, StorageError> {
        let act_i32 = activity as i32;
        let act = match fleet_proto::schema::schema_of_i32(act_i32) {
            Some(_) => u8::try_from(act_i32).map_err(|_| {
                StorageError::InvalidArgument(format!("activity {act_i32} out of range"))
            })?,
            None => {
                return Err(StorageError::InvalidArgument(format!(
                    "cannot query activity {activity:?}"
                )))
            }
        };
        let from_ms = from_ms.max(0);
        if to_ms < from_ms {
            return Ok(Vec::new());
        }
        let (from, to) = (from_ms as u64, to_ms as u64);
        let w_from = keys::window_start_s(from, self.window_s);
        let w_to = keys::window_start_s(to, self.window_s);
        let in_range = |t: i64| t >= from_ms && t <= to_ms;

        let chunks_cf = self.cf(CF_CHUNKS)?;
        let raw_cf = self.cf(CF_RAW)?;
        let snapshot = self.db.snapshot();
        let mut rows: Vec<StoredRow> = Vec::new();

        // Sealed chunks: one seek per window, jumping over windows with no chunks at all.
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::chunk_window_prefix(w_to.saturating_add(1)).to_vec());
        let mut it = snapshot.raw_iterator_cf_opt(chunks_cf, ro);
        let mut w = w_from;
        while w <= w_to {
            let prefix = keys::chunk_series_prefix(w, host_num, act);
            it.seek(prefix);
            let Some(key) = it.key() else { break };
            let found_w = keys::decode_window(key, keys::PREFIX_CHUNK)?;
            if found_w > w {
                w = found_w;
                continue;
            }
            while let (Some(key), Some(value)) = (it.key(), it.value()) {
                if !key.starts_with(&prefix) {
                    break;
                }
                let ck = keys::decode_chunk_key(key)?;
                for r in chunk::decode(value)? {
                    if in_range(r.time_ms) {
                        rows.push(StoredRow {
                            time_ms: r.time_ms,
                            interval_ms: r.interval_ms,
                            instance: ck.instance.clone(),
                            values: r.values,
                        });
                    }
                }
                it.next();
            }
            w = w.saturating_add(self.window_s);
        }
        it.status()?;
        drop(it);

        // Unsealed samples, after the chunks so that they win a tie (as sealing decides).
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::raw_window_prefix(w_to.saturating_add(1)).to_vec());
        let mut it = snapshot.raw_iterator_cf_opt(raw_cf, ro);
        let mut w = w_from;
        while w <= w_to {
            let prefix = keys::raw_host_prefix(w, host_num);
            it.seek(prefix);
            let Some(key) = it.key() else { break };
            let found_w = keys::decode_window(key, keys::PREFIX_RAW)?;
            if found_w > w {
                w = found_w;
                continue;
            }
            while let (Some(key), Some(value)) = (it.key(), it.value()) {
                if !key.starts_with(&prefix) {
                    break;
                }
                let rk = keys::decode_raw_key(key)?;
                if rk.time_ms >= from && rk.time_ms <= to {
                    let sample = decode_sample(&rk, value)?;
                    for rec in sample.records {
                        if rec.activity == act_i32 {
                            rows.push(StoredRow {
                                time_ms: sample.time_ms,
                                interval_ms: sample.interval_ms,
                                instance: rec.instance,
                                values: rec.values.into_iter().map(chunk::quantize).collect(),
                            });
                        }
                    }
                }
                it.next();
            }
            w = w.saturating_add(self.window_s);
        }
        it.status()?;

        // Stable: of equal (time, instance) rows the last pushed is the latest write.
        rows.sort_by(|a, b| {
            a.time_ms
                .cmp(&b.time_ms)
                .then_with(|| a.instance.cmp(&b.instance))
        });
        dedup_keep_last(&mut rows, |a, b| {
            a.time_ms == b.time_ms && a.instance == b.instance
        });
        Ok(rows)
    }

    /// The OOM kills of the given hosts (of every host when `hosts` is empty) with
    /// `from_ms <= time_ms <= to_ms`, newest first (kills of the same millisecond by host number,
    /// then key), at most `limit`. Reads one consistent snapshot backwards from the newest window
    /// of the range and stops at the first window boundary after `limit` kills, jumping over the
    /// hosts not asked for.
    ///
    /// # Errors
    /// A corruption error if a key or event in the range does not decode; [`StorageError::Rocks`]
    /// on read errors.
    pub fn oom_kills(
        &self,
        hosts: &[u32],
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredOomKill>, StorageError> {
        let from_ms = from_ms.max(0);
        if limit == 0 || to_ms < from_ms {
            return Ok(Vec::new());
        }
        let mut hosts = hosts.to_vec();
        hosts.sort_unstable();
        hosts.dedup();
        let (from, to) = (from_ms as u64, to_ms as u64);
        let w_from = keys::window_start_s(from, self.window_s);
        let w_to = keys::window_start_s(to, self.window_s);

        let events_cf = self.cf(CF_EVENTS)?;
        let snapshot = self.db.snapshot();
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(keys::event_window_prefix(w_from).to_vec());
        ro.set_iterate_upper_bound(keys::event_window_prefix(w_to.saturating_add(1)).to_vec());
        let mut it = snapshot.raw_iterator_cf_opt(events_cf, ro);
        it.seek_to_last();

        let mut out: Vec<StoredOomKill> = Vec::new();
        // The kills of the window being read: keys run by host within a window, so a window is
        // sorted by time before it joins `out` (earlier windows hold only older kills).
        let mut window: Vec<(EventKey, StoredOomKill)> = Vec::new();
        let flush = |window: &mut Vec<(EventKey, StoredOomKill)>, out: &mut Vec<StoredOomKill>| {
            window.sort_by_key(|(k, _)| (std::cmp::Reverse(k.time_ms), k.host_num, k.disc));
            out.extend(window.drain(..).map(|(_, kill)| kill));
        };
        let mut current_w = None;
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            let ek = keys::decode_event_key(key)?;
            if current_w != Some(ek.window_start_s) {
                flush(&mut window, &mut out);
                if out.len() >= limit {
                    break;
                }
                current_w = Some(ek.window_start_s);
            }
            if !hosts.is_empty() && hosts.binary_search(&ek.host_num).is_err() {
                // Jump to the last key of the next selected host below this one in this window,
                // or, if there is none, to the last key of the windows before.
                let below = hosts.partition_point(|&h| h < ek.host_num);
                match below.checked_sub(1).map(|i| hosts[i]) {
                    // h < ek.host_num, so h + 1 does not overflow.
                    Some(h) => it.seek_for_prev(keys::event_host_prefix(ek.window_start_s, h + 1)),
                    None => it.seek_for_prev(keys::event_window_prefix(ek.window_start_s)),
                }
                continue;
            }
            if ek.time_ms >= from && ek.time_ms <= to {
                window.push((ek, decode_kill(&ek, value)?));
            }
            it.prev();
        }
        it.status()?;
        flush(&mut window, &mut out);
        out.truncate(limit);
        Ok(out)
    }

    /// One OOM kill by its id (see [`keys::kill_id`]): one get. The returned id is the canonical
    /// (lowercase) spelling.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] if the id is malformed; a corruption error if the stored
    /// event does not decode; [`StorageError::Rocks`] on read errors.
    pub fn oom_kill(&self, id: &str) -> Result<Option<StoredOomKill>, StorageError> {
        let ek = keys::parse_kill_id(id, self.window_s)
            .map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        let events_cf = self.cf(CF_EVENTS)?;
        match self.db.get_pinned_cf(events_cf, keys::event_key(&ek))? {
            Some(v) => Ok(Some(decode_kill(&ek, &v)?)),
            None => Ok(None),
        }
    }

    /// The latest top-oom ranking of a host, from memory: its time and the processes, highest
    /// `oom_score` first. `None` for a host that never sent one (or whose last one expired).
    pub fn top_oom_latest(&self, host_num: u32) -> Option<(i64, Vec<OomProcess>)> {
        self.read_registry()
            .top_oom
            .get(&host_num)
            .map(|l| (l.time_ms, l.processes.clone()))
    }

    /// The last ranking of a host taken at or before `at_ms` (the evidence beside a kill), among
    /// those retention kept. From memory when the latest ranking qualifies; otherwise a backward
    /// search of one consistent snapshot that costs one or two seeks per earlier window holding
    /// rankings.
    ///
    /// # Errors
    /// A corruption error if a key or the ranking found does not decode; [`StorageError::Rocks`]
    /// on read errors.
    pub fn top_oom_before(
        &self,
        host_num: u32,
        at_ms: i64,
    ) -> Result<Option<(i64, Vec<OomProcess>)>, StorageError> {
        let Ok(at) = u64::try_from(at_ms) else {
            return Ok(None);
        };
        match self.read_registry().top_oom.get(&host_num) {
            // Every ranking of the host is at or before its latest one.
            None => return Ok(None),
            Some(l) if l.time_ms <= at_ms => return Ok(Some((l.time_ms, l.processes.clone()))),
            Some(_) => {}
        }
        let topoom_cf = self.cf(CF_TOPOOM)?;
        let snapshot = self.db.snapshot();
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(vec![keys::PREFIX_TOPOOM]);
        let mut it = snapshot.raw_iterator_cf_opt(topoom_cf, ro);
        let (mut w, mut t) = (keys::window_start_s(at, self.window_s), at);
        loop {
            // The last key at or before (w, host, t): ours if the host has a ranking in w.
            it.seek_for_prev(keys::topoom_key(&TopOomKey {
                window_start_s: w,
                host_num,
                time_ms: t,
            }));
            let (Some(key), Some(value)) = (it.key(), it.value()) else {
                break;
            };
            let k = keys::decode_topoom_key(key)?;
            if (k.window_start_s, k.host_num) == (w, host_num) {
                let time_ms = i64::try_from(k.time_ms).map_err(|_| StorageError::Corrupt {
                    what: "top-oom key",
                    detail: format!("time_ms {}", k.time_ms),
                })?;
                return Ok(Some((time_ms, decode_ranking(value)?)));
            }
            if k.window_start_s == w {
                // A lower host in w: none of ours there; go to the windows before.
                it.seek_for_prev(keys::topoom_window_prefix(w));
                let Some(key) = it.key() else { break };
                w = keys::decode_topoom_key(key)?.window_start_s;
            } else {
                w = k.window_start_s;
            }
            t = u64::MAX;
        }
        it.status()?;
        Ok(None)
    }

    /// Converts the raw samples of closed windows (window end plus one grace window at or before
    /// `now_ms`) into chunks, one per series per window, merging with an existing chunk when late
    /// data arrives for a window sealed before. Works one (window, host) at a time, each in one
    /// atomic write that adds the chunks and deletes the samples, so memory stays bounded by one
    /// host's window and a crash leaves every sample either raw or sealed, never both or neither.
    ///
    /// # Errors
    /// A corruption error if a raw key, sample or existing chunk does not decode (the groups
    /// sealed before it stay sealed); [`StorageError::Rocks`] on read or write errors.
    pub fn seal(&self, now_ms: i64) -> Result<SealStats, StorageError> {
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
        let raw_cf = self.cf(CF_RAW)?;

        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(vec![keys::PREFIX_RAW]);
        ro.set_iterate_upper_bound(keys::raw_window_prefix(last_closed + 1).to_vec());
        // The iterator reads a snapshot taken now; samples written meanwhile wait for the next
        // run (they have other keys: a batch seq is never stored twice).
        let mut it = self.db.raw_iterator_cf_opt(raw_cf, ro);
        it.seek_to_first();
        let mut group: Option<Group> = None;
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            let rk = keys::decode_raw_key(key)?;
            let sample = decode_sample(&rk, value)?;
            if group
                .as_ref()
                .is_some_and(|g| (g.window_s, g.host_num) != (rk.window_start_s, rk.host_num))
            {
                if let Some(done) = group.take() {
                    self.seal_group(done, &mut stats)?;
                }
            }
            let g = group.get_or_insert_with(|| Group {
                window_s: rk.window_start_s,
                host_num: rk.host_num,
                raw_keys: Vec::new(),
                series: BTreeMap::new(),
            });
            g.raw_keys.push(key.to_vec());
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
        if let Some(done) = group.take() {
            self.seal_group(done, &mut stats)?;
        }
        if stats.groups > 0 {
            tracing::debug!(
                groups = stats.groups,
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

    fn seal_group(&self, g: Group, stats: &mut SealStats) -> Result<(), StorageError> {
        let chunks_cf = self.cf(CF_CHUNKS)?;
        let raw_cf = self.cf(CF_RAW)?;

        // Existing chunks of this host and window (late data): one prefix scan; only the series
        // that receive new rows are decoded.
        let mut existing: HashMap<(u8, String), Vec<Row>> = HashMap::new();
        let prefix = keys::chunk_host_prefix(g.window_s, g.host_num);
        let mut it = self.db.raw_iterator_cf(chunks_cf);
        it.seek(prefix);
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if !key.starts_with(&prefix) {
                break;
            }
            let ck = keys::decode_chunk_key(key)?;
            let id = (ck.activity, ck.instance);
            if g.series.contains_key(&id) {
                existing.insert(id, chunk::decode(value)?);
            }
            it.next();
        }
        it.status()?;
        drop(it);

        let mut batch = WriteBatch::default();
        for ((activity, instance), new_rows) in g.series {
            let rows = match existing.remove(&(activity, instance.clone())) {
                Some(mut old) => {
                    stats.merged_chunks += 1;
                    old.extend(new_rows);
                    old
                }
                None => new_rows,
            };
            let rows = normalize_rows(rows);
            let bytes = chunk::encode(&rows)?;
            stats.chunks += 1;
            stats.rows += rows.len() as u64;
            stats.values += rows.iter().map(|r| r.values.len() as u64).sum::<u64>();
            stats.chunk_bytes += bytes.len() as u64;
            let key = keys::chunk_key(&ChunkKey {
                window_start_s: g.window_s,
                host_num: g.host_num,
                activity,
                instance,
            });
            batch.put_cf(chunks_cf, key, bytes);
        }
        for k in &g.raw_keys {
            batch.delete_cf(raw_cf, k);
        }
        // Not synced: losing it in a crash leaves the samples raw, to be sealed again.
        self.db.write(batch)?;
        stats.groups += 1;
        stats.samples += g.raw_keys.len() as u64;
        Ok(())
    }

    /// Deletes every window that lies entirely before `now_ms - retention`: one range delete per
    /// column family (keys are time-first) followed by a compaction of just that key range, which
    /// reclaims the space. A window partly inside retention is kept whole. Samples, chunks, OOM
    /// kills and rankings expire alike; the kills' deduplication index, which is not time-first,
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
        let raw_cf = self.cf(CF_RAW)?;
        let chunks_cf = self.cf(CF_CHUNKS)?;
        let events_cf = self.cf(CF_EVENTS)?;
        let topoom_cf = self.cf(CF_TOPOOM)?;
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
        ];
        if end <= *lock(&self.retention_floor_s) {
            return Ok(());
        }
        // Not under `write_lock`: an index entry is only ever added (by `write`) or deleted (here,
        // serialised by `maintenance_lock`), so the entries found stay valid. One added meanwhile
        // for an expired kill outlives it until the next run, when the kill's window is again
        // below the cutoff; until then it only keeps an expired kill from being stored again.
        let stale_index = self.expired_event_index(end)?;
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
            self.db.write(batch)?;
            *floor = end;
        }
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .top_oom
            .retain(|_, l| keys::window_start_s(l.time_ms as u64, self.window_s) >= end);
        for (cf, from, to) in &ranges {
            self.db.compact_range_cf(*cf, Some(from), Some(to));
        }
        tracing::info!(before_s = end, "retention: dropped expired windows");
        Ok(())
    }

    /// The deduplication index entries (`0x31` keys) whose kill lies in a window before `end`.
    fn expired_event_index(&self, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let events_cf = self.cf(CF_EVENTS)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(vec![keys::PREFIX_EVENT_SEQ + 1]);
        let mut it = self.db.raw_iterator_cf_opt(events_cf, ro);
        it.seek(keys::event_seq_prefix());
        let mut stale = Vec::new();
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if key.len() != keys::EVENT_SEQ_KEY_LEN {
                return Err(StorageError::Corrupt {
                    what: "OOM event index key",
                    detail: format!("{} bytes", key.len()),
                });
            }
            if keys::decode_event_key(value)?.window_start_s < end {
                stale.push(key.to_vec());
            }
            it.next();
        }
        it.status()?;
        Ok(stale)
    }

    /// Flushes every memtable to disk and syncs the WAL. The store then closes cleanly on drop.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if a flush fails.
    pub fn flush(&self) -> Result<(), StorageError> {
        for name in COLUMN_FAMILIES {
            self.db.flush_cf(self.cf(name)?)?;
        }
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// Compacts every column family fully (bottommost level included), dropping deleted data.
    /// A maintenance and benchmarking tool; RocksDB compacts on its own in normal operation.
    ///
    /// # Errors
    /// [`StorageError::MissingColumnFamily`] only.
    pub fn compact(&self) -> Result<(), StorageError> {
        let mut opts = CompactOptions::default();
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for name in COLUMN_FAMILIES {
            self.db
                .compact_range_cf_opt(self.cf(name)?, None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(())
    }

    /// Bytes of live SST files per column family (what the data occupies on disk, WAL and
    /// memtables excluded).
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if RocksDB cannot list its files.
    pub fn sst_bytes(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        let mut out = BTreeMap::new();
        for f in self.db.live_files()? {
            *out.entry(f.column_family_name).or_insert(0) += f.size as u64;
        }
        Ok(out)
    }

    /// The chunk window in use, which is the one the store was created with.
    pub fn chunk_window(&self) -> Duration {
        Duration::from_secs(self.window_s)
    }

    /// Stores an opaque value under `name` (a synced write), replacing any previous one. For
    /// small state other parts of the collector keep across restarts (the alert book): it lives
    /// in the `hosts` CF under `0x02 · "blob/" · name`, apart from the store's own metadata.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] unless `name` is 1 to 128 bytes of printable ASCII;
    /// [`StorageError::Rocks`] if the write fails.
    pub fn put_blob(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        let key = keys::blob_key(name).map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        self.db
            .put_cf_opt(self.cf(CF_HOSTS)?, key, value, &sync_write())?;
        Ok(())
    }

    /// The value [`Store::put_blob`] last stored under `name`, if any.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for a name `put_blob` would refuse;
    /// [`StorageError::Rocks`] if the read fails.
    pub fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = keys::blob_key(name).map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        Ok(self.db.get_cf(self.cf(CF_HOSTS)?, key)?)
    }
}

impl Store {
    /// Writes policy records (keys from [`keys::policy_version_key`] and
    /// [`keys::policy_status_key`]) in one synced batch.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if the write fails.
    pub fn policy_write(&self, puts: &[KeyValue]) -> Result<(), StorageError> {
        let cf = self.cf(CF_POLICIES)?;
        let mut batch = WriteBatch::default();
        for (k, v) in puts {
            batch.put_cf(cf, k, v);
        }
        self.db.write_opt(batch, &sync_write())?;
        Ok(())
    }

    /// Every policy record, in key order (versions of each policy oldest first, then the
    /// statuses). The set is small (versions times hosts reporting), read once at start.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if the read fails.
    pub fn policy_records(&self) -> Result<Vec<KeyValue>, StorageError> {
        let cf = self.cf(CF_POLICIES)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// The raw samples of one host in one window, being sealed.
struct Group {
    window_s: u64,
    host_num: u32,
    raw_keys: Vec<Vec<u8>>,
    series: BTreeMap<(u8, String), Vec<Row>>,
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

/// Like `Vec::dedup_by`, but of each run of equal neighbours keeps the last one.
fn dedup_keep_last<T>(v: &mut Vec<T>, same: impl Fn(&T, &T) -> bool) {
    if v.len() < 2 {
        return;
    }
    let mut keep = vec![true; v.len()];
    for i in 0..v.len() - 1 {
        if same(&v[i], &v[i + 1]) {
            keep[i] = false;
        }
    }
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

fn decode_sample(key: &RawKey, value: &[u8]) -> Result<Sample, StorageError> {
    let sample = Sample::decode(value).map_err(|e| StorageError::Corrupt {
        what: "raw sample",
        detail: e.to_string(),
    })?;
    if u64::try_from(sample.time_ms).ok() != Some(key.time_ms) {
        return Err(StorageError::Corrupt {
            what: "raw sample",
            detail: format!("time_ms {} under key time {}", sample.time_ms, key.time_ms),
        });
    }
    Ok(sample)
}

/// Decodes a stored OOM kill and checks it against its key.
fn decode_kill(key: &EventKey, value: &[u8]) -> Result<StoredOomKill, StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt {
        what: "OOM event",
        detail,
    };
    let event = OomEvent::decode(value).map_err(|e| corrupt(e.to_string()))?;
    if u64::try_from(event.time_ms).ok() != Some(key.time_ms) {
        return Err(corrupt(format!(
            "time_ms {} under key time {}",
            event.time_ms, key.time_ms
        )));
    }
    let seq_disc = key.disc & keys::DISC_NO_SEQ == 0;
    if seq_disc != event.kmsg_seq.is_some() || (seq_disc && event.kmsg_seq != Some(key.disc)) {
        return Err(corrupt(format!(
            "kmsg_seq {:?} under key discriminator {:#x}",
            event.kmsg_seq, key.disc
        )));
    }
    Ok(StoredOomKill {
        id: keys::kill_id(key),
        host_num: key.host_num,
        event,
    })
}

fn decode_ranking(value: &[u8]) -> Result<Vec<OomProcess>, StorageError> {
    TopOomRanking::decode(value)
        .map(|r| r.processes)
        .map_err(|e| StorageError::Corrupt {
            what: "top-oom ranking",
            detail: e.to_string(),
        })
}

fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    o.set_level_compaction_dynamic_level_bytes(true);
    match name {
        CF_RAW => {
            // Transient (sealed within two windows): favour cheap writes.
            o.set_write_buffer_size(64 << 20);
            o.set_compression_type(DBCompressionType::Lz4);
        }
        CF_CHUNKS => {
            // Written once per series per window, read by queries, kept for the whole retention:
            // favour size. Bigger blocks give zstd more context; a bloom filter makes the
            // "is there already a chunk?" lookups of late data cheap.
            let mut t = BlockBasedOptions::default();
            t.set_block_size(32 << 10);
            t.set_bloom_filter(10.0, false);
            o.set_block_based_table_factory(&t);
            o.set_compression_type(DBCompressionType::Zstd);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
        }
        CF_TOPOOM => {
            // One ranking per host per scan, kept for the whole retention and read back rarely
            // (the evidence of a kill). Consecutive rankings of a host are neighbours and repeat
            // the same command lines, which zstd over big blocks removes.
            let mut t = BlockBasedOptions::default();
            t.set_block_size(32 << 10);
            o.set_block_based_table_factory(&t);
            o.set_write_buffer_size(16 << 20);
            o.set_compression_type(DBCompressionType::Zstd);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
        }
        CF_EVENTS => {
            // Rare, kept for the whole retention; the raw kernel text in each compresses well.
            o.set_write_buffer_size(4 << 20);
            o.set_compression_type(DBCompressionType::Zstd);
        }
        _ => {
            o.set_write_buffer_size(4 << 20);
            o.set_compression_type(DBCompressionType::Lz4);
        }
    }
    o
}

fn sync_write() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// Locks a mutex, ignoring poisoning: every guarded state is changed only after the matching
/// RocksDB write succeeded, so a panic elsewhere cannot leave it half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Encodes a host record (the current version) with the time of its latest ranking.
fn encode_host_record(r: &HostRecord, top_oom_ms: Option<i64>) -> Vec<u8> {
    let kmsg_len = r.kmsg.encoded_len();
    let mut out =
        Vec::with_capacity(HOST_RECORD_V2_FIXED_LEN + kmsg_len + r.identity.encoded_len());
    out.push(HOST_RECORD_VERSION);
    out.extend_from_slice(&r.num.to_be_bytes());
    out.extend_from_slice(&r.first_seen_ms.to_be_bytes());
    out.extend_from_slice(&r.last_seen_ms.to_be_bytes());
    out.push(u8::from(r.connected));
    out.extend_from_slice(&r.dropped_samples.to_be_bytes());
    out.extend_from_slice(&r.epoch.to_be_bytes());
    out.extend_from_slice(&r.last_seq.to_be_bytes());
    out.extend_from_slice(&top_oom_ms.unwrap_or(NO_TOP_OOM).to_be_bytes());
    // Three varints: at most 30 bytes.
    let kmsg_len = u16::try_from(kmsg_len).expect("a KmsgStatus is a few bytes");
    out.extend_from_slice(&kmsg_len.to_be_bytes());
    r.kmsg
        .encode(&mut out)
        .expect("a Vec grows to fit any message");
    r.identity
        .encode(&mut out)
        .expect("a Vec grows to fit any message");
    out
}

/// Decodes a host record of version 1 or 2, with the time of its latest ranking.
fn decode_host_record(v: &[u8]) -> Result<(HostRecord, Option<i64>), StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt {
        what: "host record",
        detail,
    };
    let fixed_len = match v.first() {
        Some(1) => HOST_RECORD_V1_FIXED_LEN,
        Some(2) => HOST_RECORD_V2_FIXED_LEN,
        Some(&b) => return Err(corrupt(format!("unknown version {b}"))),
        None => return Err(corrupt("empty".into())),
    };
    if v.len() < fixed_len {
        return Err(corrupt(format!("{} bytes", v.len())));
    }
    let u64_at = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    let connected = match v[21] {
        0 => false,
        1 => true,
        b => return Err(corrupt(format!("connected byte {b}"))),
    };
    let (top_oom_ms, kmsg, identity_at) = if v[0] == 1 {
        (None, KmsgStatus::default(), HOST_RECORD_V1_FIXED_LEN)
    } else {
        let t = u64_at(HOST_RECORD_V1_FIXED_LEN) as i64;
        let top_oom_ms = match t {
            NO_TOP_OOM => None,
            t if t >= 0 => Some(t),
            t => return Err(corrupt(format!("top_oom_ms {t}"))),
        };
        let len_at = HOST_RECORD_V1_FIXED_LEN + 8;
        let kmsg_len = usize::from(u16::from_be_bytes(
            v[len_at..len_at + 2].try_into().expect("2 bytes"),
        ));
        let kmsg_end = HOST_RECORD_V2_FIXED_LEN + kmsg_len;
        let Some(kmsg_bytes) = v.get(HOST_RECORD_V2_FIXED_LEN..kmsg_end) else {
            return Err(corrupt(format!(
                "kmsg of {kmsg_len} bytes in a record of {}",
                v.len()
            )));
        };
        let kmsg = KmsgStatus::decode(kmsg_bytes).map_err(|e| corrupt(format!("kmsg: {e}")))?;
        (top_oom_ms, kmsg, kmsg_end)
    };
    let identity =
        HostIdentity::decode(&v[identity_at..]).map_err(|e| corrupt(format!("identity: {e}")))?;
    let rec = HostRecord {
        num: u32::from_be_bytes(v[1..5].try_into().expect("4 bytes")),
        first_seen_ms: u64_at(5) as i64,
        last_seen_ms: u64_at(13) as i64,
        connected,
        dropped_samples: u64_at(22),
        epoch: u64_at(30),
        last_seq: u64_at(38),
        identity,
        kmsg,
    };
    Ok((rec, top_oom_ms))
}

#[cfg(test)]
mod tests;
