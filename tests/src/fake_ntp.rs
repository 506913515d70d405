//! This crate's `fleet-fake-ntp` (src/bin/fleet-fake-ntp.rs) on a loopback port: an NTP server
//! whose offset the test sets, also while it runs, through a control file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::paths::bin;
use crate::procs::Proc;

/// A fake NTP server this test started.
pub struct FakeNtp {
    pub proc: Proc,
    /// `127.0.0.1:PORT`, for the agent's `--ntp-server`.
    pub addr: String,
    control: PathBuf,
}

impl FakeNtp {
    /// Starts one answering with `offset_ms`; its control file and log are `dir/NAME.ctl` and
    /// `dir/NAME.log`.
    pub fn start(dir: &Path, name: &str, offset_ms: i64) -> FakeNtp {
        let control = dir.join(format!("{name}.ctl"));
        std::fs::write(&control, format!("offset_ms={offset_ms}\n")).unwrap();
        let mut proc = Proc::start(
            Command::new(bin("fleet-fake-ntp"))
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--offset-ms",
                    &offset_ms.to_string(),
                    "--control-file",
                ])
                .arg(&control)
                .stdout(Stdio::piped()),
            &dir.join(format!("{name}.log")),
        );
        let addr = proc.listening_addr();
        FakeNtp {
            proc,
            addr,
            control,
        }
    }

    /// From now on it answers with `offset_ms`.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        std::fs::write(&self.control, format!("offset_ms={offset_ms}\n")).unwrap();
    }
}
