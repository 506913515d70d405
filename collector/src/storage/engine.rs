//! [`Store`]: the RocksDB database behind the storage API, with its locks and in-memory cache,
//! and what concerns the database as a whole: opening it (column families and their tuning),
//! the chunk window it was created with, flush, compaction and size.
//!
//! The record families each add their own `impl Store` block: [`super::hosts`],
//! [`super::samples`], [`super::oom`], [`super::blobs`], [`super::policies`], and
//! [`super::maintenance`] for sealing and retention. Values are encoded by [`super::values`],
//! keys by [`super::keys`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DBCompressionType, Options, WriteOptions, DB,
};

use super::hosts::Registry;
use super::{keys, values};
use super::{
    StorageError, StoreOptions, CF_CHUNKS, CF_EVENTS, CF_HOSTS, CF_RAW, CF_TOPOOM, COLUMN_FAMILIES,
};

/// The collector's store. `Send + Sync`: share it in an `Arc`.
pub struct Store {
    pub(super) db: DB,
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
    /// durable (retention also drops expired rankings from it); readers hold it briefly.
    pub(super) registry: RwLock<Registry>,
    /// Serialises `seal` and `enforce_retention`: both rewrite chunks, and a seal racing a
    /// retention run could write back a chunk of a window just dropped.
    pub(super) maintenance_lock: Mutex<()>,
    /// The lowest window start that may still hold data older than retention: retention does
    /// nothing (no range delete, no compaction) while its cutoff is at or below it. Lowered by
    /// `write` when it stores an old sample, raised by `enforce_retention`.
    pub(super) retention_floor_s: Mutex<u64>,
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
                let stored = values::decode_chunk_window_s(&v)?;
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
                self.db.put_cf_opt(
                    hosts,
                    key,
                    values::encode_chunk_window_s(requested),
                    &sync_write(),
                )?;
                Ok(requested)
            }
        }
    }

    pub(super) fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or(StorageError::MissingColumnFamily(name))
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

/// Options of a write that is durable when it returns (every write of state the collector
/// acknowledges or must find again after a crash).
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
