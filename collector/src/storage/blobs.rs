//! Named blobs: small opaque state other parts of the collector keep across restarts (the rules
//! engine's alert book, as JSON), in the `hosts` CF under `0x02 · "blob/" · name`, apart from
//! the store's own metadata (see [`super::keys::blob_key`]).

use super::keys;
use super::{StorageError, Store, CF_HOSTS};

impl Store {
    /// Stores an opaque value under `name` (a synced write), replacing any previous one. For
    /// small state other parts of the collector keep across restarts (the alert book): it lives
    /// in the `hosts` CF under `0x02 · "blob/" · name`, apart from the store's own metadata.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] unless `name` is 1 to 128 bytes of printable ASCII;
    /// [`StorageError::Rocks`] if the write fails.
    pub fn put_blob(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        let key = keys::blob_key(name).map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        let db = self.db()?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(db.cf(CF_HOSTS)?, key, value);
        db.commit(batch)
    }

    /// The value [`Store::put_blob`] last stored under `name`, if any.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for a name `put_blob` would refuse;
    /// [`StorageError::Rocks`] if the read fails.
    pub fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = keys::blob_key(name).map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        let db = self.db()?;
        Ok(db.get_cf(db.cf(CF_HOSTS)?, key)?)
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::fixtures::{identity, open, T0};
    use crate::storage::{keys, StorageError};

    #[test]
    fn blobs_round_trip_survive_reopen_and_stay_apart_from_meta() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        assert_eq!(store.get_blob("rules/alerts").unwrap(), None);
        store.put_blob("rules/alerts", b"{\"version\":1}").unwrap();
        store.put_blob("other", b"").unwrap();
        store.put_blob("rules/alerts", b"{\"version\":2}").unwrap();
        // A blob named like a meta value does not touch it.
        store
            .put_blob(keys::META_NEXT_HOST_NUM, b"not a number")
            .unwrap();
        assert!(matches!(
            store.put_blob("bad name", b"x"),
            Err(StorageError::InvalidArgument(_))
        ));
        assert!(matches!(
            store.get_blob(""),
            Err(StorageError::InvalidArgument(_))
        ));
        drop(store);

        let store = open(&dir);
        assert_eq!(
            store.get_blob("rules/alerts").unwrap().as_deref(),
            Some(&b"{\"version\":2}"[..])
        );
        assert_eq!(store.get_blob("other").unwrap(), Some(Vec::new()));
        let rec = store.upsert_host(&identity("h"), T0, true).unwrap();
        assert_eq!(rec.num, 1, "next_host_num is intact");
    }
}
