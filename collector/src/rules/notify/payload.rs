//! What the HTTP notifiers post: Alertmanager's postable alerts (with what Alertmanager was
//! told, so a changed label set is resolved) and the webhook's JSON form of an alert.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleet_rules::{Alert, AlertKey, AlertState};
use serde_json::{json, Value};

use super::Event;

/// What Alertmanager was last told about an alert that fires.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Told {
    labels: BTreeMap<String, String>,
    starts_at: String,
}

/// The postable alerts of one Alertmanager post, and what Alertmanager will know as firing once
/// it is delivered.
///
/// `snapshot` (the firing alerts, at a resend) comes first and the events after it, in order:
/// the latest word on each alert wins. At a resend, an alert Alertmanager was told fires but
/// that is in neither (its resolution was dropped from a full queue) is resolved explicitly.
pub(super) fn alertmanager_payload(
    events: &[Event],
    snapshot: Option<&[Alert]>,
    told: &HashMap<AlertKey, Told>,
    now: SystemTime,
) -> (Vec<Value>, HashMap<AlertKey, Told>) {
    let mut order: Vec<&Alert> = Vec::new();
    let mut index: HashMap<&AlertKey, usize> = HashMap::new();
    let latest = snapshot
        .into_iter()
        .flatten()
        .chain(events.iter().map(|e| &e.alert));
    for a in latest {
        match index.get(&a.key) {
            Some(&i) => order[i] = a,
            None => {
                index.insert(&a.key, order.len());
                order.push(a);
            }
        }
    }
    let now_s = rfc3339(now);
    let mut out = Vec::new();
    let mut new_told = told.clone();
    let resolve_old = |out: &mut Vec<Value>, old: &Told| {
        out.push(json!({
            "labels": old.labels,
            "startsAt": old.starts_at,
            "endsAt": now_s,
        }));
    };
    if snapshot.is_some() {
        let mut stale: Vec<(&AlertKey, &Told)> = told
            .iter()
            .filter(|(k, _)| !index.contains_key(k))
            .collect();
        stale.sort_by(|a, b| a.0.cmp(b.0));
        for (key, old) in stale {
            resolve_old(&mut out, old);
            new_told.remove(key);
        }
    }
    for a in order {
        let labels = alertmanager_labels(a);
        let starts_at = rfc3339(ms_to_time(a.fired_at_ms.unwrap_or(a.active_since_ms)));
        if let Some(old) = told.get(&a.key).filter(|old| old.labels != labels) {
            resolve_old(&mut out, old);
        }
        let mut v = json!({
            "labels": labels,
            "annotations": {
                "summary": a.summary,
                "value": format_value(a.value),
            },
            "startsAt": starts_at,
        });
        match a.state {
            AlertState::Firing => {
                new_told.insert(a.key.clone(), Told { labels, starts_at });
            }
            AlertState::Resolved => {
                v["endsAt"] = json!(rfc3339(ms_to_time(a.since_ms)));
                new_told.remove(&a.key);
            }
            // Only firing and resolved alerts are queued.
            AlertState::Pending | AlertState::Inactive => continue,
        }
        out.push(v);
    }
    (out, new_told)
}

/// The Alertmanager labels of an alert: the rule's labels, then the fixed ones.
pub fn alertmanager_labels(a: &Alert) -> BTreeMap<String, String> {
    let mut labels = a.labels.clone();
    labels.insert("alertname".into(), a.key.rule.clone());
    labels.insert("rule".into(), a.key.rule.clone());
    labels.insert("kind".into(), a.kind.as_str().into());
    labels.insert("cluster".into(), a.cluster.clone());
    labels.insert("hosts".into(), a.hosts.join(","));
    labels
}

/// The webhook form of an alert: the fields of `fleet.v1.Alert` plus `previous_state`.
pub fn webhook_json(a: &Alert, from: AlertState) -> Value {
    let p = a.to_proto();
    let labels: BTreeMap<_, _> = p.labels.into_iter().collect();
    json!({
        "rule": p.rule,
        "kind": p.kind,
        "state": p.state,
        "previous_state": from.as_str(),
        "cluster": p.cluster,
        "hosts": p.hosts,
        "summary": p.summary,
        "since_ms": p.since_ms,
        "active_since_ms": p.active_since_ms,
        "labels": labels,
        "value": p.value,
    })
}

fn format_value(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
