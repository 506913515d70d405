//! The example configs shipped in deploy/ must parse and validate, and the systemd units must be
//! what the Ansible roles install with their default paths.

use std::collections::BTreeMap;

use fleet_tests::paths::{bin_dir, read_workspace_file as read, workspace_path as repo};
use fleet_tests::systemd::{assert_verified, service_values};
use fleet_tests::{caps, skip_unless};

#[test]
fn agent_example_config_is_valid() {
    let file = fleet_agent::config::Options::parse(&read("deploy/config/agent.toml"), "agent.toml")
        .unwrap();
    let s = fleet_agent::config::Settings::resolve(file, Default::default()).unwrap();
    assert_eq!(s.cluster, "prod");
    assert_eq!(s.labels["role"], "web");
    assert!(s.tls.is_some());
}

#[test]
fn collector_example_config_is_valid() {
    let file = fleet_collector::config::Options::parse(
        &read("deploy/config/collector.toml"),
        "collector.toml",
    )
    .unwrap();
    let s = fleet_collector::config::Settings::resolve(file, Default::default()).unwrap();
    assert_eq!(s.retention, std::time::Duration::from_secs(30 * 86400));
    assert!(s.tls.is_some());
}

/// The variables of a role's defaults (fleet_common's first, as its dependency), scalars only,
/// with their `{{ var }}` references resolved as Jinja would.
fn role_defaults(role: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for r in ["fleet_common", role] {
        let text = read(&format!("deploy/ansible/roles/{r}/defaults/main.yml"));
        let map: BTreeMap<String, serde_norway::Value> = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("roles/{r}/defaults/main.yml: {e}"));
        for (k, v) in map {
            let v = match v {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            vars.insert(k, v);
        }
    }
    // Resolve `{{ name }}` inside values until nothing changes (defaults are not cyclic).
    for _ in 0..10 {
        let snapshot = vars.clone();
        for v in vars.values_mut() {
            *v = substitute(v, &snapshot, false);
        }
    }
    vars
}

/// Replaces each `{{ name }}` by its value. With `strict`, a reference that is not a plain
/// variable of `vars` (a filter, an expression) or any `{%` block fails the test: the unit
/// templates must stay plain text with variables, so that their defaults are deploy/systemd/.
fn substitute(text: &str, vars: &BTreeMap<String, String>, strict: bool) -> String {
    assert!(
        !strict || !text.contains("{%"),
        "control block in a unit template"
    );
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let end = start + rest[start..].find("}}").expect("unclosed {{");
        let name = rest[start + 2..end].trim();
        out.push_str(&rest[..start]);
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None if strict => panic!("{{{{ {name} }}}} is not a plain default variable"),
            None => out.push_str(&rest[start..end + 2]),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The agent role's `fleet_agent_capabilities` with its defaults (the kernel log on, policies
/// enforced): the kmsg and the policy capabilities. It is a Jinja expression over them, which
/// [`role_defaults`] does not evaluate; tests/tests/ansible.rs has Ansible render it with the
/// kernel log off and with policies off.
fn default_agent_capabilities(vars: &BTreeMap<String, String>) -> String {
    let expression = &vars["fleet_agent_capabilities"];
    for used in [
        "fleet_kmsg_path",
        "fleet_agent_kmsg_capabilities",
        "fleet_agent_enforce_policies",
        "fleet_agent_policy_capabilities",
    ] {
        assert!(expression.contains(used), "{used} in {expression}");
    }
    assert_eq!(vars["fleet_agent_enforce_policies"], "true");
    assert!(!vars["fleet_kmsg_path"].is_empty());
    format!(
        "{} {}",
        vars["fleet_agent_kmsg_capabilities"], vars["fleet_agent_policy_capabilities"]
    )
}

#[test]
fn systemd_units_are_the_role_templates_with_default_paths() {
    for (unit, role) in [
        ("fleet-agent", "fleet_agent"),
        ("fleet-collector", "fleet_collector"),
    ] {
        let template = read(&format!(
            "deploy/ansible/roles/{role}/templates/{unit}.service.j2"
        ));
        let mut vars = role_defaults(role);
        if role == "fleet_agent" {
            let caps = default_agent_capabilities(&vars);
            vars.insert("fleet_agent_capabilities".into(), caps);
        }
        let rendered = substitute(&template, &vars, true);
        assert_eq!(
            rendered,
            read(&format!("deploy/systemd/{unit}.service")),
            "deploy/systemd/{unit}.service differs from the role's template with its defaults"
        );
    }
}

#[test]
fn systemd_units_check_the_config_first_and_are_hardened() {
    let agent = read("deploy/systemd/fleet-agent.service");
    let collector = read("deploy/systemd/fleet-collector.service");
    let one = |unit: &str, key: &str| -> String {
        let v = service_values(unit, key);
        assert_eq!(v.len(), 1, "{key}: {v:?}");
        v[0].clone()
    };
    for (unit, name, config) in [
        (&agent, "fleet-agent", "agent.toml"),
        (&collector, "fleet-collector", "collector.toml"),
    ] {
        assert_eq!(
            one(unit, "ExecStartPre"),
            format!("/usr/local/bin/{name} --config /etc/fleet/{config} --check-config")
        );
        assert_eq!(
            one(unit, "ExecStart"),
            format!("/usr/local/bin/{name} --config /etc/fleet/{config}")
        );
        assert_eq!(one(unit, "User"), name);
        assert_eq!(one(unit, "StateDirectory"), name);
        assert_eq!(one(unit, "ConfigurationDirectory"), "fleet");
        for (key, value) in [
            ("Restart", "on-failure"),
            ("RestartPreventExitStatus", "2"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
        ] {
            assert_eq!(one(unit, key), value, "{name}: {key}");
        }
    }
    let caps = "CAP_SYSLOG CAP_SYS_RESOURCE CAP_DAC_OVERRIDE CAP_SYS_PTRACE";
    assert_eq!(one(&agent, "CapabilityBoundingSet"), caps);
    assert_eq!(one(&agent, "AmbientCapabilities"), caps);
    // Each capability has its reason next to it.
    for cap in caps.split(' ') {
        assert!(
            agent
                .lines()
                .any(|l| l.starts_with(&format!("# - {cap}: "))),
            "no reason given for {cap} in the agent's unit"
        );
    }
    // The agent reads /dev/kmsg and calls adjtimex: nothing may take those away.
    for key in [
        "ProtectKernelLogs",
        "ProtectClock",
        "PrivateDevices",
        "ProtectProc",
    ] {
        assert!(
            service_values(&agent, key).is_empty(),
            "{key} in the agent's unit"
        );
    }
    assert_eq!(one(&collector, "CapabilityBoundingSet"), "");
    assert_eq!(one(&collector, "AmbientCapabilities"), "");
}

/// Every task that writes or copies a private key (the CA's and the collector's, made by
/// `fleetctl certs init`; an agent's, by `certs issue`; the copies to the hosts) hides its
/// output (`no_log`) and its `--diff`. tests/tests/ansible.rs runs the playbook with `--diff -v`
/// and looks for the keys in what it printed.
#[test]
fn ansible_tasks_with_private_keys_hide_them() {
    let mut checked = Vec::new();
    // Every task file of every role (install and uninstall); a task that only deletes a key
    // file (`ansible.builtin.file`, state absent) shows nothing of it.
    for role in ["fleet_common", "fleet_collector", "fleet_agent"] {
        let dir = format!("deploy/ansible/roles/{role}/tasks");
        let mut files: Vec<String> = std::fs::read_dir(repo(&dir))
            .unwrap()
            .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        files.sort_by_key(|f| (!f.ends_with("/present.yml"), f.clone()));
        for file in files {
            let tasks: Vec<serde_norway::Value> =
                serde_norway::from_str(&read(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            for task in tasks {
                let text = serde_norway::to_string(&task).unwrap();
                let name = task["name"].as_str().unwrap_or("?").to_owned();
                if task.get("ansible.builtin.file").is_some() {
                    continue;
                }
                if text.contains("key.pem") || text.contains("- certs") || text.contains("'certs'")
                {
                    assert_eq!(
                        task["no_log"].as_bool(),
                        Some(true),
                        "{file}: {name}: no_log"
                    );
                    assert_eq!(task["diff"].as_bool(), Some(false), "{file}: {name}: diff");
                    checked.push(name);
                }
            }
        }
    }
    assert_eq!(
        checked,
        [
            "Fleet CA and collector certificate (on the controller)",
            "Collector key",
            "Agent certificate (on the controller)",
            "Agent key"
        ]
    );
}

/// systemd's own parser accepts the units (where `systemd-analyze` is installed), with the
/// binaries of this build in place of /usr/local/bin.
#[test]
fn systemd_analyze_verifies_the_units() {
    let analyze = skip_unless!(
        "systemd_analyze_verifies_the_units",
        caps::systemd_analyze()
    );
    let bin_dir = bin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for unit in ["fleet-agent.service", "fleet-collector.service"] {
        let text = read(&format!("deploy/systemd/{unit}"))
            .replace("/usr/local/bin", &bin_dir.display().to_string());
        let path = tmp.path().join(unit);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let files: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    assert_verified(&analyze, &files);
}
