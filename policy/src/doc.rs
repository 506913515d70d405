//! The policy document and its validation.
//!
//! A policy is YAML or TOML; these keys are a contract with operators:
//!
//! ```yaml
//! name: protect-sshd
//! target:
//!   cluster: prod            # and/or labels: {role: web}, hosts: ["web*"]
//! match:
//!   exe: /usr/sbin/sshd      # or comm:, cmdline: (a regular expression), user:, cgroup:, unit:
//!   children: false
//!   # mount_namespaces: any  # exe: also in other mount namespaces (by identity); default host
//! oom_score_adj: -1000       # or oom_adj: -17
//! ```
//!
//! `exe:`, `unit:` and `cgroup:` say what a process is; `comm:`, `cmdline:` and `user:` are
//! what it says about itself, and only narrow a match (see [`crate::identity`]).
//!
//! [`PolicyDoc`] is the document as written (serde, unknown keys refused); [`Policy`] is the
//! validated form with the regular expression compiled and the value on the `oom_score_adj`
//! scale. A [`Policy`] serializes back to its document, so the agent can persist it.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `/proc/PID/oom_score_adj` bounds (include/uapi/linux/oom.h).
pub const OOM_SCORE_ADJ_MIN: i32 = -1000;
/// See [`OOM_SCORE_ADJ_MIN`].
pub const OOM_SCORE_ADJ_MAX: i32 = 1000;
/// The largest policy document accepted, in bytes. A policy is a few hundred bytes; the cap
/// keeps a host's policy set, which travels in one `PolicySync` message, far below the 4 MiB
/// message limit (the collector also caps the set as a whole).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The legacy `oom_adj` value that disables the OOM killer for a process.
pub const OOM_DISABLE: i32 = -17;
/// Smallest legacy `oom_adj` value other than [`OOM_DISABLE`].
pub const OOM_ADJUST_MIN: i32 = -16;
/// Largest legacy `oom_adj` value.
pub const OOM_ADJUST_MAX: i32 = 15;

/// The two document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
        })
    }
}

impl Format {
    /// Guesses the format of a document: the file extension of `origin` when it has a known one,
    /// otherwise the first line that is not blank or a comment: a `[table]` header or `key = …`
    /// is TOML, anything else (`key: …`, `---`) is YAML.
    pub fn detect(text: &str, origin: &str) -> Format {
        let lower = origin.to_ascii_lowercase();
        if lower.ends_with(".toml") {
            return Format::Toml;
        }
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            return Format::Yaml;
        }
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                return Format::Toml;
            }
            let colon = line.find(':');
            let equals = line.find('=');
            return match (colon, equals) {
                (Some(c), Some(e)) if e < c => Format::Toml,
                (None, Some(_)) => Format::Toml,
                _ => Format::Yaml,
            };
        }
        Format::Yaml
    }
}

/// Why a policy document was refused. Every message names the origin (usually the file name)
/// and, for validation errors, the field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// Not valid YAML/TOML, an unknown key or a value of the wrong type; the message comes from
    /// the YAML or TOML parser and names the key and its position.
    #[error("{origin}: invalid {format} policy: {message}")]
    Syntax {
        origin: String,
        format: Format,
        message: String,
    },
    /// Well-formed but not a usable policy.
    #[error("{origin}: `{field}`: {message}")]
    Invalid {
        origin: String,
        field: String,
        message: String,
    },
    /// Longer than [`MAX_DOCUMENT_BYTES`]; not parsed.
    #[error(
        "{origin}: the policy document is {bytes} bytes; a policy document is at most \
         {MAX_DOCUMENT_BYTES} bytes (64 KiB)"
    )]
    TooLarge { origin: String, bytes: usize },
}

/// The document as written. Absent keys stay `None` so that serializing gives back what the
/// operator wrote (without comments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub name: String,
    pub target: TargetDoc,
    #[serde(rename = "match")]
    pub matcher: MatchDoc,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_adj: Option<i32>,
}

/// Which hosts a policy applies to; every key given must hold (an empty target is every host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Glob patterns (`*`, `?`) matched against the hostname or the host id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// Which processes a policy applies to; every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub children: bool,
    /// Which mount namespaces `exe:` looks in: the host's only (the default), or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_namespaces: Option<MountNamespaces>,
}

/// `match.mount_namespaces`: where a process may live and still match `exe:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountNamespaces {
    /// Only processes in the host's mount namespace (PID 1's): a process in a namespace of its
    /// own can make any path name any file it likes.
    #[default]
    Host,
    /// Processes in any mount namespace (services with a private /tmp, containers), matched by
    /// identity: their image must still be the host's file at the `exe:` path.
    Any,
}

/// `user:` is a uid (`0`, or `"0"`) or a user name (`sshd`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserRef {
    Uid(u32),
    Name(String),
}

/// A validated policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "PolicyDoc", try_from = "PolicyDoc")]
pub struct Policy {
    pub name: String,
    pub target: Target,
    pub matcher: Matcher,
    /// The value to set, on the `oom_score_adj` scale (a legacy `oom_adj` already converted).
    pub oom_score_adj: i32,
    doc: PolicyDoc,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.doc == other.doc
    }
}

/// Validated target; see [`TargetDoc`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub cluster: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub hosts: Vec<String>,
}

/// Validated process match; see [`MatchDoc`].
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The executable, matched by identity (see [`crate::identity`]).
    pub exe: Option<String>,
    /// A claim: narrows, never widens trust.
    pub comm: Option<String>,
    /// A claim: narrows, never widens trust.
    pub cmdline: Option<Regex>,
    /// A claim: narrows, never widens trust.
    pub user: Option<User>,
    pub cgroup: Option<String>,
    /// The system manager's unit (see [`crate::identity`]).
    pub unit: Option<String>,
    pub children: bool,
    /// Where `exe:` looks; [`MountNamespaces::Host`] unless the document says `any`.
    pub mount_namespaces: MountNamespaces,
}

/// A `user:` criterion. A name is resolved to a uid on the host ([`Policy::resolve_users`]);
/// until then, or when the host has no such user, it matches no process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    Uid(u32),
    Name { name: String, uid: Option<u32> },
}

/// The kernel's conversion of a legacy `oom_adj` value to `oom_score_adj` (fs/proc/base.c,
/// `oom_adj_write`): `OOM_ADJUST_MAX` (15) maps to 1000 so the maximum stays attainable;
/// otherwise `oom_adj * 1000 / 17`, truncated toward zero as C does, so -17 (`OOM_DISABLE`) is
/// exactly -1000 and -16 is -941.
pub fn oom_adj_to_score_adj(oom_adj: i32) -> i32 {
    if oom_adj == OOM_ADJUST_MAX {
        OOM_SCORE_ADJ_MAX
    } else {
        oom_adj * OOM_SCORE_ADJ_MAX / -OOM_DISABLE
    }
}

/// Parses a policy document, YAML or TOML (see [`Format::detect`]).
///
/// # Errors
/// [`PolicyError`] naming `origin` and the offending field.
pub fn parse_policy(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    parse_policy_as(text, origin, Format::detect(text, origin))
}

/// Parses a policy document in the given format.
///
/// # Errors
/// [`PolicyError`] naming `origin` and the offending field; [`PolicyError::TooLarge`] for a
/// document over [`MAX_DOCUMENT_BYTES`].
pub fn parse_policy_as(text: &str, origin: &str, format: Format) -> Result<Policy, PolicyError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(PolicyError::TooLarge {
            origin: origin.to_string(),
            bytes: text.len(),
        });
    }
    let syntax = |message: String| PolicyError::Syntax {
        origin: origin.to_string(),
        format,
        message,
    };
    let doc: PolicyDoc = match format {
        Format::Yaml => serde_norway::from_str(text).map_err(|e| syntax(e.to_string()))?,
        Format::Toml => toml::from_str(text).map_err(|e| syntax(e.message().to_string()))?,
    };
    Policy::from_doc(doc, origin)
}

impl Policy {
    /// Validates a document.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] naming `origin` and the field.
    pub fn from_doc(doc: PolicyDoc, origin: &str) -> Result<Policy, PolicyError> {
        let invalid = |field: &str, message: String| PolicyError::Invalid {
            origin: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let name = doc.name.trim();
        if name.is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.len() > 128
        {
            return Err(invalid(
                "name",
                format!("{name:?}: use at most 128 letters, digits, '-', '_' or '.'"),
            ));
        }
        let oom_score_adj =
            match (doc.oom_score_adj, doc.oom_adj) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "oom_adj",
                        "give either oom_score_adj or the legacy oom_adj, not both".into(),
                    ))
                }
                (None, None) => return Err(invalid(
                    "oom_score_adj",
                    "missing: the value to set (-1000..=1000), or the legacy oom_adj (-17..=15)"
                        .into(),
                )),
                (Some(v), None) => {
                    if !(OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX).contains(&v) {
                        return Err(invalid(
                            "oom_score_adj",
                            format!("{v} is out of range -1000..=1000"),
                        ));
                    }
                    v
                }
                (None, Some(v)) => {
                    if v != OOM_DISABLE && !(OOM_ADJUST_MIN..=OOM_ADJUST_MAX).contains(&v) {
                        return Err(invalid("oom_adj", format!("{v} is out of range -17..=15")));
                    }
                    oom_adj_to_score_adj(v)
                }
            };

        let t = &doc.target;
        if let Some(c) = &t.cluster {
            if c.trim().is_empty() {
                return Err(invalid("target.cluster", "must not be empty".into()));
            }
        }
        for k in t.labels.keys() {
            if k.trim().is_empty() {
                return Err(invalid("target.labels", "a label name is empty".into()));
            }
        }
        for h in &t.hosts {
            if h.trim().is_empty() {
                return Err(invalid("target.hosts", "a host pattern is empty".into()));
            }
        }
        let target = Target {
            cluster: t.cluster.clone(),
            labels: t.labels.clone(),
            hosts: t.hosts.clone(),
        };

        let m = &doc.matcher;
        let nonempty = |field: &str, v: &Option<String>| -> Result<Option<String>, PolicyError> {
            match v {
                Some(s) if s.is_empty() => Err(invalid(field, "must not be empty".into())),
                other => Ok(other.clone()),
            }
        };
        let exe = nonempty("match.exe", &m.exe)?;
        if let Some(e) = &exe {
            if !e.starts_with('/') {
                return Err(invalid(
                    "match.exe",
                    format!("{e:?} is not an absolute path (compare /proc/PID/exe)"),
                ));
            }
        }
        let comm = nonempty("match.comm", &m.comm)?;
        let cmdline = match nonempty("match.cmdline", &m.cmdline)? {
            Some(re) => Some(Regex::new(&re).map_err(|e| {
                invalid(
                    "match.cmdline",
                    format!("not a valid regular expression: {e}"),
                )
            })?),
            None => None,
        };
        let user = match &m.user {
            None => None,
            Some(UserRef::Uid(u)) => Some(User::Uid(*u)),
            Some(UserRef::Name(n)) if n.is_empty() => {
                return Err(invalid("match.user", "must not be empty".into()))
            }
            Some(UserRef::Name(n)) => Some(match n.parse::<u32>() {
                Ok(u) => User::Uid(u),
                Err(_) => User::Name {
                    name: n.clone(),
                    uid: None,
                },
            }),
        };
        let cgroup = nonempty("match.cgroup", &m.cgroup)?;
        if let Some(c) = &cgroup {
            if !c.starts_with('/') && !c.starts_with('*') {
                return Err(invalid(
                    "match.cgroup",
                    format!("{c:?}: give a cgroup path as in /proc/PID/cgroup, e.g. /system.slice"),
                ));
            }
        }
        let unit = nonempty("match.unit", &m.unit)?;
        if let Some(u) = &unit {
            if u.contains('/') {
                return Err(invalid(
                    "match.unit",
                    format!("{u:?}: give a unit name such as ssh.service, not a path"),
                ));
            }
        }
        if m.mount_namespaces.is_some() && exe.is_none() {
            return Err(invalid(
                "match.mount_namespaces",
                "applies to exe: only; give exe: too, or leave it out".into(),
            ));
        }
        let matcher = Matcher {
            exe,
            comm,
            cmdline,
            user,
            cgroup,
            unit,
            children: m.children,
            mount_namespaces: m.mount_namespaces.unwrap_or_default(),
        };
        if matcher.exe.is_none()
            && matcher.comm.is_none()
            && matcher.cmdline.is_none()
            && matcher.user.is_none()
            && matcher.cgroup.is_none()
            && matcher.unit.is_none()
        {
            return Err(invalid(
                "match",
                "give at least one of exe, comm, cmdline, user, cgroup, unit".into(),
            ));
        }
        Ok(Policy {
            name: name.to_string(),
            target,
            matcher,
            oom_score_adj,
            doc,
        })
    }

    /// The document this policy was built from.
    pub fn doc(&self) -> &PolicyDoc {
        &self.doc
    }

    /// Resolves a `user:` name to a uid with `lookup` (the agent passes its /etc/passwd, see
    /// [`crate::uid_of`]). A name `lookup` does not know matches no process.
    pub fn resolve_users(&mut self, lookup: impl Fn(&str) -> Option<u32>) {
        if let Some(User::Name { name, uid }) = &mut self.matcher.user {
            *uid = lookup(name);
        }
    }
}

impl From<Policy> for PolicyDoc {
    fn from(p: Policy) -> PolicyDoc {
        p.doc
    }
}

impl TryFrom<PolicyDoc> for Policy {
    type Error = PolicyError;
    fn try_from(doc: PolicyDoc) -> Result<Policy, PolicyError> {
        Policy::from_doc(doc, "stored policy")
    }
}
