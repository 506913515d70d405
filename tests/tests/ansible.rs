//! The Ansible playbook (deploy/ansible/site.yml), run for real against this machine: localhost
//! in the groups `prod` and `collector`, every path under a temporary directory (`fleet_root`),
//! the binaries of this build. A `--check` run on the fresh target succeeds and writes nothing, a
//! real run installs everything, and a second run (and a `--check` after it) changes nothing; an
//! agent certificate bound to no cluster is issued anew, bound, by the next run.
//! Then the daemons are started as their installed units start them: the units' `ExecStartPre`
//! (the config check) and `ExecStart` command lines are run as written, and data flows over
//! mutual TLS with the certificates the run issued, which `fleetctl hosts` shows with a viewer
//! certificate issued from the same CA.
//!
//! What systemd would add and this test does not: the unit's user (the role is told to use the
//! test's own user instead of creating `fleet-agent`/`fleet-collector`), the capability sets and
//! the sandboxing. The command lines hold no `%` specifier or `$` variable, so systemd would run
//! them exactly as they are run here.
//!
//! The run that makes and copies the private keys is `--diff -v`, and none of the keys may show
//! in its output. A last run with `fleet_agent_enforce_policies: false` takes the policy
//! capabilities out of the agent's unit, and changes nothing else.
//!
//! Skipped, with a message, only where `ansible-playbook` is missing (scripts/test installs
//! Debian's `ansible`).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet_tests::ansible::recap;
use fleet_tests::paths::{file_mode as mode, workspace_path as repo};
use fleet_tests::systemd::{assert_verified, service_values as unit_values};
use fleet_tests::{bin, caps, free_port, skip_unless, wait_for, Proc};

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("run id");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An Exec line as systemd would run it: these have no prefix (`-`, `+`, `!`, `@`, `:`), no
/// `%` specifier, no `$` variable and no quoting, so splitting on whitespace is systemd's split.
fn argv(line: &str) -> Vec<String> {
    assert!(
        !line.contains(['%', '$', '"', '\'', '\\']) && !line.starts_with(['-', '+', '!', '@', ':']),
        "the test runs Exec lines verbatim; this one needs systemd's processing: {line}"
    );
    line.split_whitespace().map(str::to_owned).collect()
}

fn run_unit_pre(unit: &str) {
    let pre = unit_values(unit, "ExecStartPre");
    assert_eq!(pre.len(), 1, "{unit}");
    let argv = argv(&pre[0]);
    let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        pre[0],
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "config OK\n");
}

/// Starts the unit's ExecStart, stderr to `log`.
fn start_unit(unit: &str, log: &Path, stdout: Stdio) -> Proc {
    let start = unit_values(unit, "ExecStart");
    assert_eq!(start.len(), 1, "{unit}");
    let argv = argv(&start[0]);
    Proc::start(
        Command::new(&argv[0])
            .args(&argv[1..])
            .env("RUST_LOG", "info")
            .stdout(stdout),
        log,
    )
}

#[test]
fn playbook_deploys_agent_and_collector_idempotently() {
    let ansible_playbook = skip_unless!(
        "playbook_deploys_agent_and_collector_idempotently",
        caps::ansible_playbook()
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let pki = tmp.path().join("pki");
    let port = free_port();
    let host_id = "ansible-host-1";

    std::fs::write(
        tmp.path().join("inventory.ini"),
        format!(
            "[collector]\n\
             localhost ansible_connection=local \
             ansible_python_interpreter=\"{{{{ ansible_playbook_python }}}}\"\n\n\
             [prod]\n\
             localhost fleet_host_id={host_id}\n\n\
             [prod:vars]\n\
             fleet_cluster=prod\n\n\
             [agents:children]\n\
             prod\n"
        ),
    )
    .unwrap();
    // A snapshot of this build's binaries: the controller-side `fleet_binaries_dir`, unchanged
    // between the runs even if the build directory is rebuilt meanwhile.
    // The agent comes from elsewhere (`fleet_agent_binary`, as a build of the `agent` profile
    // would): the binaries directory has none.
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    for name in ["fleet-collector", "fleetctl"] {
        std::fs::copy(bin(name), bin_dir.join(name)).unwrap();
    }
    let agent_build = tmp.path().join("agent-build");
    std::fs::create_dir(&agent_build).unwrap();
    std::fs::copy(bin("fleet-agent"), agent_build.join("fleet-agent")).unwrap();
    let vars = serde_json::json!({
        "fleet_root": root,
        "fleet_binaries_dir": bin_dir,
        "fleet_agent_binary": agent_build.join("fleet-agent"),
        "fleet_pki_dir": pki,
        "fleet_collector_host": "localhost",
        "fleet_collector_port": port,
        "fleet_collector_listen": format!("127.0.0.1:{port}"),
        "fleet_interval": "1s",
        // The kernel log is shared by every test on this host (see fleet_tests::start_agent), and
        // NTP queries stay on loopback (nothing answers on the discard port).
        "fleet_kmsg_path": "",
        "fleet_ntp_servers": ["127.0.0.1:9"],
        "fleet_labels": {"role": "test", "deployed-by": "ansible"},
        // No system users and no systemd: the test's own user owns the keys and state.
        "fleet_create_users": false,
        "fleet_manage_service": false,
        "fleet_agent_user": id("-un"),
        "fleet_agent_group": id("-gn"),
        "fleet_collector_user": id("-un"),
        "fleet_collector_group": id("-gn"),
        "ansible_become": false,
    });
    std::fs::write(tmp.path().join("vars.json"), vars.to_string()).unwrap();
    // An empty config: neither /etc/ansible/ansible.cfg nor ~/.ansible.cfg applies.
    std::fs::write(tmp.path().join("ansible.cfg"), "").unwrap();
    let ansible_tmp = tmp.path().join("ansible-tmp");
    let site = repo("deploy/ansible/site.yml");

    let playbook = |extra: &[&str]| -> Output {
        let started = Instant::now();
        let out = Command::new(&ansible_playbook)
            .current_dir(tmp.path())
            .args(["-i", "inventory.ini", "-e", "@vars.json"])
            .arg(&site)
            .args(extra)
            .env("ANSIBLE_CONFIG", tmp.path().join("ansible.cfg"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env("ANSIBLE_LOCAL_TEMP", &ansible_tmp)
            .env("ANSIBLE_REMOTE_TEMP", &ansible_tmp)
            .stdin(Stdio::null())
            .output()
            .expect("run ansible-playbook");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ansible-playbook {extra:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "ansible-playbook {extra:?}: {:.1} s, {:?}",
            started.elapsed().as_secs_f64(),
            recap(&stdout, "localhost")
        );
        out
    };

    // --check on the fresh target: succeeds, changes nothing anywhere.
    let out = playbook(&["--check", "--diff"]);
    let counts = recap(&String::from_utf8_lossy(&out.stdout), "localhost");
    assert_eq!(counts["failed"], 0);
    assert!(counts["changed"] > 0, "{counts:?}");
    assert!(
        !root.exists() && !pki.exists(),
        "--check wrote files: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The run that makes the keys and copies them, with everything `--diff -v` shows.
    let out = playbook(&["--diff", "-v"]);
    assert!(recap(&String::from_utf8_lossy(&out.stdout), "localhost")["changed"] > 0);
    assert_no_key_material(&out, &pki, host_id);
    // A second run, and a --check after it, change nothing.
    for extra in [&[][..], &["--check"][..]] {
        let out = playbook(extra);
        let counts = recap(&String::from_utf8_lossy(&out.stdout), "localhost");
        assert_eq!(
            (counts["changed"], counts["failed"]),
            (0, 0),
            "ansible-playbook {extra:?} changed something:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // `fleetctl certs issue ARGS --dir PKI` with the controller's fleetctl, as an operator runs
    // it; its stderr.
    let issue = |args: &[&str]| {
        let out = Command::new(bin_dir.join("fleetctl"))
            .args(["certs", "issue"])
            .args(args)
            .arg("--dir")
            .arg(&pki)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // The agent's certificate is bound to its cluster. One bound to none (issued before clusters
    // were bound) is issued anew, bound, by the next run, which a rerun then leaves alone.
    let agent_cert = ["--role", "agent", "--name", host_id];
    let ensure_agent_cert =
        || issue(&[&agent_cert[..], &["--cluster", "prod", "--ensure"]].concat());
    assert!(ensure_agent_cert().contains("kept "));
    for f in [format!("{host_id}.pem"), format!("{host_id}-key.pem")] {
        std::fs::remove_file(pki.join(f)).unwrap();
    }
    issue(&agent_cert);
    let out = playbook(&[]);
    assert!(recap(&String::from_utf8_lossy(&out.stdout), "localhost")["changed"] > 0);
    assert!(ensure_agent_cert().contains("kept "));
    let out = playbook(&[]);
    assert_eq!(
        recap(&String::from_utf8_lossy(&out.stdout), "localhost")["changed"],
        0
    );

    // What the run installed.
    let tls = root.join("etc/fleet/tls");
    for key in ["agent-key.pem", "collector-key.pem"] {
        assert_eq!(mode(&tls.join(key)), 0o600, "{key}");
    }
    for cert in ["agent.pem", "collector.pem", "ca.pem"] {
        assert_eq!(mode(&tls.join(cert)), 0o644, "{cert}");
    }
    assert_eq!(mode(&pki.join("ca-key.pem")), 0o600);
    assert_eq!(
        std::fs::read(pki.join(format!("{host_id}.pem"))).unwrap(),
        std::fs::read(tls.join("agent.pem")).unwrap(),
        "the agent's certificate is the one issued for its host id"
    );
    assert_eq!(mode(&root.join("usr/local/bin/fleet-agent")), 0o755);
    assert_eq!(
        std::fs::read(root.join("usr/local/bin/fleet-agent")).unwrap(),
        std::fs::read(agent_build.join("fleet-agent")).unwrap(),
        "the agent installed is fleet_agent_binary"
    );
    // The rendered configs, through the daemons' own parsers.
    let config = |name: &str| std::fs::read_to_string(root.join("etc/fleet").join(name)).unwrap();
    let agent = fleet_agent::config::Settings::resolve(
        fleet_agent::config::Options::parse(&config("agent.toml"), "agent.toml").unwrap(),
        Default::default(),
    )
    .unwrap();
    assert_eq!(agent.host_id.as_deref(), Some(host_id));
    assert_eq!(agent.cluster, "prod");
    assert_eq!(agent.labels["deployed-by"], "ansible");
    assert_eq!(agent.collector, format!("https://localhost:{port}"));
    assert_eq!(agent.interval, Duration::from_secs(1));
    assert_eq!(agent.kmsg_path, None);
    let agent_tls = agent.tls.expect("agent TLS");
    assert_eq!(agent_tls.cert, Some(tls.join("agent.pem")));
    assert_eq!(agent_tls.key, Some(tls.join("agent-key.pem")));
    let collector = fleet_collector::config::Settings::resolve(
        fleet_collector::config::Options::parse(&config("collector.toml"), "collector.toml")
            .unwrap(),
        Default::default(),
    )
    .unwrap();
    assert_eq!(collector.listen.to_string(), format!("127.0.0.1:{port}"));
    assert_eq!(collector.tls_ca, Some(tls.join("ca.pem")));
    assert_eq!(collector.data_dir, root.join("var/lib/fleet-collector"));
    let units = root.join("etc/systemd/system");
    let collector_unit = std::fs::read_to_string(units.join("fleet-collector.service")).unwrap();
    let agent_unit = std::fs::read_to_string(units.join("fleet-agent.service")).unwrap();

    // Start them as the units would, collector first.
    run_unit_pre(&collector_unit);
    let mut collector = start_unit(
        &collector_unit,
        &tmp.path().join("collector.log"),
        Stdio::piped(),
    );
    let line = collector.first_stdout_line();
    assert_eq!(
        line,
        format!("listening on 127.0.0.1:{port}"),
        "{}",
        collector.log_text()
    );
    run_unit_pre(&agent_unit);
    let mut agent = start_unit(&agent_unit, &tmp.path().join("agent.log"), Stdio::null());

    // A viewer's certificate from the same CA, as an operator would issue one.
    issue(&["--role", "viewer", "--name", "test-viewer"]);
    let url = format!("https://localhost:{port}");
    let hosts = |client_cert: bool| {
        let mut cmd = Command::new(bin_dir.join("fleetctl"));
        cmd.args(["--collector", &url, "-o", "json"])
            .arg("--tls-ca")
            .arg(pki.join("ca.pem"));
        if client_cert {
            cmd.arg("--tls-cert")
                .arg(pki.join("test-viewer.pem"))
                .arg("--tls-key")
                .arg(pki.join("test-viewer-key.pem"));
        }
        cmd.arg("hosts").output().unwrap()
    };
    let host = wait_for(
        "the agent's data at the collector",
        Duration::from_secs(30),
        || {
            assert!(agent.running(), "agent exited: {}", agent.log_text());
            assert!(
                collector.running(),
                "collector exited: {}",
                collector.log_text()
            );
            let out = hosts(true);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let host = v
                .as_array()?
                .iter()
                .find(|h| h["host_id"] == host_id)?
                .clone();
            (host["last_seq"].as_u64()? >= 2).then_some(host)
        },
    );
    assert_eq!(host["connected"], true, "{host}");
    assert_eq!(host["cluster"], "prod", "{host}");
    assert_eq!(host["labels"]["role"], "test", "{host}");
    assert_eq!(host["labels"]["deployed-by"], "ansible", "{host}");

    // Mutual TLS is on: without a client certificate fleetctl is refused.
    let out = hosts(false);
    assert!(
        !out.status.success(),
        "a client without a certificate was served: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    assert_eq!(
        agent.term(Duration::from_secs(15)),
        Some(0),
        "{}",
        agent.log_text()
    );
    assert_eq!(
        collector.term(Duration::from_secs(30)),
        Some(0),
        "{}",
        collector.log_text()
    );

    // The agent's capabilities: the kernel log is off here (fleet_kmsg_path ""), so no
    // CAP_SYSLOG; policies are enforced by default. A host that enforces none gets nothing.
    let caps = |unit: &str| {
        let bounding = unit_values(unit, "CapabilityBoundingSet");
        assert_eq!(bounding, unit_values(unit, "AmbientCapabilities"), "{unit}");
        bounding
    };
    assert_eq!(
        caps(&agent_unit),
        ["CAP_SYS_RESOURCE CAP_DAC_OVERRIDE CAP_SYS_PTRACE"]
    );
    verify_unit(&units.join("fleet-agent.service"));
    let no_policies = tmp.path().join("no-policies.json");
    std::fs::write(&no_policies, r#"{"fleet_agent_enforce_policies": false}"#).unwrap();
    let no_policies = format!("@{}", no_policies.display());
    let out = playbook(&["-e", &no_policies]);
    assert_eq!(
        recap(&String::from_utf8_lossy(&out.stdout), "localhost")["changed"],
        1,
        "only the agent's unit changes"
    );
    let agent_unit = std::fs::read_to_string(units.join("fleet-agent.service")).unwrap();
    assert_eq!(caps(&agent_unit), [""]);
    verify_unit(&units.join("fleet-agent.service"));

    // Uninstall (fleet_state: absent, the collector's data purged too): every file the runs
    // installed goes; only the system's directories for programs and units stay, empty. Then
    // it changes nothing.
    let absent = [
        "-e",
        "fleet_state=absent",
        "-e",
        "fleet_collector_purge_data=true",
    ];
    let out = playbook(&absent);
    assert!(recap(&String::from_utf8_lossy(&out.stdout), "localhost")["changed"] > 0);
    let left: Vec<_> = walkdir(&root).into_iter().filter(|p| !p.is_dir()).collect();
    assert!(left.is_empty(), "left after uninstall: {left:?}");
    assert!(!root.join("etc/fleet").exists());
    let out = playbook(&absent);
    assert_eq!(
        recap(&String::from_utf8_lossy(&out.stdout), "localhost")["changed"],
        0,
        "a second uninstall changes nothing"
    );
}

/// Every path under `dir`, depth first.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        }
        out.push(path);
    }
    out
}

/// No line of the body of any private key the run made (the CA's, the collector's, the agent's)
/// is in what `ansible-playbook` printed.
fn assert_no_key_material(out: &Output, pki: &Path, host_id: &str) {
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for key in [
        "ca-key.pem".to_owned(),
        "collector-key.pem".to_owned(),
        format!("{host_id}-key.pem"),
    ] {
        let pem = std::fs::read_to_string(pki.join(&key)).unwrap();
        let body: Vec<&str> = pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .collect();
        assert!(!body.is_empty(), "{key}: no PEM body");
        for line in body {
            assert!(
                !printed.contains(line),
                "ansible-playbook printed a line of {key}:\n{printed}"
            );
        }
    }
}

/// `systemd-analyze verify` accepts the unit (where it is installed; its binaries exist under the
/// test's root).
fn verify_unit(unit: &Path) {
    if let Ok(analyze) = caps::systemd_analyze() {
        assert_verified(&analyze, &[unit]);
    }
}

#[test]
fn example_inventory_and_playbook_parse() {
    let test = "example_inventory_and_playbook_parse";
    let inventory = skip_unless!(test, caps::ansible_inventory());
    let playbook = skip_unless!(test, caps::ansible_playbook());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("ansible.cfg"), "").unwrap();
    let example = repo("deploy/ansible/inventory.example.ini");
    let out = Command::new(inventory)
        .current_dir(tmp.path())
        .env("ANSIBLE_CONFIG", tmp.path().join("ansible.cfg"))
        .arg("-i")
        .arg(&example)
        .arg("--list")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = |group: &str| -> Vec<String> {
        inv[group]["hosts"]
            .as_array()
            .map(|a| a.iter().map(|h| h.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(hosts("collector"), ["fleet-collector.example.net"]);
    assert_eq!(hosts("prod").len(), 3);
    assert_eq!(hosts("staging"), ["staging-1.example.net"]);
    let children: Vec<&str> = inv["agents"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(children, ["prod", "staging"]);
    let vars = &inv["_meta"]["hostvars"];
    assert_eq!(vars["web-1.example.net"]["fleet_cluster"], "prod");
    assert_eq!(vars["staging-1.example.net"]["fleet_cluster"], "staging");
    assert_eq!(vars["db-1.example.net"]["fleet_host_id"], "db-1");

    let out = Command::new(playbook)
        .current_dir(tmp.path())
        .env("ANSIBLE_CONFIG", tmp.path().join("ansible.cfg"))
        .arg("-i")
        .arg(&example)
        .arg("--syntax-check")
        .arg(repo("deploy/ansible/site.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
