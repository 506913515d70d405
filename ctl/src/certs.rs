//! The fleet's CA and certificates, as `fleetctl certs` makes them offline (no collector is
//! contacted); [`crate::cmd::certs`] is the command, its arguments and what it prints.
//!
//! ```text
//! fleetctl certs init  --dir DIR [--san NAME]... [--days N] [--ca-days N]
//! fleetctl certs issue --role agent|viewer|operator --name NAME --dir DIR [--days N | --not-after TIME]
//! ```
//!
//! `init` makes the fleet's CA and the collector's server certificate; `issue` signs one client
//! certificate with that CA. The files in DIR:
//!
//! | file | what | mode |
//! | --- | --- | --- |
//! | `ca.pem`, `ca-key.pem` | the CA (every program's `--tls-ca`) and its key | 0644, 0600 |
//! | `collector.pem`, `collector-key.pem` | the collector's server certificate and key | 0644, 0600 |
//! | `NAME.pem`, `NAME-key.pem` | a client certificate (agent, viewer, operator) and key | 0644, 0600 |
//!
//! Nothing is ever overwritten: `init` refuses when the CA exists (so it is safe to re-run, as
//! the Ansible roles do), and `issue` refuses when `NAME.pem` or `NAME-key.pem` exists. To rotate
//! a client certificate, move the old files away first. The CA key never needs to leave DIR:
//! hosts get `ca.pem` and their own pair only.
//!
//! # Identity convention
//!
//! This is the contract the collector reads to decide who a client is:
//!
//! - subject CN = NAME: for an agent, its host id (the agent's `host_id`; the collector lets an
//!   agent stream for that host only);
//! - subject OU = the role: `agent`, `viewer` or `operator` for client certificates (extended
//!   key usage `clientAuth`), `collector` for the collector's (CN `collector`, extended key usage
//!   `serverAuth`, subject alternative names `localhost`, `127.0.0.1`, `::1` and each `--san`:
//!   an IP address when it parses as one, else a DNS name);
//! - subject O = `Fleet` on every certificate; the CA's subject is `CN=Fleet CA ID, O=Fleet`,
//!   where ID is 8 hex digits of its key's identifier, so that two fleets' CAs never share a
//!   name (a certificate of one fleet is then reported as from an unknown issuer by the other).
//!
//! NAME is 1 to 128 characters of `[A-Za-z0-9._-]`, the agent's host id rule.
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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use clap::ValueEnum;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde::Serialize;

use crate::output::show_time;

/// The CA certificate's file name in DIR.
pub const CA_CERT: &str = "ca.pem";
/// The CA key's file name in DIR.
pub const CA_KEY: &str = "ca-key.pem";
/// The collector's certificate name (`collector.pem`, `collector-key.pem`) and CN.
pub const COLLECTOR_NAME: &str = "collector";
/// The subject OU of the collector's certificate.
pub const COLLECTOR_OU: &str = "collector";
/// The subject O of every certificate.
pub const ORGANIZATION: &str = "Fleet";
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
}

/// One file written by [`init`] or [`issue`]: the lines `fleetctl certs` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub kind: FileKind,
    /// The subject's CN.
    pub name: String,
    /// The subject's OU: a role, `collector`, or `ca`.
    pub role: String,
    /// RFC 3339, for certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The subject alternative names, for the collector's certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
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

/// A collector `--san`: an IP address, or a DNS name (`*.` allowed as its first label).
fn parse_san(san: &str) -> Result<SanType, CertsError> {
    if let Ok(ip) = san.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = |why: &str| Err(CertsError::InvalidSan(san.to_owned(), why.to_owned()));
    let name = san.strip_suffix('.').unwrap_or(san);
    if name.is_empty() || name.len() > 253 {
        return invalid("a DNS name is 1 to 253 characters");
    }
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return invalid("each label of a DNS name is 1 to 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return invalid(
                "not an IP address, and not a DNS name (letters, digits and '-' between dots)",
            );
        }
    }
    let dns = name
        .to_owned()
        .try_into()
        .map_err(|e: rcgen::Error| CertsError::InvalidSan(san.to_owned(), e.to_string()))?;
    Ok(SanType::DnsName(dns))
}

fn to_time(t: DateTime<Utc>) -> Result<time::OffsetDateTime, CertsError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|e| CertsError::InvalidValidity(format!("{t}: {e}")))
}

fn subject(cn: &str, ou: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationalUnitName, ou);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn
}

fn leaf_params(
    cn: &str,
    ou: &str,
    validity: Validity,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, CertsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(cn, ou);
    params.not_before = to_time(validity.not_before)?;
    params.not_after = to_time(validity.not_after)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
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

/// Makes the fleet's CA (`DIR/ca.pem`, `DIR/ca-key.pem`) and the collector's server certificate
/// (`DIR/collector.pem`, `DIR/collector-key.pem`) for `localhost`, `127.0.0.1`, `::1` and each
/// of `sans`. Creates DIR (mode 0700) if needed.
///
/// # Errors
///
/// [`CertsError::CaExists`] if `ca.pem` or `ca-key.pem` exists (nothing is written then),
/// [`CertsError::Exists`] for an existing collector file, [`CertsError::InvalidSan`],
/// [`CertsError::Io`].
pub fn init(
    dir: &Path,
    sans: &[String],
    ca_validity: Validity,
    validity: Validity,
) -> Result<Vec<Written>, CertsError> {
    let ca_cert = dir.join(CA_CERT);
    let ca_key = dir.join(CA_KEY);
    let cert = dir.join(format!("{COLLECTOR_NAME}.pem"));
    let key = dir.join(format!("{COLLECTOR_NAME}-key.pem"));
    refuse_existing(&[&ca_cert, &ca_key], CertsError::CaExists)?;
    refuse_existing(&[&cert, &key], CertsError::Exists)?;

    let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| (*s).to_owned()).collect();
    for san in sans {
        if !names.contains(san) {
            names.push(san.clone());
        }
    }
    let san_types = names
        .iter()
        .map(|s| parse_san(s))
        .collect::<Result<Vec<_>, _>>()?;

    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))?;

    let ca_key_pair = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    let ca_id: String = ca_params
        .key_identifier(&ca_key_pair)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let ca_name = format!("{CA_COMMON_NAME} {ca_id}");
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::CommonName, ca_name.as_str());
    ca_dn.push(DnType::OrganizationName, ORGANIZATION);
    ca_params.distinguished_name = ca_dn;
    ca_params.not_before = to_time(ca_validity.not_before)?;
    ca_params.not_after = to_time(ca_validity.not_after)?;
    // Path length 0: the CA signs leaf certificates only.
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key_pair)?;

    let key_pair = KeyPair::generate()?;
    let mut params = leaf_params(
        COLLECTOR_NAME,
        COLLECTOR_OU,
        validity,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    params.subject_alt_names = san_types;
    let issuer = Issuer::new(ca_params, &ca_key_pair);
    let leaf = params.signed_by(&key_pair, &issuer)?;

    let mut files = NewFiles(Vec::new());
    files.write(&ca_key, ca_key_pair.serialize_pem().as_bytes(), 0o600)?;
    files.write(&ca_cert, ca.pem().as_bytes(), 0o644)?;
    files.write(&key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    files.write(&cert, leaf.pem().as_bytes(), 0o644)?;
    sync_dir(dir)?;
    files.keep();

    let written = |path: PathBuf, kind, name: &str, role: &str, v: Option<Validity>| Written {
        path,
        kind,
        name: name.to_owned(),
        role: role.to_owned(),
        not_after: v.map(|v| show_time(v.not_after)),
        sans: Vec::new(),
    };
    let mut out = vec![
        written(
            ca_cert,
            FileKind::Certificate,
            &ca_name,
            "ca",
            Some(ca_validity),
        ),
        written(ca_key, FileKind::Key, &ca_name, "ca", None),
        written(
            cert,
            FileKind::Certificate,
            COLLECTOR_NAME,
            COLLECTOR_OU,
            Some(validity),
        ),
        written(key, FileKind::Key, COLLECTOR_NAME, COLLECTOR_OU, None),
    ];
    out[2].sans = names;
    Ok(out)
}

/// The CA in `dir`, ready to sign: its key, checked to belong to its certificate.
fn load_ca(dir: &Path) -> Result<(Issuer<'static, KeyPair>, DateTime<Utc>), CertsError> {
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
    let ca_not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
        .map_err(|e| bad(CA_CERT, format!("cannot sign with it: {e}")))?;
    Ok((issuer, ca_not_after))
}

/// Issues a client certificate for `role` named `name` (`DIR/NAME.pem`, `DIR/NAME-key.pem`),
/// signed by the CA in `dir`. Its end is capped at the CA's: a certificate cannot outlive the
/// CA it chains to.
///
/// # Errors
///
/// [`CertsError::InvalidName`], [`CertsError::Exists`] if either file exists (nothing is
/// written then), [`CertsError::NoCa`] / [`CertsError::BadCa`] for a missing or broken CA,
/// [`CertsError::Io`].
pub fn issue(
    dir: &Path,
    role: Role,
    name: &str,
    validity: Validity,
) -> Result<Vec<Written>, CertsError> {
    check_name(name)?;
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    refuse_existing(&[&cert, &key], CertsError::Exists)?;
    let (issuer, ca_not_after) = load_ca(dir)?;
    let validity = Validity {
        not_after: validity.not_after.min(ca_not_after),
        ..validity
    };
    let key_pair = KeyPair::generate()?;
    let params = leaf_params(
        name,
        role.as_str(),
        validity,
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let leaf = params.signed_by(&key_pair, &issuer)?;

    let mut files = NewFiles(Vec::new());
    files.write(&key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    files.write(&cert, leaf.pem().as_bytes(), 0o644)?;
    sync_dir(dir)?;
    files.keep();
    Ok(vec![
        Written {
            path: cert,
            kind: FileKind::Certificate,
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            not_after: Some(show_time(validity.not_after)),
            sans: Vec::new(),
        },
        Written {
            path: key,
            kind: FileKind::Key,
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            not_after: None,
            sans: Vec::new(),
        },
    ])
}

#[cfg(test)]
pub(crate) mod tests {
    use x509_parser::prelude::{GeneralName, X509Certificate, X509Name};

    use super::*;

    use crate::cmd::testing::now;

    /// A CA and the collector's certificate, made at `now()` in a fresh directory.
    pub(crate) fn init_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        init(
            &dir,
            &["collector.example.net".into(), "10.1.2.3".into()],
            Validity::days(now(), DEFAULT_CA_DAYS).unwrap(),
            Validity::days(now(), DEFAULT_LEAF_DAYS).unwrap(),
        )
        .unwrap();
        (tmp, dir)
    }

    fn parse(path: &Path, f: impl FnOnce(&X509Certificate<'_>)) {
        let pem_text = fs::read(path).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem_text).unwrap();
        f(&pem.parse_x509().unwrap());
    }

    fn cn(name: &X509Name<'_>) -> Vec<String> {
        name.iter_common_name()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    fn ou(name: &X509Name<'_>) -> Vec<String> {
        name.iter_organizational_unit()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn init_makes_a_ca_and_the_collector_certificate() {
        let (_tmp, dir) = init_dir();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ca-key.pem")), 0o600);
        assert_eq!(mode(&dir.join("collector-key.pem")), 0o600);
        assert_eq!(mode(&dir.join("ca.pem")), 0o644);
        assert_eq!(mode(&dir.join("collector.pem")), 0o644);
        parse(&dir.join("ca.pem"), |ca| {
            assert!(ca.is_ca());
            assert_eq!(ca.subject(), ca.issuer());
            let name = cn(ca.subject()).pop().unwrap();
            assert!(name.len() == 17 && name.starts_with("Fleet CA "), "{name}");
            assert_eq!(
                ca.validity().not_after.timestamp(),
                (now() + Duration::days(3650)).timestamp()
            );
            let bc = ca.basic_constraints().unwrap().unwrap().value;
            assert_eq!(bc.path_len_constraint, Some(0));
        });
        parse(&dir.join("collector.pem"), |c| {
            assert!(!c.is_ca());
            let subject = c.subject();
            assert_eq!(cn(subject), ["collector"]);
            assert_eq!(ou(subject), ["collector"]);
            assert!(cn(c.issuer())[0].starts_with("Fleet CA "));
            let eku = c.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.server_auth && !eku.client_auth);
            let sans: Vec<String> = c
                .subject_alternative_name()
                .unwrap()
                .unwrap()
                .value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => d.to_string(),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap()).to_string(),
                        _ => IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap()).to_string(),
                    },
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                sans,
                [
                    "localhost",
                    "127.0.0.1",
                    "::1",
                    "collector.example.net",
                    "10.1.2.3"
                ]
            );
            assert_eq!(
                c.validity().not_before.timestamp(),
                (now() - Duration::hours(1)).timestamp()
            );
            assert_eq!(
                c.validity().not_after.timestamp(),
                (now() + Duration::days(825)).timestamp()
            );
        });
    }

    #[test]
    fn init_refuses_an_existing_ca_and_changes_nothing() {
        let (_tmp, dir) = init_dir();
        let before = fs::read(dir.join("ca.pem")).unwrap();
        fs::remove_file(dir.join("collector.pem")).unwrap();
        let v = Validity::days(now(), 1).unwrap();
        let err = init(&dir, &[], v, v).unwrap_err();
        assert!(
            matches!(err, CertsError::CaExists(ref p) if p.ends_with("ca.pem")),
            "{err}"
        );
        assert!(err.to_string().contains("never overwritten"), "{err}");
        assert_eq!(fs::read(dir.join("ca.pem")).unwrap(), before);
        assert!(!dir.join("collector.pem").exists());
    }

    #[test]
    fn a_bad_san_is_named_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let v = Validity::days(now(), 1).unwrap();
        for san in ["bad_name.example", "-x.example", "a..b", ""] {
            let err = init(tmp.path(), &[san.to_owned()], v, v).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("--san {san:?}: ")),
                "{err}"
            );
        }
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert!(parse_san("*.fleet.example").is_ok());
        assert!(parse_san("fe80::1").is_ok());
        assert!(parse_san("host.example.").is_ok());
    }

    #[test]
    fn issue_signs_client_certificates_with_role_and_name() {
        let (_tmp, dir) = init_dir();
        for (role, name) in [
            (Role::Agent, "web-1.prod"),
            (Role::Viewer, "alice"),
            (Role::Operator, "ops_2"),
        ] {
            let written = issue(&dir, role, name, Validity::days(now(), 30).unwrap()).unwrap();
            assert_eq!(written.len(), 2);
            assert_eq!(mode(&dir.join(format!("{name}-key.pem"))), 0o600);
            assert_eq!(mode(&dir.join(format!("{name}.pem"))), 0o644);
            parse(&dir.join(format!("{name}.pem")), |c| {
                assert_eq!(cn(c.subject()), [name]);
                assert_eq!(ou(c.subject()), [role.as_str()]);
                let eku = c.extended_key_usage().unwrap().unwrap().value;
                assert!(eku.client_auth && !eku.server_auth);
                assert!(!c.is_ca());
                assert_eq!(
                    c.validity().not_after.timestamp(),
                    (now() + Duration::days(30)).timestamp()
                );
            });
            // The key written is the one certified.
            let key = KeyPair::from_pem(
                &fs::read_to_string(dir.join(format!("{name}-key.pem"))).unwrap(),
            )
            .unwrap();
            parse(&dir.join(format!("{name}.pem")), |c| {
                assert_eq!(
                    c.public_key().raw,
                    rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
                );
            });
        }
        // Never overwritten.
        let err = issue(
            &dir,
            Role::Viewer,
            "alice",
            Validity::days(now(), 1).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, CertsError::Exists(_)), "{err}");
    }

    #[test]
    fn a_leaf_cannot_outlive_its_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let v = Validity::days(now(), 10).unwrap();
        init(tmp.path(), &[], v, v).unwrap();
        let written = issue(
            tmp.path(),
            Role::Agent,
            "h1",
            Validity::days(now(), 100).unwrap(),
        )
        .unwrap();
        assert_eq!(
            written[0].not_after.as_deref(),
            Some(show_time(now() + Duration::days(10)).as_str())
        );
    }

    #[test]
    fn an_expired_certificate_can_be_made() {
        let (_tmp, dir) = init_dir();
        let end = now() - Duration::days(2);
        let v = Validity::until(now(), end);
        assert!(v.expired_at(now()) && v.not_before < v.not_after);
        issue(&dir, Role::Agent, "old", v).unwrap();
        parse(&dir.join("old.pem"), |c| {
            assert_eq!(c.validity().not_after.timestamp(), end.timestamp());
            assert_eq!(
                c.validity().not_before.timestamp(),
                (end - Duration::days(1)).timestamp()
            );
        });
        assert!(Validity::days(now(), 0).is_err());
    }

    #[test]
    fn names_follow_the_host_id_rule() {
        let (_tmp, dir) = init_dir();
        let v = Validity::days(now(), 1).unwrap();
        let long = "x".repeat(129);
        for bad in [
            "",
            "a/b",
            "../x",
            "web 1",
            "é",
            long.as_str(),
            "ca",
            "collector-key",
        ] {
            let err = issue(&dir, Role::Agent, bad, v).unwrap_err();
            assert!(matches!(err, CertsError::InvalidName(..)), "{bad:?}: {err}");
            assert!(err.to_string().starts_with("--name "), "{err}");
        }
        check_name(&"a".repeat(128)).unwrap();
        check_name("A.b_c-9").unwrap();
    }

    #[test]
    fn issue_without_a_ca_or_with_a_foreign_key_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let v = Validity::days(now(), 1).unwrap();
        let err = issue(tmp.path(), Role::Viewer, "v", v).unwrap_err();
        assert!(
            err.to_string().contains("fleetctl certs init --dir"),
            "{err}"
        );
        assert!(!tmp.path().join("v-key.pem").exists());

        let (_tmp2, dir) = init_dir();
        fs::remove_file(dir.join("ca-key.pem")).unwrap();
        fs::copy(dir.join("collector-key.pem"), dir.join("ca-key.pem")).unwrap();
        let err = issue(&dir, Role::Viewer, "v", v).unwrap_err();
        assert!(err.to_string().contains("is not the key of"), "{err}");
        assert!(!dir.join("v.pem").exists() && !dir.join("v-key.pem").exists());
    }
}
