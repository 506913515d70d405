//! KVM or TCG. KVM is used where it can boot the image's kernel; elsewhere qemu emulates the CPU
//! (TCG, about 10-20 times slower: boot to ssh takes a minute or two). `/dev/kvm` existing is not
//! enough: on the machines of this project it is a nested PVM device on which a stock kernel
//! resets before it prints anything. So the decision is a probe: the image's kernel is booted
//! under KVM with no disk and `panic=-1`, and KVM works if within [`PROBE_TIMEOUT`] the kernel gets
//! as far as failing to mount its root (`VFS: Unable to mount root fs` / `Kernel panic`) on the
//! serial console; a real KVM gets there in about a second. The answer is remembered in the image
//! directory per host kernel (`accel-RELEASE`), so the probe runs once per image and host kernel.
//! `FLEET_VM_ACCEL=kvm|tcg` overrides both.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::image::Image;
use crate::procs::{unique_suffix, Reaped};
use crate::wait::poll;

/// How long the KVM probe waits for the kernel to reach its root mount.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// `FLEET_VM_ACCEL`, else the remembered probe, else a new probe (remembered).
    ///
    /// # Panics
    /// If `FLEET_VM_ACCEL` is set to something other than `kvm` or `tcg`.
    pub fn decide(image: &Image) -> Accel {
        if let Ok(v) = std::env::var("FLEET_VM_ACCEL") {
            return Accel::parse(&v)
                .unwrap_or_else(|| panic!("FLEET_VM_ACCEL={v:?}: expected kvm or tcg"));
        }
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let memo = image.dir.join(format!("accel-{}", release.trim()));
        if let Some(a) = std::fs::read_to_string(&memo)
            .ok()
            .and_then(|s| Accel::parse(&s))
        {
            return a;
        }
        let (accel, why) = probe(image);
        eprintln!("VM accelerator: {} ({why})", accel.name());
        let _ = std::fs::write(&memo, accel.name());
        accel
    }

    fn parse(s: &str) -> Option<Accel> {
        match s.trim() {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// The accelerator and CPU model arguments of qemu: the host's CPU under KVM, every feature
    /// TCG emulates otherwise (with several threads, one per vCPU).
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max"],
        }
    }

    /// How long a VM may take from start to ssh: measured here under TCG, 45 s with 2 vCPUs and
    /// up to 100 s with one on an idle machine, 90 s with 2 vCPUs while other builds use both
    /// cores; the deadline leaves room for more. `FLEET_VM_BOOT_TIMEOUT` (seconds) overrides it.
    pub fn boot_timeout(self) -> Duration {
        if let Some(s) = std::env::var("FLEET_VM_BOOT_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return Duration::from_secs(s);
        }
        match self {
            Accel::Kvm => Duration::from_secs(120),
            Accel::Tcg => Duration::from_secs(420),
        }
    }
}

/// Boots the image's kernel under KVM without a disk; see the module doc.
fn probe(image: &Image) -> (Accel, String) {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return (Accel::Tcg, format!("/dev/kvm: {e}"));
    }
    let log = image
        .dir
        .parent()
        .unwrap_or(Path::new("/tmp"))
        .join(format!("kvm-probe-{}.log", unique_suffix()));
    let mut qemu = match Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1"])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(image.kernel())
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => Reaped(child),
        Err(e) => return (Accel::Tcg, format!("qemu-system-x86_64: {e}")),
    };
    let reached = poll(PROBE_TIMEOUT, Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("VFS: Unable to mount root") || text.contains("Kernel panic") {
            return Some(true);
        }
        matches!(qemu.0.try_wait(), Ok(Some(_))).then_some(false)
    });
    drop(qemu);
    let _ = std::fs::remove_file(&log);
    match reached {
        Some(true) => (Accel::Kvm, "the kernel booted under KVM".into()),
        Some(false) => (
            Accel::Tcg,
            "under KVM qemu exited before the kernel's root mount".into(),
        ),
        None => (
            Accel::Tcg,
            format!("under KVM the kernel did not reach its root mount in {PROBE_TIMEOUT:?}"),
        ),
    }
}
