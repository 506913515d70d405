//! One process's `/proc/PID` directory, opened once: every read and write goes through that
//! directory's file descriptor (`openat`, `fstatat`, `readlinkat` relative to it).
//!
//! Why: the descriptor stays bound to the process it was opened for. Once that process has
//! exited, every lookup in it fails with `ESRCH`, even if its pid now names a new process; a
//! path such as `/proc/812/oom_score_adj` would instead reach whichever process holds pid 812
//! now. So a write checks, through the same descriptor, that the process is the one that was
//! matched (its start time, field 22 of `stat`, and, for a policy's value, the device and inode
//! of its running image), and then writes: there is no window in which the pid can change hands.
//!
//! In a fixture tree (tests) `PID` is a plain directory with plain files, `exe` a symbolic link
//! to a file and `ns/mnt` a file (its device and inode stand for the namespace); the same calls
//! work on it.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fleet_policy::FileId;

use super::parse::parse_stat;

/// An opened `/proc/PID` (or fixture) directory.
#[derive(Debug)]
pub struct ProcDir {
    fd: OwnedFd,
}

/// What a write expects of the process: the identity that was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// Field 22 of `stat`: with the pid, the process.
    pub starttime: u64,
    /// The device and inode of the running image, when the write is a policy's value for a
    /// process matched with that image; `None` for restores (the process's own earlier value,
    /// right whatever it runs now) and for processes whose image could not be read.
    pub image: Option<FileId>,
}

/// Why a checked write was not made.
#[derive(Debug)]
pub enum WriteError {
    /// The process exited, or its pid names another process now.
    Gone,
    /// The same process runs another program than the one matched (it exec'd since).
    ImageChanged,
    /// The write itself failed (`EACCES` without CAP_SYS_RESOURCE, say).
    Io(io::Error),
}

fn cstr(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// The `stat` of a path relative to `dir` (following links) as a [`FileId`].
pub(crate) fn fstatat_id(dir: &impl AsRawFd, name: &str) -> io::Result<FileId> {
    let name = cstr(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated, `st` is valid for writes of one `stat`; the descriptor
    // is open for the duration of the call.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok(FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// The `fstat` of an open descriptor as a [`FileId`].
pub(crate) fn fstat_id(fd: &impl AsRawFd) -> io::Result<FileId> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writes of one `stat`; the descriptor is open during the call.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok(FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// `open(path, O_DIRECTORY | flags)`, as `openat(AT_FDCWD, …)`: musl's `open` follows an
/// `O_CLOEXEC` open with an `fcntl` that `openat` does not need.
pub(crate) fn open_dir(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is NUL-terminated; the returned descriptor, if any, is ours.
    let fd = unsafe {
        libc::openat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_DIRECTORY | libc::O_CLOEXEC | flags,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads a process's file (`stat`, `status`, `cmdline`, `cgroup`, `oom_score_adj`, `statm`) or
/// `/proc/loadavg` into `buf` (cleared first), from where `file` stands.
///
/// The kernel produces each of these whole at the first read (a `single_open` file, or
/// `cmdline`, whose read copies until the buffer is full or the arguments end), so a read that
/// leaves room in the buffer got everything, and no second read is made to see the end: one
/// system call for a small file, where `read_to_end` makes four (`fstat`, `lseek`, the read
/// and the empty one). Not for files listed record by record (`/proc/net/dev`), whose reads
/// stop at a page.
///
/// # Errors
/// As read.
pub fn read_whole(file: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        let room = buf.len() - start;
        match file.read(&mut buf[start..]) {
            Ok(n) => {
                buf.truncate(start + n);
                if n < room {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    }
}

impl ProcDir {
    /// Opens `proc_root/PID`.
    ///
    /// # Errors
    /// The process is gone (`NotFound`), or the directory cannot be opened.
    pub fn open(proc_root: &Path, pid: u32) -> io::Result<ProcDir> {
        Ok(ProcDir {
            fd: open_dir(&proc_root.join(pid.to_string()), libc::O_RDONLY)?,
        })
    }

    fn openat(&self, name: &str, flags: libc::c_int) -> io::Result<File> {
        let name = cstr(name)?;
        // SAFETY: `name` is NUL-terminated; the returned descriptor, if any, is ours.
        let fd =
            unsafe { libc::openat(self.fd.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Opens the file `name` of this process for reading; it reads `ESRCH` once the process has
    /// exited, whatever process gets the pid next.
    ///
    /// # Errors
    /// As open.
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        self.openat(name, libc::O_RDONLY)
    }

    /// Reads the file `name` of this process into `buf` (cleared first), with [`read_whole`].
    ///
    /// # Errors
    /// As open and read; `ESRCH` once the process has exited.
    pub fn read(&self, name: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        read_whole(&mut self.open_file(name)?, buf)
    }

    /// The text of the link `name` (`exe`).
    pub fn readlink(&self, name: &str) -> io::Result<String> {
        let name = cstr(name)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `name` is NUL-terminated.
        let n = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        Ok(OsStr::from_bytes(&buf[..n]).to_string_lossy().into_owned())
    }

    /// The device and inode of what the link `name` leads to. For `exe` the kernel resolves the
    /// link to the running image itself, not by its name: a file replaced or mounted over
    /// since, or one visible only in another mount namespace, is still the one running.
    ///
    /// # Errors
    /// As fstatat (`EACCES` without ptrace access to the process, `ESRCH` once it exited).
    pub fn target_id(&self, name: &str) -> io::Result<FileId> {
        fstatat_id(&self.fd, name)
    }

    /// Field 22 of `stat`, read now; `None` when the process exited or `stat` does not parse.
    pub fn starttime(&self) -> Option<u64> {
        let mut buf = Vec::with_capacity(512);
        self.read("stat", &mut buf).ok()?;
        parse_stat(&buf).map(|s| s.starttime)
    }

    /// The file `name`, trimmed, as text.
    pub fn read_text(&self, name: &str) -> Option<String> {
        let mut buf = Vec::new();
        self.read(name, &mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf).trim().to_string())
    }

    /// Writes `oom_score_adj` after checking, through this descriptor, that the process is the
    /// one `expect` describes.
    ///
    /// # Errors
    /// [`WriteError`]: gone, another image, or what the write said.
    pub fn write_oom_score_adj(&self, value: i32, expect: Expect) -> Result<(), WriteError> {
        if self.starttime() != Some(expect.starttime) {
            return Err(WriteError::Gone);
        }
        if let Some(image) = expect.image {
            match self.target_id("exe") {
                Ok(now) if now == image => {}
                Ok(_) => return Err(WriteError::ImageChanged),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(WriteError::Gone),
                // The image was readable when matched and is not now: not the same as matched.
                Err(_) => return Err(WriteError::ImageChanged),
            }
        }
        let gone = |e: io::Error| match (e.kind(), e.raw_os_error()) {
            (io::ErrorKind::NotFound, _) | (_, Some(libc::ESRCH)) => WriteError::Gone,
            _ => WriteError::Io(e),
        };
        // O_TRUNC as a shell's `>` does: procfs ignores it, a fixture's plain file needs it.
        self.openat("oom_score_adj", libc::O_WRONLY | libc::O_TRUNC)
            .map_err(gone)?
            .write_all(format!("{value}\n").as_bytes())
            .map_err(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A real short-lived child: the descriptor opened while it ran refuses every lookup once it
    /// has exited and been reaped, whatever process gets its pid next.
    #[test]
    fn a_descriptor_outlives_its_process_but_reaches_no_other() {
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        let dir = ProcDir::open(Path::new("/proc"), child.id()).unwrap();
        let starttime = dir.starttime().unwrap();
        let own = {
            let mut buf = Vec::new();
            dir.read("oom_score_adj", &mut buf).unwrap();
            String::from_utf8(buf)
                .unwrap()
                .trim()
                .parse::<i32>()
                .unwrap()
        };
        let image = dir.target_id("exe").unwrap();
        let expect = Expect {
            starttime,
            image: Some(image),
        };
        // Raising a value needs no privilege.
        dir.write_oom_score_adj(own.max(0) + 1, expect).unwrap();
        // Another start time or another image: not the process that was matched.
        let other = Expect {
            starttime: starttime + 1,
            ..expect
        };
        assert!(matches!(
            dir.write_oom_score_adj(900, other),
            Err(WriteError::Gone)
        ));
        let exec = Expect {
            image: Some(FileId { dev: 0, ino: 1 }),
            ..expect
        };
        assert!(matches!(
            dir.write_oom_score_adj(900, exec),
            Err(WriteError::ImageChanged)
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        let mut buf = Vec::new();
        let err = dir.read("stat", &mut buf).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");
        assert!(matches!(
            dir.write_oom_score_adj(900, expect),
            Err(WriteError::Gone)
        ));
    }
}
