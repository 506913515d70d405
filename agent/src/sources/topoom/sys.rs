//! The thin system-call layer under the scanner: one open directory fd for the proc root, read
//! with `getdents64` into a reused buffer, and per-process files opened relative to it with
//! `openat`, so listing and reading allocate nothing and no path is ever built on the heap.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// The proc root, open as a directory.
#[derive(Debug)]
pub struct ProcDir {
    dir: File,
}

impl ProcDir {
    pub fn open(path: &Path) -> io::Result<ProcDir> {
        // `File::open` opens directories too (O_RDONLY | O_CLOEXEC); O_DIRECTORY is checked by
        // the first getdents64, which fails with ENOTDIR on anything else.
        Ok(ProcDir {
            dir: File::open(path)?,
        })
    }

    /// Back to the first entry, so the same fd lists the current processes again.
    pub fn rewind(&mut self) -> io::Result<()> {
        self.dir.seek(SeekFrom::Start(0)).map(drop)
    }

    /// The next batch of raw `linux_dirent64` records into `buf`; 0 at the end.
    pub fn read_entries(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`, which is valid
            // and exclusively borrowed for the call; the fd is open for as long as `self`.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    self.dir.as_raw_fd(),
                    buf.as_mut_ptr().cast::<libc::c_void>(),
                    buf.len(),
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Reads the file at `rel` (relative to the proc root) into `buf`: until the end of the
    /// file or until `buf` is full, whichever comes first (the rest of a longer file is not
    /// needed). With `one_line`, a first read that ends in a newline is taken as the whole file:
    /// the kernel's single-value files return everything in one read, which saves the read
    /// that would only confirm the end. Returns the number of bytes read.
    pub fn read_file(&self, rel: &CStr, buf: &mut [u8], one_line: bool) -> io::Result<usize> {
        // SAFETY: `rel` is NUL-terminated and outlives the call; the directory fd is open for
        // as long as `self`.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                rel.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by openat and is owned by nothing else; the File
        // closes it when dropped.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    if one_line && buf[filled - 1] == b'\n' {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

/// The inode numbers and names in a buffer of `linux_dirent64` records as getdents64 returns
/// them: `u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type, char d_name[]` (NUL-terminated,
/// padded to `d_reclen`). Stops at a record that does not fit, instead of trusting its length.
///
/// In `/proc`, a pid directory's inode number stays the same for as long as the kernel keeps
/// that process's directory entry, and a new process under a reused pid gets a new one: the
/// scanner uses the pair to recognise a process it has seen before.
pub fn dirents(buf: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    const NAME: usize = 19;
    let mut rest = buf;
    std::iter::from_fn(move || {
        let reclen = usize::from(u16::from_ne_bytes([*rest.get(16)?, *rest.get(17)?]));
        if reclen <= NAME || reclen > rest.len() {
            return None;
        }
        let (rec, tail) = rest.split_at(reclen);
        rest = tail;
        let ino = u64::from_ne_bytes(rec[..8].try_into().expect("8 bytes"));
        let name = &rec[NAME..];
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some((ino, &name[..len]))
    })
}

/// CPU time (user + system) consumed so far by the calling thread; `None` if the clock is not
/// available.
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// The page size in KiB (statm counts pages); 4 if the system will not say.
pub fn page_kb() -> u64 {
    // SAFETY: sysconf reads a constant and has no preconditions.
    let bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(bytes)
        .ok()
        .filter(|&b| b >= 1024)
        .map_or(4, |b| b / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &[u8], reclen: u16) -> Vec<u8> {
        let mut r = vec![0u8; usize::from(reclen)];
        r[..8].copy_from_slice(&u64::from(reclen).to_ne_bytes());
        r[16..18].copy_from_slice(&reclen.to_ne_bytes());
        r[18] = 4; // DT_DIR
        r[19..19 + name.len()].copy_from_slice(name);
        r
    }

    #[test]
    fn dirents_of_a_buffer() {
        let mut buf = record(b"1", 24);
        buf.extend(record(b"self", 24));
        buf.extend(record(b"4194304", 32));
        let names: Vec<(u64, &[u8])> = dirents(&buf).collect();
        assert_eq!(names, [(24, &b"1"[..]), (24, b"self"), (32, b"4194304")]);

        // Truncated or garbled records end the batch instead of panicking.
        assert_eq!(dirents(&buf[..30]).count(), 1);
        assert_eq!(dirents(&buf[..17]).count(), 0);
        let mut bad = record(b"2", 24);
        bad[16..18].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(dirents(&bad).count(), 0);
        let mut bad = record(b"2", 24);
        bad[16..18].copy_from_slice(&400u16.to_ne_bytes());
        assert_eq!(dirents(&bad).count(), 0);
    }

    #[test]
    fn lists_and_reads_relative_to_the_dir() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("7")).unwrap();
        std::fs::write(tmp.path().join("7/oom_score"), b"12\n").unwrap();
        let mut dir = ProcDir::open(tmp.path()).unwrap();
        let mut dents = vec![0u8; 4096];
        for _ in 0..2 {
            dir.rewind().unwrap();
            let n = dir.read_entries(&mut dents).unwrap();
            let names: Vec<&[u8]> = dirents(&dents[..n]).map(|(_, name)| name).collect();
            assert!(names.contains(&&b"7"[..]), "{names:?}");
            assert_eq!(dir.read_entries(&mut dents).unwrap(), 0);
        }
        let mut buf = [0u8; 8];
        assert_eq!(dir.read_file(c"7/oom_score", &mut buf, true).unwrap(), 3);
        assert_eq!(&buf[..3], b"12\n");
        assert_eq!(
            dir.read_file(c"7/oom_score", &mut buf[..2], false).unwrap(),
            2
        );
        let e = dir.read_file(c"8/oom_score", &mut buf, true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(thread_cpu_time().is_some());
        assert!(page_kb() >= 4);
    }
}
