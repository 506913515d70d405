//! `fleetctl alerts [--cluster C] [--state pending|firing|resolved]`: the alerts raised by the
//! collector's rules (`Query.ListAlerts`).
//!
//! Rows keyed [`ALERT_KEYS`], firing first, then pending, then resolved, newest first within
//! each; the table is `STATE RULE CLUSTER HOSTS SINCE SUMMARY`, host lists cut to
//! [`HOSTS_WIDTH`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use clap::{Args, ValueEnum};
use fleet_proto::v1::{Alert, AlertQuery};
use serde::Serialize;

use super::{Context, Run};
use crate::output::{
    csv_line, dash, header, json, nonzero_rfc3339_ms, printable, table, time_cell, OutputFormat,
};
use crate::Output;

/// `fleetctl alerts`.
#[derive(Debug, Clone, Default, Args)]
pub struct AlertsArgs {
    /// Only alerts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Only alerts in this state [default: every state]
    #[arg(long, value_enum, value_name = "STATE")]
    pub state: Option<AlertState>,
}

/// The state of an alert, as the collector's rules move it: pending (the condition holds, not yet
/// for the rule's `for`), firing, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    /// The state as `AlertQuery.state` and `Alert.state` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

impl Run for AlertsArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        let query = AlertQuery {
            cluster: self.cluster.unwrap_or_default(),
            state: self
                .state
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
        };
        let collector = ctx.connect().await?;
        let request = query.clone();
        let alerts = collector
            .query("ListAlerts", async |c| c.list_alerts(request).await)
            .await?
            .alerts;
        let notice = (alerts.is_empty() && ctx.format == OutputFormat::Table).then(|| {
            let state = match query.state.as_str() {
                "" => String::new(),
                state => format!(" {state}"),
            };
            match query.cluster.as_str() {
                "" => format!("no{state} alerts"),
                cluster => format!("no{state} alerts in cluster {cluster}"),
            }
        });
        Ok(Output::print(render(&alerts, ctx.format)).with_notice(notice))
    }
}

/// The keys of an `alerts` row, in order (JSON and CSV).
pub const ALERT_KEYS: [&str; 10] = [
    "rule",
    "kind",
    "state",
    "cluster",
    "hosts",
    "summary",
    "since",
    "active_since",
    "value",
    "labels",
];

/// The widest host list a table prints; the hosts left out are counted.
pub const HOSTS_WIDTH: usize = 40;

/// One alert as `-o json` shows it. The field order is [`ALERT_KEYS`].
#[derive(Debug, Serialize)]
struct AlertView {
    rule: String,
    kind: String,
    state: String,
    cluster: String,
    hosts: Vec<String>,
    summary: String,
    /// When the alert entered its current state.
    since: Option<String>,
    /// When its condition first held.
    active_since: Option<String>,
    /// The measured value behind it (spread, offset, count, ...).
    value: Option<f64>,
    labels: BTreeMap<String, String>,
    #[serde(skip)]
    since_ms: i64,
}

impl AlertView {
    fn new(alert: &Alert) -> Self {
        AlertView {
            rule: alert.rule.clone(),
            kind: alert.kind.clone(),
            state: alert.state.clone(),
            cluster: alert.cluster.clone(),
            hosts: alert.hosts.clone(),
            summary: alert.summary.clone(),
            since: nonzero_rfc3339_ms(alert.since_ms),
            active_since: nonzero_rfc3339_ms(alert.active_since_ms),
            value: Some(alert.value).filter(|v| v.is_finite()),
            labels: alert
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            since_ms: alert.since_ms,
        }
    }

    /// Firing first, then pending, then resolved (then any state a newer collector adds).
    fn state_rank(&self) -> u8 {
        match self.state.as_str() {
            "firing" => 0,
            "pending" => 1,
            "resolved" => 2,
            _ => 3,
        }
    }
}

/// `web-1, web-2, web-3 +12 more`: as many names as fit in `width` characters, and how many
/// did not.
fn host_list(hosts: &[String], width: usize) -> String {
    let mut out = String::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = printable(host, width);
        let rest = hosts.len() - i;
        let sep = if i == 0 { "" } else { ", " };
        // Room for this name, and for the count of the others unless it is the last.
        let more = if rest > 1 {
            format!(" +{} more", rest - 1).len()
        } else {
            0
        };
        if i > 0 && out.chars().count() + sep.len() + host.chars().count() + more > width {
            let _ = write!(out, " +{rest} more");
            return out;
        }
        out.push_str(sep);
        out.push_str(&host);
    }
    out
}

/// Renders `fleetctl alerts`: firing first, then pending, then resolved; newest first within a
/// state.
pub fn render(alerts: &[Alert], format: OutputFormat) -> String {
    let mut views: Vec<AlertView> = alerts.iter().map(AlertView::new).collect();
    views.sort_by(|a, b| {
        (
            a.state_rank(),
            std::cmp::Reverse(a.since_ms),
            &a.rule,
            &a.cluster,
        )
            .cmp(&(
                b.state_rank(),
                std::cmp::Reverse(b.since_ms),
                &b.rule,
                &b.cluster,
            ))
    });
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut out = csv_line(ALERT_KEYS);
            for v in &views {
                let labels: Vec<String> =
                    v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
                out.push_str(&csv_line([
                    v.rule.as_str(),
                    &v.kind,
                    &v.state,
                    &v.cluster,
                    &v.hosts.join(","),
                    &v.summary,
                    v.since.as_deref().unwrap_or(""),
                    v.active_since.as_deref().unwrap_or(""),
                    &v.value.map(|x| x.to_string()).unwrap_or_default(),
                    &labels.join(","),
                ]));
            }
            out
        }
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![header(&[
                "STATE", "RULE", "CLUSTER", "HOSTS", "SINCE", "SUMMARY",
            ])];
            for v in &views {
                rows.push(vec![
                    dash(&v.state),
                    dash(&printable(&v.rule, usize::MAX)),
                    dash(&v.cluster),
                    dash(&host_list(&v.hosts, HOSTS_WIDTH)),
                    time_cell(v.since_ms),
                    dash(&printable(&v.summary, usize::MAX)),
                ]);
            }
            table(&rows, &[false; 6])
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;
    use crate::cmd::testing::{command, keys, keys_in_text_order, parse, T0};
    use crate::cmd::Command;
    use crate::golden;

    #[test]
    fn alerts_state_is_one_of_three() {
        let alerts = |args: &[&str]| match command("alerts", args) {
            Command::Alerts(args) => args,
            other => panic!("not alerts: {other:?}"),
        };
        let args = alerts(&[]);
        assert_eq!((args.cluster, args.state), (None, None));
        for (text, state) in [
            ("pending", AlertState::Pending),
            ("firing", AlertState::Firing),
            ("resolved", AlertState::Resolved),
        ] {
            let args = alerts(&["--state", text, "--cluster", "prod"]);
            assert_eq!(args.state, Some(state));
            assert_eq!(state.as_str(), text);
            assert_eq!(args.cluster.as_deref(), Some("prod"));
        }
        let err = parse(&["alerts", "--state", "active"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("[possible values: pending, firing, resolved]"),
            "{text}"
        );
    }

    fn alert(rule: &str, state: &str, since_ms: i64, hosts: &[&str]) -> Alert {
        Alert {
            rule: rule.into(),
            kind: "clock_skew".into(),
            state: state.into(),
            cluster: "prod".into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            summary: format!("{rule}: clock offsets in cluster prod spread 250.4 ms"),
            since_ms,
            active_since_ms: since_ms - 10_000,
            labels: [
                ("rule".to_owned(), rule.to_owned()),
                ("cluster".to_owned(), "prod".to_owned()),
            ]
            .into(),
            value: 250.4,
        }
    }

    fn alerts() -> Vec<Alert> {
        vec![
            alert("old-skew", "resolved", T0 - 3_600_000, &["web1", "web3"]),
            alert("prod-clock-skew", "firing", T0, &["web1", "web3"]),
            alert("new-skew", "resolved", T0 - 60_000, &["web3"]),
            Alert {
                kind: "host_silent".into(),
                summary: "db1 has sent nothing for 1m".into(),
                cluster: String::new(),
                ..alert("silent", "pending", T0 + 5_000, &["db1"])
            },
        ]
    }

    #[test]
    fn alerts_json_has_the_contract_keys() {
        let text = render(&alerts(), OutputFormat::Json);
        golden::check("alerts.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        assert_eq!(rows.len(), 4);
        let mut got = keys(&rows[0]);
        got.sort_unstable();
        let mut want = ALERT_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(keys_in_text_order(&text, &ALERT_KEYS), ALERT_KEYS);
        assert_eq!(
            rows[0],
            serde_json::json!({
                "rule": "prod-clock-skew",
                "kind": "clock_skew",
                "state": "firing",
                "cluster": "prod",
                "hosts": ["web1", "web3"],
                "summary": "prod-clock-skew: clock offsets in cluster prod spread 250.4 ms",
                "since": "2026-11-25T22:10:03.000Z",
                "active_since": "2026-11-25T22:09:53.000Z",
                "value": 250.4,
                "labels": {"cluster": "prod", "rule": "prod-clock-skew"}
            })
        );
        // Firing, pending, then resolved newest first.
        let order: Vec<&str> = rows.iter().map(|r| r["rule"].as_str().unwrap()).collect();
        assert_eq!(order, ["prod-clock-skew", "silent", "new-skew", "old-skew"]);
        let mut nan = alerts().remove(1);
        nan.value = f64::NAN;
        nan.active_since_ms = 0;
        let value: serde_json::Value =
            serde_json::from_str(&render(&[nan], OutputFormat::Json)).unwrap();
        assert_eq!(value[0]["value"], serde_json::Value::Null);
        assert_eq!(value[0]["active_since"], serde_json::Value::Null);
        assert_eq!(render(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn alerts_table() {
        let got = render(&alerts(), OutputFormat::Table);
        golden::check("alerts-table.txt", &got);
        assert_eq!(render(&[], OutputFormat::Table), "");
    }

    #[test]
    fn alerts_csv() {
        let text = render(&alerts()[1..2], OutputFormat::Csv);
        golden::check("alerts-firing.csv", &text);
        golden::check("alerts.csv", &render(&alerts(), OutputFormat::Csv));
    }

    #[test]
    fn host_lists_fit_their_column() {
        let hosts = |n: usize| (1..=n).map(|i| format!("web-{i:02}")).collect::<Vec<_>>();
        assert_eq!(host_list(&[], 40), "");
        assert_eq!(host_list(&hosts(1), 40), "web-01");
        assert_eq!(
            host_list(&hosts(5), 40),
            "web-01, web-02, web-03, web-04, web-05"
        );
        let cut = host_list(&hosts(30), 40);
        assert_eq!(cut, "web-01, web-02, web-03, web-04 +26 more");
        assert!(cut.chars().count() <= 40);
        // A name longer than the column is cut, not dropped.
        let long = vec!["x".repeat(60), "y".into()];
        assert_eq!(host_list(&long, 10), format!("{}… +1 more", "x".repeat(9)));
    }
}
