//! `/alerts`: the collector's alerts, firing first, then pending, then resolved.

use fleet_proto::v1::{Alert, AlertQuery};

use super::html::{e, page as layout, seg, table, time};
use super::PageError;
use crate::client::Collector;

/// The page.
pub(super) async fn page(collector: &Collector) -> Result<String, PageError> {
    let alerts = collector
        .query("ListAlerts", async |c| {
            c.list_alerts(AlertQuery::default()).await
        })
        .await?
        .alerts;
    let mut body = String::new();
    for state in ["firing", "pending", "resolved"] {
        let these: Vec<Alert> = alerts
            .iter()
            .filter(|a| a.state == state)
            .cloned()
            .collect();
        body.push_str(&format!(
            "<h2>{state} <span class=\"note\">{}</span></h2>",
            these.len()
        ));
        if these.is_empty() {
            body.push_str("<p>none</p>");
        } else {
            body.push_str(&alert_table(&these));
        }
    }
    Ok(layout("Alerts", &body, Some(30)))
}

/// A table of `alerts`.
pub(super) fn alert_table(alerts: &[Alert]) -> String {
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            let hosts: Vec<String> = a
                .hosts
                .iter()
                .map(|h| format!("<a href=\"/hosts/{}\">{}</a>", seg(h), e(h)))
                .collect();
            let labels: Vec<String> = a
                .labels
                .iter()
                .map(|(k, v)| format!("<span class=\"label\">{}={}</span>", e(k), e(v)))
                .collect();
            vec![
                format!("<span class=\"state-{0}\">{0}</span>", e(&a.state)),
                e(&a.rule).into_owned(),
                e(&a.kind).into_owned(),
                e(&a.cluster).into_owned(),
                hosts.join(" "),
                e(&a.summary).into_owned(),
                e(&time(a.since_ms)).into_owned(),
                format!("{}", a.value),
                labels.join(" "),
            ]
        })
        .collect();
    table(
        "alerts sortable",
        &[
            "state", "rule", "kind", "cluster", "hosts", "summary", "since", "value", "labels",
        ],
        &rows,
    )
}
