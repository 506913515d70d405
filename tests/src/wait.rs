//! Waiting on a condition with a deadline: the end-to-end tests poll what they expect to happen
//! instead of sleeping a fixed time. (A test that checks that nothing happens within some time
//! sleeps that time, and says so where it does.)

use std::time::{Duration, Instant};

/// How often [`wait_for`] polls: each poll of a test is usually a `fleetctl` run.
pub const POLL: Duration = Duration::from_millis(200);

/// Polls `f` every [`POLL`] until it returns `Some`, and returns that value.
///
/// # Panics
/// When `timeout` passes first, naming `what` was awaited.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    wait_for_every(what, timeout, POLL, f)
}

/// As [`wait_for`], polling every `every` (a benchmark measuring latency polls more often).
pub fn wait_for_every<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    f: impl FnMut() -> Option<T>,
) -> T {
    poll(timeout, every, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes (then `None`): for
/// clean-ups that must not panic. `f` runs at least once, and once more at the deadline.
pub fn poll<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        std::thread::sleep(every.min(end - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_and_gives_up_at_the_deadline() {
        let mut n = 0;
        let v = wait_for("three calls", Duration::from_secs(5), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(v, 3);
        let t0 = Instant::now();
        assert_eq!(
            poll(Duration::from_millis(50), Duration::from_millis(10), || {
                None::<()>
            }),
            None
        );
        assert!(t0.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    #[should_panic(expected = "waiting for nothing")]
    fn panics_naming_what_was_awaited() {
        wait_for("nothing", Duration::from_millis(10), || None::<()>);
    }
}
