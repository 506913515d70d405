//! The VM image: made by `scripts/vm-image` (debootstrap of Debian 12 turned into a qcow2 with its
//! own kernel and initrd; the script's header says what the guest holds), once per machine and
//! recipe, in `/var/tmp/fleet-vm/image-KEY/`. Here: find it, building it first if needed, and
//! make a VM's copy-on-write overlay of it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::paths::workspace_path;

/// A built image: its directory and the files a VM boots from.
#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
    /// How long [`Image::ensure`] took: the cold build, or the look-up of a cached image.
    pub ensured_in: Duration,
}

impl Image {
    /// The image of the current recipe, built by `scripts/vm-image` if this machine lacks it
    /// (a few minutes, with Debian's mirror; the script installs qemu and debootstrap first).
    ///
    /// # Panics
    /// If the script fails, with what it printed.
    pub fn ensure() -> Image {
        let t0 = Instant::now();
        let script = workspace_path("scripts/vm-image");
        let out = Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "scripts/vm-image failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
        let image = Image {
            dir,
            ensured_in: t0.elapsed(),
        };
        for f in [
            image.base(),
            image.kernel(),
            image.initrd(),
            image.host_key(),
        ] {
            assert!(f.exists(), "scripts/vm-image did not make {}", f.display());
        }
        image
    }

    /// The root file system, never written by a VM.
    pub fn base(&self) -> PathBuf {
        self.dir.join("base.qcow2")
    }

    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }

    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.img")
    }

    /// The guest's ssh host key (public), which the run's known_hosts trusts.
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key.pub")
    }

    /// How long the cold build of this image took, as the script recorded it.
    pub fn build_seconds(&self) -> Option<u64> {
        std::fs::read_to_string(self.dir.join("build-seconds"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Makes `overlay`, a qcow2 whose reads fall through to the base and whose writes stay in it.
    ///
    /// # Panics
    /// If `qemu-img` fails, with its message.
    pub fn overlay(&self, overlay: &Path) {
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(self.base())
            .arg(overlay)
            .output()
            .expect("run qemu-img (qemu-utils)");
        assert!(
            out.status.success(),
            "qemu-img create {}: {}",
            overlay.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
