//! A small filesystem of the test's own ([`Tmpfs`]): a tmpfs of a given size mounted on a
//! directory of the test (root only), that a filler file fills to the last byte ([`Tmpfs::fill`])
//! to give a daemon on it a full disk without touching any other filesystem. Unmounted when
//! dropped, also when the test fails.

use std::ffi::CString;
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The name of the filler file at the root of the mount.
const FILLER: &str = "filler";
/// The most write calls [`Tmpfs::fill`] makes before it gives up (a filesystem that never fills).
const MAX_FILL_WRITES: usize = 1 << 16;

/// A tmpfs mounted by this test; unmounted (lazily: a process still inside does not keep it)
/// when dropped. Drop it after the processes that use it: declare it before them.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Creates `dir` and mounts a tmpfs of `size_bytes` on it.
    ///
    /// # Panics
    /// If it cannot be mounted (not root, or no mount permission in this container), saying why.
    pub fn mount(dir: &Path, size_bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let c = |s: &[u8]| CString::new(s).expect("no NUL byte");
        let (source, target, fstype) =
            (c(b"fleet-test"), c(dir.as_os_str().as_bytes()), c(b"tmpfs"));
        let data = c(format!("size={size_bytes},mode=0755").as_bytes());
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount a tmpfs on {} (the test runs as root): {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
        Tmpfs {
            path: dir.to_path_buf(),
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a filler file until the filesystem has no byte left (`ENOSPC`); returns its size.
    ///
    /// # Panics
    /// On another error, or if the filesystem does not fill.
    pub fn fill(&self) -> u64 {
        let mut f = std::fs::File::create(self.filler()).expect("create the filler");
        let mut written = 0u64;
        let mut chunk = 1 << 20;
        for _ in 0..MAX_FILL_WRITES {
            match f.write(&vec![0u8; chunk]) {
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == ErrorKind::StorageFull && chunk > 1 => chunk /= 16,
                Err(e) if e.kind() == ErrorKind::StorageFull => return written,
                Err(e) => panic!("write the filler: {e}"),
            }
        }
        panic!("{} is not full after {written} bytes", self.path.display());
    }

    /// The filler file [`Tmpfs::fill`] writes, at the root of the mount.
    pub fn filler(&self) -> PathBuf {
        self.path.join(FILLER)
    }

    /// Removes the filler file: the space comes back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.path.as_os_str().as_bytes()) {
            // SAFETY: a NUL-terminated path that outlives the call.
            unsafe {
                libc::umount2(target.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}
