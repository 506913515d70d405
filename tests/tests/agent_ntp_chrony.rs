//! The agent's NTP probe (`fleet_agent::sources::ntp::NtpProbe`, in-process) against a real
//! chronyd on a free loopback port, serving its `local stratum 8` reference and never touching
//! the system clock ([`Chronyd`]: started with `-x`, its files in the test's directory, stopped by
//! its pid when the test ends, pass or fail).
//!
//! chronyd must be installed: scripts/test installs it; without it this test fails and says so.

use std::path::Path;
use std::time::Duration;

use fleet_agent::sources::ntp::{NtpProbe, DEFAULT_TIMEOUT};
use fleet_proto::v1::{ClockStatus, NtpServerStatus};
use fleet_tests::chronyd::Chronyd;
use fleet_tests::wait::poll;

/// Measures until chronyd answers as synchronised, or fails after a deadline with its last
/// answer and its log.
fn wait_synced(
    rt: &tokio::runtime::Runtime,
    chronyd: &mut Chronyd,
    probe: &mut NtpProbe,
) -> (ClockStatus, NtpServerStatus) {
    let mut last = None;
    let synced = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        chronyd.assert_running();
        let status = rt.block_on(probe.measure());
        let st = status.servers[0].clone();
        let synced = st.synced;
        last = Some(st.clone());
        synced.then_some((status, st))
    });
    synced.unwrap_or_else(|| {
        panic!(
            "chronyd on {} never answered as synchronised; last: {last:?}\nlog:\n{}",
            chronyd.addr,
            chronyd.proc.log_text()
        )
    })
}

#[test]
fn chronyd_reports_its_stratum_and_an_offset_near_zero() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut chronyd = Chronyd::start(tmp.path());
    let mut probe = NtpProbe::new(
        vec![chronyd.addr.clone()],
        DEFAULT_TIMEOUT,
        Path::new("/proc"),
    );
    let (status, st) = wait_synced(&rt, &mut chronyd, &mut probe);
    eprintln!("chronyd said: {st:?}\nkernel: {:?}", status.kernel);

    assert!(st.reachable, "{st:?}");
    assert_eq!(st.server, chronyd.addr);
    assert_eq!(st.stratum, 8, "`local stratum 8`: {st:?}");
    assert_eq!(st.leap, 0, "{st:?}");
    assert_eq!(st.error, "");
    // chronyd serves the very clock we read: the offset is the measurement noise.
    assert!(st.offset_ms.abs() < 50.0, "offset {} ms", st.offset_ms);
    assert!(
        st.delay_ms >= 0.0 && st.delay_ms < 50.0,
        "delay {} ms",
        st.delay_ms
    );
    // chronyd's local reference id is 127.127.1.1 ("LOCAL"), shown as an address above stratum 1.
    assert_eq!(st.reference_id, "127.127.1.1");
    assert!(st.precision < 0, "{st:?}");
    // It answers with the poll we asked for, or its own minimum.
    assert!((0..=17).contains(&st.poll), "{st:?}");

    // The kernel view sees this chronyd running.
    let kernel = status.kernel.expect("adjtimex works");
    assert!(
        kernel.chronyd,
        "chronyd runs, so KernelClock.chronyd: {kernel:?}"
    );

    // A second measurement agrees (and chronyd does not rate-limit one request per call).
    let again = rt.block_on(probe.measure()).servers.remove(0);
    assert!(again.synced && again.offset_ms.abs() < 50.0, "{again:?}");

    chronyd.assert_running();
}
