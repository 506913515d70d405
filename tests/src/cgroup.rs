//! A memory cgroup with a small limit, so that a test's OOM kill stays inside it (never a
//! system-wide OOM): cgroup v1 (`memory` hierarchy) or v2 (a cgroup2 mount with the memory
//! controller), whichever [`caps::memory_cgroup`] finds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::caps::{self, MemoryController};
use crate::procs::{unique_suffix, with_oom_score_adj, Reaped};
use crate::wait::poll;

/// A memory cgroup this test made, without swap; removed on drop once its processes are gone.
pub struct MemCgroup {
    pub dir: PathBuf,
    /// The path the kernel prints as `task_memcg` (relative to the hierarchy root).
    pub name: String,
}

impl MemCgroup {
    /// Makes a cgroup limited to `limit_bytes`.
    ///
    /// # Panics
    /// Where the machine has no memory controller or the test is not root, saying so.
    pub fn new(limit_bytes: u64) -> MemCgroup {
        let controller = caps::require(caps::memory_cgroup());
        caps::require(caps::root());
        let name = format!("fleet-test-{}", unique_suffix());
        let limit = limit_bytes.to_string();
        let dir = match controller {
            MemoryController::V1(root) => {
                let dir = root.join(&name);
                std::fs::create_dir(&dir).expect("create v1 memory cgroup");
                std::fs::write(dir.join("memory.limit_in_bytes"), &limit).unwrap();
                // No swap escape where memsw accounting exists.
                let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &limit);
                dir
            }
            MemoryController::V2(root) => {
                let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory");
                let dir = root.join(&name);
                std::fs::create_dir(&dir).expect("create v2 cgroup");
                std::fs::write(dir.join("memory.max"), &limit).unwrap();
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                dir
            }
        };
        MemCgroup {
            dir,
            name: format!("/{name}"),
        }
    }

    /// A `sh -c` that moves itself into the cgroup and then runs `script` there (which usually
    /// ends with `exec PROGRAM`, so that the program keeps the shell's pid).
    pub fn shell(&self, script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "echo $$ > {} && {script}",
            self.dir.join("cgroup.procs").display()
        ));
        cmd
    }

    /// Starts `command` inside the cgroup (exec'd by its shell, so it keeps the shell's pid) with
    /// `oom_score_adj` = `adj`, set before exec; its stdout is `stdout`, its stderr discarded.
    pub fn spawn(&self, command: &str, adj: i32, stdout: Stdio) -> Reaped {
        Reaped(
            with_oom_score_adj(&mut self.shell(&format!("exec {command}")), adj)
                .stdout(stdout)
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {command:?} in {}: {e}", self.name)),
        )
    }

    /// How many processes the cgroup's OOM killer has killed (`oom_kill` of v1's
    /// `memory.oom_control` or v2's `memory.events`), where the kernel counts them.
    pub fn oom_kills(&self) -> Option<u64> {
        ["memory.oom_control", "memory.events"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .find_map(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))?
                    .trim()
                    .parse()
                    .ok()
            })
    }

    /// Starts `tail /dev/zero` inside the cgroup: it reads a file without newlines and keeps it
    /// all, so it grows until the cgroup's OOM killer ends it. Bounded by the cgroup limit.
    pub fn spawn_hog(&self) -> Child {
        self.shell("exec tail /dev/zero")
            .spawn()
            .expect("start the memory hog")
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // The kernel refuses while the cgroup still has (dying) processes.
        let _ = poll(Duration::from_secs(5), Duration::from_millis(20), || {
            std::fs::remove_dir(&self.dir).ok()
        });
    }
}
