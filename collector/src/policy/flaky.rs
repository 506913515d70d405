//! Tests' policy store whose writes fail on demand (a full disk, say).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::PolicyRecords;
use crate::storage::{KeyValue, StorageError, Store};

/// A [`Store`] whose policy writes fail while `failing` is set.
pub(crate) struct Flaky {
    pub(crate) store: Arc<Store>,
    pub(crate) failing: AtomicBool,
}

impl Flaky {
    pub(crate) fn new(store: Arc<Store>) -> Arc<Flaky> {
        Arc::new(Flaky {
            store,
            failing: AtomicBool::new(false),
        })
    }

    pub(crate) fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }
}

impl PolicyRecords for Flaky {
    fn policy_write(&self, puts: &[KeyValue]) -> Result<(), StorageError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(StorageError::InvalidArgument("disk full (test)".into()));
        }
        self.store.policy_write(puts)
    }

    fn policy_records(&self) -> Result<Vec<KeyValue>, StorageError> {
        self.store.policy_records()
    }
}
