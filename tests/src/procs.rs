//! Processes a test starts: a daemon with its log ([`Proc`]), a plain child reaped on drop
//! ([`Reaped`]) such as a [`sleeper`], a binary run to completion ([`run`]), and what `/proc`
//! says of a pid (command name, `oom_score_adj`, resident set). Signals go only to the pids
//! started here.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::paths::bin;
use crate::wait::poll;

/// A daemon this test started, its stderr in `log`; killed with SIGKILL when dropped if still
/// running.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with its stderr written to `log` (created or truncated).
    ///
    /// # Panics
    /// If the log cannot be created or the program cannot be started, naming it.
    pub fn start(cmd: &mut Command, log: &Path) -> Proc {
        let file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("create log {}: {e}", log.display()));
        let child = cmd
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Sends `sig` to this process, by its pid.
    ///
    /// # Errors
    /// What kill(2) said.
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        signal(&self.child, sig)
    }

    /// SIGKILL, then reaps it.
    pub fn kill9(&mut self) {
        let _ = self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (up to `timeout`) and returns the exit status code.
    ///
    /// # Panics
    /// If it has not stopped by then (it is killed first), with its log.
    pub fn term(&mut self, timeout: Duration) -> Option<i32> {
        let _ = self.signal(libc::SIGTERM);
        let child = &mut self.child;
        match poll(timeout, Duration::from_millis(50), || {
            child.try_wait().ok().flatten()
        }) {
            Some(status) => status.code(),
            None => {
                self.kill9();
                panic!(
                    "process {} did not stop within {timeout:?} of SIGTERM; log:\n{}",
                    self.child.id(),
                    self.log_text()
                );
            }
        }
    }

    /// What it has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The first line it prints on its (piped) stdout, trimmed; stdout is closed afterwards.
    pub fn first_stdout_line(&mut self) -> String {
        self.stdout_lines(1).remove(0)
    }

    /// The first `n` lines it prints on its (piped) stdout, trimmed (empty once it closed
    /// stdout); stdout is closed afterwards.
    pub fn stdout_lines(&mut self, n: usize) -> Vec<String> {
        let mut stdout = BufReader::new(self.child.stdout.take().expect("stdout piped"));
        (0..n)
            .map(|_| {
                let mut line = String::new();
                stdout.read_line(&mut line).expect("read stdout");
                line.trim().to_string()
            })
            .collect()
    }

    /// The address of a server that prints `listening on ADDR` first on its (piped) stdout, as
    /// the collector and fleet-fake-ntp do.
    ///
    /// # Panics
    /// If it printed anything else (it did not start), with its log.
    pub fn listening_addr(&mut self) -> String {
        let line = self.first_stdout_line();
        match line.strip_prefix("listening on ") {
            Some(addr) => addr.to_string(),
            None => panic!(
                "{:?} did not start: {line:?}; log:\n{}",
                self.log,
                self.log_text()
            ),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            self.kill9();
        }
    }
}

/// A child of the test, killed and reaped by its pid when dropped.
pub struct Reaped(pub Child);

impl Reaped {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: i32) -> std::io::Result<()> {
    let pid = i32::try_from(child.id()).expect("pid fits in pid_t");
    // SAFETY: kill(2) on a pid this harness started; no memory is touched.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs the workspace binary `name` with `args` to completion.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"))
}

/// Makes `cmd` start with `oom_score_adj` = `value`, set before exec (raising it needs no
/// privilege; lowering it below the parent's needs CAP_SYS_RESOURCE).
pub fn with_oom_score_adj(cmd: &mut Command, value: i32) -> &mut Command {
    let text = value.to_string().into_bytes();
    // SAFETY: between fork and exec only async-signal-safe calls (open, write, close) on memory
    // prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = libc::write(fd, text.as_ptr().cast(), text.len());
            libc::close(fd);
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A `sleep 300` whose `argv[0]` is `name` (what policies' `cmdline:` rules see), started at
/// `oom_score_adj` = `initial`; returns once its command line reads so.
pub fn sleeper(name: &str, initial: i32) -> Reaped {
    let child = Reaped(
        with_oom_score_adj(Command::new("sleep").arg0(name).arg("300"), initial)
            .spawn()
            .unwrap_or_else(|e| panic!("start sleep: {e}")),
    );
    let path = format!("/proc/{}/cmdline", child.pid());
    crate::wait::wait_for("the sleeper's argv", Duration::from_secs(5), || {
        std::fs::read(&path)
            .ok()
            .filter(|c| c.starts_with(name.as_bytes()))
    });
    child
}

/// The `oom_score_adj` of `pid`.
pub fn oom_score_adj(pid: u32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The command name of `pid` (`/proc/PID/comm`), empty once it is gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The resident set of `pid` in KiB (0 once it is gone).
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 4
}

/// A suffix that makes a name unique on this machine (log files, cgroups).
pub(crate) fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}
