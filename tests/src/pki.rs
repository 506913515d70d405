//! Certificates for the TLS tests, made by the real `fleetctl certs` as an operator makes them
//! (`init`, `issue`, `revoke`), and the odd ones no operator would make (two roles, none, another
//! organisation), signed with the same CA by rcgen ([`Pki::sign`]); a rustls client presenting
//! one of them ([`Pki::client_tls`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;

use crate::procs::run;

/// A directory of PEM files as `fleetctl certs` writes them: `ca.pem`, and for each name
/// `NAME.pem` with its key `NAME-key.pem` (`collector` is made by `init`).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// `fleetctl certs init --dir DIR`: a new CA and the collector's certificate for localhost.
    pub fn init(dir: &Path) -> Pki {
        Pki::init_with(dir, &[])
    }

    /// `fleetctl certs init --dir DIR` with `extra` (`--org NAME`).
    pub fn init_with(dir: &Path, extra: &[&str]) -> Pki {
        let mut args = vec!["init", "--dir", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        certs(&args);
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

    /// `fleetctl certs revoke --dir DIR NAMES...`: `crl.pem` lists them (and what it listed).
    pub fn revoke(&self, names: &[&str]) -> &Pki {
        let mut args = vec!["revoke", "--dir", self.dir.to_str().unwrap()];
        args.extend_from_slice(names);
        certs(&args);
        self
    }

    /// A client certificate `NAME.pem` (with `NAME-key.pem`) signed by this CA, whose subject
    /// is CN NAME with each of `ous` and `orgs`, for the certificates `fleetctl certs` refuses
    /// to make: two roles, none, another organisation.
    pub fn sign(&self, name: &str, ous: &[&str], orgs: &[&str]) -> &Pki {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap();
        let issuer = Issuer::from_ca_cert_pem(
            &read("ca.pem"),
            KeyPair::from_pem(&read("ca-key.pem")).unwrap(),
        )
        .unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        // rcgen keeps one value per attribute type: the second goes under the same OID
        // spelled as a custom type.
        for (ty, oid, values) in [
            (DnType::OrganizationalUnitName, 11, ous),
            (DnType::OrganizationName, 10, orgs),
        ] {
            for (i, v) in values.iter().enumerate() {
                let ty = match i {
                    0 => ty.clone(),
                    _ => DnType::CustomDnType(vec![2, 5, 4, oid]),
                };
                params.distinguished_name.push(ty, *v);
            }
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(self.dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(
            self.dir.join(format!("{name}-key.pem")),
            key.serialize_pem(),
        )
        .unwrap();
        self
    }

    /// A rustls client (HTTP/2, as gRPC) trusting this CA and presenting NAME's certificate.
    pub fn client_tls(&self, name: &str) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(self.dir.join("ca.pem")).unwrap()
        {
            roots.add(c.unwrap()).unwrap();
        }
        let certs =
            rustls::pki_types::CertificateDer::pem_file_iter(self.dir.join(format!("{name}.pem")))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(
            self.dir.join(format!("{name}-key.pem")),
        )
        .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }

    /// The path of `file` in the directory, as a string for a flag.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// The CA certificate.
    pub fn ca(&self) -> String {
        self.path("ca.pem")
    }

    /// A collector's mutual TLS: the collector's certificate and key, and the fleet CA clients
    /// must chain to (`--tls-cert collector.pem --tls-key collector-key.pem --tls-ca ca.pem`).
    pub fn collector_mtls_args(&self) -> [String; 6] {
        let [cert, cert_file, key, key_file] = self.tls_args("collector");
        [cert, cert_file, key, key_file, "--tls-ca".into(), self.ca()]
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
