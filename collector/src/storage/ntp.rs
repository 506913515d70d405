//! NTP history (`ntp` CF): every NTP measurement the agents sent, one per host per sample that
//! carried one (see [`super::keys`], "NTP measurements").
//!
//! Measurements arrive in agent batches ([`super::IngestItem::clocks`]) and are stored by
//! [`Store::write`] in the same synced write as the batch's samples; they expire with them
//! ([`Store::enforce_retention`]). [`Store::ntp_history`] reads them back for `fleetctl ntp
//! --since`. The latest measurement of each connected host is also in the rules' live state,
//! which `fleetctl ntp` without `--since` shows.

use fleet_proto::v1::ClockStatus;
use rocksdb::ReadOptions;

use super::keys;
use super::values;
use super::{sorted_hosts, Span, StorageError, Store, CF_NTP};

/// One stored NTP measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredNtp {
    pub host_num: u32,
    pub time_ms: i64,
    pub clock: ClockStatus,
}

/// What [`Store::ntp_history`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NtpHistory {
    /// Oldest first (measurements of the same millisecond by host number).
    pub measurements: Vec<StoredNtp>,
    /// The limit was reached: later measurements in the range were left out.
    pub truncated: bool,
}

impl Store {
    /// The NTP measurements of the given hosts (of every host when `hosts` is empty) with
    /// `from_ms <= time_ms <= to_ms`, the oldest `limit` of them. Reads one consistent snapshot
    /// forwards from the first window of the range, jumping over the hosts not asked for, and
    /// stops once `limit` are found and one more shows that the answer is truncated.
    ///
    /// # Errors
    /// A corruption error if a key or measurement in the range does not decode;
    /// [`StorageError::MissingColumnFamily`] for a store opened read-only that was created
    /// before NTP history existed; [`StorageError::Rocks`] on read errors.
    pub fn ntp_history(
        &self,
        hosts: &[u32],
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<NtpHistory, StorageError> {
        let mut found = NtpHistory::default();
        let Some(span) = Span::new(from_ms, to_ms, self.window_s).filter(|_| limit > 0) else {
            return Ok(found);
        };
        // The measurements of the window being read: keys run by host within a window, so a
        // window is sorted by time before it joins the answer.
        let mut window: Vec<StoredNtp> = Vec::new();
        let mut current_w = None;
        let out = &mut found.measurements;
        let mut truncated = false;
        self.scan_ntp(hosts, &span, |k, value| {
            if current_w != Some(k.window_start_s) {
                if take_window(&mut window, out, limit) {
                    truncated = true;
                    return Ok(false);
                }
                current_w = Some(k.window_start_s);
            }
            if out.len() >= limit {
                // Full, and this one is left out.
                truncated = true;
                return Ok(false);
            }
            window.push(StoredNtp {
                host_num: k.host_num,
                // At most `to_ms`: fits.
                time_ms: k.time_ms as i64,
                clock: values::decode_clock(value)?,
            });
            Ok(true)
        })?;
        found.truncated = truncated || take_window(&mut window, out, limit);
        Ok(found)
    }

    /// Hands each NTP measurement of the given hosts (of every host when `hosts` is empty) in
    /// `span` to `each` (its key and stored value), window by window, by host within a window,
    /// from one consistent snapshot, jumping over the hosts not asked for; stops early when
    /// `each` returns `false`.
    ///
    /// # Errors
    /// As [`Store::ntp_history`], and what `each` returns.
    pub(super) fn scan_ntp(
        &self,
        hosts: &[u32],
        span: &Span,
        mut each: impl FnMut(&keys::NtpKey, &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let hosts = sorted_hosts(hosts);
        let db = self.db()?;
        let ntp_cf = db.cf(CF_NTP)?;
        let snapshot = db.snapshot();
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::ntp_window_prefix(span.w_to.saturating_add(1)).to_vec());
        let mut it = snapshot.raw_iterator_cf_opt(ntp_cf, ro);
        it.seek(keys::ntp_window_prefix(span.w_from));
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            let k = keys::decode_ntp_key(key)?;
            if !hosts.is_empty() && hosts.binary_search(&k.host_num).is_err() {
                // Jump to the next selected host above this one in this window, or to the next
                // window.
                match hosts.get(hosts.partition_point(|&h| h < k.host_num)) {
                    Some(&h) => it.seek(keys::ntp_host_prefix(k.window_start_s, h)),
                    None => it.seek(keys::ntp_window_prefix(k.window_start_s.saturating_add(1))),
                }
                continue;
            }
            if span.contains(k.time_ms) && !each(&k, value)? {
                return Ok(());
            }
            it.next();
        }
        Ok(it.status()?)
    }
}

/// Moves a window's measurements, sorted by time then host, into `out`, as many as fit under
/// `limit`. Returns whether some did not fit.
fn take_window(window: &mut Vec<StoredNtp>, out: &mut Vec<StoredNtp>, limit: usize) -> bool {
    window.sort_by_key(|m| (m.time_ms, m.host_num));
    let room = limit.saturating_sub(out.len());
    let left_out = window.len() > room;
    out.extend(window.drain(..).take(room));
    left_out
}

mod buckets;

#[cfg(test)]
mod tests;
