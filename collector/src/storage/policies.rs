//! OOM policy records (`policies` CF): the versions of each policy and each host's reported
//! status. The store keeps them as opaque key/value pairs; [`crate::policy`] owns their meaning,
//! with the keys built by [`super::keys`] and the values by [`super::values`].

use super::{StorageError, Store, CF_POLICIES};

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

impl Store {
    /// Writes policy records (keys from [`super::keys::policy_version_key`] and
    /// [`super::keys::policy_status_key`]) in one synced batch.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if the write fails.
    pub fn policy_write(&self, puts: &[KeyValue]) -> Result<(), StorageError> {
        let db = self.db()?;
        let cf = db.cf(CF_POLICIES)?;
        let mut batch = rocksdb::WriteBatch::default();
        for (k, v) in puts {
            batch.put_cf(cf, k, v);
        }
        db.commit(batch)
    }

    /// Every policy record, in key order (versions of each policy oldest first, then the
    /// statuses). The set is small (versions times hosts reporting), read once at start.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if the read fails.
    pub fn policy_records(&self) -> Result<Vec<KeyValue>, StorageError> {
        let db = self.db()?;
        let cf = db.cf(CF_POLICIES)?;
        let mut out = Vec::new();
        for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::fixtures::open;
    use crate::storage::keys;

    #[test]
    fn policy_records_come_back_in_key_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        assert!(store.policy_records().unwrap().is_empty());
        let status = keys::policy_status_key("web", 1).unwrap();
        let v2 = keys::policy_version_key("web", 2).unwrap();
        let v1 = keys::policy_version_key("web", 1).unwrap();
        store
            .policy_write(&[(status.clone(), b"s".to_vec()), (v2.clone(), b"2".to_vec())])
            .unwrap();
        store.policy_write(&[(v1.clone(), b"1".to_vec())]).unwrap();
        store.policy_write(&[]).unwrap();
        drop(store);
        let store = open(&dir);
        assert_eq!(
            store.policy_records().unwrap(),
            vec![
                (v1, b"1".to_vec()),
                (v2, b"2".to_vec()),
                (status, b"s".to_vec())
            ]
        );
    }
}
