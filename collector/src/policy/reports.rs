//! Agents' policy reports (see "Reports" in [`super`]): which entries are taken, and writing
//! them before they count.
//!
//! [`PolicyBook::take_report`] keeps the entries a host may report on, pending in memory;
//! [`PolicyBook::save_reports`] writes the pending entries that changed in one synced write and
//! only then shows them in [`PolicyBook::status`]. A write that fails leaves them pending: the
//! session retries, and the host's next report (every agent reports on each connect) writes
//! them with its own.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use fleet_proto::v1::{HostPolicyStatus, PolicyReport};

use super::PolicyBook;
use crate::storage::keys;
use crate::storage::values;
use crate::storage::{HostRecord, StorageError};

impl PolicyBook {
    /// Takes what `host` reported, keeping the entries about the policies in `sent` (what its
    /// session sent it) and the removals of those or of policies it reported on before. The
    /// others are dropped and counted; their names are returned. What is taken waits, unseen by
    /// [`PolicyBook::status`], until [`PolicyBook::save_reports`] writes it; a later report of
    /// the same policy replaces it.
    pub fn take_report(
        &self,
        host: &HostRecord,
        report: &PolicyReport,
        sent: &HashSet<String>,
    ) -> Vec<String> {
        let base = HostPolicyStatus {
            host_id: host.identity.host_id.clone(),
            hostname: host.identity.hostname.clone(),
            cluster: host.identity.cluster.clone(),
            reported_ms: report.time_ms,
            ..HostPolicyStatus::default()
        };
        let mut inner = self.lock();
        let had = |inner: &super::Inner, name: &str| {
            inner.statuses.contains_key(&(name.to_owned(), host.num))
                || inner
                    .unsaved
                    .get(&host.num)
                    .is_some_and(|u| u.contains_key(name))
        };
        let mut taken = Vec::new();
        let mut dropped = Vec::new();
        for s in &report.policies {
            if sent.contains(&s.name) {
                let rec = HostPolicyStatus {
                    status: Some(s.clone()),
                    ..base.clone()
                };
                taken.push((s.name.clone(), rec));
            } else {
                dropped.push(s.name.clone());
            }
        }
        for r in &report.removed {
            if sent.contains(&r.name) || had(&inner, &r.name) {
                let rec = HostPolicyStatus {
                    removal: Some(r.clone()),
                    ..base.clone()
                };
                taken.push((r.name.clone(), rec));
            } else {
                dropped.push(r.name.clone());
            }
        }
        let pending = inner.unsaved.entry(host.num).or_default();
        for (name, rec) in taken {
            // Sent names are policy names; a name a status key cannot hold was never sent.
            if keys::policy_status_key(&name, host.num).is_ok() {
                pending.insert(name, rec);
            } else {
                dropped.push(name);
            }
        }
        if pending.is_empty() {
            inner.unsaved.remove(&host.num);
        }
        self.reports_dropped
            .fetch_add(dropped.len() as u64, Ordering::Relaxed);
        dropped
    }

    /// Writes (one synced write) what host `host_num` reported and is not stored yet, leaving
    /// out what did not change since its last stored report; only then does
    /// [`PolicyBook::status`] show it. Returns how many entries were written.
    ///
    /// # Errors
    /// [`StorageError`] if the write fails: the entries stay pending for the next call.
    pub fn save_reports(&self, host_num: u32) -> Result<usize, StorageError> {
        let mut inner = self.lock();
        let Some(pending) = inner.unsaved.remove(&host_num) else {
            return Ok(0);
        };
        let changed: Vec<(String, HostPolicyStatus)> = pending
            .into_iter()
            .filter(|(name, rec)| {
                !inner
                    .statuses
                    .get(&(name.clone(), host_num))
                    .is_some_and(|old| old.status == rec.status && old.removal == rec.removal)
            })
            .collect();
        if changed.is_empty() {
            return Ok(0);
        }
        let mut puts = Vec::with_capacity(changed.len());
        for (name, rec) in &changed {
            // Checked when taken.
            let key = keys::policy_status_key(name, host_num)
                .map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
            puts.push((key, values::encode_policy_status(rec)));
        }
        // Under the lock: what `status` shows follows the disk, in order.
        match self.store.policy_write(&puts) {
            Ok(()) => {
                let n = changed.len();
                for (name, rec) in changed {
                    inner.statuses.insert((name, host_num), rec);
                }
                Ok(n)
            }
            Err(e) => {
                inner
                    .unsaved
                    .insert(host_num, changed.into_iter().collect());
                Err(e)
            }
        }
    }

    /// [`PolicyBook::take_report`], then [`PolicyBook::save_reports`]: the names dropped.
    ///
    /// # Errors
    /// As [`PolicyBook::save_reports`].
    pub fn report(
        &self,
        host: &HostRecord,
        report: &PolicyReport,
        sent: &HashSet<String>,
    ) -> Result<Vec<String>, StorageError> {
        let dropped = self.take_report(host, report, sent);
        self.save_reports(host.num)?;
        Ok(dropped)
    }

    /// Whether host `host_num` has reported entries not stored yet.
    pub fn has_unsaved(&self, host_num: u32) -> bool {
        self.lock().unsaved.contains_key(&host_num)
    }

    /// Report entries dropped since start: about policies the host was not sent.
    pub fn reports_dropped(&self) -> u64 {
        self.reports_dropped.load(Ordering::Relaxed)
    }
}
