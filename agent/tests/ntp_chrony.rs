//! The NTP probe against a real chronyd (Debian package `chrony`), serving on a free loopback
//! port from its `local stratum 8` reference, started with `-x` so it never touches the system
//! clock, with its own configuration, pid file and drift file in a temporary directory and no
//! command sockets. It is stopped by its pid when the test ends, pass or fail.
//!
//! chronyd must be installed: CI installs it; without it this test fails and says so.

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet_agent::sources::ntp::{NtpProbe, DEFAULT_TIMEOUT};
use fleet_proto::v1::{ClockStatus, NtpServerStatus};

fn chronyd_binary() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("chronyd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chronyd not found in PATH or /usr/sbin: install the `chrony` package \
                 (apt-get install chrony) to run this test against a real NTP server"
            )
        })
}

/// A chronyd of our own; killed (SIGTERM, then SIGKILL) by its pid on drop.
struct Chronyd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Chronyd {
    fn start() -> Chronyd {
        let bin = chronyd_binary();
        let dir = tempfile::tempdir().unwrap();
        // A free port: bound and released; chronyd binds it right after.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let conf = dir.path().join("chrony.conf");
        fs::write(
            &conf,
            format!(
                "# No sources: serve the local clock as stratum 8.\n\
                 port {port}\n\
                 bindaddress 127.0.0.1\n\
                 local stratum 8\n\
                 allow 127.0.0.1\n\
                 pidfile {d}/chronyd.pid\n\
                 driftfile {d}/chrony.drift\n\
                 # No command port, no command socket.\n\
                 cmdport 0\n\
                 bindcmdaddress /\n"
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("chronyd.log")).unwrap();
        let mut cmd = Command::new(&bin);
        // -x: never touch the system clock. -d: stay in the foreground, log to stderr.
        cmd.arg("-x").arg("-d").arg("-f").arg(&conf);
        // As root, chronyd would drop to its packaged user, which cannot write our temporary
        // directory; stay root (it does not touch the clock: -x).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("-u").arg("root");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Chronyd { child, dir, port }
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("chronyd.log")).unwrap_or_default()
    }

    /// Panics with chronyd's log if it has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("chronyd exited ({status}):\n{}", self.log());
        }
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Measures until chronyd answers as synchronised, or fails after a deadline.
async fn wait_synced(
    chronyd: &mut Chronyd,
    probe: &mut NtpProbe,
) -> (ClockStatus, NtpServerStatus) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        chronyd.assert_running();
        let status = probe.measure().await;
        let st = status.servers[0].clone();
        if st.synced {
            return (status, st);
        }
        if Instant::now() > deadline {
            panic!(
                "chronyd on {} never answered as synchronised; last: {st:?}\nlog:\n{}",
                chronyd.server(),
                chronyd.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn chronyd_reports_its_stratum_and_an_offset_near_zero() {
    let mut chronyd = Chronyd::start();
    let mut probe = NtpProbe::new(vec![chronyd.server()], DEFAULT_TIMEOUT, Path::new("/proc"));
    let (status, st) = wait_synced(&mut chronyd, &mut probe).await;
    eprintln!("chronyd said: {st:?}\nkernel: {:?}", status.kernel);

    assert!(st.reachable, "{st:?}");
    assert_eq!(st.server, chronyd.server());
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
    let again = probe.measure().await.servers.remove(0);
    assert!(again.synced && again.offset_ms.abs() < 50.0, "{again:?}");

    chronyd.assert_running();
    drop(chronyd);
}
