//! `/hosts/HOST_ID`: a graph per sar activity the host reports over a range (`?since=&until=`,
//! default the last hour, at most 31 days), in sar's order, panels grouped as `sadf -g` groups
//! them (CPU: `all`, then each CPU folded), the range's OOM kills marked on each and linked to `/oom/ID`. Dragging across a graph
//! reloads the page with the dragged range (`assets/ui.js`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use fleet_proto::schema::{schema, ActivitySchema};
use fleet_proto::v1::{Activity, ListHostsRequest};
use futures::future::try_join_all;

use super::html::{e, page as layout, range, range_links, seg, table, time};
use super::PageError;
use crate::client::Collector;
use crate::cmd::sar::SAR_ORDER;
use crate::plot::source::{self, oom_markers, Selection};
use crate::plot::{activity_panels, Marker, PlotRow, Range};

/// The page.
pub(super) async fn page(
    collector: &Collector,
    id: &str,
    query: Option<&str>,
) -> Result<String, PageError> {
    let range = range(query, Duration::from_secs(3600), Utc::now())
        .map_err(|err| PageError::BadRequest(format!("since/until: {err}")))?;
    let hosts = collector
        .query("ListHosts", async |c| {
            c.list_hosts(ListHostsRequest::default()).await
        })
        .await?
        .hosts;
    let Some(host) = hosts
        .iter()
        .find(|h| h.identity.as_ref().is_some_and(|i| i.host_id == id))
    else {
        return Err(PageError::NotFound(format!("no host with id {id}")));
    };
    let identity = host.identity.clone().unwrap_or_default();
    let selection = Selection {
        hosts: vec![id.to_owned()],
        cluster: String::new(),
        range,
    };
    let rows = try_join_all(
        SAR_ORDER
            .iter()
            .map(|a| source::sar_rows(collector, *a as i32, &selection, source::BUCKETS)),
    );
    let kills = source::oom_kills(collector, &selection);
    let (rows, kills) = tokio::try_join!(rows, kills)?;
    let markers = oom_markers(&kills, |id| Some(format!("/oom/{}", seg(id))));

    let name = crate::output::host_name(&identity.hostname, &identity.host_id);
    let mut body = format!(
        "<p>{} ({}), cluster {}, kernel {}, agent {}, {}; last seen {}</p>",
        e(name),
        e(&identity.host_id),
        e(&identity.cluster),
        e(&identity.kernel),
        e(&identity.agent_version),
        if host.connected {
            "connected"
        } else {
            "not connected"
        },
        e(&time(host.last_seen_ms)),
    );
    body.push_str(&range_links(&format!("/hosts/{}?", seg(id)), range));
    if !kills.is_empty() {
        body.push_str("<h2>OOM kills in this range</h2>");
        let cells: Vec<Vec<String>> = kills
            .iter()
            .zip(&markers)
            .map(|(k, m)| {
                vec![
                    e(&time(m.time_ms)).into_owned(),
                    format!("<a href=\"/oom/{}\">{}</a>", seg(&k.id), e(&m.label)),
                ]
            })
            .collect();
        body.push_str(&table("kills", &["time", "kill"], &cells));
    }
    let mut silent = Vec::new();
    for (activity, mut rows) in SAR_ORDER.iter().zip(rows) {
        let Some(schema) = schema(*activity) else {
            continue;
        };
        // CPU: the "all" line on top, each CPU in a panel of its own below it, folded (as
        // `sadf -g` draws one graph per CPU).
        let per_cpu = if *activity == Activity::Cpu {
            let (all, each): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.instance == "all");
            rows = all;
            each
        } else {
            Vec::new()
        };
        if rows.is_empty() {
            silent.push(schema.sar_flag);
            continue;
        }
        body.push_str(&format!(
            "<section class=\"activity\" data-activity=\"{}\"><h2>{} <span class=\"note\">sar {}</span></h2>",
            e(schema.name),
            e(schema.name),
            e(schema.sar_flag)
        ));
        for panel in activity_panels(schema, &rows, range, &markers) {
            body.push_str(&panel.svg);
        }
        if !per_cpu.is_empty() {
            body.push_str(&per_cpu_panels(schema, per_cpu, range, &markers));
        }
        body.push_str("</section>");
    }
    if !silent.is_empty() {
        body.push_str(&format!(
            "<p class=\"note\">No samples in this range: sar {}</p>",
            e(&silent.join(", "))
        ));
    }
    Ok(layout(&format!("Host {name}"), &body, None))
}

/// One folded panel per CPU, in CPU order.
fn per_cpu_panels(
    schema: &ActivitySchema,
    rows: Vec<PlotRow>,
    range: Range,
    markers: &[Marker],
) -> String {
    let mut by_cpu: BTreeMap<(u32, String), Vec<PlotRow>> = BTreeMap::new();
    for row in rows {
        let key = (
            row.instance.parse().unwrap_or(u32::MAX),
            row.instance.clone(),
        );
        by_cpu.entry(key).or_default().push(row);
    }
    let mut s = format!(
        "<details class=\"per-cpu\"><summary>each CPU ({})</summary>",
        by_cpu.len()
    );
    for rows in by_cpu.values() {
        for panel in activity_panels(schema, rows, range, markers) {
            s.push_str(&panel.svg);
        }
    }
    s.push_str("</details>");
    s
}
