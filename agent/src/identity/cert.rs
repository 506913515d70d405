//! The few fields of the agent's client certificate that its start-up check reads: the
//! subject's first CN and first OU, the URIs among its subject alternative names, and the end of
//! its validity. A small DER reader of exactly that, so the agent does not link a general X.509
//! parser (its code pages are most of the agent's memory).
//!
//! The input is the certificate file as `fleetctl certs issue` writes it, PEM:
//!
//! ```text
//! -----BEGIN CERTIFICATE-----
//! MIIBxjCCAWygAwIBAgIUeB2Sc0c6ox3KTdRmYvS9Tw3JfMUwCgYIKoZIzj0EAwIw
//! ...
//! -----END CERTIFICATE-----
//! ```
//!
//! The first `CERTIFICATE` block is decoded (other blocks, a key say, are passed over) with the
//! PEM reader of `rustls-pki-types`, which the agent links already for its TLS connection. The DER
//! inside is walked along RFC 5280 §4.1, reading the marked fields and checking only the tags of
//! the others:
//!
//! ```text
//! Certificate     SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE, signatureValue BIT STRING }
//! tbsCertificate  SEQUENCE { version [0] OPTIONAL, serialNumber INTEGER, signature SEQUENCE,
//!                            issuer SEQUENCE, validity*, subject*, subjectPublicKeyInfo SEQUENCE,
//!                            [1] OPTIONAL, [2] OPTIONAL, extensions* [3] OPTIONAL }
//! validity        SEQUENCE { notBefore Time, notAfter Time }   Time: UTCTime | GeneralizedTime
//! subject         SEQUENCE OF SET OF SEQUENCE { type OID, value }   CN 2.5.4.3, OU 2.5.4.11
//! extensions      SEQUENCE OF SEQUENCE { OID, critical BOOLEAN OPTIONAL, value OCTET STRING }
//! subjectAltName  (OID 2.5.29.17, in the OCTET STRING) SEQUENCE OF GeneralName; URI is [6]
//! ```
//!
//! Nothing panics on any input: every read is checked against what is left, a length takes at
//! most 4 bytes (and may not claim more than is there), and the walk is a fixed one with no
//! recursion, so its depth is that of the structure above. A wrong input is an [`CertError`]
//! naming the field.

use std::fmt;

use rustls_pki_types::pem::{self, SectionKind};
use thiserror::Error;

/// What the agent reads of its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The subject's first CN, if it is text (UTF8String, PrintableString, IA5String or
    /// NumericString); None when there is none or it is of another string type.
    pub common_name: Option<String>,
    /// The subject's first OU, on the same terms.
    pub org_unit: Option<String>,
    /// The URIs among the subject alternative names, in their order.
    pub uris: Vec<String>,
    /// The end of the validity.
    pub not_after: Time,
}

/// Why a certificate could not be read; each names the field at fault.
#[derive(Debug, Error)]
pub enum CertError {
    #[error("not a PEM certificate ({0})")]
    Pem(#[from] pem::Error),
    #[error("not a PEM certificate (no CERTIFICATE block)")]
    NoCertificate,
    #[error("the certificate is cut short in its {field}")]
    Truncated { field: &'static str },
    #[error("the certificate's {field} has tag {found:#04x}, not {expected}")]
    BadTag {
        field: &'static str,
        found: u8,
        expected: &'static str,
    },
    #[error("the certificate's {field} has a length of more than 4 bytes")]
    LengthOverflow { field: &'static str },
    #[error("the certificate's {field} has an indefinite length (not DER)")]
    IndefiniteLength { field: &'static str },
    #[error("the certificate's {field} is not a time: {text:?}")]
    BadTime { field: &'static str, text: String },
    #[error("the certificate's {field} is not text")]
    NotText { field: &'static str },
    #[error("the certificate has two subjectAltName extensions")]
    TwoSubjectAltNames,
}

/// A UTC time of a certificate, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    year: u16,
    month: u16,
    day: u16,
    hour: u16,
    minute: u16,
    second: u16,
}

impl Time {
    /// Seconds since the Unix epoch (negative before 1970).
    pub fn unix_seconds(self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// RFC 3339: `2027-03-10T12:00:00Z`.
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of a PEM file.
    ///
    /// # Errors
    /// [`CertError::Pem`] or [`CertError::NoCertificate`] when there is no such block, the
    /// other variants when its DER is not a certificate.
    pub fn from_pem(text: &[u8]) -> Result<Certificate, CertError> {
        let mut rest = text;
        loop {
            match pem::from_buf(&mut rest)? {
                Some((SectionKind::Certificate, der)) => return Certificate::from_der(&der),
                Some(_) => {}
                None => return Err(CertError::NoCertificate),
            }
        }
    }

    /// Reads a DER certificate. Bytes after it are not looked at.
    ///
    /// # Errors
    /// A [`CertError`] naming the field that is cut short, of the wrong type or malformed.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        let mut outer = Der(der);
        let mut cert = Der(outer.take(SEQUENCE, "outer SEQUENCE")?);
        let mut tbs = Der(cert.take(SEQUENCE, "tbsCertificate")?);
        cert.take(SEQUENCE, "signatureAlgorithm")?;
        cert.take(BIT_STRING, "signatureValue")?;
        tbs.optional(CONTEXT_0, "version")?;
        tbs.take(INTEGER, "serialNumber")?;
        tbs.take(SEQUENCE, "signature algorithm")?;
        tbs.take(SEQUENCE, "issuer")?;
        let mut validity = Der(tbs.take(SEQUENCE, "validity")?);
        time(&mut validity, "notBefore")?;
        let not_after = time(&mut validity, "notAfter")?;
        let subject = tbs.take(SEQUENCE, "subject")?;
        tbs.take(SEQUENCE, "subjectPublicKeyInfo")?;
        tbs.optional(CONTEXT_1, "issuerUniqueID")?;
        tbs.optional(CONTEXT_2, "subjectUniqueID")?;
        let uris = match tbs.optional(CONTEXT_3, "extensions")? {
            Some(extensions) => san_uris(extensions)?,
            None => Vec::new(),
        };
        // Anything else (extensions under another class, say) is an error rather than
        // extensions passed over: a bound certificate must not read as unbound.
        if let Some(&found) = tbs.0.first() {
            return Err(CertError::BadTag {
                field: "extensions",
                found,
                expected: "[3] (or nothing after subjectPublicKeyInfo)",
            });
        }
        let (common_name, org_unit) = names(subject)?;
        Ok(Certificate {
            common_name,
            org_unit,
            uris,
            not_after,
        })
    }
}

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const NUMERIC_STRING: u8 = 0x12;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const CONTEXT_0: u8 = 0xa0;
const CONTEXT_1: u8 = 0x81;
const CONTEXT_2: u8 = 0x82;
const CONTEXT_3: u8 = 0xa3;
/// GeneralName's `uniformResourceIdentifier [6] IA5String`, implicitly tagged.
const URI: u8 = 0x86;
/// The tags of GeneralName's choices (RFC 5280 §4.2.1.6): [0] otherName, [3] x400Address,
/// [4] directoryName and [5] ediPartyName are constructed, the others primitive.
const GENERAL_NAMES: [u8; 9] = [0xa0, 0x81, 0x82, 0xa3, 0xa4, 0xa5, 0x86, 0x87, 0x88];

/// The DER encodings (after tag and length) of the OIDs read.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_OU: &[u8] = &[0x55, 0x04, 0x0b];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// The DER elements left to read at one level.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next element's tag and contents.
    fn any(&mut self, field: &'static str) -> Result<(u8, &'a [u8]), CertError> {
        let (&tag, rest) = self.0.split_first().ok_or(CertError::Truncated { field })?;
        if tag & 0x1f == 0x1f {
            // The high-tag-number form: no field read here has one.
            return Err(CertError::BadTag {
                field,
                found: tag,
                expected: "a low tag number",
            });
        }
        let (&first, mut rest) = rest.split_first().ok_or(CertError::Truncated { field })?;
        let len = match first {
            0..0x80 => usize::from(first),
            0x80 => return Err(CertError::IndefiniteLength { field }),
            _ => {
                let n = usize::from(first & 0x7f);
                if n > 4 {
                    return Err(CertError::LengthOverflow { field });
                }
                let (bytes, tail) = rest
                    .split_at_checked(n)
                    .ok_or(CertError::Truncated { field })?;
                rest = tail;
                // At most 4 bytes: fits a usize of 32 bits or more.
                bytes
                    .iter()
                    .fold(0usize, |len, &b| len << 8 | usize::from(b))
            }
        };
        let (contents, rest) = rest
            .split_at_checked(len)
            .ok_or(CertError::Truncated { field })?;
        self.0 = rest;
        Ok((tag, contents))
    }

    /// The next element's contents, which must have tag `tag`.
    fn take(&mut self, tag: u8, field: &'static str) -> Result<&'a [u8], CertError> {
        match self.any(field)? {
            (found, contents) if found == tag => Ok(contents),
            (found, _) => Err(CertError::BadTag {
                field,
                found,
                expected: tag_name(tag),
            }),
        }
    }

    /// The next element's contents if it has tag `tag`; None (nothing read) otherwise.
    fn optional(&mut self, tag: u8, field: &'static str) -> Result<Option<&'a [u8]>, CertError> {
        match self.0.first() {
            Some(&t) if t == tag => self.take(tag, field).map(Some),
            _ => Ok(None),
        }
    }
}

fn tag_name(tag: u8) -> &'static str {
    match tag {
        BOOLEAN => "BOOLEAN",
        INTEGER => "INTEGER",
        BIT_STRING => "BIT STRING",
        OCTET_STRING => "OCTET STRING",
        OID => "an OID",
        SEQUENCE => "SEQUENCE",
        SET => "SET",
        CONTEXT_0 => "[0]",
        CONTEXT_1 => "[1]",
        CONTEXT_2 => "[2]",
        CONTEXT_3 => "[3]",
        _ => "the expected one",
    }
}

/// The first CN and the first OU of a Name (the contents of its SEQUENCE), each if it is text.
fn names(subject: &[u8]) -> Result<(Option<String>, Option<String>), CertError> {
    // Outer None: not seen yet; inner None: the first one is not text.
    let (mut cn, mut ou) = (None, None);
    let mut rdns = Der(subject);
    while !rdns.is_empty() {
        let mut set = Der(rdns.take(SET, "subject RelativeDistinguishedName")?);
        while !set.is_empty() {
            let mut atv = Der(set.take(SEQUENCE, "subject attribute")?);
            let oid = atv.take(OID, "subject attribute type")?;
            let (tag, value) = atv.any("subject attribute value")?;
            let slot = match oid {
                OID_CN => &mut cn,
                OID_OU => &mut ou,
                _ => continue,
            };
            slot.get_or_insert_with(|| text(tag, value));
        }
    }
    Ok((cn.flatten(), ou.flatten()))
}

/// A directory string's text, for the string types an agent certificate's name may have.
fn text(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        UTF8_STRING | PRINTABLE_STRING | IA5_STRING | NUMERIC_STRING => {
            std::str::from_utf8(value).ok().map(str::to_owned)
        }
        _ => None,
    }
}

/// The URIs of the subjectAltName extension, from the contents of `extensions [3]`.
fn san_uris(extensions: &[u8]) -> Result<Vec<String>, CertError> {
    let mut list = Der(extensions);
    let mut extensions = Der(list.take(SEQUENCE, "extensions")?);
    let mut uris = None;
    while !extensions.is_empty() {
        let mut extension = Der(extensions.take(SEQUENCE, "extension")?);
        let oid = extension.take(OID, "extension id")?;
        extension.optional(BOOLEAN, "extension critical flag")?;
        let value = extension.take(OCTET_STRING, "extension value")?;
        if oid != OID_SAN {
            continue;
        }
        if uris.is_some() {
            return Err(CertError::TwoSubjectAltNames);
        }
        let mut names = Der(Der(value).take(SEQUENCE, "subjectAltName")?);
        let mut found = Vec::new();
        while !names.is_empty() {
            let field = "subjectAltName GeneralName";
            let (tag, name) = names.any(field)?;
            if !GENERAL_NAMES.contains(&tag) {
                return Err(CertError::BadTag {
                    field,
                    found: tag,
                    expected: "a GeneralName's [0] to [8]",
                });
            }
            if tag == URI {
                let uri = std::str::from_utf8(name).map_err(|_| CertError::NotText {
                    field: "subjectAltName URI",
                })?;
                found.push(uri.to_owned());
            }
        }
        uris = Some(found);
    }
    Ok(uris.unwrap_or_default())
}

/// The next element of `validity`, a UTCTime (`YYMMDDHHMMSSZ`; years 50-99 are 19YY, 00-49
/// 20YY) or a GeneralizedTime (`YYYYMMDDHHMMSSZ`, with fractions of a second passed over).
fn time(validity: &mut Der<'_>, field: &'static str) -> Result<Time, CertError> {
    let (tag, value) = validity.any(field)?;
    let bad = || CertError::BadTime {
        field,
        text: String::from_utf8_lossy(value).into_owned(),
    };
    let (year, rest) = match tag {
        UTC_TIME => {
            let (yy, rest) = digits(value, 2).ok_or_else(bad)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, rest)
        }
        GENERALIZED_TIME => digits(value, 4).ok_or_else(bad)?,
        found => {
            return Err(CertError::BadTag {
                field,
                found,
                expected: "UTCTime or GeneralizedTime",
            })
        }
    };
    let (month, rest) = digits(rest, 2).ok_or_else(bad)?;
    let (day, rest) = digits(rest, 2).ok_or_else(bad)?;
    let (hour, rest) = digits(rest, 2).ok_or_else(bad)?;
    let (minute, rest) = digits(rest, 2).ok_or_else(bad)?;
    let (second, mut rest) = digits(rest, 2).ok_or_else(bad)?;
    if tag == GENERALIZED_TIME {
        if let Some(fraction) = rest.strip_prefix(b".") {
            let n = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return Err(bad());
            }
            rest = fraction.get(n..).unwrap_or_default();
        }
    }
    let valid = rest == b"Z"
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return Err(bad());
    }
    Ok(Time {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// The number written with the first `n` bytes of `s` (ASCII digits, `n` at most 4), and the
/// rest.
fn digits(s: &[u8], n: usize) -> Option<(u16, &[u8])> {
    let (number, rest) = s.split_at_checked(n)?;
    let mut v = 0u16;
    for &b in number {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u16::from(b - b'0');
    }
    Some((v, rest))
}

fn days_in_month(year: u16, month: u16) -> u16 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
pub(crate) mod tests;
