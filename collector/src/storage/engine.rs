//! [`Store`]: the RocksDB database behind the storage API, with its locks and in-memory cache,
//! and what concerns the database as a whole: opening it (column families and their tuning),
//! reopening it after a write error ([`Store::resume`]), the chunk window it was created with,
//! flush, compaction and size.
//!
//! Every call reaches the database through [`Store::db`], a read guard ([`Db`]) held for the
//! whole call, and writes through [`Db::commit`], which refuses writes while the store is not
//! writable and marks it failing when a write fails (see [`super::health`]).
//!
//! The record families each add their own `impl Store` block: [`super::hosts`],
//! [`super::samples`], [`super::oom`], [`super::blobs`], [`super::policies`], and
//! [`super::maintenance`] for sealing and retention. Values are encoded by [`super::values`],
//! keys by [`super::keys`].

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DBCompressionType, LogLevel, Options, WriteBatch, WriteOptions, DB,
};
use tokio::sync::watch;

use super::health::{Health, StoreState};
use super::hosts::Registry;
use super::outbox::Outbox;
use super::{keys, values};
use super::{
    StorageError, StoreOptions, CF_CHUNKS, CF_EVENTS, CF_HOSTS, CF_NTP, CF_RAW, CF_TOPOOM,
    COLUMN_FAMILIES,
};

/// What [`Store::resume`] writes and syncs in the data directory before it reopens the
/// database: a disk that cannot take this much is not worth closing the database for.
const PROBE_BYTES: usize = 1 << 20;
/// The scratch file of that probe, removed after it. RocksDB ignores files it did not name.
const PROBE_FILE: &str = ".fleet-write-probe";

/// The collector's store. `Send + Sync`: share it in an `Arc`.
pub struct Store {
    /// The database; `None` only while [`Store::resume`] reopens it, or after both of its opens
    /// failed. Read-held for the whole of every call that uses it ([`Store::db`]: the column
    /// family handles, snapshots and iterators it hands out borrow the guard); write-held only
    /// by `resume`, which closes it and opens it anew, so the calls of the meantime wait. A call
    /// takes it once and passes it down: taking it again on the same thread would deadlock
    /// against a waiting `resume` (debug builds assert this).
    db: RwLock<Option<DB>>,
    /// Where the database lives, to reopen it.
    dir: PathBuf,
    /// The chunk window in seconds, as stored in the database (see [`StoreOptions`]).
    pub(super) window_s: u64,
    pub(super) retention_s: u64,
    /// Serialises every change of a host record (`upsert_host`, `set_connected`, `write`). Each
    /// reads a record, decides (deduplication: is `seq` new?) and writes it back; two writers
    /// interleaving could both accept the same seq. Held across the synced write, so the cache
    /// never runs ahead of the disk.
    pub(super) write_lock: Mutex<()>,
    /// The host registry, cached (every record is small and read on every batch), with each
    /// host's latest top-oom ranking. Changed only under `write_lock`, after the change is
    /// durable (retention also drops expired rankings from it); readers hold it briefly. Loaded
    /// again from the database by `resume`: a write that returned an error may still have
    /// reached the disk, and the reloaded dedup state then says so.
    pub(super) registry: RwLock<Registry>,
    /// Serialises `seal` and `enforce_retention`: both rewrite chunks, and a seal racing a
    /// retention run could write back a chunk of a window just dropped.
    pub(super) maintenance_lock: Mutex<()>,
    /// The lowest window start that may still hold data older than retention: retention does
    /// nothing (no range delete, no compaction) while its cutoff is at or below it. Lowered by
    /// `write` when it stores an old sample, raised by `enforce_retention`.
    pub(super) retention_floor_s: Mutex<u64>,
    /// Whether writes go through (see [`super::health`]).
    health: Health,
    /// The remote-write outbox's bounds and head (see [`super::outbox`]).
    pub(super) outbox: Outbox,
}

/// The open database, read-held for one call (see the `db` field of [`Store`]).
pub(super) struct Db<'a> {
    guard: RwLockReadGuard<'a, Option<DB>>,
    health: &'a Health,
}

#[cfg(debug_assertions)]
thread_local! {
    /// How many [`Db`] guards this thread holds: never more than one.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Deref for Db<'_> {
    type Target = DB;
    fn deref(&self) -> &DB {
        self.guard.as_ref().expect("Store::db checked it is open")
    }
}

impl Drop for Db<'_> {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        HELD.with(|h| h.set(h.get() - 1));
    }
}

impl Db<'_> {
    /// The handle of column family `name`.
    ///
    /// # Errors
    /// [`StorageError::MissingColumnFamily`].
    pub(super) fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StorageError> {
        cf(self, name)
    }

    /// Writes `batch` durably: when it returns `Ok`, the batch survives a crash. Every write of
    /// state the collector acknowledges or must find again goes through here.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] without writing while the store is not writable;
    /// [`StorageError::Rocks`] if the write fails, which makes the store failing.
    pub(super) fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.write_opt(batch, &sync_write())
    }

    /// Writes `batch` without waiting for the disk: for what is redone after a crash (sealing,
    /// retention). Refused and failing as [`Db::commit`].
    ///
    /// # Errors
    /// As [`Db::commit`].
    pub(super) fn commit_unsynced(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.write_opt(batch, &WriteOptions::default())
    }

    fn write_opt(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<(), StorageError> {
        let state = self.health.get();
        if state != StoreState::Writable {
            return Err(StorageError::Unavailable(state.refusal()));
        }
        // After a failed write the database must not write again: its write-ahead log writer
        // saw the error, and RocksDB 7.8 asserts on any further use of it (README "Why the
        // system RocksDB"). The next write is refused above; `resume` opens a new one.
        self.deref().write_opt(batch, opts).map_err(|e| {
            self.health.failed(e.to_string());
            StorageError::Rocks(e)
        })
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, loads the host registry and marks every
    /// host disconnected (no session survives a restart). When the database cannot be opened
    /// for writing with an I/O error (a full disk) but can be for reading, the store starts
    /// read-only ([`StoreState::ReadOnly`]) and [`Store::resume`] opens it for writing later.
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
        // No session survives a restart: every host is disconnected.
        let none = |_: &str| false;
        let (db, window_s, registry, state) = match open_writable(dir, true, window_s, &none) {
            Ok((db, window_s, registry)) => (db, window_s, registry, StoreState::Writable),
            Err(StorageError::Rocks(e)) if e.kind() == rocksdb::ErrorKind::IOError => {
                match open_read_only(dir, &none) {
                    Ok((db, window_s, registry)) => (
                        db,
                        window_s,
                        registry,
                        StoreState::ReadOnly {
                            since_ms: fleet_proto::clock::now_ms(),
                            error: e.to_string(),
                        },
                    ),
                    Err(_) => return Err(StorageError::Rocks(e)),
                }
            }
            Err(e) => return Err(e),
        };
        let outbox = Outbox::new(opts.outbox_limit);
        outbox.load(&db, state == StoreState::Writable)?;
        Ok(Store {
            db: RwLock::new(Some(db)),
            dir: dir.to_path_buf(),
            window_s,
            retention_s: opts.retention.as_secs(),
            write_lock: Mutex::new(()),
            registry: RwLock::new(registry),
            maintenance_lock: Mutex::new(()),
            retention_floor_s: Mutex::new(0),
            health: Health::new(state),
            outbox,
        })
    }

    /// The database, read-held for one call: take it once per call and pass it down.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when no database is open (both opens of a `resume` failed).
    pub(super) fn db(&self) -> Result<Db<'_>, StorageError> {
        #[cfg(debug_assertions)]
        HELD.with(|h| {
            assert_eq!(h.get(), 0, "Store::db taken twice on one thread");
            h.set(1);
        });
        let db = Db {
            guard: self.db.read().unwrap_or_else(PoisonError::into_inner),
            health: &self.health,
        };
        if db.guard.is_none() {
            return Err(StorageError::Unavailable(
                "the database is closed: it could not be reopened".into(),
            ));
        }
        Ok(db)
    }

    /// Whether writes go through, and since when they do not.
    pub fn state(&self) -> StoreState {
        self.health.get()
    }

    /// Shorthand for `state() == StoreState::Writable`.
    pub fn is_writable(&self) -> bool {
        self.health.writable()
    }

    /// A receiver of every change of [`Store::state`].
    pub fn subscribe(&self) -> watch::Receiver<StoreState> {
        self.health.subscribe()
    }

    /// Tries to make a store that is not writable writable again; does nothing to a writable
    /// one. First checks that the data directory takes a write (`PROBE_BYTES`, 1 MiB, written and
    /// synced to a scratch file); if it does, closes the database (the calls of the meantime
    /// wait), opens it anew for writing, reloads the host registry from it and checks that a
    /// synced write goes through. When that fails, opens it read-only instead
    /// ([`StoreState::ReadOnly`]), to try again later. Returns the state it leaves.
    ///
    /// `connected` says which hosts have a session open: the others are marked disconnected
    /// (their disconnect may not have been written while writes failed). A session that ends
    /// meanwhile writes its disconnect after this returns.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the data directory is gone (the database stays open
    /// for reading), or when the database could not be opened even for reading (every call
    /// then gets `Unavailable`): either way the store cannot continue.
    pub fn resume(&self, connected: &dyn Fn(&str) -> bool) -> Result<StoreState, StorageError> {
        if self.health.writable() {
            return Ok(StoreState::Writable);
        }
        match probe(&self.dir) {
            Ok(()) => {}
            // The directory itself is gone: no disk coming back brings the database back.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let error = format!("the data directory is gone: {e} ({})", self.dir.display());
                self.health.failed(error.clone());
                return Err(StorageError::Unavailable(error));
            }
            Err(e) => {
                self.health.still(format!(
                    "the data directory takes no write: {e} ({})",
                    self.dir.display()
                ));
                return Ok(self.health.get());
            }
        }
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        // RocksDB closes the failed instance as it can (its write-ahead log and info log writers
        // saw the error, which their close tolerates) and releases the directory's lock.
        drop(slot.take());
        let reopened = open_writable(&self.dir, false, self.window_s, connected).and_then(
            |(db, _, registry)| {
                // The open may have written nothing: check that a synced write goes through before
                // anything is acknowledged again (a failure drops this instance unused).
                let mut batch = WriteBatch::default();
                batch.put_cf(
                    cf(&db, CF_HOSTS)?,
                    keys::meta_key(keys::META_CHUNK_WINDOW_S),
                    values::encode_chunk_window_s(self.window_s),
                );
                db.write_opt(batch, &sync_write())?;
                Ok((db, registry))
            },
        );
        // No call is inside the store (they all hold `db`), so the registry and the floor are
        // nobody else's now.
        match reopened {
            Ok((db, registry)) => {
                *self
                    .registry
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = registry;
                // A write that returned an error may have reached the disk: its entries too.
                if let Err(e) = self.outbox.load(&db, true) {
                    tracing::warn!(error = %e, "cannot read the remote-write outbox back");
                }
                *lock(&self.retention_floor_s) = 0;
                *slot = Some(db);
                self.health.resumed();
            }
            Err(writable) => match open_read_only(&self.dir, connected) {
                Ok((db, _, registry)) => {
                    *self
                        .registry
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = registry;
                    *slot = Some(db);
                    self.health.read_only(writable.to_string());
                }
                Err(readable) => {
                    let error = format!(
                        "cannot reopen the database in {}: for writing: {writable}; for reading: {readable}",
                        self.dir.display()
                    );
                    self.health.failed(error.clone());
                    return Err(StorageError::Unavailable(error));
                }
            },
        }
        Ok(self.health.get())
    }

    /// Flushes every memtable to disk and syncs the WAL, so the next open replays nothing. Does
    /// nothing while the store is not writable: what it acknowledged is in the synced WAL.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if a flush fails (the store is then failing).
    pub fn flush(&self) -> Result<(), StorageError> {
        let db = self.db()?;
        for name in COLUMN_FAMILIES {
            if !self.health.writable() {
                return Ok(());
            }
            db.flush_cf(db.cf(name)?).map_err(|e| {
                self.health.failed(e.to_string());
                StorageError::Rocks(e)
            })?;
        }
        // Only on a database whose writes all went through: RocksDB 7.8 asserts on syncing a
        // write-ahead log that saw a write error (README "Why the system RocksDB").
        if self.health.writable() {
            db.flush_wal(true)?;
        }
        Ok(())
    }

    /// Compacts every column family fully (bottommost level included), dropping deleted data.
    /// A maintenance and benchmarking tool; RocksDB compacts on its own in normal operation.
    ///
    /// # Errors
    /// [`StorageError::MissingColumnFamily`] only, or [`StorageError::Unavailable`].
    pub fn compact(&self) -> Result<(), StorageError> {
        let mut opts = CompactOptions::default();
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        let db = self.db()?;
        for name in COLUMN_FAMILIES {
            db.compact_range_cf_opt(db.cf(name)?, None::<&[u8]>, None::<&[u8]>, &opts);
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
        for f in self.db()?.live_files()? {
            *out.entry(f.column_family_name).or_insert(0) += f.size as u64;
        }
        Ok(out)
    }

    /// The chunk window in use, which is the one the store was created with.
    pub fn chunk_window(&self) -> Duration {
        Duration::from_secs(self.window_s)
    }
}

/// The database options, for a writable and a read-only open alike; `create`: create a missing
/// database (only the first open: a reopen that finds none must not start an empty one).
fn db_options(create: bool) -> Options {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(create);
    db_opts.create_missing_column_families(true);
    db_opts.set_max_background_jobs(2);
    // Bound the WAL: `hosts` sees a trickle of writes that would otherwise pin old log files.
    db_opts.set_max_total_wal_size(256 << 20);
    db_opts.set_keep_log_file_num(4);
    db_opts.set_bytes_per_sync(1 << 20);
    // RocksDB's own log (`LOG` in the data directory) gets its header at open and nothing
    // after. Debian's library is built with assertions on, and its log writer asserts on the
    // next line after one failed write: on a full disk the process would abort on whatever
    // RocksDB logs next (README "Why the system RocksDB"). The collector logs what matters.
    db_opts.set_log_level(LogLevel::Header);
    db_opts
}

fn descriptors() -> impl Iterator<Item = ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|&name| ColumnFamilyDescriptor::new(name, cf_options(name)))
}

/// The descriptors of the column families the database in `dir` has: a read-only open cannot
/// create one a newer release added (`ntp`), and must not fail for it. Calls that need it then
/// fail with [`StorageError::MissingColumnFamily`] until a writable open creates it.
fn existing_descriptors(dir: &Path) -> Result<Vec<ColumnFamilyDescriptor>, StorageError> {
    let present = DB::list_cf(&Options::default(), dir)?;
    Ok(COLUMN_FAMILIES
        .iter()
        .filter(|name| present.iter().any(|p| p == *name))
        .map(|&name| ColumnFamilyDescriptor::new(name, cf_options(name)))
        .collect())
}

/// Opens the database in `dir` for writing (`create`: creating it if missing): the database, its
/// chunk window (stored on first open as `window_s`) and its host registry, each host marked
/// connected as `connected` says.
fn open_writable(
    dir: &Path,
    create: bool,
    window_s: u64,
    connected: &dyn Fn(&str) -> bool,
) -> Result<(DB, u64, Registry), StorageError> {
    let db = DB::open_cf_descriptors(&db_options(create), dir, descriptors())?;
    let window_s = load_window(&db, Some(window_s))?;
    let registry = Registry::load(&db, window_s, true, connected)?;
    Ok((db, window_s, registry))
}

/// Opens the database in `dir` for reading only (it replays the write-ahead log in memory):
/// the database, its chunk window and its host registry, each host marked connected (in memory)
/// as `connected` says.
fn open_read_only(
    dir: &Path,
    connected: &dyn Fn(&str) -> bool,
) -> Result<(DB, u64, Registry), StorageError> {
    let db = DB::open_cf_descriptors_read_only(
        &db_options(false),
        dir,
        existing_descriptors(dir)?,
        false,
    )?;
    let window_s = load_window(&db, None)?;
    let registry = Registry::load(&db, window_s, false, connected)?;
    Ok((db, window_s, registry))
}

/// Reads the stored chunk window, storing `requested` on first open (`None`: read only).
fn load_window(db: &DB, requested: Option<u64>) -> Result<u64, StorageError> {
    let hosts = cf(db, CF_HOSTS)?;
    let key = keys::meta_key(keys::META_CHUNK_WINDOW_S);
    match (db.get_cf(hosts, &key)?, requested) {
        (Some(v), requested) => {
            let stored = values::decode_chunk_window_s(&v)?;
            if requested.is_some_and(|r| r != stored) {
                tracing::warn!(
                    stored_s = stored,
                    requested_s = requested,
                    "chunk_window differs from the one this store was created with; keeping the stored one"
                );
            }
            Ok(stored)
        }
        (None, Some(requested)) => {
            db.put_cf_opt(
                hosts,
                key,
                values::encode_chunk_window_s(requested),
                &sync_write(),
            )?;
            Ok(requested)
        }
        (None, None) => Err(StorageError::Corrupt {
            what: "store metadata",
            detail: "no chunk window stored".into(),
        }),
    }
}

/// Checks that `dir` takes a write: [`PROBE_BYTES`] written and synced to [`PROBE_FILE`],
/// which is removed after.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE_FILE);
    let written = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; PROBE_BYTES])?;
        f.sync_all()
    });
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// The handle of column family `name` in `db`.
pub(super) fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a ColumnFamily, StorageError> {
    db.cf_handle(name)
        .ok_or(StorageError::MissingColumnFamily(name))
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
            // Level 9 where chunks stay (zstd's default is 3): 2 % smaller on the store
            // benchmark, for a compaction that runs once per window (window bits -14, RocksDB's
            // default). 128 KiB blocks were 4 % smaller again but made queries 10 % slower.
            o.set_bottommost_compression_options(-14, 9, 0, 0, true);
        }
        CF_TOPOOM | CF_NTP => {
            // One ranking (or NTP measurement) per host per scan, kept for the whole retention and read back rarely
            // (the evidence of a kill). Consecutive rankings of a host are neighbours and repeat
            // the same command lines (server names), which zstd over big blocks removes.
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

/// Options of a write that is durable when it returns (every write of state the collector
/// acknowledges or must find again after a crash). Past the open, such writes go through
/// [`Db::commit`].
pub(super) fn sync_write() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// Locks a mutex, ignoring poisoning: every guarded state is changed only after the matching
/// RocksDB write succeeded, so a panic elsewhere cannot leave it half-updated.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
