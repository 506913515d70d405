//! Timestamps from the future: what a session does with the parts of a batch stamped more than
//! `max_future_skew` after the collector's clock (a host whose clock was ahead for a while).
//!
//! Left as they are, one such sample froze its host's clock status and "latest" top-oom
//! ranking (persisted), escaped retention (its window is never old enough), and one such kill
//! kept `oom_kill_burst` firing until its time came. Per kind:
//!
//! | kind          | what happens                      | why                                        |
//! |---------------|-----------------------------------|--------------------------------------------|
//! | sample        | dropped (its sar records and its top-oom ranking) | a series point at a wrong time is worse than a gap; the host's later samples carry on |
//! | clock reading | kept, stamped with the collector's time | it is what shows the host's clock is off (`fleetctl ntp`) |
//! | OOM kill      | kept, stamped with the collector's time | a kill is never lost; it happened before it reached the collector |
//!
//! Each is counted in `CollectorStatus` (`future_samples_dropped`, `future_clock_readings_clamped`,
//! `future_kills_clamped`); a session logs the first batch it screened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fleet_proto::v1::{Batch, ClockStatus};

/// The screen of every session, with its counters since start.
#[derive(Debug)]
pub struct FutureScreen {
    max_skew_ms: i64,
    pub(super) samples_dropped: AtomicU64,
    pub(super) clocks_clamped: AtomicU64,
    pub(super) kills_clamped: AtomicU64,
}

/// What [`FutureScreen::screen`] changed in one batch.
#[derive(Debug, Default, PartialEq)]
pub struct Screened {
    pub samples_dropped: usize,
    pub kills_clamped: usize,
    /// The clock readings of the dropped samples, stamped `now_ms`.
    pub clocks: Vec<(i64, ClockStatus)>,
    /// The furthest timestamp seen ahead of the limit (for the log).
    pub latest_ms: i64,
}

impl Screened {
    /// Whether anything was from the future.
    pub fn any(&self) -> bool {
        self.samples_dropped > 0 || self.kills_clamped > 0
    }
}

impl FutureScreen {
    pub fn new(max_skew: Duration) -> FutureScreen {
        FutureScreen {
            max_skew_ms: i64::try_from(max_skew.as_millis()).unwrap_or(i64::MAX),
            samples_dropped: AtomicU64::new(0),
            clocks_clamped: AtomicU64::new(0),
            kills_clamped: AtomicU64::new(0),
        }
    }

    /// Drops the samples of `batch` stamped more than the skew after `now_ms` (taking their
    /// clock readings out, stamped `now_ms`) and stamps such kills `now_ms`; counts both.
    pub fn screen(&self, batch: &mut Batch, now_ms: i64) -> Screened {
        let limit = now_ms.saturating_add(self.max_skew_ms);
        let mut out = Screened::default();
        for e in &mut batch.oom_events {
            if e.time_ms > limit {
                out.latest_ms = out.latest_ms.max(e.time_ms);
                e.time_ms = now_ms;
                // An amendment is of a kill counted when it came (the store keeps that one's time).
                if !e.amends {
                    out.kills_clamped += 1;
                }
            }
        }
        batch.samples.retain_mut(|s| {
            if s.time_ms <= limit {
                return true;
            }
            out.latest_ms = out.latest_ms.max(s.time_ms);
            out.samples_dropped += 1;
            if let Some(c) = s.clock.take() {
                out.clocks.push((now_ms, c));
            }
            false
        });
        let count = |n: usize| n as u64;
        self.samples_dropped
            .fetch_add(count(out.samples_dropped), Ordering::Relaxed);
        self.kills_clamped
            .fetch_add(count(out.kills_clamped), Ordering::Relaxed);
        self.clocks_clamped
            .fetch_add(count(out.clocks.len()), Ordering::Relaxed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_proto::v1::{OomEvent, Sample};

    #[test]
    fn future_samples_are_dropped_and_future_kills_and_readings_stamped_now() {
        let screen = FutureScreen::new(Duration::from_secs(60));
        let now = 1_700_000_000_000;
        let sample = |t: i64, clock: bool| Sample {
            time_ms: t,
            clock: clock.then(ClockStatus::default),
            ..Sample::default()
        };
        let kill = |t: i64| OomEvent {
            time_ms: t,
            ..OomEvent::default()
        };
        let mut b = Batch {
            seq: 1,
            samples: vec![
                sample(now - 1000, true),
                sample(now + 60_000, false),
                sample(now + 60_001, true),
                sample(now + 86_400_000, false),
            ],
            oom_events: vec![kill(now + 60_000), kill(now + 3_600_000)],
            ..Batch::default()
        };
        let s = screen.screen(&mut b, now);
        assert_eq!((s.samples_dropped, s.kills_clamped), (2, 1));
        assert_eq!(s.clocks, vec![(now, ClockStatus::default())]);
        assert_eq!(s.latest_ms, now + 86_400_000);
        let times: Vec<i64> = b.samples.iter().map(|s| s.time_ms).collect();
        assert_eq!(
            times,
            [now - 1000, now + 60_000],
            "at the limit is not ahead of it"
        );
        assert!(
            b.samples[0].clock.is_some(),
            "a kept sample keeps its reading"
        );
        let kills: Vec<i64> = b.oom_events.iter().map(|e| e.time_ms).collect();
        assert_eq!(kills, [now + 60_000, now]);
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(
            (
                n(&screen.samples_dropped),
                n(&screen.kills_clamped),
                n(&screen.clocks_clamped)
            ),
            (2, 1, 1)
        );
        let mut fine = Batch {
            samples: vec![sample(now, false)],
            ..Batch::default()
        };
        assert!(!screen.screen(&mut fine, now).any());
    }
}
