//! [`Store`]: the RocksDB engine behind the storage API.
//!
//! Values (keys are in [`super::keys`]):
//!
//! - host record (`hosts` CF, key `0x01 · host_id`), version 1, big-endian:
//!   `1:u8 · num:u32 · first_seen_ms:i64 · last_seen_ms:i64 · connected:u8 · dropped_samples:u64
//!   · epoch:u64 · last_seq:u64 · identity` where `identity` (the rest) is the prost-encoded
//!   `HostIdentity`.
//! - meta (`hosts` CF): `next_host_num` u32 BE, `chunk_window_s` u64 BE.
//! - raw sample (`raw` CF): the prost-encoded `fleet.v1.Sample`, exactly as received.
//! - chunk (`chunks` CF): see [`super::chunk`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use fleet_proto::v1::{Activity, HostIdentity, Sample};
use prost::Message;
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DBCompressionType, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use super::chunk::{self, Row};
use super::keys::{self, ChunkKey, RawKey};
use super::{
    validate_sample, HostRecord, IngestItem, SealStats, StorageError, StoreOptions, StoredRow,
    WriteOutcome, CF_CHUNKS, CF_HOSTS, CF_RAW, COLUMN_FAMILIES,
};

const HOST_RECORD_VERSION: u8 = 1;
const HOST_RECORD_FIXED_LEN: usize = 1 + 4 + 8 + 8 + 1 + 8 + 8 + 8;

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
    /// The host registry, cached (every record is small and read on every batch). Changed only
    /// under `write_lock`, after the change is durable; readers hold it briefly.
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
            let mut rec = decode_host_record(value)?;
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
                batch.put_cf(hosts, key, encode_host_record(&rec));
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
        let (existing, next_num) = {
            let reg = self.read_registry();
            let existing = reg.by_id.get(id).and_then(|n| reg.by_num.get(n)).cloned();
            (existing, reg.next_num)
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
                }
            }
        };
        batch.put_cf(hosts, keys::host_key(id), encode_host_record(&rec));
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
        self.db.put_cf_opt(
            hosts,
            keys::host_key(&rec.identity.host_id),
            encode_host_record(&rec),
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
    /// time and dropped-sample count are updated in the same write, so a crash never keeps data
    /// without its seq or a seq without its data. Returns one outcome per item, in order; when it
    /// returns `Ok`, every `Stored` item is durable.
    ///
    /// # Errors
    /// Nothing is written when it fails: [`StorageError::UnknownHost`] for an unregistered
    /// `host_num`, [`StorageError::InvalidSample`] if a sample fails [`validate_sample`] (the
    /// server should validate each batch on receipt), [`StorageError::Rocks`] if the write fails.
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
        }
        let raw = self.cf(CF_RAW)?;
        let hosts = self.cf(CF_HOSTS)?;

        let _w = lock(&self.write_lock);
        // The records this group changes, starting from the cached ones.
        let mut changed: HashMap<u32, HostRecord> = HashMap::new();
        {
            let reg = self.read_registry();
            for item in items {
                if let std::collections::hash_map::Entry::Vacant(e) = changed.entry(item.host_num) {
                    let rec = reg
                        .by_num
                        .get(&item.host_num)
                        .ok_or(StorageError::UnknownHost(item.host_num))?;
                    e.insert(rec.clone());
                }
            }
        }

        let mut batch = WriteBatch::default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut buf = Vec::new();
        let mut min_window = u64::MAX;
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
            for s in &item.samples {
                // validate_sample checked time_ms >= 0.
                let time_ms = s.time_ms as u64;
                let window = keys::window_start_s(time_ms, self.window_s);
                min_window = min_window.min(window);
                let key = keys::raw_key(&RawKey {
                    window_start_s: window,
                    host_num: item.host_num,
                    time_ms,
                    seq: item.seq,
                });
                buf.clear();
                s.encode(&mut buf)
                    .map_err(|e| StorageError::InvalidSample(e.to_string()))?;
                batch.put_cf(raw, key, &buf);
            }
            outcomes.push(WriteOutcome::Stored);
        }
        // Records of hosts whose items were all duplicates are rewritten unchanged: harmless.
        if outcomes.contains(&WriteOutcome::Stored) {
            for rec in changed.values() {
                batch.put_cf(
                    hosts,
                    keys::host_key(&rec.identity.host_id),
                    encode_host_record(rec),
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

    /// Deletes every window that lies entirely before `now_ms - retention`, without scanning:
    /// one range delete per column family (keys are time-first) followed by a compaction of just
    /// that key range, which reclaims the space. A window partly inside retention is kept whole.
    /// Cheap when there is nothing to delete.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if the range delete fails.
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
        ];
        {
            let mut floor = lock(&self.retention_floor_s);
            if end <= *floor {
                return Ok(());
            }
            let mut batch = WriteBatch::default();
            for (cf, from, to) in &ranges {
                batch.delete_range_cf(*cf, from, to);
            }
            self.db.write(batch)?;
            *floor = end;
        }
        for (cf, from, to) in &ranges {
            self.db.compact_range_cf(*cf, Some(from), Some(to));
        }
        tracing::info!(before_s = end, "retention: dropped expired windows");
        Ok(())
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
}

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

fn encode_host_record(r: &HostRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(HOST_RECORD_FIXED_LEN + r.identity.encoded_len());
    out.push(HOST_RECORD_VERSION);
    out.extend_from_slice(&r.num.to_be_bytes());
    out.extend_from_slice(&r.first_seen_ms.to_be_bytes());
    out.extend_from_slice(&r.last_seen_ms.to_be_bytes());
    out.push(u8::from(r.connected));
    out.extend_from_slice(&r.dropped_samples.to_be_bytes());
    out.extend_from_slice(&r.epoch.to_be_bytes());
    out.extend_from_slice(&r.last_seq.to_be_bytes());
    r.identity
        .encode(&mut out)
        .expect("a Vec grows to fit any message");
    out
}

fn decode_host_record(v: &[u8]) -> Result<HostRecord, StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt {
        what: "host record",
        detail,
    };
    if v.len() < HOST_RECORD_FIXED_LEN {
        return Err(corrupt(format!("{} bytes", v.len())));
    }
    if v[0] != HOST_RECORD_VERSION {
        return Err(corrupt(format!("unknown version {}", v[0])));
    }
    let u64_at = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    let connected = match v[21] {
        0 => false,
        1 => true,
        b => return Err(corrupt(format!("connected byte {b}"))),
    };
    let identity = HostIdentity::decode(&v[HOST_RECORD_FIXED_LEN..])
        .map_err(|e| corrupt(format!("identity: {e}")))?;
    Ok(HostRecord {
        num: u32::from_be_bytes(v[1..5].try_into().expect("4 bytes")),
        first_seen_ms: u64_at(5) as i64,
        last_seen_ms: u64_at(13) as i64,
        connected,
        dropped_samples: u64_at(22),
        epoch: u64_at(30),
        last_seq: u64_at(38),
        identity,
    })
}

#[cfg(test)]
mod tests;
