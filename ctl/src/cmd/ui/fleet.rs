//! `/`: the fleet. Firing alerts on top, then per cluster a row per host: connected, last seen,
//! kernel, labels, sparklines of the last hour (CPU busy = 100 − %idle of `all`, `%memused`,
//! `ldavg-1`), OOM kills in the last 24 h, clock offset. `?cluster=C` and `?label=K=V` filter.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use fleet_proto::schema::schema;
use fleet_proto::v1::{
    Activity, AlertQuery, HostInfo, ListHostsRequest, NtpHostStatus, NtpQuery, OomKill,
};

use super::html::{e, page as layout, query_value, seg, table, time};
use super::PageError;
use crate::client::Collector;
use crate::cmd::ntp::best_offset;
use crate::plot::source::{self, Selection};
use crate::plot::{sparkline, PlotRow, Range};

/// A sparkline's width in pixels, and so the buckets asked for each.
const SPARK_WIDTH: usize = 120;

/// The sparklines' columns: (activity, column, how a value is shown, tooltip).
const SPARKS: [(Activity, &str, &str); 3] = [
    (Activity::Cpu, "%idle", "CPU busy % (100 − %idle)"),
    (Activity::Memory, "%memused", "%memused"),
    (Activity::Load, "ldavg-1", "ldavg-1"),
];

/// The page.
pub(super) async fn page(collector: &Collector, query: Option<&str>) -> Result<String, PageError> {
    let cluster = query_value(query, "cluster").unwrap_or_default();
    let label = query_value(query, "label").filter(|l| !l.is_empty());
    let now = Utc::now().timestamp_millis();
    let hour = Selection {
        hosts: Vec::new(),
        cluster: cluster.clone(),
        range: Range {
            since_ms: now - 3_600_000,
            until_ms: now,
        },
    };
    let day = Selection {
        range: Range {
            since_ms: now - 86_400_000,
            until_ms: now,
        },
        ..hour.clone()
    };
    let hosts = collector.query("ListHosts", async |c| {
        c.list_hosts(ListHostsRequest::default()).await
    });
    let alerts_request = AlertQuery {
        cluster: cluster.clone(),
        state: "firing".to_owned(),
    };
    let alerts = collector.query("ListAlerts", async |c| c.list_alerts(alerts_request).await);
    let ntp_request = NtpQuery {
        hosts: Vec::new(),
        cluster: cluster.clone(),
    };
    let ntp = collector.query("ListNtp", async |c| c.list_ntp(ntp_request).await);
    let kills = source::oom_kills(collector, &day);
    let (hosts, alerts, ntp, kills) = tokio::join!(hosts, alerts, ntp, kills);
    let (hosts, alerts, ntp, kills) = (hosts?, alerts?, ntp?, kills?);

    let clusters: BTreeSet<&str> = hosts.hosts.iter().filter_map(cluster_of).collect();
    let shown: Vec<&HostInfo> = hosts
        .hosts
        .iter()
        .filter(|h| cluster.is_empty() || cluster_of(h) == Some(cluster.as_str()))
        .filter(|h| label.as_deref().is_none_or(|l| has_label(h, l)))
        .collect();
    // The sparklines of the hosts shown, by host id (QuerySar wants hosts or a cluster).
    let spark_hosts = Selection {
        hosts: shown
            .iter()
            .filter_map(|h| h.identity.as_ref().map(|i| i.host_id.clone()))
            .collect(),
        ..hour.clone()
    };
    let sparks = if spark_hosts.hosts.is_empty() {
        vec![Vec::new(); SPARKS.len()]
    } else {
        futures::future::try_join_all(SPARKS.iter().map(|(activity, _, _)| {
            source::sar_rows(collector, *activity as i32, &spark_hosts, SPARK_WIDTH)
        }))
        .await?
    };

    let mut body = String::new();
    body.push_str(&filter_form(&clusters, &cluster, label.as_deref()));
    body.push_str("<h2>Firing alerts</h2>");
    if alerts.alerts.is_empty() {
        body.push_str("<p class=\"ok\">none</p>");
    } else {
        body.push_str(&super::alerts::alert_table(&alerts.alerts));
    }
    let rows = HostRows {
        sparks: &sparks,
        kills: &kills,
        ntp: &ntp.hosts,
        range: hour.range,
    };
    let mut by_cluster: BTreeMap<&str, Vec<&HostInfo>> = BTreeMap::new();
    for h in shown {
        by_cluster
            .entry(cluster_of(h).unwrap_or(""))
            .or_default()
            .push(h);
    }
    if by_cluster.is_empty() {
        body.push_str("<p>No hosts.</p>");
    }
    for (name, hosts) in by_cluster {
        body.push_str(&format!(
            "<h2>Cluster {} <span class=\"note\">{} host{}</span></h2>",
            e(name),
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" }
        ));
        let cells: Vec<Vec<String>> = hosts.iter().map(|h| rows.row(h)).collect();
        body.push_str(&table(
            "hosts sortable",
            &[
                "host",
                "connected",
                "last seen",
                "kernel",
                "labels",
                "CPU busy % (1 h)",
                "%memused (1 h)",
                "ldavg-1 (1 h)",
                "OOM kills (24 h)",
                "clock offset",
            ],
            &cells,
        ));
    }
    Ok(layout("Fleet", &body, Some(30)))
}

fn cluster_of(h: &HostInfo) -> Option<&str> {
    h.identity.as_ref().map(|i| i.cluster.as_str())
}

/// Whether `h` has the label `K=V` (or a label `K` at all, for `K` alone).
fn has_label(h: &HostInfo, wanted: &str) -> bool {
    let Some(identity) = &h.identity else {
        return false;
    };
    match wanted.split_once('=') {
        Some((k, v)) => identity.labels.get(k).is_some_and(|have| have == v),
        None => identity.labels.contains_key(wanted),
    }
}

fn filter_form(clusters: &BTreeSet<&str>, chosen: &str, label: Option<&str>) -> String {
    let mut options = String::from("<option value=\"\">every cluster</option>");
    for c in clusters {
        options.push_str(&format!(
            "<option value=\"{v}\"{sel}>{v}</option>",
            v = e(c),
            sel = if *c == chosen { " selected" } else { "" }
        ));
    }
    format!(
        "<form class=\"filter\" method=\"get\" action=\"/\"><label>cluster <select name=\"cluster\">\
         {options}</select></label> <label>label <input name=\"label\" placeholder=\"K=V\" \
         value=\"{label}\"></label> <button>filter</button></form>",
        label = e(label.unwrap_or("")),
    )
}

/// What the host rows are made of.
struct HostRows<'a> {
    /// Per entry of [`SPARKS`], the rows of every host.
    sparks: &'a [Vec<PlotRow>],
    kills: &'a [OomKill],
    ntp: &'a [NtpHostStatus],
    range: Range,
}

impl HostRows<'_> {
    fn row(&self, h: &HostInfo) -> Vec<String> {
        let identity = h.identity.clone().unwrap_or_default();
        let id = &identity.host_id;
        let name = crate::output::host_name(&identity.hostname, id);
        let labels: Vec<String> = identity
            .labels
            .iter()
            .map(|(k, v)| format!("<span class=\"label\">{}={}</span>", e(k), e(v)))
            .collect();
        let mut cells = vec![
            format!(
                "<a href=\"/hosts/{}\">{}</a><br><span class=\"note\">{}</span>",
                seg(id),
                e(name),
                e(id)
            ),
            if h.connected {
                "<span class=\"ok\">yes</span>".to_owned()
            } else {
                "<span class=\"bad\">no</span>".to_owned()
            },
            e(&time(h.last_seen_ms)).into_owned(),
            e(&identity.kernel).into_owned(),
            labels.join(" "),
        ];
        for ((activity, column, tip), rows) in SPARKS.iter().zip(self.sparks) {
            cells.push(self.spark(id, *activity, column, tip, rows));
        }
        let kills = self.kills.iter().filter(|k| &k.host_id == id).count();
        cells.push(if kills == 0 {
            "0".to_owned()
        } else {
            format!("<span class=\"bad\">{kills}</span>")
        });
        let ntp = self.ntp.iter().find(|n| &n.host_id == id);
        let offset = ntp.and_then(best_offset).map(|o| format!("NTP {o:+.1} ms"));
        let collector = ntp
            .and_then(|n| n.collector_offset_ms)
            .filter(|o| o.is_finite())
            .map(|o| format!("collector {o:+.1} ms"));
        let clock: Vec<String> = [offset, collector].into_iter().flatten().collect();
        cells.push(if clock.is_empty() {
            "-".to_owned()
        } else {
            e(&clock.join(", ")).into_owned()
        });
        cells
    }

    fn spark(
        &self,
        host_id: &str,
        activity: Activity,
        column: &str,
        tip: &str,
        rows: &[PlotRow],
    ) -> String {
        let Some(index) =
            schema(activity).and_then(|s| s.columns.iter().position(|c| *c == column))
        else {
            return "-".to_owned();
        };
        let points: Vec<(i64, f64)> = rows
            .iter()
            .filter(|r| r.host_id == host_id)
            .filter(|r| activity != Activity::Cpu || r.instance == "all")
            .filter_map(|r| {
                let v = *r.values.get(index)?;
                Some((
                    r.time_ms,
                    if activity == Activity::Cpu {
                        100.0 - v
                    } else {
                        v
                    },
                ))
            })
            .collect();
        let last = points
            .iter()
            .max_by_key(|p| p.0)
            .map_or("-".to_owned(), |p| crate::plot::value_label(p.1));
        format!(
            "{}<span class=\"last\">{}</span>",
            sparkline(&points, self.range, SPARK_WIDTH as u32, 24, tip),
            e(&last)
        )
    }
}

#[cfg(test)]
mod tests {
    use fleet_proto::v1::HostIdentity;

    use super::*;

    fn host(labels: &[(&str, &str)]) -> HostInfo {
        HostInfo {
            identity: Some(HostIdentity {
                host_id: "a1".into(),
                cluster: "prod".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..HostIdentity::default()
            }),
            ..HostInfo::default()
        }
    }

    #[test]
    fn label_filter_takes_a_key_or_a_pair() {
        let h = host(&[("role", "web")]);
        assert!(has_label(&h, "role=web"));
        assert!(has_label(&h, "role"));
        assert!(!has_label(&h, "role=db"));
        assert!(!has_label(&h, "zone"));
    }

    #[test]
    fn the_filter_form_escapes_what_it_echoes() {
        let clusters = BTreeSet::from(["prod", "<x>"]);
        let form = filter_form(&clusters, "prod", Some("\"><script>"));
        assert!(
            !form.contains("<script>") && !form.contains("<x>"),
            "{form}"
        );
        assert!(form.contains("value=\"prod\" selected"), "{form}");
        assert!(
            form.contains("value=\"&quot;&gt;&lt;script&gt;\""),
            "{form}"
        );
    }
}
