//! Where things are: the workspace binaries under test and the files of the repository.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The target profile directory holding the workspace binaries: the parent of the test
/// executable's `deps/` directory.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf()
}

/// The workspace binary `name` (`fleet-collector`, `fleet-agent`, `fleetctl`, `fleet-fake-ntp`).
///
/// # Panics
/// If it is not built: the suite needs `cargo build --workspace --bins` first (scripts/test does).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, as scripts/test does)",
        path.display()
    );
    path
}

/// A path inside the repository, `rel` from its root (`deploy/ansible/site.yml`).
pub fn workspace_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The text of a repository file, `rel` from its root; panics naming the file.
pub fn read_workspace_file(rel: &str) -> String {
    let p = workspace_path(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The permission bits (`0o600`) of a file; panics naming it.
pub fn file_mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}
