//! The fleet's CA and certificates, as `fleetctl certs` makes them offline (no collector is
//! contacted); [`crate::cmd::certs`] is the command, its arguments and what it prints.
//!
//! ```text
//! fleetctl certs init   --dir DIR [--san NAME]... [--org NAME] [--days N] [--ca-days N]
//! fleetctl certs issue  --role agent|viewer|operator --name NAME [--cluster CLUSTER] --dir DIR
//!                       [--days N | --not-after TIME] [--ensure]
//! fleetctl certs revoke --dir DIR [NAME]...
//! ```
//!
//! `init` makes the fleet's CA and the collector's server certificate, `issue` signs one client
//! certificate with that CA (`issue.rs`), `revoke` writes the CA's revocation list (`crl.rs`).
//! The files in DIR:
//!
//! | file | what | mode |
//! | --- | --- | --- |
//! | `ca.pem`, `ca-key.pem` | the CA (every program's `--tls-ca`) and its key | 0644, 0600 |
//! | `collector.pem`, `collector-key.pem` | the collector's server certificate and key | 0644, 0600 |
//! | `NAME.pem`, `NAME-key.pem` | a client certificate (agent, viewer, operator) and key | 0644, 0600 |
//! | `crl.pem` | the certificates revoked (the collector's `tls_crl`) | 0644 |
//!
//! Nothing is ever overwritten: `init` refuses when the CA exists (so it is safe to re-run, as
//! the Ansible roles do), and `issue` refuses when `NAME.pem` or `NAME-key.pem` exists. To rotate
//! a client certificate, move the old files away first, or let `issue --ensure` do it: it keeps
//! a certificate that already is what was asked (this CA's, this role, cluster and O, not
//! expired) and otherwise moves the pair to `NAME.pem.old`, `NAME-key.pem.old` and issues it
//! anew (the Ansible role binds existing agent certificates to their cluster so). `revoke`
//! replaces `crl.pem` (written aside, then renamed over it), keeping what it revoked before.
//! The CA key never needs to leave DIR: hosts get `ca.pem` and their own pair only.
//!
//! # Identity convention
//!
//! This is the contract the collector reads to decide who a client is:
//!
//! - subject CN = NAME: for an agent, its host id (the agent's `host_id`; the collector lets an
//!   agent stream for that host only);
//! - subject OU = the role, exactly one: `agent`, `viewer` or `operator` for client certificates
//!   (extended key usage `clientAuth`), `collector` for the collector's (CN `collector`,
//!   extended key usage `serverAuth`, subject alternative names `localhost`, `127.0.0.1`, `::1`
//!   and each `--san`: an IP address when it parses as one, else a DNS name);
//! - subject O = the organisation, the same on every certificate of a CA: `Fleet` unless
//!   `init --org NAME` names another (a collector with `tls_org` admits that O only); the CA's
//!   subject is `CN=Fleet CA ID, O=ORG`, where ID is 8 hex digits of its key's identifier, so
//!   that two fleets' CAs never share a name (a certificate of one fleet is then reported as
//!   from an unknown issuer by the other);
//! - for an agent issued with `--cluster CLUSTER`, the URI subject alternative name
//!   `urn:fleet:cluster:CLUSTER` ([`fleet_proto::identity::cluster_uri`]): the collector lets
//!   the agent join that cluster only. An agent certificate without one is unbound, accepted
//!   only by collectors with `allow_unbound_cluster = true`.
//!
//! NAME is 1 to 128 characters of `[A-Za-z0-9._-]`, the agent's host id rule; CLUSTER follows
//! the collector's cluster rule (1 to 128 bytes).
//!
//! # Validity
//!
//! Certificates start one hour in the past, so a host whose clock is a little behind the
//! machine that issued them accepts them at once. They end `--days` later (default
//! [`DEFAULT_LEAF_DAYS`]; the CA [`DEFAULT_CA_DAYS`]). `issue --not-after TIME` (RFC 3339) sets
//! the end instead; a time in the past makes a certificate that has already expired, with a
//! warning: that is how the tests obtain one to check that the collector refuses it.
//!
//! Keys are ECDSA P-256 (rcgen's default), created with mode 0600 (`O_CREAT|O_EXCL` with that
//! mode: never readable by others, not even for a moment).

mod crl;
mod issue;

pub use crl::revoke;
pub use issue::{ensure, init, issue, Ensured, Leaf};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use clap::ValueEnum;
use rcgen::{DistinguishedName, DnType, Issuer, KeyPair};
use serde::Serialize;
use x509_parser::prelude::X509Certificate;

use crate::output::show_time;

/// The CA certificate's file name in DIR.
pub const CA_CERT: &str = "ca.pem";
/// The CA key's file name in DIR.
pub const CA_KEY: &str = "ca-key.pem";
/// The collector's certificate name (`collector.pem`, `collector-key.pem`) and CN.
pub const COLLECTOR_NAME: &str = "collector";
/// The subject OU of the collector's certificate.
pub const COLLECTOR_OU: &str = "collector";
/// The subject O of every certificate unless `init --org` names another.
pub const DEFAULT_ORGANIZATION: &str = "Fleet";
/// The revocation list's file name in DIR.
pub const CRL: &str = "crl.pem";
/// The CA's subject CN, before its key's id.
pub const CA_COMMON_NAME: &str = "Fleet CA";
/// Days a leaf certificate is valid by default (the longest publicly trusted CAs allow).
pub const DEFAULT_LEAF_DAYS: u32 = 825;
/// Days the CA is valid by default.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Names the collector's certificate is always valid for.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How far back certificates start: tolerates hosts whose clock is behind the issuer's.
const BACKDATE: Duration = Duration::hours(1);

/// What can go wrong making certificates. Every message names the file or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error(
        "{0} already exists: the fleet CA is made once and never overwritten (issue more \
         certificates with `fleetctl certs issue`; to start over, move the directory away)"
    )]
    CaExists(PathBuf),
    #[error("{0} already exists: refusing to overwrite it (move it away to issue it anew)")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the fleet CA {path} (make it with `fleetctl certs init --dir {dir}`): {source}")]
    NoCa {
        path: PathBuf,
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {message}")]
    BadCa { path: PathBuf, message: String },
    #[error("--name {0:?}: {1}")]
    InvalidName(String, String),
    #[error("--san {0:?}: {1}")]
    InvalidSan(String, String),
    #[error("--org {0:?}: {1}")]
    InvalidOrg(String, String),
    #[error("--cluster {0:?}: {1}")]
    InvalidCluster(String, String),
    #[error("{path}: {message}")]
    BadCert { path: PathBuf, message: String },
    #[error("{0}")]
    InvalidValidity(String),
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CertsError + '_ {
    move |source| CertsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The role a client certificate grants; it is the certificate's subject OU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Streams the data of one host (NAME = its host id)
    Agent,
    /// May query
    Viewer,
    /// May query and change policies and rules
    Operator,
}

impl Role {
    /// The subject OU that names this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From an hour before `now` until `days` days after `now`.
    ///
    /// # Errors
    ///
    /// [`CertsError::InvalidValidity`] for 0 days (an expired certificate is made with
    /// [`Validity::until`]).
    pub fn days(now: DateTime<Utc>, days: u32) -> Result<Validity, CertsError> {
        if days == 0 {
            return Err(CertsError::InvalidValidity(
                "--days must be at least 1 (--not-after TIME sets an exact end)".to_owned(),
            ));
        }
        Ok(Validity {
            not_before: now - BACKDATE,
            not_after: now + Duration::days(i64::from(days)),
        })
    }

    /// Until `not_after`, which may be in the past (an expired certificate): then it starts a
    /// day before that.
    pub fn until(now: DateTime<Utc>, not_after: DateTime<Utc>) -> Validity {
        Validity {
            not_before: (now - BACKDATE).min(not_after - Duration::days(1)),
            not_after,
        }
    }

    /// Whether the certificate is expired at `now`.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.not_after <= now
    }
}

/// What a file written by [`init`] or [`issue`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Certificate,
    Key,
    /// A certificate revocation list.
    Crl,
}

/// One file written by [`init`] or [`issue`]: the lines `fleetctl certs` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub kind: FileKind,
    /// The subject's CN.
    pub name: String,
    /// The subject's OU: a role, `collector`, or `ca` (also for the CRL, which the CA signs).
    pub role: String,
    /// The cluster an agent certificate is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// RFC 3339, for certificates; for the CRL, its next update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The subject alternative names, for the collector's certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// For the CRL: the names this call revoked, and how many certificates it lists in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revoked>,
}

/// What a CRL written by [`revoke`] lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    /// The certificates (by NAME) this call added.
    pub added: Vec<String>,
    /// Every certificate the CRL lists.
    pub total: usize,
}

impl Written {
    /// A certificate or key file of `name` in `role`.
    fn file(path: PathBuf, kind: FileKind, name: &str, role: &str) -> Written {
        Written {
            path,
            kind,
            name: name.to_owned(),
            role: role.to_owned(),
            cluster: None,
            not_after: None,
            sans: Vec::new(),
            revoked: None,
        }
    }

    fn until(mut self, v: Validity) -> Written {
        self.not_after = Some(show_time(v.not_after));
        self
    }
}

/// Checks a certificate NAME: 1 to 128 characters of `[A-Za-z0-9._-]` (the agent's host id
/// rule), and not one that would name the CA's or the collector's files.
///
/// # Errors
///
/// [`CertsError::InvalidName`] saying what is wrong.
pub fn check_name(name: &str) -> Result<(), CertsError> {
    let invalid = |why: String| Err(CertsError::InvalidName(name.to_owned(), why));
    if let Err(e) = fleet_proto::identity::check_host_id(name) {
        return invalid(format!("{e} (for an agent: its host id)"));
    }
    if ["ca", "ca-key", COLLECTOR_NAME, "collector-key"].contains(&name) {
        return invalid(
            "names the files of the CA or the collector (ca.pem, collector.pem): choose another \
             (for an agent on the collector's host, another host id)"
                .to_owned(),
        );
    }
    Ok(())
}

fn to_time(t: DateTime<Utc>) -> Result<time::OffsetDateTime, CertsError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|e| CertsError::InvalidValidity(format!("{t}: {e}")))
}

/// A subject: CN, OU (the role), O.
fn subject(cn: &str, ou: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationalUnitName, ou);
    dn.push(DnType::OrganizationName, org);
    dn
}

/// Files written so far by one call; removed again unless [`NewFiles::keep`] is called, so a
/// failure halfway leaves nothing behind (and a re-run is not refused for a half-made set).
struct NewFiles(Vec<PathBuf>);

impl NewFiles {
    /// Creates `path` (which must not exist) with `mode`, writes `contents` and syncs it.
    fn write(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<(), CertsError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => CertsError::Exists(path.to_path_buf()),
                _ => io_error(path)(e),
            })?;
        self.0.push(path.to_path_buf());
        // The umask may have taken bits away: certificates are meant to be world-readable. A
        // key created 0600 (or stricter) is never readable by others in between.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .and_then(|()| file.write_all(contents))
            .and_then(|()| file.sync_all())
            .map_err(io_error(path))
    }

    fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for NewFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// Fails if any of `paths` exists, before anything is written.
fn refuse_existing(paths: &[&Path], error: fn(PathBuf) -> CertsError) -> Result<(), CertsError> {
    for path in paths {
        match fs::symlink_metadata(path) {
            Ok(_) => return Err(error(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(path)(e)),
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), CertsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Reads and parses a PEM certificate file; `f` gets the parsed certificate.
fn with_cert<T>(
    path: &Path,
    f: impl FnOnce(&X509Certificate<'_>) -> Result<T, String>,
) -> Result<T, CertsError> {
    let bad = |message: String| CertsError::BadCert {
        path: path.to_path_buf(),
        message,
    };
    let text = fs::read(path).map_err(io_error(path))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
    f(&cert).map_err(bad)
}

/// The first text value of `it`, an attribute of a subject.
fn first<'a>(
    mut it: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Option<String> {
    it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
}

/// The fleet CA of a directory, ready to sign.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    not_after: DateTime<Utc>,
    /// Its subject CN.
    name: String,
    /// Its subject O: the organisation of every certificate it issues.
    org: String,
    /// Its subject, DER: the issuer of every certificate and CRL it signs.
    subject: Vec<u8>,
}

/// The CA in `dir`, ready to sign: its key, checked to belong to its certificate.
fn load_ca(dir: &Path) -> Result<Ca, CertsError> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read_to_string(&path).map_err(|source| CertsError::NoCa {
            path,
            dir: dir.display().to_string(),
            source,
        })
    };
    let cert_pem = read(CA_CERT)?;
    let key_pem = read(CA_KEY)?;
    let bad = |name: &str, message: String| CertsError::BadCa {
        path: dir.join(name),
        message,
    };
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| bad(CA_KEY, format!("not a PEM private key: {e}")))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| bad(CA_CERT, format!("not a PEM certificate: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| bad(CA_CERT, format!("not an X.509 certificate: {e}")))?;
    if !cert.is_ca() {
        return Err(bad(CA_CERT, "not a CA certificate".to_owned()));
    }
    if cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
        return Err(bad(
            CA_KEY,
            format!("is not the key of {}", dir.join(CA_CERT).display()),
        ));
    }
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let name = first(cert.subject().iter_common_name()).unwrap_or_default();
    let org = first(cert.subject().iter_organization())
        .unwrap_or_else(|| DEFAULT_ORGANIZATION.to_owned());
    let subject = cert.subject().as_raw().to_vec();
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
        .map_err(|e| bad(CA_CERT, format!("cannot sign with it: {e}")))?;
    Ok(Ca {
        issuer,
        not_after,
        name,
        org,
        subject,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use x509_parser::prelude::{X509Certificate, X509Name};

    use super::*;

    use crate::cmd::testing::now;

    /// A CA and the collector's certificate, made at `now()` in a fresh directory.
    pub(crate) fn init_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        init(
            &dir,
            &["collector.example.net".into(), "10.1.2.3".into()],
            DEFAULT_ORGANIZATION,
            Validity::days(now(), DEFAULT_CA_DAYS).unwrap(),
            Validity::days(now(), DEFAULT_LEAF_DAYS).unwrap(),
        )
        .unwrap();
        (tmp, dir)
    }

    /// A leaf of `role` named `name`, without a cluster.
    pub(crate) fn leaf(role: Role, name: &str) -> Leaf<'_> {
        Leaf {
            role,
            name,
            cluster: None,
        }
    }

    pub(crate) fn parse(path: &Path, f: impl FnOnce(&X509Certificate<'_>)) {
        let pem_text = fs::read(path).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem_text).unwrap();
        f(&pem.parse_x509().unwrap());
    }

    pub(crate) fn cn(name: &X509Name<'_>) -> Vec<String> {
        name.iter_common_name()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) fn ou(name: &X509Name<'_>) -> Vec<String> {
        name.iter_organizational_unit()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
}
