//! The host's mount namespace, as the reference for `exe:` (see `fleet_policy::identity`): which
//! namespace a process must live in, and where a path such as `/usr/sbin/sshd` is looked up.
//!
//! Under systemd the agent runs in a private mount namespace of its own (its unit's
//! `ProtectSystem=`, `PrivateTmp=`, `PrivateMounts=`), so "the host's" is PID 1's:
//! `PROC_ROOT/1/ns/mnt`, with paths resolved under `PROC_ROOT/1/root` (PID 1's root, in PID 1's
//! mount namespace). Reading them needs ptrace access to PID 1 (CAP_SYS_PTRACE). Where the
//! agent cannot read them (a container, a sandbox), the reference is its own namespace
//! (`PROC_ROOT/self/ns/mnt`, paths as they are): then a process in another namespace than the
//! agent's is foreign, which is the host's when the agent runs in it, and fails closed
//! otherwise (no process of another namespace matches `exe:` without
//! `mount_namespaces: any`).
//!
//! Paths are resolved with `openat2(RESOLVE_IN_ROOT)` relative to the root, so an absolute
//! symbolic link on the way (`/etc/alternatives/…`) stays inside it, as it would for PID 1; on
//! kernels without openat2 (before 5.6), with `fstatat` relative to the root.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use fleet_policy::FileId;

use super::procdir::{fstat_id, fstatat_id, open_dir};

/// Whose mount namespace is the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// PID 1's: the host's, seen from any namespace the agent runs in.
    Pid1,
    /// The agent's own (PID 1's could not be read).
    Own,
}

/// The reference mount namespace and its root.
#[derive(Debug)]
pub struct HostView {
    reference: Reference,
    /// The namespace's identity (the device and inode of `ns/mnt`); `None` when even the
    /// agent's own cannot be read: then every process counts as foreign.
    ns: Option<FileId>,
    /// The root paths are resolved under.
    root: Option<OwnedFd>,
    root_path: PathBuf,
    /// Why PID 1's namespace is not the reference, when it is not.
    why_not_pid1: Option<String>,
    /// Path → identity, for the current scan ([`HostView::forget`] empties it).
    cache: HashMap<String, Option<FileId>>,
}

impl HostView {
    /// PID 1's namespace and root under `proc_root` when both can be read, else the agent's own
    /// (`proc_root/self/ns/mnt`, root `/`).
    pub fn detect(proc_root: &Path) -> HostView {
        let pid1 = proc_root.join("1");
        let ns = open_dir(&pid1, libc::O_PATH).and_then(|d| fstatat_id(&d, "ns/mnt"));
        let root = open_dir(&pid1.join("root"), libc::O_PATH);
        match (ns, root) {
            (Ok(ns), Ok(root)) => HostView {
                reference: Reference::Pid1,
                ns: Some(ns),
                root: Some(root),
                root_path: pid1.join("root"),
                why_not_pid1: None,
                cache: HashMap::new(),
            },
            (ns, root) => {
                let why = match (ns, root) {
                    (Err(e), _) => format!("{}: {e}", pid1.join("ns/mnt").display()),
                    (_, Err(e)) => format!("{}: {e}", pid1.join("root").display()),
                    _ => unreachable!("both readable is the other arm"),
                };
                let own = proc_root.join("self");
                HostView {
                    reference: Reference::Own,
                    ns: open_dir(&own, libc::O_PATH)
                        .and_then(|d| fstatat_id(&d, "ns/mnt"))
                        .ok(),
                    root: open_dir(Path::new("/"), libc::O_PATH).ok(),
                    root_path: PathBuf::from("/"),
                    why_not_pid1: Some(why),
                    cache: HashMap::new(),
                }
            }
        }
    }

    /// Whose namespace is the reference.
    pub fn reference(&self) -> Reference {
        self.reference
    }

    /// Why PID 1's namespace is not the reference (the error reading it), when it is not.
    pub fn why_not_pid1(&self) -> Option<&str> {
        self.why_not_pid1.as_deref()
    }

    /// The root paths are resolved under (`PROC_ROOT/1/root` or `/`).
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// Whether a process whose `ns/mnt` reads `ns` lives elsewhere than the reference; an
    /// unreadable one (`None`) is foreign, as is every process when the reference is unknown.
    pub fn is_foreign(&self, ns: Option<FileId>) -> bool {
        match (self.ns, ns) {
            (Some(reference), Some(ns)) => reference != ns,
            _ => true,
        }
    }

    /// The identity of the file at the absolute `path` in the reference namespace (cached until
    /// [`HostView::forget`]); `None` when there is none or it cannot be read.
    pub fn file_id(&mut self, path: &str) -> Option<FileId> {
        if let Some(id) = self.cache.get(path) {
            return *id;
        }
        let id = self.resolve(path).ok();
        self.cache.insert(path.to_string(), id);
        id
    }

    /// Forgets the cached identities: files may have been replaced since (call once per scan).
    pub fn forget(&mut self) {
        self.cache.clear();
    }

    fn resolve(&self, path: &str) -> io::Result<FileId> {
        let root = self
            .root
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let relative = path.trim_start_matches('/');
        if relative.is_empty() || !path.starts_with('/') {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        match openat2_in_root(root, relative) {
            Ok(fd) => fstat_id(&fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => fstatat_id(root, relative),
            Err(e) => Err(e),
        }
    }
}

/// `openat2(root, relative, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: the file at
/// `relative` as if `root` were `/`.
fn openat2_in_root(root: &OwnedFd, relative: &str) -> io::Result<OwnedFd> {
    let name = CString::new(relative).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: open_how is a plain C struct; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `name` is NUL-terminated, `how` is a valid open_how of the size passed; the
    // returned descriptor, if any, is ours.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
