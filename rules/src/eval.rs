//! Evaluation: which rules hold right now, given a snapshot of the fleet. Pure: the collector
//! builds a [`FleetView`] each second (time included) and [`evaluate`] returns one [`Finding`]
//! per alert whose condition holds. Whether that alert is pending or firing is the business of
//! [`crate::AlertBook`].
//!
//! # What each kind looks at
//!
//! A host's **NTP offset** is the `offset_ms` of its synchronised source (`synced`, which the
//! agent sets for a reachable source with leap ≠ 3 and stratum 1..15) with the lowest stratum,
//! ties broken by the lowest round-trip delay: the source a careful client would trust most.
//! `offset_ms` is the server's clock minus the host's, so `+250` means the host is 250 ms behind
//! that source.
//!
//! | kind             | scope   | holds when                                                        | value               |
//! |------------------|---------|-------------------------------------------------------------------|---------------------|
//! | `clock_skew`     | cluster | max − min of the NTP offsets of the cluster's hosts > threshold   | spread, ms          |
//! | `ntp_offset`     | host    | abs(NTP offset) > threshold                                       | offset, ms          |
//! | `ntp_unsynced`   | host    | the host reports NTP sources and none is synchronised, or none    | number of sources   |
//! | `ntp_stratum`    | host    | the stratum of the host's best synchronised source > max_stratum  | stratum             |
//! | `host_silent`    | host    | now − last_seen ≥ `for`                                           | seconds of silence  |
//! | `oom_kill_burst` | cluster | kills with time > now − window, summed over the cluster ≥ count   | number of kills     |
//! | `sar`            | host    | the column of any instance of its activity compares true          | that column's value |
//!
//! Only **connected** hosts are looked at by the NTP and sar kinds: the last values of a host
//! that went away are stale, and `host_silent` is the rule that speaks for it. A host with no
//! NTP measurement yet (`ntp: None`) is skipped by the NTP kinds; one whose measurement lists no
//! source at all is unsynchronised. `clock_skew` needs two hosts with an offset in the cluster.
//! `host_silent` looks at every host, connected or not (a stream can stay open and carry
//! nothing), and so keeps firing for a host removed from the fleet until it leaves the registry.
//! `oom_kill_burst` counts the kills of every host of the cluster, connected or not, over the
//! trailing window ending now (a kill reported later than `window` after it happened is missed).
//!
//! For `sar` with `>`/`>=` the value reported is the largest matching instance's, with `<`/`<=`
//! the smallest, so the summary shows the worst one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use fleet_proto::schema::schema;
use fleet_proto::v1::{Activity, ClockStatus, NtpServerStatus};

use crate::alerts::{AlertKey, Scope};
use crate::parse::{CmpOp, Condition, Rule, RuleKind, RuleSet, SarCondition, SUMMARY_PLACEHOLDERS};

/// The fleet as the collector sees it at `now_ms`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetView {
    /// The collector's clock, Unix milliseconds.
    pub now_ms: i64,
    pub hosts: Vec<HostView>,
}

/// One host as the collector sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostView {
    pub host_id: String,
    pub hostname: String,
    pub cluster: String,
    /// Whether its stream is open.
    pub connected: bool,
    /// When it last sent anything, Unix milliseconds (collector clock).
    pub last_seen_ms: i64,
    /// Its latest NTP measurement (shared with the collector's live state, not copied).
    pub ntp: Option<Arc<ClockStatus>>,
    /// Its latest sar values: (activity, instance, values in schema order).
    pub sar: Vec<(Activity, String, Vec<f64>)>,
    /// Times of its recent OOM kills, Unix milliseconds (the collector keeps the last hour).
    pub oom_kill_times_ms: Vec<i64>,
}

impl HostView {
    /// The name an operator knows the host by: its hostname, or its id when it has none.
    pub fn display_name(&self) -> &str {
        if self.hostname.is_empty() {
            &self.host_id
        } else {
            &self.hostname
        }
    }
}

/// A rule whose condition holds for one alert (one cluster or one host).
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Rule name and cluster (cluster-scoped kinds) or host id (the others).
    pub key: AlertKey,
    pub kind: RuleKind,
    pub cluster: String,
    /// The hosts concerned, by [`HostView::display_name`], sorted: the host itself; for
    /// `clock_skew` the hosts whose offset is more than half the threshold away from the
    /// cluster's median (never empty: the two extremes cannot both be closer); for
    /// `oom_kill_burst` the hosts with kills in the window.
    pub hosts: Vec<String>,
    /// See the table in the module doc.
    pub value: f64,
    /// What is wrong, in words an operator can act on (or the rule's `summary` template).
    pub summary: String,
}

/// The best synchronised NTP source of a measurement: lowest stratum, then lowest delay.
/// `None` when no source is synchronised.
pub fn best_source(clock: &ClockStatus) -> Option<&NtpServerStatus> {
    clock
        .servers
        .iter()
        .filter(|s| s.synced && s.offset_ms.is_finite())
        .min_by(|a, b| {
            a.stratum
                .cmp(&b.stratum)
                .then(a.delay_ms.total_cmp(&b.delay_ms))
        })
}

/// A host's NTP offset in ms: that of its [`best_source`].
pub fn host_offset_ms(host: &HostView) -> Option<f64> {
    host.ntp
        .as_deref()
        .and_then(best_source)
        .map(|s| s.offset_ms)
}

/// The findings of every rule on `view`, in rule order (and within a rule, in cluster name
/// order or in the order of `view.hosts`).
pub fn evaluate(rules: &RuleSet, view: &FleetView) -> Vec<Finding> {
    let ctx = Ctx::new(view);
    let mut per_rule: Vec<Vec<Finding>> = rules.rules().iter().map(|_| Vec::new()).collect();
    let mut host_rules: Vec<(usize, &Rule)> = Vec::new();
    for (ri, rule) in rules.rules().iter().enumerate() {
        match &rule.condition {
            Condition::ClockSkew { threshold_ms } => {
                clock_skew(rule, *threshold_ms, &ctx, &mut per_rule[ri]);
            }
            Condition::OomKillBurst { count, window } => {
                oom_kill_burst(rule, *count, *window, &ctx, &mut per_rule[ri]);
            }
            _ => host_rules.push((ri, rule)),
        }
    }
    // Hosts outside, rules inside: one host's data stays in cache while every rule looks at it
    // (about 30 sar records of a few hundred bytes each); the other way round, the whole view
    // (15 MB for 10,000 hosts) would be read once per rule.
    for (hi, h) in view.hosts.iter().enumerate() {
        for &(ri, rule) in &host_rules {
            if !rule.applies_to(&h.cluster) {
                continue;
            }
            if let Some((value, summary)) =
                host_condition(rule, &rule.condition, h, &ctx.best[hi], view.now_ms)
            {
                per_rule[ri].push(finding(
                    rule,
                    Scope::Host(h.host_id.clone()),
                    &h.cluster,
                    vec![h.display_name().to_owned()],
                    value,
                    summary,
                ));
            }
        }
    }
    per_rule.into_iter().flatten().collect()
}

/// What `evaluate` computes once per view rather than once per rule.
struct Ctx<'a> {
    view: &'a FleetView,
    /// Per host (same index): its best synchronised source, if connected and it has one.
    best: Vec<Option<&'a NtpServerStatus>>,
    /// Host indexes per cluster, in view order.
    clusters: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Ctx<'a> {
    fn new(view: &'a FleetView) -> Ctx<'a> {
        let best = view
            .hosts
            .iter()
            .map(|h| {
                if h.connected {
                    h.ntp.as_deref().and_then(best_source)
                } else {
                    None
                }
            })
            .collect();
        let mut clusters: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, h) in view.hosts.iter().enumerate() {
            clusters.entry(h.cluster.as_str()).or_default().push(i);
        }
        Ctx {
            view,
            best,
            clusters,
        }
    }

    /// The clusters a rule covers, with their hosts.
    fn clusters_of<'r>(
        &'r self,
        rule: &'r Rule,
    ) -> impl Iterator<Item = (&'a str, &'r [usize])> + 'r {
        self.clusters
            .iter()
            .filter(|(c, _)| rule.applies_to(c))
            .map(|(c, hosts)| (*c, hosts.as_slice()))
    }
}

fn finding(
    rule: &Rule,
    scope: Scope,
    cluster: &str,
    mut hosts: Vec<String>,
    value: f64,
    builtin: String,
) -> Finding {
    hosts.sort();
    hosts.dedup();
    let value = if value.is_finite() { value } else { 0.0 };
    let summary = match &rule.summary {
        Some(template) => render_template(template, rule, cluster, &hosts, value, &builtin),
        None => builtin,
    };
    Finding {
        key: AlertKey {
            rule: rule.name.clone(),
            scope,
        },
        kind: rule.kind(),
        cluster: cluster.to_owned(),
        hosts,
        value,
        summary,
    }
}

fn clock_skew(rule: &Rule, threshold_ms: f64, ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let hosts = &ctx.view.hosts;
    for (cluster, members) in ctx.clusters_of(rule) {
        let offsets: Vec<(f64, usize)> = members
            .iter()
            .filter_map(|&i| ctx.best[i].map(|s| (s.offset_ms, i)))
            .collect();
        if offsets.len() < 2 {
            continue;
        }
        let cmp = |a: &&(f64, usize), b: &&(f64, usize)| {
            a.0.total_cmp(&b.0)
                .then_with(|| hosts[a.1].display_name().cmp(hosts[b.1].display_name()))
        };
        let (Some(max), Some(min)) = (offsets.iter().max_by(cmp), offsets.iter().min_by(cmp))
        else {
            continue;
        };
        let spread = max.0 - min.0;
        if spread <= threshold_ms {
            continue;
        }
        let mut sorted: Vec<f64> = offsets.iter().map(|o| o.0).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let mut outliers: Vec<String> = offsets
            .iter()
            .filter(|(o, _)| (o - median).abs() > threshold_ms / 2.0)
            .map(|(_, i)| hosts[*i].display_name().to_owned())
            .collect();
        outliers.sort();
        let summary = format!(
            "clock skew of {} ms between hosts in cluster {cluster} ({} {} ms, {} {} ms); threshold {} ms: check the NTP sources of {}",
            ms(spread),
            hosts[max.1].display_name(),
            signed_ms(max.0),
            hosts[min.1].display_name(),
            signed_ms(min.0),
            ms(threshold_ms),
            name_list(&outliers),
        );
        out.push(finding(
            rule,
            Scope::Cluster(cluster.to_owned()),
            cluster,
            outliers,
            spread,
            summary,
        ));
    }
}

fn oom_kill_burst(
    rule: &Rule,
    count: u32,
    window: Duration,
    ctx: &Ctx<'_>,
    out: &mut Vec<Finding>,
) {
    let hosts = &ctx.view.hosts;
    let since = ctx.view.now_ms.saturating_sub(duration_ms(window));
    for (cluster, members) in ctx.clusters_of(rule) {
        let mut per_host: Vec<(usize, usize)> = Vec::new();
        let mut total = 0usize;
        for &i in members {
            let n = hosts[i]
                .oom_kill_times_ms
                .iter()
                .filter(|&&t| t > since)
                .count();
            if n > 0 {
                per_host.push((i, n));
                total += n;
            }
        }
        if total < count as usize {
            continue;
        }
        per_host.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| hosts[a.0].display_name().cmp(hosts[b.0].display_name()))
        });
        let mut detail = String::new();
        for (k, (i, n)) in per_host.iter().enumerate() {
            if k == 5 {
                let _ = write!(detail, ", {} more hosts", per_host.len() - 5);
                break;
            }
            if k > 0 {
                detail.push_str(", ");
            }
            let _ = write!(detail, "{} ×{n}", hosts[*i].display_name());
        }
        let summary = format!(
            "{total} OOM kill{} in cluster {cluster} within the last {} ({detail}); threshold {count}: see `fleetctl oom --cluster {cluster}` for the victims and `fleetctl top-oom` for who is next",
            if total == 1 { "" } else { "s" },
            humantime::format_duration(window),
        );
        let names = per_host
            .iter()
            .map(|(i, _)| hosts[*i].display_name().to_owned())
            .collect();
        out.push(finding(
            rule,
            Scope::Cluster(cluster.to_owned()),
            cluster,
            names,
            total as f64,
            summary,
        ));
    }
}

/// The value and summary of a per-host condition that holds, or `None`.
fn host_condition(
    rule: &Rule,
    cond: &Condition,
    h: &HostView,
    best: &Option<&NtpServerStatus>,
    now_ms: i64,
) -> Option<(f64, String)> {
    let name = h.display_name();
    match cond {
        Condition::NtpOffset { threshold_ms } => {
            let s = (*best)?;
            if s.offset_ms.abs() <= *threshold_ms {
                return None;
            }
            let direction = if s.offset_ms > 0.0 {
                "behind"
            } else {
                "ahead of"
            };
            Some((
                s.offset_ms,
                format!(
                    "{name} is {} ms {direction} its NTP source {} (offset {} ms, stratum {}); threshold {} ms: check the time daemon (chrony, ntpd or timesyncd) on {name} and its sources",
                    ms(s.offset_ms.abs()),
                    s.server,
                    signed_ms(s.offset_ms),
                    s.stratum,
                    ms(*threshold_ms),
                ),
            ))
        }
        Condition::NtpUnsynced => {
            let clock = h.ntp.as_ref().filter(|_| h.connected)?;
            if best.is_some() {
                return None;
            }
            if clock.servers.is_empty() {
                return Some((
                    0.0,
                    format!(
                        "{name} has no NTP source: configure chrony, ntpd or systemd-timesyncd on it, or give its agent --ntp-server"
                    ),
                ));
            }
            let mut why = String::new();
            for (k, s) in clock.servers.iter().enumerate() {
                if k == 3 {
                    let _ = write!(why, "; {} more", clock.servers.len() - 3);
                    break;
                }
                if k > 0 {
                    why.push_str("; ");
                }
                let _ = write!(why, "{}: {}", s.server, unsynced_reason(s));
            }
            Some((
                clock.servers.len() as f64,
                format!(
                    "{name} has no synchronised NTP source ({why}): check that its servers are reachable from it and synchronised themselves"
                ),
            ))
        }
        Condition::NtpStratum { max_stratum } => {
            let s = (*best)?;
            if s.stratum <= *max_stratum {
                return None;
            }
            Some((
                f64::from(s.stratum),
                format!(
                    "the best NTP source of {name}, {}, is at stratum {}, above {max_stratum}: it is far from a reference clock; point {name} at servers closer to one",
                    s.server, s.stratum
                ),
            ))
        }
        Condition::HostSilent => {
            let silent_ms = now_ms.saturating_sub(h.last_seen_ms);
            if silent_ms < duration_ms(rule.hold_for) {
                return None;
            }
            let silent = Duration::from_secs(u64::try_from(silent_ms / 1000).unwrap_or(0));
            let state = if h.connected {
                "its stream is open but carries nothing"
            } else {
                "its agent is disconnected"
            };
            Some((
                silent_ms as f64 / 1000.0,
                format!(
                    "no data from {name} (cluster {}) for {}, {state}; threshold {}: check that fleet-agent runs on {name} and can reach the collector",
                    h.cluster,
                    humantime::format_duration(silent),
                    humantime::format_duration(rule.hold_for),
                ),
            ))
        }
        Condition::Sar(c) => {
            if !h.connected {
                return None;
            }
            let (value, instance) = sar_match(c, h)?;
            let activity = schema(c.activity).map_or("?", |s| s.name);
            let place = if instance.is_empty() || instance == "-" || instance == "all" {
                activity.to_owned()
            } else {
                format!("{activity} {instance}")
            };
            Some((
                value,
                format!(
                    "{} is {} on {name} ({place}); rule: {} {} {}: see `fleetctl sar` for {name}",
                    c.column,
                    number(value),
                    c.column,
                    c.op,
                    number(c.value),
                ),
            ))
        }
        Condition::ClockSkew { .. } | Condition::OomKillBurst { .. } => None,
    }
}

/// The worst instance of the host whose column compares true: (value, instance).
fn sar_match<'h>(c: &SarCondition, h: &'h HostView) -> Option<(f64, &'h str)> {
    let mut found: Option<(f64, &str)> = None;
    for (activity, instance, values) in &h.sar {
        if *activity != c.activity {
            continue;
        }
        let Some(&v) = values.get(c.column_index) else {
            continue;
        };
        if !c.op.holds(v, c.value) {
            continue;
        }
        let better = match (found, c.op) {
            (None, _) => true,
            (Some((f, _)), CmpOp::Gt | CmpOp::Ge) => v > f,
            (Some((f, _)), CmpOp::Lt | CmpOp::Le) => v < f,
            (Some(_), CmpOp::Eq | CmpOp::Ne) => false,
        };
        if better {
            found = Some((v, instance));
        }
    }
    found
}

fn unsynced_reason(s: &NtpServerStatus) -> String {
    if !s.error.is_empty() {
        s.error.clone()
    } else if !s.reachable {
        "unreachable".into()
    } else if s.leap == 3 {
        "unsynchronised (leap 3)".into()
    } else if s.stratum == 0 || s.stratum >= 16 {
        format!("unsynchronised (stratum {})", s.stratum)
    } else {
        "not synchronised".into()
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds for a summary: whole above 10, one decimal above 1, else two, no trailing zeros.
fn ms(v: f64) -> String {
    let decimals = if v.abs() >= 10.0 {
        0
    } else if v.abs() >= 1.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

fn signed_ms(v: f64) -> String {
    let s = ms(v);
    if s.starts_with('-') || s == "0" {
        s
    } else {
        format!("+{s}")
    }
}

/// A measured value: up to two decimals, no trailing zeros.
fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// `a`, `a and b`, `a, b and c`, `a, b, c and 4 more`.
fn name_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] if names.len() <= 4 => format!("{} and {last}", init.join(", ")),
        _ => format!("{} and {} more", names[..3].join(", "), names.len() - 3),
    }
}

/// Checks a `summary` template: `{name}` placeholders from [`SUMMARY_PLACEHOLDERS`], `{{` and
/// `}}` for literal braces.
pub(crate) fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        let after = &rest[i + 1..];
        if rest[i..].starts_with("{{") || rest[i..].starts_with("}}") {
            rest = &rest[i + 2..];
            continue;
        }
        if rest.as_bytes()[i] == b'}' {
            return Err("unmatched '}' (write '}}' for a literal brace)".into());
        }
        let Some(end) = after.find('}') else {
            return Err("unclosed '{' (write '{{' for a literal brace)".into());
        };
        let name = &after[..end];
        if !SUMMARY_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; the placeholders are {}",
                SUMMARY_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Fills a template checked by [`check_template`].
fn render_template(
    t: &str,
    rule: &Rule,
    cluster: &str,
    hosts: &[String],
    value: f64,
    builtin: &str,
) -> String {
    let mut out = String::with_capacity(t.len() + builtin.len());
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        if rest[i..].starts_with("{{") || rest[i..].starts_with("}}") {
            out.push(rest.as_bytes()[i] as char);
            rest = &rest[i + 2..];
            continue;
        }
        let after = &rest[i + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        match &after[..end] {
            "rule" => out.push_str(&rule.name),
            "cluster" => out.push_str(cluster),
            "hosts" => out.push_str(&hosts.join(", ")),
            "value" => out.push_str(&number(value)),
            "summary" => out.push_str(builtin),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(ms(250.0), "250");
        assert_eq!(ms(251.3), "251");
        assert_eq!(ms(0.4), "0.4");
        assert_eq!(ms(0.04), "0.04");
        assert_eq!(ms(1.25), "1.2");
        assert_eq!(ms(-0.001), "0");
        assert_eq!(signed_ms(250.0), "+250");
        assert_eq!(signed_ms(-3.0), "-3");
        assert_eq!(signed_ms(0.0), "0");
        assert_eq!(number(97.3), "97.3");
        assert_eq!(number(95.0), "95");
        assert_eq!(name_list(&["a".into()]), "a");
        assert_eq!(name_list(&["a".into(), "b".into()]), "a and b");
        let five: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        assert_eq!(name_list(&five), "a, b, c and 2 more");
    }

    #[test]
    fn templates() {
        assert!(check_template("{hosts}: {summary} {{literal}}").is_ok());
        assert!(check_template("{host}")
            .unwrap_err()
            .contains("unknown placeholder {host}"));
        assert!(check_template("{hosts").is_err());
        assert!(check_template("}").is_err());
    }
}
