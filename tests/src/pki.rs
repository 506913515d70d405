//! Certificates for the TLS tests, made by the real `fleetctl certs` as an operator makes them.

use std::path::{Path, PathBuf};

use crate::procs::run;

/// A directory of PEM files as `fleetctl certs` writes them: `ca.pem`, and for each name
/// `NAME.pem` with its key `NAME-key.pem` (`collector` is made by `init`).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// `fleetctl certs init --dir DIR`: a new CA and the collector's certificate for localhost.
    pub fn init(dir: &Path) -> Pki {
        certs(&["init", "--dir", dir.to_str().unwrap()]);
        Pki::at(dir)
    }

    /// The files already in `dir` (copies the test rotates, say).
    pub fn at(dir: &Path) -> Pki {
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    /// `fleetctl certs issue --role ROLE --name NAME` with `extra` (`--not-after ...`).
    pub fn issue(&self, role: &str, name: &str, extra: &[&str]) -> &Pki {
        let d = self.dir.to_str().unwrap();
        let mut args = vec!["issue", "--role", role, "--name", name, "--dir", d];
        args.extend_from_slice(extra);
        certs(&args);
        self
    }

    /// The path of `file` in the directory, as a string for a flag.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// The CA certificate.
    pub fn ca(&self) -> String {
        self.path("ca.pem")
    }

    /// `--tls-cert NAME.pem --tls-key NAME-key.pem`.
    pub fn tls_args(&self, name: &str) -> [String; 4] {
        [
            "--tls-cert".into(),
            self.path(&format!("{name}.pem")),
            "--tls-key".into(),
            self.path(&format!("{name}-key.pem")),
        ]
    }
}

/// Runs `fleetctl certs ARGS`.
///
/// # Panics
/// If it fails, with its stderr.
pub fn certs(args: &[&str]) {
    let mut all = vec!["certs"];
    all.extend_from_slice(args);
    let out = run("fleetctl", &all);
    assert!(
        out.status.success(),
        "fleetctl certs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
