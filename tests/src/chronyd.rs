//! A real chronyd (Debian package `chrony`) serving NTP on a free loopback port from its `local
//! stratum 8` reference: started with `-x`, so it never touches the system clock, with its own
//! configuration, pid file, drift file and log in the test's directory and no command port or
//! socket. Killed by its pid when dropped, pass or fail.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::caps;
use crate::net::free_udp_port;
use crate::procs::Proc;

/// A chronyd this test started.
pub struct Chronyd {
    pub proc: Proc,
    /// `127.0.0.1:PORT`, where it serves NTP.
    pub addr: String,
}

impl Chronyd {
    /// Starts one with its files in `dir` (`chrony.conf`, `chronyd.pid`, `chrony.drift`,
    /// `chronyd.log`). It may take a moment to answer, and longer to answer as synchronised.
    ///
    /// # Panics
    /// If chronyd is not installed (naming the package) or does not start.
    pub fn start(dir: &Path) -> Chronyd {
        let program = caps::require(caps::chronyd());
        // A UDP port free now; chronyd binds it right after.
        let port = free_udp_port();
        let d = dir.display();
        let conf = dir.join("chrony.conf");
        std::fs::write(
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
        let mut cmd = Command::new(program);
        // -x: never touch the system clock. -d: stay in the foreground, log to stderr.
        cmd.arg("-x").arg("-d").arg("-f").arg(&conf);
        // As root, chronyd would drop to its packaged user, which cannot write the test's
        // directory; it stays root (it does not touch the clock: -x).
        if caps::root().is_ok() {
            cmd.arg("-u").arg("root");
        }
        let proc = Proc::start(
            cmd.stdin(Stdio::null()).stdout(Stdio::null()),
            &dir.join("chronyd.log"),
        );
        Chronyd {
            proc,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// # Panics
    /// With chronyd's log, if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.proc.child.try_wait() {
            panic!("chronyd exited ({status}):\n{}", self.proc.log_text());
        }
    }
}
