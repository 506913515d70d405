//! Tests of the store as a whole, against a real RocksDB in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use crate::storage::fixtures::{open, opts};
use crate::storage::{StorageError, Store, StoreOptions};

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Store>();
    check::<Arc<Store>>();
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
