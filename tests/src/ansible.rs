//! Reading what `ansible-playbook` printed: the PLAY RECAP counters of a host (`changed`,
//! `failed`, ...), for the Ansible tests on this machine and on the VMs.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

/// The counters of `host`'s line in the PLAY RECAP of `stdout`.
///
/// # Panics
/// If there is no such line, with the output.
pub fn recap(stdout: &str, host: &str) -> BTreeMap<String, u64> {
    let line = stdout
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no PLAY RECAP line for {host}:\n{stdout}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

/// Runs `ansible-playbook` (`program`) in `dir` with `args`, with nothing of this machine's
/// Ansible setup: the config is `dir/ansible.cfg` (written empty if missing), no colours, no
/// retry files, Ansible's local temporary files under `dir`. Returns its stdout.
///
/// # Panics
/// If it cannot be started or fails, with its output.
pub fn run_playbook(program: &Path, dir: &Path, args: &[&OsStr]) -> String {
    let config = dir.join("ansible.cfg");
    if !config.exists() {
        std::fs::write(&config, "").unwrap();
    }
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .stdin(Stdio::null())
        .output()
        .expect("run ansible-playbook");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ansible-playbook {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
