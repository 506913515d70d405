//! Harness for the end-to-end tests: starts the real binaries on loopback, waits on conditions
//! with deadlines, and ends only the processes it started, by pid.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The directory holding the workspace binaries (next to this test's `deps/` directory).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, as scripts/test does)",
        path.display()
    );
    path
}

/// Polls `f` until it returns Some or the deadline passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal(child: &Child, sig: i32) {
    // Only processes this harness started, by their pid.
    let pid = child.id() as i32;
    // SAFETY: kill(2) with a pid we own; no memory is touched.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A process this test started; killed with SIGKILL when dropped if still running.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn kill9(&mut self) {
        signal(&self.child, libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (up to `timeout`) and returns the exit status code.
    pub fn term(&mut self, timeout: Duration) -> Option<i32> {
        signal(&self.child, libc::SIGTERM);
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if Instant::now() > end {
                self.kill9();
                panic!(
                    "process {} did not stop within {timeout:?} of SIGTERM; log:\n{}",
                    self.child.id(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            self.kill9();
        }
    }
}

/// A loopback port free now (for servers that cannot take port 0 and say which they got).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A collector started with `--insecure` on loopback.
pub struct Collector {
    pub proc: Proc,
    pub addr: String,
    pub data_dir: PathBuf,
}

impl Collector {
    /// Starts on `listen` (use "127.0.0.1:0" for a free port) and waits until it serves.
    pub fn start(data_dir: &Path, listen: &str, extra: &[&str]) -> Collector {
        let mut args = vec!["--insecure"];
        args.extend_from_slice(extra);
        Collector::spawn(data_dir, listen, &args)
    }

    /// Starts with exactly these extra arguments (no `--insecure`).
    pub fn spawn(data_dir: &Path, listen: &str, extra: &[&str]) -> Collector {
        let log = data_dir.with_extension(format!("log.{}", rand_suffix()));
        let mut child = Command::new(bin("fleet-collector"))
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("collector log"))
            .spawn()
            .expect("start fleet-collector");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read collector stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "collector did not start: {line:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_string();
        Collector {
            proc: Proc { child, log },
            addr,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Starts an agent at a 1 s interval against `url`, with `--insecure`.
pub fn start_agent(
    url: &str,
    state_dir: &Path,
    host_id: &str,
    cluster: &str,
    extra: &[&str],
) -> Proc {
    let mut args = vec!["--insecure"];
    // The kernel log is shared by every test on this host: only tests about OOM kills read it,
    // so the other tests' batch counts are samples alone.
    if !extra.contains(&"--kmsg-path") {
        args.push("--no-kmsg");
    }
    args.extend_from_slice(extra);
    spawn_agent(url, state_dir, host_id, cluster, &args)
}

/// Starts an agent at a 1 s interval with exactly these extra arguments.
pub fn spawn_agent(
    url: &str,
    state_dir: &Path,
    host_id: &str,
    cluster: &str,
    extra: &[&str],
) -> Proc {
    std::fs::create_dir_all(state_dir).expect("state dir");
    let log = state_dir.join(format!("agent.log.{}", rand_suffix()));
    let child = Command::new(bin("fleet-agent"))
        .args(["--collector", url, "--state-dir"])
        .arg(state_dir)
        .args([
            "--host-id",
            host_id,
            "--hostname",
            host_id,
            "--cluster",
            cluster,
        ])
        .args(["--interval", "1s", "--label", "role=test"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("agent log"))
        .spawn()
        .expect("start fleet-agent");
    Proc { child, log }
}

/// Runs fleetctl against `url` and returns its output.
pub fn fleetctl(url: &str, args: &[&str]) -> Output {
    Command::new(bin("fleetctl"))
        .args(["--collector", url, "--insecure"])
        .args(args)
        .output()
        .expect("run fleetctl")
}

/// Runs fleetctl with `-o json` and parses stdout; panics with stderr on failure.
pub fn fleetctl_json(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = fleetctl(url, &all);
    assert!(
        out.status.success(),
        "fleetctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fleetctl {args:?} printed invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Like [`fleetctl_json`] but returns None instead of panicking (for polling).
pub fn try_fleetctl_json(url: &str, args: &[&str]) -> Option<Value> {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = fleetctl(url, &all);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// A memory cgroup this test made: v1 (`memory` hierarchy) or v2 (a cgroup2 mount with the
/// memory controller). Removed on drop once its processes are gone.
pub struct MemCgroup {
    pub dir: PathBuf,
    /// The path the kernel prints as `task_memcg` (relative to the hierarchy root).
    pub name: String,
}

impl MemCgroup {
    pub fn new(limit_bytes: u64) -> MemCgroup {
        let name = format!("fleet-test-{}-{}", std::process::id(), rand_suffix());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        if v1.join("memory.limit_in_bytes").exists() {
            let dir = v1.join(&name);
            std::fs::create_dir(&dir).expect("create v1 memory cgroup (run as root)");
            std::fs::write(dir.join("memory.limit_in_bytes"), limit_bytes.to_string()).unwrap();
            // No swap escape where memsw accounting exists.
            let _ = std::fs::write(
                dir.join("memory.memsw.limit_in_bytes"),
                limit_bytes.to_string(),
            );
            return MemCgroup {
                dir,
                name: format!("/{name}"),
            };
        }
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let root = Path::new(root);
            let controllers =
                std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory");
                let dir = root.join(&name);
                std::fs::create_dir(&dir).expect("create v2 cgroup (run as root)");
                std::fs::write(dir.join("memory.max"), limit_bytes.to_string()).unwrap();
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                return MemCgroup {
                    dir,
                    name: format!("/{name}"),
                };
            }
        }
        panic!("no memory cgroup controller (v1 or v2) on this host");
    }

    /// Starts `tail /dev/zero` inside the cgroup: it reads a file without newlines and keeps it
    /// all, so it grows until the cgroup's OOM killer ends it. Bounded by the cgroup limit.
    pub fn spawn_hog(&self) -> Child {
        let procs = self.dir.join("cgroup.procs");
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {} && exec tail /dev/zero",
                procs.display()
            ))
            .spawn()
            .expect("start the memory hog")
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
