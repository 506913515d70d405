//! A running VM: its qemu process (started by this test, ended by its pid), its files in the run
//! directory (`RUN/NAME/`: the overlay, the seed share, the serial console's log, qemu's own log
//! and pid file), and ssh to its root.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accel::Accel;
use super::image::Image;
use super::qemu::{command_line, VmConfig, VmFiles};
use super::{cache_dir, Run};
use crate::net::free_port;
use crate::procs::{unique_suffix, Proc};
use crate::wait::poll;

/// How many serial logs of failed runs `/var/tmp/fleet-vm/logs/` keeps (the newest).
const KEPT_LOGS: usize = 20;

/// A VM this test started. Dropping it stops its qemu (SIGTERM, then SIGKILL after 5 s) and
/// deletes its files; during a panic its serial console and qemu logs are kept first.
pub struct Vm {
    pub config: VmConfig,
    /// The port on 127.0.0.1 forwarded to the guest's sshd.
    pub ssh_port: u16,
    /// From the start of qemu to the first successful ssh login, once [`Vm::wait_for_ssh`] saw
    /// it.
    pub boot_time: Option<Duration>,
    accel: Accel,
    dir: PathBuf,
    files: VmFiles,
    qemu: Proc,
    started: Instant,
    run: Arc<Run>,
}

impl Vm {
    /// Makes the VM's overlay and seed (the run's public key, its LAN address) and starts qemu.
    ///
    /// # Panics
    /// If a VM of that name exists in this run, or its files or qemu cannot be made or started.
    pub(crate) fn start(image: &Image, accel: Accel, run: Arc<Run>, config: VmConfig) -> Vm {
        let dir = run.dir.join(&config.name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("VM {} in this run: {e}", config.name));
        let files = VmFiles {
            overlay: dir.join("disk.qcow2"),
            seed: dir.join("seed"),
            serial_log: dir.join("serial.log"),
            pidfile: dir.join("qemu.pid"),
        };
        std::fs::create_dir_all(files.seed.join("network")).unwrap();
        std::fs::write(files.seed.join("authorized_keys"), run.key.public()).unwrap();
        if let Some(l) = &config.lan {
            std::fs::write(files.seed.join("network/10-lan.network"), l.network_file()).unwrap();
        }
        image.overlay(&files.overlay);
        let ssh_port = free_port();
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(command_line(&config, accel, image, &files, ssh_port))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: prctl between fork and exec is async-signal-safe and touches no memory. qemu
        // gets SIGTERM if the thread that started it ends without dropping the Vm (a test killed
        // by a signal): no VM outlives its test.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let started = Instant::now();
        let qemu = Proc::start(&mut cmd, &dir.join("qemu.log"));
        Vm {
            config,
            ssh_port,
            boot_time: None,
            accel,
            dir,
            files,
            qemu,
            started,
            run,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The pid of its qemu.
    pub fn pid(&self) -> u32 {
        self.qemu.child.id()
    }

    /// Waits until root logs in over ssh (the accelerator's boot deadline), and returns the time
    /// from start to then (also kept in [`Vm::boot_time`]).
    ///
    /// # Panics
    /// If qemu exits or the deadline passes first, with the end of the serial console.
    pub fn wait_for_ssh(&mut self) -> Duration {
        let timeout = self.accel.boot_timeout();
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if !self.qemu.running() {
                panic!(
                    "VM {}: qemu exited while booting; qemu log:\n{}\nserial console (end):\n{}",
                    self.name(),
                    self.qemu.log_text(),
                    self.serial_tail(40)
                );
            }
            if self.ssh("true").status.success() {
                let t = self.started.elapsed();
                self.boot_time = Some(t);
                return t;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!(
            "VM {}: no ssh login within {timeout:?} ({}); serial console (end):\n{}",
            self.name(),
            self.accel.name(),
            self.serial_tail(40)
        );
    }

    /// `ssh` to the guest's root, ready for the remote command (and stdin) to be added.
    pub fn ssh_command(&self) -> Command {
        let mut cmd = self.run.key.command(self.ssh_port);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `script` in the guest's root shell over ssh and returns what it did (ssh's exit
    /// status 255 means the login itself failed).
    pub fn ssh(&self, script: &str) -> Output {
        self.ssh_command()
            .arg(script)
            .output()
            .expect("run ssh (openssh-client)")
    }

    /// Runs `script` over ssh and returns its stdout, trimmed.
    ///
    /// # Panics
    /// If it fails, with its status and stderr.
    #[track_caller]
    pub fn sh(&self, script: &str) -> String {
        let out = self.ssh(script);
        assert!(
            out.status.success(),
            "VM {}: `{script}` failed ({}):\n{}{}",
            self.name(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The inventory variables that let Ansible log in to this VM as the tests do
    /// (`ansible_host=127.0.0.1 ansible_port=... ansible_user=root ...`).
    pub fn ansible_vars(&self) -> String {
        format!(
            "ansible_host=127.0.0.1 ansible_port={} ansible_user=root \
             ansible_ssh_private_key_file={} ansible_ssh_common_args='{}'",
            self.ssh_port,
            self.run.key.private.display(),
            self.run.key.options().join(" ")
        )
    }

    /// What the guest wrote on its serial console so far (kernel and systemd messages).
    pub fn serial_log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.files.serial_log).unwrap_or_default())
            .into_owned()
    }

    fn serial_tail(&self, lines: usize) -> String {
        let log = self.serial_log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The guest kernel's boot id (`/proc/sys/kernel/random/boot_id`), new at every boot.
    pub fn boot_id(&self) -> String {
        self.sh("cat /proc/sys/kernel/random/boot_id")
    }

    /// `systemctl reboot` in the guest (qemu resets the machine and boots it again, same disk),
    /// then waits until ssh logs in to a new boot; returns how long that took.
    ///
    /// # Panics
    /// If qemu exits, or no new boot answers within the boot timeout.
    pub fn reboot(&mut self) -> Duration {
        let t0 = Instant::now();
        let before = self.boot_id();
        // ssh may see the connection close before it returns: its status does not matter.
        let _ = self.ssh("systemctl reboot");
        let timeout = self.accel.boot_timeout();
        while t0.elapsed() < timeout {
            assert!(
                self.qemu.running(),
                "VM {}: qemu exited during the reboot; serial console (end):\n{}",
                self.name(),
                self.serial_tail(40)
            );
            let out = self.ssh("cat /proc/sys/kernel/random/boot_id");
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() != before {
                return t0.elapsed();
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!(
            "VM {}: no ssh login to a new boot within {timeout:?}; serial console (end):\n{}",
            self.name(),
            self.serial_tail(40)
        );
    }

    /// `systemctl poweroff` in the guest, then waits for qemu to exit; returns how long that took.
    ///
    /// # Panics
    /// If qemu still runs after `timeout`.
    pub fn poweroff(&mut self, timeout: Duration) -> Duration {
        let t0 = Instant::now();
        // ssh may see the connection close before it returns: its status does not matter.
        let _ = self.ssh("systemctl poweroff");
        let qemu = &mut self.qemu.child;
        let exited = poll(timeout, Duration::from_millis(200), || {
            qemu.try_wait().ok().flatten()
        });
        assert!(
            exited.is_some(),
            "VM {}: still running {timeout:?} after `systemctl poweroff`; serial console:\n{}",
            self.name(),
            self.serial_tail(30)
        );
        t0.elapsed()
    }

    /// Keeps the VM's serial console and qemu log in `/var/tmp/fleet-vm/logs/` (the newest
    /// [`KEPT_LOGS`]), and says where.
    fn keep_logs(&self) {
        let logs = cache_dir().join("logs");
        if std::fs::create_dir_all(&logs).is_err() {
            return;
        }
        let stem = format!("{}-{}", self.name(), unique_suffix());
        for (from, suffix) in [
            (self.files.serial_log.as_path(), "serial.log"),
            (self.qemu.log.as_path(), "qemu.log"),
        ] {
            let to = logs.join(format!("{stem}.{suffix}"));
            if std::fs::copy(from, &to).is_ok() {
                eprintln!("VM {}: kept {}", self.name(), to.display());
            }
        }
        prune_logs(&logs);
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep_logs();
        }
        if self.qemu.running() {
            // qemu quits at once on SIGTERM; the guest's disk is thrown away anyway.
            let _ = self.qemu.signal(libc::SIGTERM);
            let qemu = &mut self.qemu.child;
            if poll(Duration::from_secs(5), Duration::from_millis(100), || {
                qemu.try_wait().ok().flatten()
            })
            .is_none()
            {
                self.qemu.kill9();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deletes all but the newest [`KEPT_LOGS`] files of `dir`.
fn prune_logs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(KEPT_LOGS);
    for (_, p) in files.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}
