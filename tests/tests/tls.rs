//! The transport is TLS (rustls) unless --insecure: agent and fleetctl reach a collector that
//! serves a certificate from a CA generated here, and a client trusting another CA is refused.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn make_ca(dir: &Path, name: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    (params, key)
}

fn make_pki(dir: &Path) -> Pki {
    let (ca, ca_key) = make_ca(dir, "ca");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let p = |n: &str| dir.join(n).display().to_string();
    std::fs::write(dir.join("collector.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("collector-key.pem"), key.serialize_pem()).unwrap();
    Pki {
        ca: p("ca.pem"),
        cert: p("collector.pem"),
        key: p("collector-key.pem"),
    }
}

#[test]
fn agent_and_fleetctl_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = make_pki(tmp.path());
    make_ca(tmp.path(), "other-ca");
    let c = Collector::spawn(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &["--tls-cert", &pki.cert, "--tls-key", &pki.key],
    );
    let port = c.addr.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let _a = spawn_agent(
        &url,
        &tmp.path().join("agent"),
        "tls1",
        "prod",
        &["--tls-ca", &pki.ca],
    );

    let ctl = |ca: &str, args: &[&str]| {
        let mut cmd = std::process::Command::new(bin("fleetctl"));
        cmd.args(["--collector", &url, "--tls-ca", ca, "-o", "json"])
            .args(args);
        cmd.output().unwrap()
    };
    wait_for("agent data over TLS", Duration::from_secs(30), || {
        let out = ctl(&pki.ca, &["hosts"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (v.as_array()?.first()?["last_seq"].as_u64()? >= 2).then_some(())
    });
    // A client that trusts another CA does not get in.
    let other = tmp.path().join("other-ca.pem").display().to_string();
    let out = ctl(&other, &["hosts"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
    // Plaintext against the TLS port fails too.
    let out = std::process::Command::new(bin("fleetctl"))
        .args([
            "--collector",
            &format!("http://127.0.0.1:{port}"),
            "--insecure",
            "hosts",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
