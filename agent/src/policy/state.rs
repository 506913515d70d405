//! The enforcer's state file, `policies.json` in the state directory.
//!
//! ```json
//! {"format":1,
//!  "policies":[{"policy":{"name":"protect-sshd","target":{"cluster":"prod"},
//!               "match":{"exe":"/usr/sbin/sshd"},"oom_score_adj":-1000},
//!               "version":3,"matched":[[812,1234567]],"images":[[812,65024,9125890]]}],
//!  "originals":[{"pid":812,"starttime":1234567,"oom_score_adj":0}]}
//! ```
//!
//! `matched` lists `[pid, starttime]` of the processes each policy applies to, `images` the
//! `[pid, device, inode]` of the running image each of them had when it matched (absent in
//! files of older agents: then a process whose binary was replaced since is matched afresh);
//! `originals` the value each process had before any policy changed it. A process is a pid *and* its starttime
//! (field 22 of /proc/PID/stat), so a reused pid is never restored to another process's value.
//! The file is replaced atomically (write to `policies.json.tmp`, fsync, rename, fsync the
//! directory): after a crash it holds either the old or the new state.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use fleet_policy::Policy;
use serde::{Deserialize, Serialize};

/// The file name in the state directory.
pub const STATE_FILE: &str = "policies.json";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct StateFile {
    pub format: u32,
    pub policies: Vec<StoredPolicy>,
    pub originals: Vec<StoredOriginal>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub policy: Policy,
    pub version: u64,
    /// Applied with `--force` (absent in files of older agents: not forced).
    #[serde(default)]
    pub forced: bool,
    /// Why the agent's safety check refused this version, if it did.
    #[serde(default)]
    pub blocked: Option<String>,
    pub matched: Vec<(u32, u64)>,
    /// `(pid, device, inode)` of the image each matched process had when it matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<(u32, u64, u64)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredOriginal {
    pub pid: u32,
    pub starttime: u64,
    pub oom_score_adj: i32,
}

impl StateFile {
    pub fn new(policies: Vec<StoredPolicy>, originals: Vec<StoredOriginal>) -> StateFile {
        StateFile {
            format: FORMAT,
            policies,
            originals,
        }
    }
}

/// Loads the state, `None` when there is none yet.
///
/// # Errors
/// The file cannot be read, or is not a state file this agent understands.
pub fn load(dir: &Path) -> io::Result<Option<StateFile>> {
    let path = dir.join(STATE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let state: StateFile = serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    if state.format != FORMAT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: format {} is not {FORMAT} (written by another agent version)",
                path.display(),
                state.format
            ),
        ));
    }
    Ok(Some(state))
}

/// Replaces the state file atomically.
///
/// # Errors
/// The directory or the file cannot be written.
pub fn store(dir: &Path, state: &StateFile) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let bytes = serde_json::to_vec(state).map_err(io::Error::other)?;
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()
}
