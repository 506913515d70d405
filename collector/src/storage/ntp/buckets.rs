//! Downsampled NTP history ([`Store::ntp_buckets`]): per host and time bucket, the min, max and
//! mean of the host's offset, for a graph of a range with more measurements than pixels.
//!
//! A measurement's offset is that of its best synced source ([`fleet_proto::ntp::best_offset`],
//! the one `fleetctl ntp` and the console plot); a measurement without a synced source counts
//! in no bucket. Buckets are those of the downsampled sar query ([`super::super::buckets`]):
//! `step_ms` wide, aligned to the Unix epoch, only measurements inside the range counted, and
//! a bucket without a measurement not returned. Memory holds the open buckets of the hosts read,
//! at most [`MAX_SAR_BUCKETS`](fleet_proto::limits::MAX_SAR_BUCKETS) per host, never the
//! measurements.

use std::collections::BTreeMap;

use fleet_proto::ntp::best_offset;

use super::super::buckets::bucket_count;
use super::super::{values, Span, StorageError, Store};

/// One bucket of one host's offsets.
#[derive(Clone, Debug, PartialEq)]
pub struct NtpBucket {
    /// The bucket's start (a multiple of the step), Unix ms.
    pub start_ms: i64,
    /// Measurements with a synced source in the bucket (at least 1).
    pub count: u32,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// The buckets of one host, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct HostNtpBuckets {
    pub host_num: u32,
    pub buckets: Vec<NtpBucket>,
}

/// One host's open buckets, by start: count, min, max and sum of the offsets.
type Open = BTreeMap<i64, (u32, f64, f64, f64)>;

impl Store {
    /// The offsets of the NTP measurements of the given hosts (of every host when `hosts` is
    /// empty) with `from_ms <= time_ms <= to_ms`, in buckets of `step_ms` (see the module doc):
    /// per host with a synced measurement in the range, by host number, its buckets.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for a range or step that [`bucket_count`] refuses
    /// (naming what is wrong); otherwise as [`Store::ntp_history`].
    pub fn ntp_buckets(
        &self,
        hosts: &[u32],
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<HostNtpBuckets>, StorageError> {
        bucket_count(from_ms, to_ms, step_ms).map_err(StorageError::InvalidArgument)?;
        let Some(span) = Span::new(from_ms, to_ms, self.window_s) else {
            return Ok(Vec::new());
        };
        let mut open: BTreeMap<u32, Open> = BTreeMap::new();
        self.scan_ntp(hosts, &span, |k, value| {
            if let Some(offset) = best_offset(&values::decode_clock(value)?) {
                // At most `to_ms`: fits.
                let start = (k.time_ms as i64).div_euclid(step_ms) * step_ms;
                let b = open.entry(k.host_num).or_default().entry(start).or_insert((
                    0,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    0.0,
                ));
                *b = (b.0 + 1, b.1.min(offset), b.2.max(offset), b.3 + offset);
            }
            Ok(true)
        })?;
        Ok(open
            .into_iter()
            .map(|(host_num, buckets)| HostNtpBuckets {
                host_num,
                buckets: buckets
                    .into_iter()
                    .map(|(start_ms, (count, min, max, sum))| NtpBucket {
                        start_ms,
                        count,
                        min,
                        max,
                        mean: sum / f64::from(count),
                    })
                    .collect(),
            })
            .collect())
    }
}
