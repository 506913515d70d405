//! Alert state: [`AlertBook`], a pure state machine fed with the findings of each evaluation.
//!
//! ```text
//!              condition holds                held for `for`               stops holding
//!  (inactive) ───────────────▶ pending ─────────────────────▶ firing ─────────────────▶ resolved
//!                                 │  stops holding: dropped               (kept 24 h, then forgotten;
//!                                 ▼  (back to inactive, never notified)    holds again: pending anew)
//! ```
//!
//! As in Prometheus: `for = "0s"` fires at once (inactive → firing in one step); a pending alert
//! whose condition stops holding is dropped; a firing one resolves, unless the rule's
//! `keep_firing_for` keeps it firing a while longer. The alerts of a rule that disappeared on a
//! reload resolve (or are dropped) at the next step. An alert is one rule applied to one cluster
//! (`clock_skew`, `oom_kill_burst`) or one host (the other kinds): see [`AlertKey`].
//!
//! The book is encoded as JSON ([`AlertBook::encode`]) so the collector can store it and pick up
//! where it was after a restart.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::eval::Finding;
use crate::parse::{RuleKind, RuleSet};

/// How long a resolved alert stays listed.
pub const RESOLVED_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// The version written by [`AlertBook::encode`].
const ENCODING_VERSION: u32 = 1;

/// What an alert is about: one rule applied to one cluster or one host.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    pub rule: String,
    pub scope: Scope,
}

/// The cluster or host an alert is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// A cluster name (`clock_skew`, `oom_kill_burst`).
    Cluster(String),
    /// A host id (every other kind).
    Host(String),
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Scope::Cluster(c) => write!(f, "{} cluster={c}", self.rule),
            Scope::Host(h) => write!(f, "{} host={h}", self.rule),
        }
    }
}

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Not tracked: the `from` of a new alert, the `to` of a dropped pending one. Never stored.
    Inactive,
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    /// `inactive`, `pending`, `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// Pending or firing: the condition holds (or held recently enough).
    pub fn is_active(self) -> bool {
        matches!(self, AlertState::Pending | AlertState::Firing)
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of `inactive`, `pending`, `firing`, `resolved`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown alert state {0:?}; one of pending, firing, resolved")]
pub struct UnknownState(pub String);

impl FromStr for AlertState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<AlertState, UnknownState> {
        match s {
            "inactive" => Ok(AlertState::Inactive),
            "pending" => Ok(AlertState::Pending),
            "firing" => Ok(AlertState::Firing),
            "resolved" => Ok(AlertState::Resolved),
            _ => Err(UnknownState(s.to_owned())),
        }
    }
}

/// One alert and its latest details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub key: AlertKey,
    pub kind: RuleKind,
    pub state: AlertState,
    pub cluster: String,
    /// Sorted display names (see [`Finding::hosts`]).
    pub hosts: Vec<String>,
    pub summary: String,
    pub value: f64,
    /// The rule's `[rule.labels]` (as of the last step that saw the rule).
    pub labels: BTreeMap<String, String>,
    /// When it entered its current state.
    pub since_ms: i64,
    /// When its condition started to hold (the start of this pending/firing episode).
    pub active_since_ms: i64,
    /// When it last started firing (Alertmanager's `startsAt`); `None` if it never fired.
    pub fired_at_ms: Option<i64>,
    /// The last step at which its condition held.
    pub last_held_ms: i64,
}

impl Alert {
    /// The name of its rule.
    pub fn rule(&self) -> &str {
        &self.key.rule
    }

    /// The wire form, for `ListAlerts` and the JSON webhook. `labels` are the rule's own; rule,
    /// kind, cluster and hosts have their own fields.
    pub fn to_proto(&self) -> fleet_proto::v1::Alert {
        fleet_proto::v1::Alert {
            rule: self.key.rule.clone(),
            kind: self.kind.as_str().to_owned(),
            state: self.state.as_str().to_owned(),
            cluster: self.cluster.clone(),
            hosts: self.hosts.clone(),
            summary: self.summary.clone(),
            since_ms: self.since_ms,
            active_since_ms: self.active_since_ms,
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            value: self.value,
        }
    }
}

/// One change of state, with the alert as it is after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The alert after the change (`alert.state == to`).
    pub alert: Alert,
    pub from: AlertState,
    pub to: AlertState,
}

/// A stored book that does not decode.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("alert state is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("alert state has version {0}; this build reads version {ENCODING_VERSION}")]
    Version(u32),
}

#[derive(Serialize, Deserialize)]
struct Encoded {
    version: u32,
    alerts: Vec<Alert>,
}

#[derive(Clone, Debug)]
struct Entry {
    alert: Alert,
    /// The step counter when the condition last held; only meaningful within one process.
    seen_tick: u64,
}

/// Every alert that is pending, firing, or resolved within the last 24 h.
#[derive(Clone, Debug, Default)]
pub struct AlertBook {
    alerts: HashMap<AlertKey, Entry>,
    /// Counts steps; an active alert whose `seen_tick` is behind was not found this step.
    tick: u64,
    /// Bumped on every change worth persisting (transitions, forgotten alerts).
    revision: u64,
    /// Until then an active alert whose finding is missing keeps its state: see
    /// [`AlertBook::hold_until`].
    hold_until_ms: i64,
}

impl AlertBook {
    pub fn new() -> AlertBook {
        AlertBook::default()
    }

    /// Advances the book to `now_ms` given the findings of this evaluation (from
    /// [`crate::evaluate`] with the same `rules`), and returns what changed state, in a
    /// deterministic order (by key) except that new alerts come in finding order.
    ///
    /// A finding for a rule `rules` lacks is ignored. Details (hosts, summary, value, labels) of
    /// alerts that stay active are refreshed without a transition.
    pub fn step(
        &mut self,
        rules: &RuleSet,
        findings: Vec<Finding>,
        now_ms: i64,
    ) -> Vec<Transition> {
        self.tick += 1;
        let tick = self.tick;
        let mut out = Vec::new();

        // Findings come grouped by rule: look each rule up once per group.
        let mut current: Option<&crate::parse::Rule> = None;
        for f in findings {
            let rule = match current {
                Some(r) if r.name == f.key.rule => r,
                _ => match rules.get(&f.key.rule) {
                    Some(r) => {
                        current = Some(r);
                        r
                    }
                    None => continue,
                },
            };
            let pending_for = i64::try_from(rule.pending_for().as_millis()).unwrap_or(i64::MAX);
            match self.alerts.get_mut(&f.key) {
                Some(e) if e.alert.state.is_active() => {
                    e.seen_tick = tick;
                    let a = &mut e.alert;
                    a.last_held_ms = now_ms;
                    a.kind = f.kind;
                    a.cluster = f.cluster;
                    a.hosts = f.hosts;
                    a.summary = f.summary;
                    a.value = f.value;
                    if a.labels != rule.labels {
                        a.labels = rule.labels.clone();
                    }
                    if a.state == AlertState::Pending
                        && now_ms.saturating_sub(a.active_since_ms) >= pending_for
                    {
                        a.state = AlertState::Firing;
                        a.since_ms = now_ms;
                        a.fired_at_ms = Some(now_ms);
                        out.push(Transition {
                            alert: a.clone(),
                            from: AlertState::Pending,
                            to: AlertState::Firing,
                        });
                    }
                }
                existing => {
                    let from = existing.map_or(AlertState::Inactive, |e| e.alert.state);
                    let firing = pending_for <= 0;
                    let state = if firing {
                        AlertState::Firing
                    } else {
                        AlertState::Pending
                    };
                    let alert = Alert {
                        kind: f.kind,
                        state,
                        cluster: f.cluster,
                        hosts: f.hosts,
                        summary: f.summary,
                        value: f.value,
                        labels: rule.labels.clone(),
                        since_ms: now_ms,
                        active_since_ms: now_ms,
                        fired_at_ms: firing.then_some(now_ms),
                        last_held_ms: now_ms,
                        key: f.key,
                    };
                    out.push(Transition {
                        alert: alert.clone(),
                        from,
                        to: state,
                    });
                    self.alerts.insert(
                        alert.key.clone(),
                        Entry {
                            alert,
                            seen_tick: tick,
                        },
                    );
                }
            }
        }

        // Active alerts not found this step.
        let mut ended = Vec::new();
        let mut forgotten = Vec::new();
        for (key, e) in &self.alerts {
            let a = &e.alert;
            if a.state == AlertState::Resolved {
                if now_ms.saturating_sub(a.since_ms) >= RESOLVED_RETENTION_MS {
                    forgotten.push(key.clone());
                }
                continue;
            }
            if e.seen_tick == tick {
                continue;
            }
            if let Some(rule) = rules.get(&key.rule) {
                if now_ms < self.hold_until_ms {
                    continue;
                }
                let keep_ms = i64::try_from(rule.keep_firing_for.as_millis()).unwrap_or(i64::MAX);
                if a.state == AlertState::Firing && now_ms.saturating_sub(a.last_held_ms) < keep_ms
                {
                    continue;
                }
            }
            ended.push(key.clone());
        }
        ended.sort();
        for key in ended {
            let Some(e) = self.alerts.get_mut(&key) else {
                continue;
            };
            let from = e.alert.state;
            if from == AlertState::Firing {
                e.alert.state = AlertState::Resolved;
                e.alert.since_ms = now_ms;
                out.push(Transition {
                    alert: e.alert.clone(),
                    from,
                    to: AlertState::Resolved,
                });
            } else if let Some(Entry { mut alert, .. }) = self.alerts.remove(&key) {
                alert.state = AlertState::Inactive;
                alert.since_ms = now_ms;
                out.push(Transition {
                    alert,
                    from,
                    to: AlertState::Inactive,
                });
            }
        }
        for key in &forgotten {
            self.alerts.remove(key);
        }
        if !out.is_empty() || !forgotten.is_empty() {
            self.revision += 1;
        }
        out
    }

    /// Until `now_ms` reaches `until_ms`, an active alert whose condition is not found keeps its
    /// state instead of resolving (alerts of removed rules still end). The collector sets it
    /// after a restart: hosts reconnect and report their next NTP measurement only over the
    /// following seconds, and their absence must not resolve (then fire again) every alert
    /// restored from disk.
    pub fn hold_until(&mut self, until_ms: i64) {
        self.hold_until_ms = until_ms;
    }

    /// Every alert, sorted by key.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.alerts.values().map(|e| &e.alert).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// The alert with this key.
    pub fn get(&self, key: &AlertKey) -> Option<&Alert> {
        self.alerts.get(key).map(|e| &e.alert)
    }

    /// The firing alerts, sorted by key.
    pub fn firing(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self
            .alerts
            .values()
            .map(|e| &e.alert)
            .filter(|a| a.state == AlertState::Firing)
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Grows with every change worth persisting: compare it with the value at the last save.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The book as JSON: `{"version":1,"alerts":[...]}`.
    pub fn encode(&self) -> Vec<u8> {
        let encoded = Encoded {
            version: ENCODING_VERSION,
            alerts: self.alerts().into_iter().cloned().collect(),
        };
        serde_json::to_vec(&encoded).expect("alerts serialise to JSON")
    }

    /// Reads back [`AlertBook::encode`]'s output.
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not such JSON, or of another version.
    pub fn decode(bytes: &[u8]) -> Result<AlertBook, DecodeError> {
        let encoded: Encoded = serde_json::from_slice(bytes)?;
        if encoded.version != ENCODING_VERSION {
            return Err(DecodeError::Version(encoded.version));
        }
        Ok(AlertBook {
            alerts: encoded
                .alerts
                .into_iter()
                .filter(|a| a.state != AlertState::Inactive)
                .map(|alert| {
                    (
                        alert.key.clone(),
                        Entry {
                            alert,
                            seen_tick: 0,
                        },
                    )
                })
                .collect(),
            ..AlertBook::default()
        })
    }
}
