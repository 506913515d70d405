//! Reading systemd unit files (deploy/systemd/, and the units the Ansible roles install).

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

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_service_section_counts() {
        let unit = "[Unit]\nUser=no\n[Service]\nExecStartPre=/a\nUser=me\nExecStartPre=/b\n[Install]\nUser=no\n";
        assert_eq!(super::service_values(unit, "User"), ["me"]);
        assert_eq!(super::service_values(unit, "ExecStartPre"), ["/a", "/b"]);
    }
}
