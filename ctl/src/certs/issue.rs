//! `fleetctl certs init` and `issue`: the CA, the collector's certificate, client
//! certificates, and `issue --ensure`, which keeps a certificate that already is what was asked.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use fleet_proto::identity::{check_cluster, cluster_of_uri, cluster_uri};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use x509_parser::prelude::{GeneralName, X509Certificate};

use super::{
    first, io_error, load_ca, refuse_existing, subject, sync_dir, to_time, with_cert, Ca,
    CertsError, FileKind, NewFiles, Role, Validity, Written, CA_CERT, CA_COMMON_NAME, CA_KEY,
    COLLECTOR_NAME, COLLECTOR_OU, DEFAULT_SANS,
};

/// What `issue` makes: a client certificate of `role` named `name`, bound to `cluster` (agents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf<'a> {
    pub role: Role,
    /// The subject CN and file name.
    pub name: &'a str,
    /// For an agent: the one cluster it may join (a URI subject alternative name).
    pub cluster: Option<&'a str>,
}

/// Checks an `--org`: a name without leading or trailing blanks, at most 64 characters (X.520's
/// bound for an organisation name).
fn check_org(org: &str) -> Result<(), CertsError> {
    if org.is_empty() || org.trim() != org || org.chars().count() > 64 {
        return Err(CertsError::InvalidOrg(
            org.to_owned(),
            "1 to 64 characters, without leading or trailing blanks".to_owned(),
        ));
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

fn leaf_params(
    subject: DistinguishedName,
    validity: Validity,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, CertsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.not_before = to_time(validity.not_before)?;
    params.not_after = to_time(validity.not_after)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Makes the fleet's CA (`DIR/ca.pem`, `DIR/ca-key.pem`) and the collector's server certificate
/// (`DIR/collector.pem`, `DIR/collector-key.pem`) for `localhost`, `127.0.0.1`, `::1` and each
/// of `sans`, both with the subject O `org`. Creates DIR (mode 0700) if needed.
///
/// # Errors
///
/// [`CertsError::CaExists`] if `ca.pem` or `ca-key.pem` exists (nothing is written then),
/// [`CertsError::Exists`] for an existing collector file, [`CertsError::InvalidSan`],
/// [`CertsError::InvalidOrg`], [`CertsError::Io`].
pub fn init(
    dir: &Path,
    sans: &[String],
    org: &str,
    ca_validity: Validity,
    validity: Validity,
) -> Result<Vec<Written>, CertsError> {
    let ca_cert = dir.join(CA_CERT);
    let ca_key = dir.join(CA_KEY);
    let cert = dir.join(format!("{COLLECTOR_NAME}.pem"));
    let key = dir.join(format!("{COLLECTOR_NAME}-key.pem"));
    refuse_existing(&[&ca_cert, &ca_key], CertsError::CaExists)?;
    refuse_existing(&[&cert, &key], CertsError::Exists)?;
    check_org(org)?;

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
    ca_dn.push(DnType::OrganizationName, org);
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
        subject(COLLECTOR_NAME, COLLECTOR_OU, org),
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

    let ca_file = |path, kind| Written::file(path, kind, &ca_name, "ca");
    let collector = |path, kind| Written::file(path, kind, COLLECTOR_NAME, COLLECTOR_OU);
    let mut collector_cert = collector(cert, FileKind::Certificate).until(validity);
    collector_cert.sans = names;
    Ok(vec![
        ca_file(ca_cert, FileKind::Certificate).until(ca_validity),
        ca_file(ca_key, FileKind::Key),
        collector_cert,
        collector(key, FileKind::Key),
    ])
}

/// Checks what a leaf asks for before anything is read or written.
fn check_leaf(leaf: &Leaf<'_>) -> Result<(), CertsError> {
    super::check_name(leaf.name)?;
    if let Some(cluster) = leaf.cluster {
        let invalid = |why: String| Err(CertsError::InvalidCluster(cluster.to_owned(), why));
        if leaf.role != Role::Agent {
            return invalid(format!(
                "binds an agent certificate to its cluster; a {} certificate has none",
                leaf.role.as_str()
            ));
        }
        if let Err(e) = check_cluster(cluster) {
            return invalid(e.to_string());
        }
    }
    Ok(())
}

/// Issues the client certificate `leaf` (`DIR/NAME.pem`, `DIR/NAME-key.pem`), signed by the CA
/// in `dir`, with the CA's organisation. Its end is capped at the CA's: a certificate cannot
/// outlive the CA it chains to.
///
/// # Errors
///
/// [`CertsError::InvalidName`], [`CertsError::InvalidCluster`], [`CertsError::Exists`] if
/// either file exists (nothing is written then), [`CertsError::NoCa`] / [`CertsError::BadCa`]
/// for a missing or broken CA, [`CertsError::Io`].
pub fn issue(dir: &Path, leaf: &Leaf<'_>, validity: Validity) -> Result<Vec<Written>, CertsError> {
    check_leaf(leaf)?;
    let name = leaf.name;
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    refuse_existing(&[&cert, &key], CertsError::Exists)?;
    let ca = load_ca(dir)?;
    let validity = Validity {
        not_after: validity.not_after.min(ca.not_after),
        ..validity
    };
    let key_pair = KeyPair::generate()?;
    let role = leaf.role.as_str();
    let mut params = leaf_params(
        subject(name, role, &ca.org),
        validity,
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    if let Some(cluster) = leaf.cluster {
        let uri = cluster_uri(cluster).try_into().map_err(|e: rcgen::Error| {
            CertsError::InvalidCluster(cluster.to_owned(), e.to_string())
        })?;
        params.subject_alt_names = vec![SanType::URI(uri)];
    }
    let signed = params.signed_by(&key_pair, &ca.issuer)?;

    let mut files = NewFiles(Vec::new());
    files.write(&key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    files.write(&cert, signed.pem().as_bytes(), 0o644)?;
    sync_dir(dir)?;
    files.keep();
    let mut cert = Written::file(cert, FileKind::Certificate, name, role).until(validity);
    cert.cluster = leaf.cluster.map(str::to_owned);
    Ok(vec![cert, Written::file(key, FileKind::Key, name, role)])
}

/// What [`ensure`] did.
#[derive(Debug)]
pub enum Ensured {
    /// The certificate already was what was asked: kept, nothing written.
    Kept(PathBuf),
    /// Issued: there was none, or the one there was not kept, for the reason given (the old
    /// pair is now `NAME.pem.old` and `NAME-key.pem.old`).
    Issued {
        written: Vec<Written>,
        replaced: Option<String>,
    },
}

/// Makes sure `DIR/NAME.pem` is the certificate `leaf` asks for: this CA's, with exactly this
/// role, the CA's organisation and this cluster (or none), not expired at `now`, its key next to
/// it. Keeps it if so; otherwise moves the old pair to `NAME.pem.old` / `NAME-key.pem.old`
/// (replacing older ones) and issues it anew as [`issue`] does.
///
/// # Errors
///
/// As [`issue`]; [`CertsError::BadCert`] for a `NAME.pem` that is not a certificate (it is left
/// alone: something else may own it).
pub fn ensure(
    dir: &Path,
    leaf: &Leaf<'_>,
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<Ensured, CertsError> {
    check_leaf(leaf)?;
    let name = leaf.name;
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let exists = |p: &Path| match fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(p)(e)),
    };
    if !exists(&cert)? && !exists(&key)? {
        return Ok(Ensured::Issued {
            written: issue(dir, leaf, validity)?,
            replaced: None,
        });
    }
    let ca = load_ca(dir)?;
    let Some(why) = differs(&cert, &key, &ca, leaf, now)? else {
        return Ok(Ensured::Kept(cert));
    };
    let moved: Vec<(PathBuf, PathBuf)> = [&cert, &key]
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| (p.clone(), PathBuf::from(format!("{}.old", p.display()))))
        .collect();
    for (from, to) in &moved {
        fs::rename(from, to).map_err(io_error(from))?;
    }
    match issue(dir, leaf, validity) {
        Ok(written) => Ok(Ensured::Issued {
            written,
            replaced: Some(why),
        }),
        Err(e) => {
            for (from, to) in &moved {
                let _ = fs::rename(to, from);
            }
            Err(e)
        }
    }
}

/// Why the certificate at `cert` (with its key at `key`) is not what `leaf` asks for; None
/// when it is.
fn differs(
    cert: &Path,
    key: &Path,
    ca: &Ca,
    leaf: &Leaf<'_>,
    now: DateTime<Utc>,
) -> Result<Option<String>, CertsError> {
    let spki = fs::read_to_string(key)
        .ok()
        .and_then(|pem| KeyPair::from_pem(&pem).ok())
        .map(|k| rcgen::PublicKeyData::subject_public_key_info(&k));
    with_cert(cert, |c: &X509Certificate<'_>| {
        let subject = c.subject();
        let ous: Vec<String> = subject
            .iter_organizational_unit()
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect();
        let org = first(subject.iter_organization()).unwrap_or_default();
        let mut clusters = Vec::new();
        if let Ok(Some(san)) = c.subject_alternative_name() {
            for gn in &san.value.general_names {
                if let GeneralName::URI(uri) = gn {
                    clusters.extend(cluster_of_uri(uri).map(|r| r.unwrap_or_default()));
                }
            }
        }
        let wanted: Vec<String> = leaf.cluster.iter().map(|c| (*c).to_owned()).collect();
        let why = if c.issuer().as_raw() != ca.subject.as_slice() {
            format!("issued by {}, not by this CA", c.issuer())
        } else if first(subject.iter_common_name()).as_deref() != Some(leaf.name) {
            format!("its CN is not {:?}", leaf.name)
        } else if ous != [leaf.role.as_str()] {
            format!(
                "its OU is {:?}, not {:?}",
                ous.join(", "),
                leaf.role.as_str()
            )
        } else if org != ca.org {
            format!("its O is {org:?}, the CA's is {:?}", ca.org)
        } else if clusters != wanted {
            match clusters.as_slice() {
                [] => "bound to no cluster".to_owned(),
                [c] => format!("bound to cluster {c:?}"),
                many => format!("bound to clusters {many:?}"),
            }
        } else if c.validity().not_after.timestamp() <= now.timestamp() {
            format!("expired at {}", c.validity().not_after)
        } else if spki.is_none() {
            format!("its key {} cannot be read", key.display())
        } else if spki.as_deref() != Some(c.public_key().raw) {
            format!("{} is not its key", key.display())
        } else {
            return Ok(None);
        };
        Ok(Some(why))
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use chrono::Duration;
    use x509_parser::prelude::GeneralName;

    use super::super::tests::{cn, init_dir, leaf, mode, ou, parse};
    use super::super::{check_name, show_time, DEFAULT_ORGANIZATION};
    use super::*;
    use crate::cmd::testing::now;

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
        let err = init(&dir, &[], DEFAULT_ORGANIZATION, v, v).unwrap_err();
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
            let err = init(tmp.path(), &[san.to_owned()], DEFAULT_ORGANIZATION, v, v).unwrap_err();
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
            let written =
                issue(&dir, &leaf(role, name), Validity::days(now(), 30).unwrap()).unwrap();
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
            &leaf(Role::Viewer, "alice"),
            Validity::days(now(), 1).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, CertsError::Exists(_)), "{err}");
    }

    #[test]
    fn a_leaf_cannot_outlive_its_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let v = Validity::days(now(), 10).unwrap();
        init(tmp.path(), &[], DEFAULT_ORGANIZATION, v, v).unwrap();
        let written = issue(
            tmp.path(),
            &leaf(Role::Agent, "h1"),
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
        issue(&dir, &leaf(Role::Agent, "old"), v).unwrap();
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
            let err = issue(&dir, &leaf(Role::Agent, bad), v).unwrap_err();
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
        let err = issue(tmp.path(), &leaf(Role::Viewer, "v"), v).unwrap_err();
        assert!(
            err.to_string().contains("fleetctl certs init --dir"),
            "{err}"
        );
        assert!(!tmp.path().join("v-key.pem").exists());

        let (_tmp2, dir) = init_dir();
        fs::remove_file(dir.join("ca-key.pem")).unwrap();
        fs::copy(dir.join("collector-key.pem"), dir.join("ca-key.pem")).unwrap();
        let err = issue(&dir, &leaf(Role::Viewer, "v"), v).unwrap_err();
        assert!(err.to_string().contains("is not the key of"), "{err}");
        assert!(!dir.join("v.pem").exists() && !dir.join("v-key.pem").exists());
    }

    fn uris(c: &X509Certificate<'_>) -> Vec<String> {
        c.subject_alternative_name()
            .unwrap()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::URI(u) => Some(u.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn org(c: &X509Certificate<'_>) -> Vec<String> {
        c.subject()
            .iter_organization()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn an_agent_certificate_names_its_cluster() {
        let (_tmp, dir) = init_dir();
        let v = Validity::days(now(), 30).unwrap();
        let bound = Leaf {
            role: Role::Agent,
            name: "web1",
            cluster: Some("eu west"),
        };
        let written = issue(&dir, &bound, v).unwrap();
        assert_eq!(written[0].cluster.as_deref(), Some("eu west"));
        parse(&dir.join("web1.pem"), |c| {
            assert_eq!(uris(c), ["urn:fleet:cluster:eu%20west"]);
            assert_eq!(org(c), ["Fleet"]);
        });
        issue(&dir, &leaf(Role::Agent, "web2"), v).unwrap();
        parse(&dir.join("web2.pem"), |c| assert!(uris(c).is_empty()));
        // Clusters are for agents, and follow the collector's rule.
        for (role, cluster) in [(Role::Viewer, "prod"), (Role::Agent, "")] {
            let l = Leaf {
                role,
                name: "x",
                cluster: Some(cluster),
            };
            let e = issue(&dir, &l, v).unwrap_err();
            assert!(matches!(e, CertsError::InvalidCluster(..)), "{e}");
        }
        let long = "c".repeat(129);
        let l = Leaf {
            cluster: Some(&long),
            ..bound
        };
        assert!(issue(&dir, &l, v).is_err());
        assert!(!dir.join("x.pem").exists());
    }

    #[test]
    fn init_org_names_the_organisation_of_every_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        let v = Validity::days(now(), 30).unwrap();
        init(tmp.path(), &[], "Acme Fleet", v, v).unwrap();
        issue(tmp.path(), &leaf(Role::Operator, "alice"), v).unwrap();
        for f in ["ca.pem", "collector.pem", "alice.pem"] {
            parse(&tmp.path().join(f), |c| {
                assert_eq!(org(c), ["Acme Fleet"], "{f}")
            });
        }
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["", " Acme", &"x".repeat(65)] {
            let e = init(tmp.path(), &[], bad, v, v).unwrap_err();
            assert!(matches!(e, CertsError::InvalidOrg(..)), "{e}");
        }
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn ensure_keeps_what_matches_and_replaces_the_rest() {
        let (_tmp, dir) = init_dir();
        let v = Validity::days(now(), 30).unwrap();
        let prod = Leaf {
            role: Role::Agent,
            name: "web1",
            cluster: Some("prod"),
        };
        let issued = |e: Ensured| match e {
            Ensured::Issued { written, replaced } => (written.len(), replaced),
            Ensured::Kept(p) => panic!("kept {}", p.display()),
        };
        // None yet: issued.
        assert_eq!(issued(ensure(&dir, &prod, v, now()).unwrap()), (2, None));
        let first = fs::read(dir.join("web1.pem")).unwrap();
        // The same again: kept, nothing written.
        assert!(matches!(
            ensure(&dir, &prod, v, now()).unwrap(),
            Ensured::Kept(_)
        ));
        assert_eq!(fs::read(dir.join("web1.pem")).unwrap(), first);
        // Another cluster: replaced, the old pair kept aside.
        let staging = Leaf {
            cluster: Some("staging"),
            ..prod
        };
        let (_, why) = issued(ensure(&dir, &staging, v, now()).unwrap());
        assert_eq!(why.as_deref(), Some("bound to cluster \"prod\""));
        assert_eq!(fs::read(dir.join("web1.pem.old")).unwrap(), first);
        assert!(dir.join("web1-key.pem.old").exists());
        parse(&dir.join("web1.pem"), |c| {
            assert_eq!(uris(c), ["urn:fleet:cluster:staging"]);
        });
        // An unbound certificate, as issued before clusters were bound, is bound by ensure.
        issue(&dir, &leaf(Role::Agent, "web2"), v).unwrap();
        let web2 = Leaf {
            name: "web2",
            ..prod
        };
        let (_, why) = issued(ensure(&dir, &web2, v, now()).unwrap());
        assert_eq!(why.as_deref(), Some("bound to no cluster"));
        // Expired, or another role: replaced too.
        issue(
            &dir,
            &leaf(Role::Viewer, "v"),
            Validity::until(now(), now()),
        )
        .unwrap();
        let (_, why) = issued(ensure(&dir, &leaf(Role::Viewer, "v"), v, now()).unwrap());
        assert!(why.unwrap().starts_with("expired at "));
        let (_, why) = issued(ensure(&dir, &leaf(Role::Operator, "v"), v, now()).unwrap());
        assert_eq!(
            why.as_deref(),
            Some("its OU is \"viewer\", not \"operator\"")
        );
        // A key that is not the certificate's.
        fs::copy(dir.join("web2-key.pem.old"), dir.join("web2-key.pem")).unwrap();
        let (_, why) = issued(ensure(&dir, &web2, v, now()).unwrap());
        assert!(why.unwrap().ends_with("is not its key"));
        // Something that is not a certificate is left alone.
        fs::write(dir.join("junk.pem"), "junk").unwrap();
        let e = ensure(&dir, &leaf(Role::Viewer, "junk"), v, now()).unwrap_err();
        assert!(matches!(e, CertsError::BadCert { .. }), "{e}");
        assert_eq!(fs::read(dir.join("junk.pem")).unwrap(), b"junk");
    }
}
