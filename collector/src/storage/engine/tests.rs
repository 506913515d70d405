//! Tests of the store as a whole, against a real RocksDB in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use fleet_proto::v1::Activity;

use crate::storage::fixtures::{cpu_rows, identity, item, open, opts, HOUR_MS, T0};
use crate::storage::{StorageError, Store, StoreOptions, StoreState, WriteOutcome};

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Store>();
    check::<Arc<Store>>();
}

/// A store with one host and one stored batch (seq 1, one sample), then failing with `error`:
/// what a failed RocksDB write does (the end-to-end test `disk_full` fills a real filesystem).
fn failing_with_one_batch(dir: &tempfile::TempDir, error: &str) -> (Store, u32) {
    let store = open(dir);
    let h = store.upsert_host(&identity("a"), T0, true).unwrap().num;
    store
        .write(&[item(h, 1, 1, &[T0 + 1_000])], T0 + 2_000)
        .unwrap();
    store.health.failed(error.into());
    (store, h)
}

#[test]
fn a_failing_store_refuses_writes_serves_reads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, h) = failing_with_one_batch(&dir, "IO error: No space left on device");
    assert!(matches!(
        store.state(),
        StoreState::Failing { ref error, .. } if error.contains("No space left")
    ));
    let refused = store.write(&[item(h, 1, 2, &[T0 + 2_000])], T0 + 3_000);
    assert!(
        matches!(refused, Err(StorageError::Unavailable(_))),
        "{refused:?}"
    );
    assert_eq!(
        cpu_rows(&store, h, T0, T0 + HOUR_MS).len(),
        2,
        "reads are served"
    );

    // The directory takes writes: the database is reopened, with the dedup state on disk.
    assert_eq!(store.resume(&|_| false).unwrap(), StoreState::Writable);
    assert!(store.is_writable());
    let out = store
        .write(
            &[item(h, 1, 1, &[T0 + 1_000]), item(h, 1, 2, &[T0 + 2_000])],
            T0 + 4_000,
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            WriteOutcome::Duplicate,
            WriteOutcome::Stored {
                repeated_kills: vec![]
            }
        ]
    );
    assert_eq!(cpu_rows(&store, h, T0, T0 + HOUR_MS).len(), 4);
    assert!(!store.hosts()[0].connected, "no session open: disconnected");
}

#[test]
fn a_reopen_that_finds_no_database_gives_up_instead_of_starting_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, h) = failing_with_one_batch(&dir, "IO error: test");
    // The database's files are gone (an operator's mistake, another program), the directory
    // still takes writes.
    for f in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let gave_up = store.resume(&|_| false);
    assert!(
        matches!(gave_up, Err(StorageError::Unavailable(_))),
        "{gave_up:?}"
    );
    assert!(matches!(store.state(), StoreState::Failing { .. }));
    assert!(matches!(
        store.query(h, Activity::Cpu, T0, T0 + HOUR_MS),
        Err(StorageError::Unavailable(_))
    ));
    // The failed open leaves its lock file (and RocksDB's LOG), no database.
    assert!(
        !dir.path().join("CURRENT").exists(),
        "no empty database created"
    );
}

#[test]
fn a_data_directory_removed_under_a_failing_store_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let (store, h) = failing_with_one_batch(&dir, "IO error: test");
    std::fs::remove_dir_all(dir.path()).unwrap();
    let gave_up = store.resume(&|_| false);
    assert!(
        matches!(&gave_up, Err(StorageError::Unavailable(e)) if e.contains("the data directory is gone")),
        "{gave_up:?}"
    );
    // Still open: queries are answered while the collector stops.
    assert_eq!(cpu_rows(&store, h, T0, T0 + HOUR_MS).len(), 2);
}

#[test]
fn the_stored_chunk_window_wins_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    let store = Store::open(
        dir.path(),
        StoreOptions {
            chunk_window: Duration::from_secs(600),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(store.chunk_window(), Duration::from_secs(3600));
    drop(store);
    let bad = Store::open(
        dir.path(),
        StoreOptions {
            chunk_window: Duration::from_millis(1500),
            ..opts()
        },
    );
    assert!(matches!(bad, Err(StorageError::InvalidArgument(_))));
}

#[test]
fn a_store_from_before_ntp_history_opens_read_only_and_gains_it_when_writable() {
    let dir = tempfile::tempdir().unwrap();
    {
        // The column families and metadata of a store created before the `ntp` CF existed.
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        let old = ["hosts", "raw", "chunks", "events", "topoom", "policies"];
        let db = rocksdb::DB::open_cf(&o, dir.path(), old).unwrap();
        db.put_cf(
            db.cf_handle("hosts").unwrap(),
            super::keys::meta_key(super::keys::META_CHUNK_WINDOW_S),
            super::values::encode_chunk_window_s(3600),
        )
        .unwrap();
    }
    // A full disk at the upgrade: the read-only open still works, without the new family.
    let (db, window_s, _) = super::open_read_only(dir.path(), &|_| false).unwrap();
    assert_eq!(window_s, 3600);
    assert!(db.cf_handle(crate::storage::CF_NTP).is_none());
    drop(db);
    let store = Store::open(dir.path(), opts()).unwrap();
    assert!(store.is_writable());
    let h = store.ntp_history(&[], 0, i64::MAX, 10).unwrap();
    assert!(h.measurements.is_empty() && !h.truncated);
}
