//! The reader against x509-parser on certificates made by rcgen (as `fleetctl certs` makes
//! them) and on the system's CA certificates, and on broken input: every truncation, random
//! byte changes, and each malformation by hand.

use rand::{Rng, SeedableRng};
use rcgen::{CertificateParams, DnType, DnValue, KeyPair, SanType};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time as Clock};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::*;

/// A UTC time for rcgen.
pub(crate) fn at(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> OffsetDateTime {
    let date = Date::from_calendar_date(y, Month::try_from(mo).unwrap(), d).unwrap();
    PrimitiveDateTime::new(date, Clock::from_hms(h, mi, s).unwrap()).assume_utc()
}

/// A self-signed certificate (PEM) with these subject attributes in order (the last arc of
/// their OID under 2.5.4, and the value), subject alternative names and end of validity.
pub(crate) fn made(
    attrs: &[(u64, DnValue)],
    sans: &[SanType],
    not_after: OffsetDateTime,
) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // rcgen keeps one value per attribute type: a second one goes under its OID spelled as a
    // custom type, so a name can have two CNs (a third would replace the second).
    for (i, (arc, value)) in attrs.iter().enumerate() {
        let again = attrs.iter().take(i).any(|(a, _)| a == arc);
        let ty = match arc {
            3 if !again => DnType::CommonName,
            11 if !again => DnType::OrganizationalUnitName,
            10 if !again => DnType::OrganizationName,
            _ => DnType::CustomDnType(vec![2, 5, 4, *arc]),
        };
        params.distinguished_name.push(ty, value.clone());
    }
    params.subject_alt_names = sans.to_vec();
    params.not_after = not_after;
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

/// An agent certificate as `fleetctl certs issue --role agent` makes it (PEM): CN the host id,
/// OU the role, O the organisation, the cluster URIs.
pub(crate) fn agent_cert(cn: &str, ou: &str, uris: &[&str], not_after: OffsetDateTime) -> String {
    let utf8 = |s: &str| DnValue::Utf8String(s.to_owned());
    let sans: Vec<SanType> = uris
        .iter()
        .map(|u| SanType::URI((*u).try_into().unwrap()))
        .collect();
    made(
        &[(3, utf8(cn)), (11, utf8(ou)), (10, utf8("Fleet"))],
        &sans,
        not_after,
    )
}

fn der_of(pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    pem.contents
}

/// What x509-parser reads of the same DER, as check_certificate read it before this module.
fn reference(der: &[u8]) -> Result<Certificate, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for gn in &san.value.general_names {
            if let GeneralName::URI(uri) = gn {
                uris.push((*uri).to_owned());
            }
        }
    }
    let end = cert.validity().not_after.to_datetime();
    let common_name = first(&mut subject.iter_common_name());
    let org_unit = first(&mut subject.iter_organizational_unit());
    Ok(Certificate {
        common_name,
        org_unit,
        uris,
        not_after: Time {
            year: u16::try_from(end.year()).unwrap(),
            month: u16::from(u8::from(end.month())),
            day: u16::from(end.day()),
            hour: u16::from(end.hour()),
            minute: u16::from(end.minute()),
            second: u16::from(end.second()),
        },
    })
}

/// Reads `der` both ways, checks they agree (and the Unix time with x509-parser's), and returns
/// the reading.
fn read_both(der: &[u8]) -> Certificate {
    let ours = Certificate::from_der(der).unwrap();
    let theirs = reference(der).unwrap();
    assert_eq!(ours, theirs);
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    assert_eq!(
        ours.not_after.unix_seconds(),
        cert.validity().not_after.timestamp()
    );
    ours
}

/// The agent certificate of host web-1 in cluster prod (DER).
fn web1() -> Vec<u8> {
    let end = at(2027, 3, 10, 12, 0, 0);
    der_of(&agent_cert(
        "web-1",
        "agent",
        &["urn:fleet:cluster:prod"],
        end,
    ))
}

fn utf8(s: &str) -> DnValue {
    DnValue::Utf8String(s.to_owned())
}

#[test]
fn agent_certificates_read_as_x509_parser_reads_them() {
    let end = at(2027, 3, 10, 12, 0, 0);
    let pem = agent_cert("web-1", "agent", &["urn:fleet:cluster:prod"], end);
    let cert = Certificate::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(cert, read_both(&der_of(&pem)));
    assert_eq!(cert.common_name.as_deref(), Some("web-1"));
    assert_eq!(cert.org_unit.as_deref(), Some("agent"));
    assert_eq!(cert.uris, ["urn:fleet:cluster:prod"]);
    assert_eq!(cert.not_after.to_string(), "2027-03-10T12:00:00Z");
    assert_eq!(cert.not_after.unix_seconds(), end.unix_timestamp());

    // No SAN, no OU; two clusters among other names; a viewer's.
    let cases = [
        made(&[(3, utf8("h1"))], &[], end),
        made(
            &[(10, utf8("Fleet")), (11, utf8("viewer")), (3, utf8("ops"))],
            &[
                SanType::DnsName("h1.example".try_into().unwrap()),
                SanType::URI("urn:fleet:cluster:a".try_into().unwrap()),
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
                SanType::Rfc822Name("ops@example.org".try_into().unwrap()),
                SanType::URI("urn:fleet:cluster:b%2Fc".try_into().unwrap()),
            ],
            end,
        ),
        agent_cert("h2", "agent", &[], end),
    ];
    for pem in &cases {
        assert_eq!(
            Certificate::from_pem(pem.as_bytes()).unwrap(),
            read_both(&der_of(pem))
        );
    }
    let viewer = read_both(&der_of(&cases[1]));
    assert_eq!(viewer.org_unit.as_deref(), Some("viewer"));
    assert_eq!(
        viewer.uris,
        ["urn:fleet:cluster:a", "urn:fleet:cluster:b%2Fc"]
    );
    assert_eq!(read_both(&der_of(&cases[0])).org_unit, None);
}

#[test]
fn the_first_cn_and_ou_count_and_only_as_text() {
    let end = at(2030, 1, 1, 0, 0, 0);
    let cases = [
        // Two of each: the first counts.
        (
            vec![
                (3, utf8("a")),
                (11, utf8("agent")),
                (3, utf8("b")),
                (11, utf8("viewer")),
            ],
            Some("a"),
            Some("agent"),
        ),
        // The string types read as text.
        (
            vec![
                (3, DnValue::PrintableString("h1".try_into().unwrap())),
                (11, DnValue::Ia5String("agent".try_into().unwrap())),
            ],
            Some("h1"),
            Some("agent"),
        ),
        // A first CN in BMPString is no text, and the second is not looked at (as before).
        (
            vec![
                (3, DnValue::BmpString("h1".try_into().unwrap())),
                (3, utf8("h2")),
                (11, DnValue::TeletexString("agent".try_into().unwrap())),
            ],
            None,
            None,
        ),
        (vec![(10, utf8("Fleet"))], None, None),
    ];
    for (attrs, cn, ou) in cases {
        let cert = read_both(&der_of(&made(&attrs, &[], end)));
        assert_eq!(
            (cert.common_name.as_deref(), cert.org_unit.as_deref()),
            (cn, ou)
        );
    }
}

#[test]
fn times_either_side_of_2050_and_the_epoch() {
    // rcgen writes UTCTime up to 2049 and GeneralizedTime from 2050 (RFC 5280), as CAs do.
    for (end, text) in [
        (at(1950, 1, 1, 0, 0, 0), "1950-01-01T00:00:00Z"),
        (at(1969, 12, 31, 23, 59, 59), "1969-12-31T23:59:59Z"),
        (at(1999, 12, 31, 23, 59, 59), "1999-12-31T23:59:59Z"),
        (at(2024, 2, 29, 6, 7, 8), "2024-02-29T06:07:08Z"),
        (at(2049, 12, 31, 23, 59, 59), "2049-12-31T23:59:59Z"),
        (at(2050, 1, 1, 0, 0, 0), "2050-01-01T00:00:00Z"),
        (at(9999, 12, 31, 23, 59, 59), "9999-12-31T23:59:59Z"),
    ] {
        let der = der_of(&agent_cert("h1", "agent", &[], end));
        let cert = read_both(&der);
        assert_eq!(cert.not_after.to_string(), text);
        assert_eq!(
            cert.not_after.unix_seconds(),
            end.unix_timestamp(),
            "{text}"
        );
    }
}

/// A validity whose notAfter is the element `tag`, `text`, read on its own.
fn time_of(tag: u8, text: &str) -> Result<Time, CertError> {
    let mut der = vec![tag, u8::try_from(text.len()).unwrap()];
    der.extend_from_slice(text.as_bytes());
    time(&mut Der(&der), "notAfter")
}

#[test]
fn times_by_hand() {
    let ok = |tag, text| time_of(tag, text).unwrap().unix_seconds();
    assert_eq!(ok(UTC_TIME, "700101000000Z"), 0);
    assert_eq!(ok(UTC_TIME, "491231235959Z"), 2_524_607_999);
    assert_eq!(ok(UTC_TIME, "500101000000Z"), -631_152_000);
    assert_eq!(ok(GENERALIZED_TIME, "20000301000000Z"), 951_868_800);
    assert_eq!(ok(GENERALIZED_TIME, "20500101000000.25Z"), 2_524_608_000);
    assert_eq!(ok(GENERALIZED_TIME, "00000101000000Z"), -62_167_219_200);
    assert_eq!(ok(GENERALIZED_TIME, "20000229120000Z"), 951_825_600);
    for (tag, text) in [
        (UTC_TIME, "230230000000Z"),           // 30 February
        (GENERALIZED_TIME, "21000229000000Z"), // 2100 is no leap year
        (UTC_TIME, "231301000000Z"),
        (UTC_TIME, "231200000000Z"),
        (UTC_TIME, "231201240000Z"),
        (UTC_TIME, "231201006000Z"),
        (UTC_TIME, "231201000060Z"),
        (UTC_TIME, "2312010000Z"),
        (UTC_TIME, "231201000000"),
        (UTC_TIME, "231201000000+0100"),
        (UTC_TIME, "231201000000ZZ"),
        (UTC_TIME, "2312010000 0Z"),
        (UTC_TIME, "-31201000000Z"),
        (UTC_TIME, ""),
        (GENERALIZED_TIME, "231201000000Z"),
        (GENERALIZED_TIME, "20231201000000.Z"),
        (GENERALIZED_TIME, "20231201000000,5Z"),
    ] {
        assert!(
            matches!(
                time_of(tag, text),
                Err(CertError::BadTime {
                    field: "notAfter",
                    ..
                })
            ),
            "{text:?}"
        );
    }
    assert!(matches!(
        time_of(UTC_TIME, "231301000000Z")
            .unwrap_err()
            .to_string()
            .as_str(),
        "the certificate's notAfter is not a time: \"231301000000Z\""
    ));
    assert!(matches!(
        time_of(0x13, "231201000000Z"),
        Err(CertError::BadTag {
            field: "notAfter",
            found: 0x13,
            ..
        })
    ));
}

/// The PEM file of every CA certificate the system trusts.
fn system_cas() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir("/etc/ssl/certs").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pem") {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn the_system_ca_certificates_read_as_x509_parser_reads_them() {
    // Debian's ca-certificates: real certificates from many CAs, over 25 years (UTCTime and
    // GeneralizedTime, PrintableString and UTF8String, OUs or none).
    let cas = system_cas();
    assert!(cas.len() >= 100, "{} CA certificates", cas.len());
    let (mut with_cn, mut with_ou, mut after_2038) = (0, 0, 0);
    for (path, pem) in &cas {
        let ours = Certificate::from_pem(pem).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_, block) = x509_parser::pem::parse_x509_pem(pem).unwrap();
        assert_eq!(ours, read_both(&block.contents), "{}", path.display());
        with_cn += usize::from(ours.common_name.is_some());
        with_ou += usize::from(ours.org_unit.is_some());
        after_2038 += usize::from(ours.not_after.year > 2038);
    }
    // The comparison covered names with and without OU, and ends past 2038 (a 32-bit time_t).
    // None ends in 2050 or later: GeneralizedTime is compared on rcgen's certificates.
    assert!(
        with_cn > 100 && with_ou > 20 && after_2038 > 10,
        "{with_cn} {with_ou} {after_2038}"
    );
}

#[test]
fn every_truncation_is_an_error() {
    let agent = web1();
    let cas = system_cas();
    let (_, ca) = x509_parser::pem::parse_x509_pem(&cas[0].1).unwrap();
    for der in [agent, ca.contents] {
        Certificate::from_der(&der).unwrap();
        for len in 0..der.len() {
            let cut = der.get(..len).unwrap();
            assert!(
                matches!(Certificate::from_der(cut), Err(CertError::Truncated { .. })),
                "{len} of {} bytes",
                der.len()
            );
        }
    }
    // The PEM text cut anywhere: an error, or the certificate (only once the END line is in).
    let pem = agent_cert("h1", "agent", &[], at(2030, 1, 1, 0, 0, 0));
    let whole = Certificate::from_pem(pem.as_bytes()).unwrap();
    let end_line = "-----END CERTIFICATE-----";
    let end = pem.find(end_line).unwrap() + end_line.len();
    for len in 0..pem.len() {
        match Certificate::from_pem(pem.as_bytes().get(..len).unwrap()) {
            Ok(cert) => assert!(len >= end && cert == whole, "{len}"),
            Err(_) => assert!(len < end, "{len}"),
        }
    }
}

#[test]
fn changed_bytes_give_an_error_or_a_reading_never_a_panic() {
    let der = der_of(&agent_cert(
        "web-1",
        "agent",
        &["urn:fleet:cluster:prod", "urn:fleet:cluster:x"],
        at(2027, 3, 10, 12, 0, 0),
    ));
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let (mut read, mut agreed, mut stricter) = (0, 0, 0);
    for _ in 0..20_000 {
        let mut bad = der.clone();
        for _ in 0..rng.random_range(1..=3) {
            let i = rng.random_range(0..bad.len());
            if let Some(b) = bad.get_mut(i) {
                *b = rng.random();
            }
        }
        let Ok(ours) = Certificate::from_der(&bad) else {
            continue;
        };
        read += 1;
        let Ok(theirs) = reference(&bad) else {
            continue;
        };
        // Where x509-parser reads it too, both read the same, except that x509-parser takes a
        // string's tag number in any class (0xf6, private and constructed, as IA5String 0x16):
        // this reader then finds no text rather than another one.
        let changed: Vec<_> = (0..der.len())
            .filter(|&i| der.get(i) != bad.get(i))
            .map(|i| (i, bad.get(i)))
            .collect();
        assert_eq!(
            (&ours.uris, ours.not_after),
            (&theirs.uris, theirs.not_after),
            "{changed:02x?}"
        );
        for (a, b) in [
            (&ours.common_name, &theirs.common_name),
            (&ours.org_unit, &theirs.org_unit),
        ] {
            assert!(a == b || a.is_none(), "{a:?} {b:?} {changed:02x?}");
            stricter += usize::from(a != b);
        }
        agreed += 1;
    }
    // Most changes land in the key or the signature, which neither looks into.
    assert!(
        read > 1000 && agreed > 1000 && stricter < 100,
        "{read} read, {agreed} agreed, {stricter} stricter"
    );
}

#[test]
fn malformed_der_names_what_is_wrong() {
    let der = web1();
    let err = |bytes: &[u8]| Certificate::from_der(bytes).unwrap_err();
    assert!(matches!(
        err(&[]),
        CertError::Truncated {
            field: "outer SEQUENCE"
        }
    ));
    assert!(matches!(
        err(&[0x30, 0x80, 0, 0]),
        CertError::IndefiniteLength {
            field: "outer SEQUENCE"
        }
    ));
    assert!(matches!(
        err(&[0x30, 0x85, 1, 2, 3, 4, 5]),
        CertError::LengthOverflow {
            field: "outer SEQUENCE"
        }
    ));
    assert!(matches!(
        err(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0]),
        CertError::Truncated {
            field: "outer SEQUENCE"
        }
    ));
    assert!(matches!(
        err(&[0x1f, 0x81, 0x01, 0]),
        CertError::BadTag {
            field: "outer SEQUENCE",
            found: 0x1f,
            ..
        }
    ));
    let e = err(&[0x31, 0]);
    assert!(matches!(
        e,
        CertError::BadTag {
            field: "outer SEQUENCE",
            found: 0x31,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "the certificate's outer SEQUENCE has tag 0x31, not SEQUENCE"
    );

    // The first byte of `pattern` in the real certificate changed to `to`.
    let with = |pattern: &[u8], to: u8| {
        let mut bad = der.clone();
        let at = bad
            .windows(pattern.len())
            .position(|w| w == pattern)
            .unwrap();
        bad[at] = to;
        err(&bad)
    };
    // The validity's tag: the UTCTime of notBefore (rcgen's is 1975-01-01) made a SET.
    let e = with(b"\x17\x0d750101", SET);
    assert!(
        matches!(
            e,
            CertError::BadTag {
                field: "notBefore",
                found: SET,
                ..
            }
        ),
        "{e}"
    );
    // The URI's bytes not UTF-8.
    let e = with(b"urn:", 0xff);
    assert!(
        matches!(
            e,
            CertError::NotText {
                field: "subjectAltName URI"
            }
        ),
        "{e}"
    );
}

/// A DER element.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(contents.len()) {
        Ok(n) if n < 0x80 => out.push(n),
        _ => {
            let len = u16::try_from(contents.len()).unwrap().to_be_bytes();
            out.push(0x82);
            out.extend_from_slice(&len);
        }
    }
    out.extend_from_slice(contents);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// A certificate by hand (no key, no signature: only the structure the reader walks), with
/// these optional parts of tbsCertificate: version, unique ids and extensions.
fn by_hand(
    version: bool,
    unique_ids: bool,
    subject: &[Vec<u8>],
    extensions: &[Vec<u8>],
) -> Vec<u8> {
    let time = |t: &str| tlv(UTC_TIME, t.as_bytes());
    let mut tbs = Vec::new();
    if version {
        tbs.push(tlv(CONTEXT_0, &tlv(INTEGER, &[2])));
    }
    tbs.extend([
        tlv(INTEGER, &[1]),
        seq(&[tlv(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])]),
        seq(&[]),
        seq(&[time("250101000000Z"), time("300101000000Z")]),
        seq(subject),
        seq(&[]),
    ]);
    if unique_ids {
        tbs.extend([tlv(CONTEXT_1, &[0, 1]), tlv(CONTEXT_2, &[0, 2])]);
    }
    if !extensions.is_empty() {
        tbs.push(tlv(CONTEXT_3, &seq(extensions)));
    }
    seq(&[seq(&tbs), seq(&[]), tlv(BIT_STRING, &[0])])
}

fn rdn(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
    tlv(SET, &seq(&[tlv(OID, oid), tlv(tag, value.as_bytes())]))
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![tlv(OID, oid)];
    if critical {
        parts.push(tlv(BOOLEAN, &[0xff]));
    }
    parts.push(tlv(OCTET_STRING, value));
    seq(&parts)
}

#[test]
fn the_optional_parts_of_a_certificate() {
    let subject = [
        rdn(&[0x55, 0x04, 0x06], PRINTABLE_STRING, "FR"),
        rdn(OID_OU, NUMERIC_STRING, "42"),
        rdn(OID_CN, IA5_STRING, "h1"),
    ];
    let san = seq(&[
        tlv(0x82, b"h1.example"),
        tlv(
            0xa0,
            &seq(&[tlv(OID, &[0x2b, 0x06]), tlv(0xa0, &tlv(UTF8_STRING, b"x"))]),
        ),
        tlv(URI, b"urn:fleet:cluster:a"),
        tlv(0x87, &[127, 0, 0, 1]),
        tlv(URI, b"https://example.org/"),
    ]);
    let key_usage = extension(&[0x55, 0x1d, 0x0f], true, &tlv(BIT_STRING, &[7, 0x80]));
    let extensions = [key_usage, extension(OID_SAN, true, &san)];
    let want = Certificate {
        common_name: Some("h1".into()),
        org_unit: Some("42".into()),
        uris: vec!["urn:fleet:cluster:a".into(), "https://example.org/".into()],
        not_after: time_of(UTC_TIME, "300101000000Z").unwrap(),
    };
    for (version, ids) in [(true, true), (false, false), (true, false), (false, true)] {
        let der = by_hand(version, ids, &subject, &extensions);
        assert_eq!(
            Certificate::from_der(&der).unwrap(),
            want,
            "{version} {ids}"
        );
    }
    // No extensions, an empty subject.
    let bare = Certificate::from_der(&by_hand(true, false, &[], &[])).unwrap();
    assert_eq!(
        (bare.common_name, bare.org_unit, bare.uris.len()),
        (None, None, 0)
    );
    // Bytes after the certificate are not looked at (as x509-parser's PEM reading).
    let mut der = by_hand(true, false, &subject, &extensions);
    der.extend_from_slice(b"rest");
    assert_eq!(Certificate::from_der(&der).unwrap(), want);
}

#[test]
fn two_subject_alt_names_or_a_broken_one_are_errors() {
    let subject = [rdn(OID_CN, UTF8_STRING, "h1")];
    let san = |uri: &str| extension(OID_SAN, false, &seq(&[tlv(URI, uri.as_bytes())]));
    let two = by_hand(
        true,
        false,
        &subject,
        &[san("urn:fleet:cluster:a"), san("urn:fleet:cluster:b")],
    );
    let e = Certificate::from_der(&two).unwrap_err();
    assert!(matches!(e, CertError::TwoSubjectAltNames), "{e}");
    // A SAN that is not a SEQUENCE, one cut short inside its OCTET STRING.
    let not_seq = extension(OID_SAN, false, &tlv(SET, &[]));
    let e = Certificate::from_der(&by_hand(true, false, &subject, &[not_seq])).unwrap_err();
    assert!(
        matches!(
            e,
            CertError::BadTag {
                field: "subjectAltName",
                found: SET,
                ..
            }
        ),
        "{e}"
    );
    let cut = extension(OID_SAN, false, &[SEQUENCE, 5, URI, 3, b'u']);
    let e = Certificate::from_der(&by_hand(true, false, &subject, &[cut])).unwrap_err();
    assert!(
        matches!(
            e,
            CertError::Truncated {
                field: "subjectAltName"
            }
        ),
        "{e}"
    );
    // A subject attribute without its value.
    let no_value = tlv(SET, &seq(&[tlv(OID, OID_CN)]));
    let e = Certificate::from_der(&by_hand(true, false, &[no_value], &[])).unwrap_err();
    assert!(
        matches!(
            e,
            CertError::Truncated {
                field: "subject attribute value"
            }
        ),
        "{e}"
    );
    // The extensions under another class (private [3]): an error, where passing over them
    // would read a bound certificate as unbound.
    let mut der = by_hand(true, false, &subject, &[san("urn:fleet:cluster:a")]);
    assert_eq!(der.iter().filter(|&&b| b == CONTEXT_3).count(), 1);
    let at = der.iter().position(|&b| b == CONTEXT_3).unwrap();
    der[at] = 0xe3;
    let e = Certificate::from_der(&der).unwrap_err();
    assert!(matches!(e, CertError::BadTag { found: 0xe3, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "the certificate's extensions has tag 0xe3, not [3] (or nothing after subjectPublicKeyInfo)"
    );
}

#[test]
fn not_pem_or_no_certificate_in_it() {
    assert!(matches!(
        Certificate::from_pem(b"hello\n"),
        Err(CertError::NoCertificate)
    ));
    assert!(matches!(
        Certificate::from_pem(b""),
        Err(CertError::NoCertificate)
    ));
    let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        Certificate::from_pem(key.as_bytes()),
        Err(CertError::NoCertificate)
    ));
    // A key first, then the certificate: the certificate is read.
    let pem = agent_cert("h1", "agent", &[], at(2030, 1, 1, 0, 0, 0));
    let both = format!("{key}{pem}");
    assert_eq!(
        Certificate::from_pem(both.as_bytes())
            .unwrap()
            .common_name
            .as_deref(),
        Some("h1")
    );
    let e =
        Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
            .unwrap_err();
    assert!(matches!(e, CertError::Pem(_)), "{e}");
    assert!(e.to_string().starts_with("not a PEM certificate ("), "{e}");
    let e = Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap_err();
    assert!(matches!(e, CertError::Pem(_)), "{e}");
    // PEM around bytes that are no certificate.
    let e =
        Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap_err();
    assert!(
        matches!(
            e,
            CertError::BadTag {
                field: "outer SEQUENCE",
                found: 0,
                ..
            }
        ),
        "{e}"
    );
}
