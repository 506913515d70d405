//! One agent per state directory: an exclusive `flock` on `STATE_DIR/lock`, held for the life
//! of the process (the kernel drops it when the process ends, however it ends).
//!
//! Two agents on one state directory would interleave their spool segments and overwrite each
//! other's kernel log cursor and policy state; `fleet-agent release-policies` must not restore
//! values under a running agent that would set them again. Both take this lock first. The file
//! holds the pid of the holder, for the message of the one refused.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The lock file's name in the state directory.
pub const LOCK_FILE: &str = "lock";

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, Error)]
pub enum LockError {
    #[error(
        "another fleet-agent (pid {holder}) uses the state directory {}: stop it first \
         (systemctl stop fleet-agent)",
        dir.display()
    )]
    Held { dir: PathBuf, holder: String },
    #[error("cannot lock the state directory ({}): {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl StateLock {
    /// Takes the lock of `state_dir` (created if missing), without waiting.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process holds it, [`LockError::Io`] when the directory
    /// or file cannot be made.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let path = state_dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        // SAFETY: flock(2) on a descriptor this function owns; it touches no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "unknown".to_string(),
                    pid => pid.to_string(),
                };
                return Err(LockError::Held {
                    dir: state_dir.to_path_buf(),
                    holder,
                });
            }
            return Err(io_err(e));
        }
        let mut write_pid = || -> io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())
        };
        write_pid().map_err(io_err)?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        // flock locks belong to the open file description: a second open in this process is
        // refused like another process would be.
        let err = StateLock::acquire(&state).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(&state.display().to_string()), "{msg}");
        drop(first);
        StateLock::acquire(&state).expect("free again once dropped");
    }
}
