//! The test bed of real hosts (issue 13): Debian 12 virtual machines under qemu, booted by the
//! tests, with systemd as PID 1, cgroup v2, sshd and chrony, reached only over ssh from this
//! machine. README "Test bed (VMs)" describes it for people; `scripts/vm` boots one by hand.
//!
//! - [`image`]: the VM image (`scripts/vm-image`: debootstrap → qcow2 with its own kernel and
//!   initrd, built once per machine and cached under `/var/tmp/fleet-vm`).
//! - [`accel`]: KVM where it boots a kernel, TCG (software emulation) otherwise, decided by a
//!   probe boot and remembered per image and host kernel.
//! - [`qemu`]: what a VM is made of ([`VmConfig`]: name, vCPUs, memory, forwards to loopback
//!   services, the share of binaries, a link to a second VM) and the qemu command line for it
//!   (pure, so its safety properties are unit-tested: `restrict=on`, loopback only).
//! - [`ssh`]: the per-run key and known_hosts, and the `ssh` command line that uses them.
//! - [`machine`]: a running VM ([`Vm`]): started, waited for until ssh answers, commands run
//!   over ssh, powered off; at drop its qemu (by pid) is stopped and its overlay deleted.
//!
//! A [`TestBed`] is one test's run: it makes sure the image exists, decides the accelerator, makes
//! the run's directory (`/var/tmp/fleet-vm/runs/PID-NANOS`: key, known_hosts, each VM's overlay,
//! seed and logs) and holds the machine-wide VM lock, so that tests, test binaries and clones on
//! this 2-core machine boot their VMs one test at a time. Everything goes when the bed and its
//! VMs are dropped; the serial console and qemu's log of a VM dropped during a panic are kept in
//! `/var/tmp/fleet-vm/logs/`.
//!
//! Network: each VM has qemu's user network with `restrict=on` (it reaches nothing on this
//! machine or beyond, except:) ssh forwarded from a free port on 127.0.0.1, and each
//! [`GuestFwd`]: a TCP address in the guest (`10.0.2.100:PORT`) whose connections qemu hands to a
//! `socat` connected to a loopback port the test listens on (the collector). Two VMs can share a
//! point-to-point link ([`Lan::pair`]), a qemu `dgram` socket network over two loopback UDP
//! ports, with addresses 10.0.3.1 and 10.0.3.2.

pub mod accel;
pub mod image;
pub mod machine;
pub mod qemu;
pub mod ssh;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use accel::Accel;
pub use image::Image;
pub use machine::Vm;
pub use qemu::{GuestFwd, Lan, LanLink, VmConfig, GUEST_FWD_ADDR};
pub use ssh::SshKey;

use crate::procs::unique_suffix;
use crate::wait::poll;

/// The directory of the image cache, run directories and kept logs: `FLEET_VM_CACHE`, default
/// `/var/tmp/fleet-vm` (outside the clone, like the cargo target directory).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("FLEET_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/fleet-vm"))
}

/// How long [`TestBed::prepare`] waits for another test's VMs to be done (the machine-wide lock).
const LOCK_WAIT: Duration = Duration::from_secs(40 * 60);

/// One test's run of the test bed: the image, the accelerator, the run's key and directory, and
/// the machine-wide VM lock. VMs started from it keep the run alive ([`Arc`]) until they are
/// dropped too.
pub struct TestBed {
    pub image: Image,
    pub accel: Accel,
    run: Arc<Run>,
}

/// The run's directory and lock, shared by the bed and its VMs; deleted when the last goes.
pub(crate) struct Run {
    pub(crate) dir: PathBuf,
    pub(crate) key: SshKey,
    /// Held (flock) for the run's life: one test's VMs at a time on this machine.
    _lock: File,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestBed {
    /// Builds the image if this machine has none for the current recipe (minutes, once), decides
    /// KVM or TCG, waits for the machine-wide VM lock and makes the run's key and directory.
    ///
    /// # Panics
    /// If the image cannot be built, the lock is not free within 40 minutes, or the run's files
    /// cannot be made, saying which.
    pub fn prepare() -> TestBed {
        let cache = cache_dir();
        std::fs::create_dir_all(cache.join("runs")).expect("create the VM cache directory");
        let lock = lock_vms(&cache.join(".vm-lock"));
        remove_stale_runs(&cache.join("runs"));
        let image = Image::ensure();
        let accel = Accel::decide(&image);
        let dir = cache.join("runs").join(unique_suffix());
        std::fs::create_dir_all(&dir).expect("create the run directory");
        let key = SshKey::generate(&dir, &image);
        TestBed {
            image,
            accel,
            run: Arc::new(Run {
                dir,
                key,
                _lock: lock,
            }),
        }
    }

    /// The run's directory (the VMs' overlays, seeds and logs live below it).
    pub fn dir(&self) -> &Path {
        &self.run.dir
    }

    /// Starts a VM without waiting for it (two VMs boot side by side); then
    /// [`Vm::wait_for_ssh`].
    pub fn start(&self, config: VmConfig) -> Vm {
        Vm::start(&self.image, self.accel, self.run.clone(), config)
    }

    /// Starts a VM and waits until root can log in over ssh.
    pub fn boot(&self, config: VmConfig) -> Vm {
        let mut vm = self.start(config);
        vm.wait_for_ssh();
        vm
    }

    /// A directory of the run holding (hard links to, else copies of) the workspace binaries
    /// `names`, for [`VmConfig::share`]: the guest sees them read-only at `/mnt/fleet`.
    pub fn binaries_share(&self, names: &[&str]) -> PathBuf {
        let share = self.run.dir.join("share");
        std::fs::create_dir_all(&share).unwrap();
        for name in names {
            let from = crate::paths::bin(name);
            let to = share.join(name);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to)
                    .unwrap_or_else(|e| panic!("copy {} into the share: {e}", from.display()));
            }
        }
        share
    }
}

/// Takes the machine-wide VM lock (`flock` on `path`), polling up to [`LOCK_WAIT`].
fn lock_vms(path: &Path) -> File {
    let file = File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut said = false;
    let got = poll(LOCK_WAIT, Duration::from_secs(1), || {
        // SAFETY: flock on a descriptor this function owns; LOCK_NB never blocks.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 && !said {
            eprintln!(
                "waiting for another test's VMs to finish ({})",
                path.display()
            );
            said = true;
        }
        (r == 0).then_some(())
    });
    assert!(
        got.is_some(),
        "the VM lock {} was held for {LOCK_WAIT:?}",
        path.display()
    );
    file
}

/// Deletes run directories left by test processes that are gone (killed before their drop):
/// their names start with the pid.
fn remove_stale_runs(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
