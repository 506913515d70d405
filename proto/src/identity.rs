//! The identity rules, part of the wire contract.
//!
//! - The host id rule: the agent checks its own id with it, the collector every `Hello`, and
//!   `fleetctl certs` the name of an agent certificate (its CN is the host id it may stream as).
//! - The cluster rule ([`check_cluster`]), and how an agent certificate names the one cluster it
//!   may join: a URI subject alternative name `urn:fleet:cluster:CLUSTER` ([`cluster_uri`],
//!   written by `fleetctl certs issue --cluster`; [`cluster_of_uri`], read by the collector and by
//!   the agent's own start-up check). Characters outside a URN's unreserved set are
//!   percent-encoded (`urn:fleet:cluster:eu%20west` for `eu west`), so every cluster name the
//!   collector accepts has exactly one URI.

use std::fmt;

/// Most characters in a host id.
pub const MAX_HOST_ID: usize = 128;

/// Why a host id is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostIdError {
    /// Empty or longer than [`MAX_HOST_ID`].
    Length,
    /// A character outside `[A-Za-z0-9._-]`.
    Char(char),
}

impl fmt::Display for HostIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostIdError::Length => write!(f, "must be 1 to {MAX_HOST_ID} characters"),
            HostIdError::Char(c) => {
                write!(f, "contains {c:?}; use letters, digits, '.', '_' or '-'")
            }
        }
    }
}

impl std::error::Error for HostIdError {}

/// Checks a host id: 1 to [`MAX_HOST_ID`] characters of `[A-Za-z0-9._-]`.
///
/// # Errors
/// [`HostIdError`] saying what is wrong.
pub fn check_host_id(id: &str) -> Result<(), HostIdError> {
    if id.is_empty() || id.len() > MAX_HOST_ID {
        return Err(HostIdError::Length);
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(HostIdError::Char(c)),
        None => Ok(()),
    }
}

/// Most bytes in a cluster name.
pub const MAX_CLUSTER: usize = 128;

/// What an agent certificate's cluster URI starts with.
pub const CLUSTER_URI_PREFIX: &str = "urn:fleet:cluster:";

/// Why a cluster name, or a certificate's cluster URI, is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// Empty or longer than [`MAX_CLUSTER`] bytes.
    Length,
    /// A control character: operators read cluster names in their terminals.
    Control(char),
    /// A cluster URI whose percent-encoding is broken or not the canonical one.
    Encoding(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Length => write!(f, "must be 1 to {MAX_CLUSTER} characters"),
            ClusterError::Control(c) => write!(f, "contains the control character {c:?}"),
            ClusterError::Encoding(uri) => write!(
                f,
                "{uri:?} is not a cluster URI as `fleetctl certs issue --cluster` writes it"
            ),
        }
    }
}

impl std::error::Error for ClusterError {}

/// Checks a cluster name: 1 to [`MAX_CLUSTER`] bytes of text without control characters.
///
/// # Errors
/// [`ClusterError::Length`] or [`ClusterError::Control`].
pub fn check_cluster(cluster: &str) -> Result<(), ClusterError> {
    if cluster.is_empty() || cluster.len() > MAX_CLUSTER {
        return Err(ClusterError::Length);
    }
    match cluster.chars().find(|c| c.is_control()) {
        Some(c) => Err(ClusterError::Control(c)),
        None => Ok(()),
    }
}

/// Bytes a URN carries as they are (RFC 8141 `pchar` without `%`, and `/`).
fn urn_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

/// The URI that binds a certificate to `cluster`: `urn:fleet:cluster:` and the name,
/// percent-encoded where a URN needs it (upper-case hex).
pub fn cluster_uri(cluster: &str) -> String {
    let mut uri = String::from(CLUSTER_URI_PREFIX);
    for &b in cluster.as_bytes() {
        if urn_safe(b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// The cluster a URI names, if it is a cluster URI: `None` for any other URI, the name for one
/// in the form [`cluster_uri`] writes.
///
/// # Errors
/// [`ClusterError`] for a cluster URI with a bad name or an encoding [`cluster_uri`] would not
/// write (so that one cluster never has two URIs).
pub fn cluster_of_uri(uri: &str) -> Option<Result<String, ClusterError>> {
    let encoded = uri.strip_prefix(CLUSTER_URI_PREFIX)?;
    let bad = || ClusterError::Encoding(uri.to_owned());
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => bytes.push(v),
                None => return Some(Err(bad())),
            }
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let Ok(cluster) = String::from_utf8(bytes) else {
        return Some(Err(bad()));
    };
    if let Err(e) = check_cluster(&cluster) {
        return Some(Err(e));
    }
    if cluster_uri(&cluster) != uri {
        return Some(Err(bad()));
    }
    Some(Ok(cluster))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_uris_round_trip_and_are_canonical() {
        assert_eq!(cluster_uri("prod"), "urn:fleet:cluster:prod");
        assert_eq!(cluster_uri("eu west/1"), "urn:fleet:cluster:eu%20west/1");
        assert_eq!(cluster_uri("é%"), "urn:fleet:cluster:%C3%A9%25");
        for c in ["prod", "eu west/1", "é%", &"x".repeat(128)] {
            assert_eq!(
                cluster_of_uri(&cluster_uri(c)),
                Some(Ok(c.to_owned())),
                "{c:?}"
            );
        }
        assert_eq!(cluster_of_uri("https://example.net/"), None);
        assert_eq!(
            cluster_of_uri("urn:fleet:cluster:"),
            Some(Err(ClusterError::Length))
        );
        for bad in [
            "urn:fleet:cluster:a%2",
            "urn:fleet:cluster:a%zz",
            "urn:fleet:cluster:%ff",
            "urn:fleet:cluster:%70rod",
            "urn:fleet:cluster:a%c3%a9",
            "urn:fleet:cluster:a b",
        ] {
            assert!(
                matches!(cluster_of_uri(bad), Some(Err(ClusterError::Encoding(_)))),
                "{bad}"
            );
        }
        assert_eq!(check_cluster(&"x".repeat(129)), Err(ClusterError::Length));
        assert_eq!(
            check_cluster("prod\u{1b}[2J"),
            Err(ClusterError::Control('\u{1b}'))
        );
    }

    #[test]
    fn host_ids() {
        assert_eq!(check_host_id("web-1.prod_eu"), Ok(()));
        assert_eq!(check_host_id(""), Err(HostIdError::Length));
        assert_eq!(check_host_id(&"a".repeat(129)), Err(HostIdError::Length));
        assert_eq!(check_host_id(&"a".repeat(128)), Ok(()));
        assert_eq!(check_host_id("web 1"), Err(HostIdError::Char(' ')));
        assert_eq!(check_host_id("wéb"), Err(HostIdError::Char('é')));
        assert_eq!(
            HostIdError::Char('/').to_string(),
            "contains '/'; use letters, digits, '.', '_' or '-'"
        );
    }
}
