//! Which NTP source counts: the rule `fleetctl ntp` (a cluster's spread, the console's `/ntp`)
//! and the collector's downsampled NTP history (`Query.NtpHistoryBuckets`) both apply to a
//! host's [`ClockStatus`], so a bucket's offsets are the ones the raw history would plot.

use crate::v1::{ClockStatus, NtpServerStatus};

/// Whether a source can set a clock: reachable, leap indicator not 3 and stratum 1 to 15 (RFC
/// 5905's unsynchronised cases), and so flagged by the agent. The facts are checked here too, so
/// a source is never counted synced against them.
pub fn source_synced(s: &NtpServerStatus) -> bool {
    s.synced && s.reachable && s.leap != 3 && (1..=15).contains(&s.stratum)
}

/// A host's offset (ms, server minus host): that of its synced source with the lowest stratum,
/// ties to the lower delay, then to the first configured; `None` without a synced source.
pub fn best_offset(clock: &ClockStatus) -> Option<f64> {
    clock
        .servers
        .iter()
        .filter(|s| source_synced(s) && s.offset_ms.is_finite())
        .min_by(|a, b| {
            a.stratum
                .cmp(&b.stratum)
                .then(a.delay_ms.total_cmp(&b.delay_ms))
        })
        .map(|s| s.offset_ms)
}
