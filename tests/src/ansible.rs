//! Reading what `ansible-playbook` printed: the PLAY RECAP counters of a host (`changed`,
//! `failed`, ...), for the Ansible tests on this machine and on the VMs.

use std::collections::BTreeMap;

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
