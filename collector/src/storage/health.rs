//! Whether the store takes writes ([`StoreState`]), and the loop that brings it back after a
//! write error ([`recover`]).
//!
//! A write that fails (a full disk, `ENOSPC`, or any other I/O error) makes the store *failing*:
//! from then on every write is refused at once with [`super::StorageError::Unavailable`] without
//! reaching RocksDB, so the collector acknowledges nothing and the agents keep their spools,
//! while reads are still served by the open database. [`recover`] then calls
//! [`super::Store::resume`] every few seconds: it checks that the data directory takes a write
//! again, then closes the database and opens it anew (RocksDB 7.8 has no `Resume` in its C
//! API, and a database whose write-ahead log saw an error must not be used for writing again:
//! see README "Why the system RocksDB"). A writable reopen that fails leaves the database open
//! read-only (*read-only*: queries served, writes refused) until a later attempt succeeds. Only
//! when the data directory is gone, or the database cannot even be opened for reading, does
//! [`recover`] give up with an error, on which the collector stops with a non-zero status.
//!
//! Each change of state is logged once; the state and its error are what `fleetctl status` shows.

use std::sync::Arc;
use std::time::Duration;

use fleet_proto::backoff::Backoff;
use fleet_proto::clock::now_ms;
use tokio::sync::watch;

use super::{StorageError, Store};

/// The first wait between two attempts to resume; it doubles up to [`RESUME_MAX`].
pub const RESUME_BASE: Duration = Duration::from_secs(1);
/// The longest wait between two attempts to resume: writes resume within this (plus the time a
/// reopen takes) of the disk taking writes again.
pub const RESUME_MAX: Duration = Duration::from_secs(5);

/// Whether the store takes writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// Writes go through.
    Writable,
    /// Writes failed since `since_ms` (the first failure); `error` is the latest reason. Reads
    /// are served; writes are refused until a reopen succeeds.
    Failing { since_ms: i64, error: String },
    /// The database could not be opened for writing (`error`), only for reading; not writable
    /// since `since_ms`. Reads are served; writes are refused until a reopen succeeds.
    ReadOnly { since_ms: i64, error: String },
}

impl StoreState {
    /// The error in words, for a refused call: "storage failing since 1700000000000 ms: ...".
    pub fn refusal(&self) -> String {
        match self {
            StoreState::Writable => "storage writable".into(),
            StoreState::Failing { error, .. } => format!("storage writes are failing: {error}"),
            StoreState::ReadOnly { error, .. } => format!("storage is read-only: {error}"),
        }
    }

    fn since_ms(&self) -> Option<i64> {
        match self {
            StoreState::Writable => None,
            StoreState::Failing { since_ms, .. } | StoreState::ReadOnly { since_ms, .. } => {
                Some(*since_ms)
            }
        }
    }
}

/// The store's [`StoreState`], shared with whoever waits for it to change. Every change of kind
/// (writable, failing, read-only) is logged here, once.
pub(super) struct Health {
    state: watch::Sender<StoreState>,
}

impl Health {
    pub(super) fn new(state: StoreState) -> Health {
        if let StoreState::ReadOnly { error, .. } = &state {
            tracing::error!(%error, "storage opened read-only: queries are served, agents keep their data until the disk takes writes again");
        }
        Health {
            state: watch::Sender::new(state),
        }
    }

    pub(super) fn get(&self) -> StoreState {
        self.state.borrow().clone()
    }

    pub(super) fn writable(&self) -> bool {
        matches!(*self.state.borrow(), StoreState::Writable)
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<StoreState> {
        self.state.subscribe()
    }

    /// A write failed: failing from now, or still not writable since the first failure with
    /// `error` as the latest reason.
    pub(super) fn failed(&self, error: String) {
        self.change(|old| StoreState::Failing {
            since_ms: old.since_ms().unwrap_or_else(now_ms),
            error,
        });
    }

    /// Open for reading only, because a writable open failed with `error`.
    pub(super) fn read_only(&self, error: String) {
        self.change(|old| StoreState::ReadOnly {
            since_ms: old.since_ms().unwrap_or_else(now_ms),
            error,
        });
    }

    /// Still not writable, now for `error` (a failed probe): the error is updated, silently.
    pub(super) fn still(&self, error: String) {
        self.state.send_modify(|s| match s {
            StoreState::Writable => {}
            StoreState::Failing { error: e, .. } | StoreState::ReadOnly { error: e, .. } => {
                *e = error;
            }
        });
    }

    pub(super) fn resumed(&self) {
        self.change(|_| StoreState::Writable);
    }

    fn change(&self, new: impl FnOnce(&StoreState) -> StoreState) {
        self.state.send_if_modified(|s| {
            let old = std::mem::replace(s, StoreState::Writable);
            *s = new(&old);
            let kind_changed = std::mem::discriminant(&old) != std::mem::discriminant(&*s);
            if kind_changed {
                log_change(&old, s);
            }
            *s != old
        });
    }
}

fn log_change(old: &StoreState, new: &StoreState) {
    match new {
        StoreState::Writable => {
            let down_s = old.since_ms().map_or(0, |t| (now_ms() - t).max(0) / 1000);
            tracing::info!(down_s, "storage writable again: acknowledgements resume");
        }
        StoreState::Failing { error, .. } => {
            tracing::error!(%error, "storage writes failing: nothing is acknowledged, agents keep their data; queries are served; retrying");
        }
        StoreState::ReadOnly { error, .. } => {
            tracing::error!(%error, "storage reopened read-only: queries are served, agents keep their data until the disk takes writes again");
        }
    }
}

/// Whenever the store is not writable, tries [`Store::resume`] on a blocking thread (with
/// `connected`: which hosts have a session open), waiting
/// [`RESUME_BASE`] doubling up to [`RESUME_MAX`] (jittered) between attempts, until `stop`
/// changes (or its sender is dropped). An attempt in progress is finished first, so the
/// database is never left closed.
///
/// # Errors
/// The error of an attempt that left no database open (not even for reading): the store cannot
/// continue, and the caller should stop the collector with a failure.
pub async fn recover(
    store: Arc<Store>,
    connected: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), StorageError> {
    let mut state = store.subscribe();
    let mut backoff = Backoff::new(RESUME_BASE, RESUME_MAX);
    loop {
        if matches!(*state.borrow_and_update(), StoreState::Writable) {
            backoff.reset();
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                changed = state.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
        let (s, connected) = (store.clone(), connected.clone());
        match tokio::task::spawn_blocking(move || s.resume(&*connected)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(StorageError::Unavailable(format!(
                    "the attempt to reopen the database failed: {e}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_dates_the_outage_and_later_errors_only_update_it() {
        let h = Health::new(StoreState::Writable);
        let mut rx = h.subscribe();
        assert!(h.writable());
        h.failed("IO error: No space left on device".into());
        let StoreState::Failing { since_ms, .. } = h.get() else {
            panic!("{:?}", h.get())
        };
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();

        h.failed("IO error: again".into());
        h.still("the data directory takes no write".into());
        assert_eq!(
            h.get(),
            StoreState::Failing {
                since_ms,
                error: "the data directory takes no write".into()
            }
        );
        h.read_only("IO error: MANIFEST".into());
        assert_eq!(
            h.get(),
            StoreState::ReadOnly {
                since_ms,
                error: "IO error: MANIFEST".into()
            }
        );
        assert!(!h.writable());
        assert!(h
            .get()
            .refusal()
            .starts_with("storage is read-only: IO error"));

        h.resumed();
        assert_eq!(h.get(), StoreState::Writable);
        h.still("ignored once writable".into());
        assert_eq!(h.get(), StoreState::Writable);
        h.failed("IO error: later".into());
        assert!(matches!(h.get(), StoreState::Failing { since_ms: s, .. } if s >= since_ms));
    }
}
