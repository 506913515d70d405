//! Kernel log times as wall times: a record carries the kernel's monotonic time; its wall time
//! is the boot time (the wall time of the monotonic clock's zero) plus that. The boot time is
//! read again for every event (`CLOCK_REALTIME − CLOCK_MONOTONIC`, now), not fixed when the
//! agent started, so a clock stepped while the agent runs (NTP's first sync, an operator's
//! `date -s`) applies to the kills after it, instead of skewing every later kill by the step.
//!
//! [`BootTime`] keeps the value steady between steps: a reading within [`STEADY`] of the one
//! in use (the two clock reads a few µs apart, NTP's slow slewing) keeps it, so a record read
//! twice gets the same time; a larger change is a step and is taken. The value in use is saved
//! with the kernel log cursor, so a restart in the same boot starts from it.
//!
//! The clocks are behind [`Clocks`], so tests step a fake one.

use std::time::Duration;

/// A change of the boot time smaller than this is not a clock step.
pub const STEADY: Duration = Duration::from_millis(100);

/// The two clocks the boot time is read from.
pub trait Clocks: Send {
    /// The wall clock, Unix µs.
    fn realtime_us(&self) -> i64;
    /// The kernel's monotonic clock (the clock of /dev/kmsg's timestamps), µs.
    fn monotonic_us(&self) -> u64;
}

/// The host's clocks (`clock_gettime`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClocks;

fn clock_us(id: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
}

impl Clocks for SystemClocks {
    fn realtime_us(&self) -> i64 {
        clock_us(libc::CLOCK_REALTIME)
    }

    fn monotonic_us(&self) -> u64 {
        clock_us(libc::CLOCK_MONOTONIC).max(0) as u64
    }
}

/// The boot time in use, read again at every [`BootTime::wall_ms`].
pub struct BootTime {
    clocks: Box<dyn Clocks>,
    /// Unix µs of the monotonic clock's zero, as last taken.
    boot_us: i64,
}

impl BootTime {
    /// Reads the clocks; `saved` is a boot time saved in this boot, kept unless the clock
    /// stepped since.
    pub fn new(clocks: Box<dyn Clocks>, saved: Option<i64>) -> BootTime {
        let mut b = BootTime {
            boot_us: saved.unwrap_or(0),
            clocks,
        };
        if saved.is_none() {
            b.boot_us = b.read();
        }
        b.refresh();
        b
    }

    fn read(&self) -> i64 {
        self.clocks.realtime_us() - self.clocks.monotonic_us() as i64
    }

    /// Reads the boot time again; returns the step (µs) when it changed by [`STEADY`] or more.
    pub fn refresh(&mut self) -> Option<i64> {
        let now = self.read();
        let step = now - self.boot_us;
        if step.unsigned_abs() < STEADY.as_micros() as u64 {
            return None;
        }
        self.boot_us = now;
        Some(step)
    }

    /// The boot time in use, Unix µs.
    pub fn boot_us(&self) -> i64 {
        self.boot_us
    }

    /// The wall time (Unix ms) of a record at `monotonic_us`, with the boot time as it is now.
    pub fn wall_ms(&mut self, monotonic_us: u64) -> i64 {
        if let Some(step) = self.refresh() {
            tracing::info!(
                step_ms = step / 1000,
                "the wall clock stepped: kernel log times follow it from now on"
            );
        }
        (self.boot_us + monotonic_us as i64).div_euclid(1000)
    }

    /// The monotonic clock now, µs.
    pub fn monotonic_us(&self) -> u64 {
        self.clocks.monotonic_us()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Clocks a test sets: (realtime µs, monotonic µs).
    #[derive(Clone, Default)]
    pub struct Fake(pub Arc<Mutex<(i64, u64)>>);

    impl Clocks for Fake {
        fn realtime_us(&self) -> i64 {
            self.0.lock().unwrap().0
        }
        fn monotonic_us(&self) -> u64 {
            self.0.lock().unwrap().1
        }
    }

    #[test]
    fn small_changes_keep_the_boot_time_and_steps_move_it() {
        let fake = Fake::default();
        *fake.0.lock().unwrap() = (1_700_000_000_000_000, 5_000_000);
        let mut b = BootTime::new(Box::new(fake.clone()), None);
        assert_eq!(b.boot_us(), 1_699_999_995_000_000);
        assert_eq!(b.wall_ms(4_000_000), 1_699_999_999_000);
        // 1 s later, read 40 ms off (slewing, two reads apart): the same time for the record.
        *fake.0.lock().unwrap() = (1_700_000_001_040_000, 6_000_000);
        assert_eq!(b.wall_ms(4_000_000), 1_699_999_999_000);
        // Stepped an hour back: later records, and this one read again, follow.
        *fake.0.lock().unwrap() = (1_699_996_402_000_000, 7_000_000);
        assert_eq!(b.wall_ms(6_500_000), 1_699_996_401_500);
        assert_eq!(b.boot_us(), 1_699_996_395_000_000);
        // A saved boot time is kept when the clocks agree with it.
        let b = BootTime::new(Box::new(fake.clone()), Some(1_699_996_395_050_000));
        assert_eq!(b.boot_us(), 1_699_996_395_050_000);
        let b = BootTime::new(Box::new(fake), Some(1_000));
        assert_eq!(
            b.boot_us(),
            1_699_996_395_000_000,
            "not when it stepped since"
        );
    }
}
