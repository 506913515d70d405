//! `fleetctl certs` as a user runs it: the real binary writes the files with the right modes,
//! rustls (what the collector and the agents verify with) accepts the chains for the right
//! purpose only, a second `init` is refused and changes nothing, and `--days` / `--not-after`
//! set the expiry that verification enforces.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{client::WebPkiServerVerifier, RootCertStore};

fn fleetctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(args)
        .output()
        .expect("run fleetctl")
}

fn ok(args: &[&str]) -> String {
    let out = fleetctl(args);
    assert!(
        out.status.success(),
        "fleetctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn cert(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

fn roots(dir: &Path) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(cert(&dir.join("ca.pem"))).unwrap();
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn at(days_from_now: i64) -> UnixTime {
    let now = SystemTime::now();
    let secs = Duration::from_secs(days_from_now.unsigned_abs() * 86_400);
    UnixTime::since_unix_epoch(
        if days_from_now >= 0 {
            now + secs
        } else {
            now - secs
        }
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap(),
    )
}

/// Verifies `DIR/NAME.pem` as the collector verifies a client certificate.
fn verify_client(dir: &Path, name: &str, when: UnixTime) -> Result<(), rustls::Error> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(dir), provider())
        .build()
        .unwrap();
    verifier
        .verify_client_cert(&cert(&dir.join(format!("{name}.pem"))), &[], when)
        .map(|_| ())
}

/// Verifies `DIR/collector.pem` for `host` as an agent or fleetctl verifies the collector.
fn verify_server(dir: &Path, name: &str, host: &str, when: UnixTime) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(dir), provider())
        .build()
        .unwrap();
    verifier
        .verify_server_cert(
            &cert(&dir.join(format!("{name}.pem"))),
            &[],
            &ServerName::try_from(host.to_owned()).unwrap(),
            &[],
            when,
        )
        .map(|_| ())
}

#[test]
fn init_and_issue_make_chains_rustls_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();
    let out = ok(&[
        "certs",
        "init",
        "--dir",
        d,
        "--san",
        "collector.fleet.example",
        "--san",
        "192.0.2.7",
    ]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.contains("for localhost, 127.0.0.1, ::1, collector.fleet.example, 192.0.2.7"),
        "{out}"
    );
    for (name, role) in [("web-1", "agent"), ("alice", "viewer"), ("bob", "operator")] {
        let out = ok(&[
            "certs", "issue", "--role", role, "--name", name, "--dir", d, "--days", "30",
        ]);
        assert!(
            out.contains(&format!("{role} certificate CN={name}, until")),
            "{out}"
        );
    }

    assert_eq!(mode(&dir), 0o700);
    for key in ["ca", "collector", "web-1", "alice", "bob"] {
        assert_eq!(mode(&dir.join(format!("{key}-key.pem"))), 0o600, "{key}");
        assert_eq!(mode(&dir.join(format!("{key}.pem"))), 0o644, "{key}");
    }

    let now = UnixTime::now();
    for host in [
        "localhost",
        "127.0.0.1",
        "::1",
        "collector.fleet.example",
        "192.0.2.7",
    ] {
        verify_server(&dir, "collector", host, now).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    let err = verify_server(&dir, "collector", "elsewhere.example", now).unwrap_err();
    assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");
    for name in ["web-1", "alice", "bob"] {
        verify_client(&dir, name, now).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Each for its purpose only: a client certificate does not serve, the server's is no client.
    let err = verify_server(&dir, "web-1", "localhost", now).unwrap_err();
    assert!(format!("{err:?}").contains("Purpose"), "{err:?}");
    let err = verify_client(&dir, "collector", now).unwrap_err();
    assert!(format!("{err:?}").contains("Purpose"), "{err:?}");

    // --days 30: valid in 29 days, expired in 31.
    verify_client(&dir, "alice", at(29)).unwrap();
    let err = verify_client(&dir, "alice", at(31)).unwrap_err();
    assert!(format!("{err:?}").contains("Expired"), "{err:?}");
    // The collector's default: 825 days.
    verify_server(&dir, "collector", "localhost", at(824)).unwrap();
    assert!(verify_server(&dir, "collector", "localhost", at(826)).is_err());

    // Another fleet's CA does not vouch for these.
    let other = tmp.path().join("other");
    ok(&["certs", "init", "--dir", other.to_str().unwrap()]);
    std::fs::copy(dir.join("alice.pem"), other.join("alice.pem")).unwrap();
    let err = verify_client(&other, "alice", now).unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}

#[test]
fn init_again_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    ok(&["certs", "init", "--dir", d]);
    let before: Vec<Vec<u8>> = ["ca.pem", "ca-key.pem", "collector.pem", "collector-key.pem"]
        .iter()
        .map(|f| std::fs::read(tmp.path().join(f)).unwrap())
        .collect();
    let out = fleetctl(&["certs", "init", "--dir", d, "--san", "x.example"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "fleetctl: {d}/ca.pem already exists: the fleet CA is made once"
        )),
        "{err}"
    );
    let after: Vec<Vec<u8>> = ["ca.pem", "ca-key.pem", "collector.pem", "collector-key.pem"]
        .iter()
        .map(|f| std::fs::read(tmp.path().join(f)).unwrap())
        .collect();
    assert_eq!(before, after);

    // issue never overwrites either, and says why a name is refused.
    ok(&[
        "certs", "issue", "--role", "agent", "--name", "h1", "--dir", d,
    ]);
    let out = fleetctl(&[
        "certs", "issue", "--role", "agent", "--name", "h1", "--dir", d,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("h1.pem already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fleetctl(&[
        "certs", "issue", "--role", "agent", "--name", "a/b", "--dir", d,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("fleetctl: --name \"a/b\": contains '/'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Usage mistakes are clap's: exit 2.
    let out = fleetctl(&[
        "certs", "issue", "--role", "admin", "--name", "x", "--dir", d,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = fleetctl(&["certs", "init", "--dir", d, "--days", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_expired_certificate_for_the_refusal_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    ok(&["certs", "init", "--dir", d]);
    let out = fleetctl(&[
        "certs",
        "issue",
        "--role",
        "agent",
        "--name",
        "stale",
        "--dir",
        d,
        "--not-after",
        "2020-01-01T00:00:00Z",
        "-o",
        "json",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: this certificate expired at 2020-01-01T00:00:00Z"),
        "{err}"
    );
    let files: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(files[0]["not_after"], "2020-01-01T00:00:00Z");
    assert_eq!(files[0]["role"], "agent");
    let err = verify_client(tmp.path(), "stale", UnixTime::now()).unwrap_err();
    assert!(format!("{err:?}").contains("Expired"), "{err:?}");
    // It was valid on the day before its end.
    let dec31 = UnixTime::since_unix_epoch(Duration::from_secs(1_577_793_600));
    verify_client(tmp.path(), "stale", dec31).unwrap();

    // --days and --not-after exclude each other.
    let out = fleetctl(&[
        "certs",
        "issue",
        "--role",
        "agent",
        "--name",
        "x",
        "--dir",
        d,
        "--days",
        "3",
        "--not-after",
        "2020-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Verifies `DIR/NAME.pem` against DIR's CA and `DIR/crl.pem`, as a collector with `tls_crl`.
fn verify_with_crl(dir: &Path, name: &str) -> Result<(), rustls::Error> {
    let crls = rustls::pki_types::CertificateRevocationListDer::pem_file_iter(dir.join("crl.pem"))
        .unwrap()
        .map(Result::unwrap);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(dir), provider())
        .with_crls(crls)
        .build()
        .unwrap();
    verifier
        .verify_client_cert(
            &cert(&dir.join(format!("{name}.pem"))),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn revoke_writes_a_crl_rustls_enforces_and_ensure_binds_clusters() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    ok(&["certs", "init", "--dir", d, "--org", "Acme Fleet"]);
    for name in ["web1", "web2"] {
        let out = ok(&[
            "certs",
            "issue",
            "--role",
            "agent",
            "--name",
            name,
            "--cluster",
            "prod",
            "--dir",
            d,
        ]);
        assert!(
            out.contains("CN=web1 for cluster prod") || name == "web2",
            "{out}"
        );
    }
    // An empty list first: everything passes.
    let out = ok(&["certs", "revoke", "--dir", d]);
    assert!(
        out.starts_with("wrote ") && out.contains(": 0 certificates revoked"),
        "{out}"
    );
    verify_with_crl(tmp.path(), "web1").unwrap();
    let out = ok(&["certs", "revoke", "--dir", d, "web1"]);
    assert!(out.contains(": 1 certificates revoked (now web1)"), "{out}");
    assert_eq!(mode(&tmp.path().join("crl.pem")), 0o644);
    let err = verify_with_crl(tmp.path(), "web1").unwrap_err();
    assert!(format!("{err:?}").contains("Revoked"), "{err:?}");
    verify_with_crl(tmp.path(), "web2").unwrap();
    let out = fleetctl(&["certs", "revoke", "--dir", d, "nobody"]);
    assert_eq!(out.status.code(), Some(1));

    // --ensure: kept as it is (nothing printed), bound anew when the cluster changes.
    let ensure = |cluster: &str| {
        fleetctl(&[
            "certs",
            "issue",
            "--role",
            "agent",
            "--name",
            "web2",
            "--cluster",
            cluster,
            "--dir",
            d,
            "--ensure",
        ])
    };
    let out = ensure("prod");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kept "),
        "{out:?}"
    );
    let out = ensure("staging");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created "),
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bound to cluster \"prod\""),
        "{out:?}"
    );
    assert!(tmp.path().join("web2.pem.old").exists());
    verify_with_crl(tmp.path(), "web2").unwrap();
    // A cluster is for agents only.
    let out = fleetctl(&[
        "certs",
        "issue",
        "--role",
        "viewer",
        "--name",
        "v",
        "--cluster",
        "prod",
        "--dir",
        d,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster \"prod\""));
}
