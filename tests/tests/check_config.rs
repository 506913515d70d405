//! `--check-config`, which the systemd units run before starting (ExecStartPre): the real
//! binaries print "config OK" and exit 0 for a good config, or name the field at fault and exit
//! 2, and start nothing either way.

use std::path::Path;
use std::process::Output;

use fleet_tests::{run, Pki};

/// Exit status, stdout, stderr.
fn said(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A CA with the collector's certificate and the agent certificate of `h1`.
fn pki(dir: &Path) -> Pki {
    let pki = Pki::init(dir);
    // Bound to the agent's cluster (the default one, as the configs below do not name one).
    pki.issue("agent", "h1", &["--cluster", "default"]);
    pki
}

#[test]
fn agent_check_config() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name).display().to_string();
    let pki = pki(tmp.path());
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "collector = \"https://localhost:7443\"\nstate_dir = \"{}\"\nhost_id = \"h1\"\n\
             tls_ca = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            t("state"),
            t("ca.pem"),
            t("h1.pem"),
            t("h1-key.pem")
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let out = run("fleet-agent", &["--config", c, "--check-config"]);
    assert_eq!(said(&out), (Some(0), "config OK\n".into(), String::new()));
    assert!(
        !tmp.path().join("state").exists(),
        "the check started something"
    );

    // Flags are checked with the file, as the daemon would take them.
    let out = run(
        "fleet-agent",
        &["--config", c, "--interval", "2h", "--check-config"],
    );
    let (code, stdout, stderr) = said(&out);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert_eq!(stderr, "fleet-agent: interval: 2h is outside 1s..1h\n");

    // A file the config names that cannot be read.
    let out = run(
        "fleet-agent",
        &[
            "--config",
            c,
            "--tls-key",
            &t("missing-key.pem"),
            "--check-config",
        ],
    );
    let (code, _, stderr) = said(&out);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(&format!(
            "fleet-agent: tls_key: cannot read {}: ",
            t("missing-key.pem")
        )),
        "{stderr}"
    );

    // A certificate the collector would refuse: another host's, a viewer's, an expired one.
    pki.issue("agent", "h2", &[])
        .issue("viewer", "ops", &[])
        .issue("agent", "h1-old", &["--not-after", "2026-01-01T00:00:00Z"]);
    let with_cert = |name: &str| {
        run(
            "fleet-agent",
            &[
                "--config",
                c,
                "--tls-cert",
                &t(&format!("{name}.pem")),
                "--tls-key",
                &t(&format!("{name}-key.pem")),
                "--check-config",
            ],
        )
    };
    let (code, _, stderr) = said(&with_cert("h2"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("is for host \"h2\" but this agent's host_id is \"h1\""),
        "{stderr}"
    );
    let (code, _, stderr) = said(&with_cert("ops"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("a viewer certificate"), "{stderr}");
    let (code, _, stderr) = said(&with_cert("h1-old"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is for host \"h1-old\""), "{stderr}");
    let out = run(
        "fleet-agent",
        &[
            "--config",
            c,
            "--host-id",
            "h1-old",
            "--tls-cert",
            &t("h1-old.pem"),
            "--tls-key",
            &t("h1-old-key.pem"),
            "--check-config",
        ],
    );
    let (code, _, stderr) = said(&out);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(!tmp.path().join("state").exists(), "nothing started");

    // An unknown key in the file.
    std::fs::write(&config, "colector = \"x\"\n").unwrap();
    let (code, _, stderr) = said(&run("fleet-agent", &["--config", c, "--check-config"]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown field `colector`"), "{stderr}");
}

#[test]
fn collector_check_config() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name).display().to_string();
    pki(tmp.path());
    let config = tmp.path().join("collector.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\ntls_cert = \"{}\"\n\
                 tls_key = \"{}\"\ntls_ca = \"{}\"\n{extra}",
                t("data"),
                t("collector.pem"),
                t("collector-key.pem"),
                t("ca.pem"),
            ),
        )
        .unwrap();
    };
    let c = config.to_str().unwrap();
    write("");
    let out = run("fleet-collector", &["--config", c, "--check-config"]);
    assert_eq!(said(&out), (Some(0), "config OK\n".into(), String::new()));
    assert!(
        !tmp.path().join("data").exists(),
        "the check opened the store"
    );

    // The rules file is loaded as the collector would load it.
    let rules = tmp.path().join("rules.toml");
    std::fs::write(&rules, "[[rule]]\nname = \"x\"\nkind = \"nope\"\n").unwrap();
    write(&format!("rules = \"{}\"\n", rules.display()));
    let (code, stdout, stderr) = said(&run("fleet-collector", &["--config", c, "--check-config"]));
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert!(
        stderr.starts_with(&format!(
            "fleet-collector: rules: {}: rule \"x\": kind: ",
            rules.display()
        )),
        "{stderr}"
    );
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"x\"\nkind = \"host_silent\"\nfor = \"1m\"\n",
    )
    .unwrap();
    let out = run("fleet-collector", &["--config", c, "--check-config"]);
    assert_eq!(said(&out).0, Some(0), "{:?}", said(&out));

    // A certificate file that is not there, named by its field.
    std::fs::remove_file(tmp.path().join("ca.pem")).unwrap();
    let (code, _, stderr) = said(&run("fleet-collector", &["--config", c, "--check-config"]));
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(&format!(
            "fleet-collector: tls_ca: cannot read {}: ",
            t("ca.pem")
        )),
        "{stderr}"
    );

    // A bad value.
    let (code, _, stderr) = said(&run(
        "fleet-collector",
        &["--config", c, "--retention", "10m", "--check-config"],
    ));
    assert_eq!(code, Some(2));
    assert_eq!(stderr, "fleet-collector: retention: must be at least 1h\n");
}
