//! `fleetctl certs revoke`: the CA's certificate revocation list, `DIR/crl.pem`, which the
//! collector reads as `tls_crl` (at start and on SIGHUP, closing the open connections of the
//! certificates it newly lists).
//!
//! Each call writes the whole list again, signed by the CA: what the previous `crl.pem` listed
//! (with the times they were revoked), and the certificates `DIR/NAME.pem` of the names given,
//! identified by their serial numbers. With no name it writes the list as it is (an empty one the
//! first time), e.g. to configure `tls_crl` before anything is revoked. The CRL number grows by
//! one with each list; the next-update time is [`CRL_DAYS`] ahead (the collector does not enforce
//! it). The new list is written next to the old one and renamed over it, so a reader never sees
//! half a file.

use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use x509_parser::num_bigint::BigUint;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::{
    check_name, io_error, load_ca, sync_dir, to_time, with_cert, Ca, CertsError, FileKind,
    NewFiles, Revoked, Written, BACKDATE, CRL,
};
use crate::output::show_time;

/// Days until a CRL's next update.
pub const CRL_DAYS: i64 = 365;

/// One certificate the list revokes.
struct Entry {
    serial: Vec<u8>,
    when: time::OffsetDateTime,
}

/// The entries and number of the CRL at `path`, if there is one; it must be `ca`'s.
fn read_crl(path: &Path, ca: &Ca) -> Result<(Vec<Entry>, Option<BigUint>), CertsError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(io_error(path)(e)),
    };
    let bad = |message: String| CertsError::BadCert {
        path: path.to_path_buf(),
        message,
    };
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(&text).map_err(|e| bad(format!("not a PEM CRL: {e}")))?;
    let (_, crl) = CertificateRevocationList::from_der(&pem.contents)
        .map_err(|e| bad(format!("not a CRL: {e}")))?;
    if crl.issuer().as_raw() != ca.subject.as_slice() {
        return Err(bad(format!(
            "issued by {}, not by this CA (move it away to start a new list)",
            crl.issuer()
        )));
    }
    let entries = crl
        .iter_revoked_certificates()
        .map(|r| Entry {
            serial: r.raw_serial().to_vec(),
            when: r.revocation_date.to_datetime(),
        })
        .collect();
    Ok((entries, crl.crl_number().cloned()))
}

/// Revokes the certificates `DIR/NAME.pem` of `names` (none: only writes the list again) in
/// `DIR/crl.pem`, signed by the CA in `dir`, at `now`.
///
/// # Errors
///
/// [`CertsError::InvalidName`], [`CertsError::NoCa`] / [`CertsError::BadCa`],
/// [`CertsError::BadCert`] for a certificate or a previous CRL that is not this CA's,
/// [`CertsError::Io`]. Nothing is written then.
pub fn revoke(
    dir: &Path,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<Written>, CertsError> {
    for name in names {
        check_name(name)?;
    }
    let ca = load_ca(dir)?;
    let path = dir.join(CRL);
    let (mut entries, number) = read_crl(&path, &ca)?;
    for name in names {
        let serial = with_cert(&dir.join(format!("{name}.pem")), |c| {
            if c.issuer().as_raw() != ca.subject.as_slice() {
                return Err(format!("issued by {}, not by this CA", c.issuer()));
            }
            Ok(c.raw_serial().to_vec())
        })?;
        if !entries.iter().any(|e| e.serial == serial) {
            entries.push(Entry {
                serial,
                when: to_time(now)?,
            });
        }
    }
    let next_update = now + chrono::Duration::days(CRL_DAYS);
    let number = number.map_or_else(|| BigUint::from(1u32), |n| n + 1u32);
    let crl = CertificateRevocationListParams {
        this_update: to_time(now - BACKDATE)?,
        next_update: to_time(next_update)?,
        crl_number: SerialNumber::from(number.to_bytes_be()),
        issuing_distribution_point: None,
        revoked_certs: entries
            .iter()
            .map(|e| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&e.serial),
                revocation_time: e.when,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)?;
    let pem = crl.pem()?;

    let aside = dir.join(format!(".{CRL}.new"));
    match fs::remove_file(&aside) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(&aside)(e)),
        _ => {}
    }
    let mut files = NewFiles(Vec::new());
    files.write(&aside, pem.as_bytes(), 0o644)?;
    fs::rename(&aside, &path).map_err(io_error(&path))?;
    files.keep();
    sync_dir(dir)?;
    let mut written = Written::file(path, FileKind::Crl, &ca.name, "ca");
    written.not_after = Some(show_time(next_update));
    written.revoked = Some(Revoked {
        added: names.to_vec(),
        total: entries.len(),
    });
    Ok(vec![written])
}

#[cfg(test)]
mod tests {
    use super::super::tests::{init_dir, leaf};
    use super::super::{issue, Role, Validity};
    use super::*;
    use crate::cmd::testing::now;

    fn listed(dir: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
        let text = fs::read(dir.join(CRL)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&text).unwrap();
        assert_eq!(pem.label, "X509 CRL");
        let (_, crl) = CertificateRevocationList::from_der(&pem.contents).unwrap();
        let serials = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect();
        (serials, crl.crl_number().unwrap().to_bytes_be())
    }

    fn serial(dir: &Path, name: &str) -> Vec<u8> {
        with_cert(&dir.join(format!("{name}.pem")), |c| {
            Ok(c.raw_serial().to_vec())
        })
        .unwrap()
    }

    #[test]
    fn revoke_lists_the_named_certificates_and_keeps_the_earlier_ones() {
        let (_tmp, dir) = init_dir();
        let v = Validity::days(now(), 30).unwrap();
        for name in ["web1", "web2", "web3"] {
            issue(&dir, &leaf(Role::Agent, name), v).unwrap();
        }
        // An empty list first.
        let w = revoke(&dir, &[], now()).unwrap();
        assert_eq!(w[0].kind, FileKind::Crl);
        assert_eq!(w[0].revoked.as_ref().unwrap().total, 0);
        assert_eq!(listed(&dir), (vec![], vec![1]));
        assert_eq!(super::super::tests::mode(&dir.join(CRL)), 0o644);

        revoke(&dir, &["web1".into()], now()).unwrap();
        let w = revoke(&dir, &["web2".into(), "web1".into()], now()).unwrap();
        let r = w[0].revoked.as_ref().unwrap();
        assert_eq!((r.added.len(), r.total), (2, 2));
        assert_eq!(
            listed(&dir),
            (vec![serial(&dir, "web1"), serial(&dir, "web2")], vec![3])
        );
        assert!(!dir.join(".crl.pem.new").exists());
    }

    #[test]
    fn revoke_refuses_what_is_not_this_cas() {
        let (_tmp, dir) = init_dir();
        let (_tmp2, other) = init_dir();
        issue(
            &other,
            &leaf(Role::Viewer, "v"),
            Validity::days(now(), 1).unwrap(),
        )
        .unwrap();
        fs::copy(other.join("v.pem"), dir.join("v.pem")).unwrap();
        let e = revoke(&dir, &["v".into()], now()).unwrap_err();
        assert!(e.to_string().contains("not by this CA"), "{e}");
        let e = revoke(&dir, &["nobody".into()], now()).unwrap_err();
        assert!(e.to_string().contains("nobody.pem"), "{e}");
        // Another CA's list is not extended either.
        revoke(&other, &[], now()).unwrap();
        fs::copy(other.join(CRL), dir.join(CRL)).unwrap();
        let e = revoke(&dir, &[], now()).unwrap_err();
        assert!(e.to_string().contains("move it away"), "{e}");
    }
}
