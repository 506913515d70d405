//! [`Alarm`]: one wakeup at the earliest deadline of the agent's loop (the sample tick, a
//! policy pass, the kernel log's quiet window, a spool sync), from a `timerfd`.
//!
//! Why not tokio's timers, measured with `strace` on the agent at a 1 s interval: tokio's timer
//! wheel wakes the process twice for a deadline more than 64 ms away (once at the start of the
//! wheel's coarser slot that holds it, once at the deadline: `epoll_pwait` timeouts of 335 then
//! 46 ms), and a timer made anew in each turn of the loop that is earlier than the wakeup the
//! driver planned wakes it through its eventfd: 10 returns from `epoll_pwait` a second where a
//! `timerfd` armed at the earliest deadline makes 4.5 (the tick, the collector's ack, a policy
//! pass). A wakeup is what the agent's time goes to on an idle host (a process that does nothing
//! but wake once a second is charged 50-90 us per wakeup on the test machine). The timer is
//! armed again only when the deadline changes.
//!
//! The timer is relative and on `CLOCK_MONOTONIC`, the clock of [`std::time::Instant`]: the
//! deadline is turned into "from now" when it is set. [`Alarm::on_tokio_clock`] is the same
//! alarm on a tokio timer, for the tests that run the loop on tokio's paused clock.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::time::Instant;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Sleep;

/// A wakeup at a deadline. While no deadline is set, [`Alarm::fired`] never resolves.
pub struct Alarm {
    timer: Timer,
    /// The deadline the timer is armed for (None: disarmed, or fired since).
    armed: Option<Instant>,
}

enum Timer {
    Fd(AsyncFd<OwnedFd>),
    Tokio(Pin<Box<Sleep>>),
}

impl Alarm {
    /// A disarmed alarm on a `timerfd`, registered with the current tokio runtime.
    ///
    /// # Errors
    /// The timer cannot be made (out of file descriptors) or registered.
    pub fn new() -> io::Result<Alarm> {
        // SAFETY: a plain system call; the descriptor it returns is owned from here on.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd keeps its descriptor open, unchanged, for as long as the AsyncFd
        // holds it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Alarm {
            timer: Timer::Fd(fd),
            armed: None,
        })
    }

    /// A disarmed alarm on a tokio timer, which follows tokio's clock (paused in tests).
    pub fn on_tokio_clock() -> Alarm {
        Alarm {
            timer: Timer::Tokio(Box::pin(tokio::time::sleep(std::time::Duration::ZERO))),
            armed: None,
        }
    }

    /// Sets the alarm to go off at `at` (at once if it has passed), or disarms it with None. A
    /// system call only when the deadline changes.
    ///
    /// # Errors
    /// `timerfd_settime` fails (it does not with a valid descriptor and value).
    pub fn set(&mut self, at: Option<Instant>) -> io::Result<()> {
        if at == self.armed {
            return Ok(());
        }
        match &mut self.timer {
            Timer::Fd(fd) => arm(fd.as_raw_fd(), at)?,
            Timer::Tokio(sleep) => {
                if let Some(at) = at {
                    sleep.as_mut().reset(at.into());
                }
            }
        }
        self.armed = at;
        Ok(())
    }

    /// Resolves once the deadline set has passed; then the alarm is disarmed. Cancel-safe: the
    /// expiry is consumed in the same poll that resolves.
    ///
    /// # Errors
    /// Reading the timer fails other than with `EAGAIN` (it does not with a valid descriptor).
    pub async fn fired(&mut self) -> io::Result<()> {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        match &mut self.timer {
            Timer::Fd(fd) => loop {
                let mut guard = fd.readable().await?;
                let mut expirations = [0u8; 8];
                // SAFETY: reads at most 8 bytes into a buffer of 8.
                let n = unsafe {
                    libc::read(
                        guard.get_inner().as_raw_fd(),
                        expirations.as_mut_ptr().cast(),
                        expirations.len(),
                    )
                };
                let read = if n == 8 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                };
                // Either way nothing more is to be read until the next expiry (a read takes
                // every expiry so far; EAGAIN is readiness left from one a later `set`
                // cancelled): the next wait is for the kernel's next event.
                guard.clear_ready();
                match read {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            },
            Timer::Tokio(sleep) => sleep.as_mut().await,
        }
        self.armed = None;
        Ok(())
    }
}

/// Arms the timerfd `fd` to expire once at `at` (disarms it with None).
fn arm(fd: std::os::fd::RawFd, at: Option<Instant>) -> io::Result<()> {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let value = match at {
        Some(at) => {
            let wait = at.saturating_duration_since(Instant::now());
            libc::timespec {
                tv_sec: wait.as_secs().try_into().unwrap_or(i32::MAX as _),
                // A zero value disarms: a deadline already passed goes off after 1 ns.
                tv_nsec: libc::c_long::from(wait.subsec_nanos().max(u32::from(wait.is_zero()))),
            }
        }
        None => zero,
    };
    let spec = libc::itimerspec {
        it_interval: zero,
        it_value: value,
    };
    // SAFETY: a valid descriptor and pointers to initialised values for the call's duration.
    if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// It goes off at its deadline, not before; a passed deadline goes off at once; moving the
    /// deadline moves the wakeup; a disarmed alarm stays quiet.
    #[tokio::test]
    async fn goes_off_at_its_deadline() {
        let mut alarm = Alarm::new().unwrap();
        let start = Instant::now();
        alarm.set(Some(start + Duration::from_millis(50))).unwrap();
        alarm.fired().await.unwrap();
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_millis(500), "{waited:?}");
        assert_eq!(alarm.armed, None, "disarmed once it went off");

        alarm.set(Some(start)).unwrap();
        let t = Instant::now();
        alarm.fired().await.unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "a passed deadline at once"
        );

        // Set far, then nearer: the nearer one wins.
        let t = Instant::now();
        alarm.set(Some(t + Duration::from_secs(60))).unwrap();
        alarm.set(Some(t + Duration::from_millis(30))).unwrap();
        alarm.fired().await.unwrap();
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(30) && waited < Duration::from_secs(5),
            "{waited:?}"
        );

        // An expiry not read yet, then the deadline moved later: the alarm waits for the new
        // one (the stale readiness is cleared), and a disarmed alarm never goes off.
        alarm.set(Some(Instant::now())).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        alarm.set(Some(t + Duration::from_millis(80))).unwrap();
        alarm.fired().await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
        alarm.set(Some(Instant::now())).unwrap();
        alarm.set(None).unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(100), alarm.fired()).await;
        assert!(quiet.is_err(), "a disarmed alarm never goes off");
    }

    /// On tokio's clock, the alarm follows paused time (how the loop's tests run).
    #[tokio::test(start_paused = true)]
    async fn on_tokio_clock_it_follows_paused_time() {
        let mut alarm = Alarm::on_tokio_clock();
        let start = tokio::time::Instant::now();
        alarm
            .set(Some(Instant::now() + Duration::from_secs(10)))
            .unwrap();
        alarm.fired().await.unwrap();
        // Tokio's timers round up to the millisecond.
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(10), "{waited:?}");
        assert!(waited <= Duration::from_millis(10_001), "{waited:?}");
        assert_eq!(alarm.armed, None);
        let quiet = tokio::time::timeout(Duration::from_secs(60), alarm.fired()).await;
        assert!(quiet.is_err(), "a disarmed alarm never goes off");
    }
}
