//! Reading systemd unit files (deploy/systemd/, and the units the Ansible roles install), and
//! having systemd's own parser check them.

use std::path::Path;
use std::process::Command;

/// The values of `key` in a unit's `[Service]` section, in order.
pub fn service_values(unit: &str, key: &str) -> Vec<String> {
    let mut in_service = false;
    let mut values = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if let Some((k, v)) = line.split_once('=').filter(|_| in_service) {
            if k == key {
                values.push(v.to_owned());
            }
        }
    }
    values
}

/// Runs `systemd-analyze verify` (the program `analyze`, see
/// [`caps::systemd_analyze`](crate::caps::systemd_analyze)) on `units`.
///
/// # Panics
/// Unless it succeeds and says nothing, with what it said.
pub fn assert_verified(analyze: &Path, units: &[&Path]) {
    let out = Command::new(analyze)
        .arg("verify")
        .args(units)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {units:?}: {said}"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_service_section_counts() {
        let unit = "[Unit]\nUser=no\n[Service]\nExecStartPre=/a\nUser=me\nExecStartPre=/b\n[Install]\nUser=no\n";
        assert_eq!(super::service_values(unit, "User"), ["me"]);
        assert_eq!(super::service_values(unit, "ExecStartPre"), ["/a", "/b"]);
    }
}
