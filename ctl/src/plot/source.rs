//! Where plotted data comes from: the one place `sar --plot` and `fleetctl ui` ask the collector
//! for rows to draw and for the OOM kills to mark, so that switching to a downsampled query (per
//! time bucket min, max and mean, computed by the collector) changes this file alone.
//!
//! Today the rows come from `Query.QuerySar` and are bucketed here ([`super::downsample`]) when a
//! series holds more points than the panel has pixels.

use anyhow::Result;
use fleet_proto::v1::{OomKill, OomQuery, SarQuery};

use super::{downsample, Marker, PlotRow, Range};
use crate::client::Collector;
use crate::output::host_name;

/// What to fetch: one activity of some hosts over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Host ids or hostnames; empty: every host (of `cluster`).
    pub hosts: Vec<String>,
    /// `""`: every cluster.
    pub cluster: String,
    pub range: Range,
}

/// About how many points a panel shows across (one per pixel of its plot area).
pub const BUCKETS: usize = 900;

/// The rows of `activity` (a wire value of `Activity`) for `selection`, at most [`BUCKETS`] per
/// series (host and instance), bucketed with their min–max envelope beyond that.
///
/// # Errors
///
/// The collector's answer to `QuerySar`, as `Collector::query` words it.
pub async fn sar_rows(
    collector: &Collector,
    activity: i32,
    selection: &Selection,
) -> Result<Vec<PlotRow>> {
    let query = SarQuery {
        activity,
        hosts: selection.hosts.clone(),
        cluster: selection.cluster.clone(),
        since_ms: selection.range.since_ms,
        until_ms: selection.range.until_ms,
    };
    let answer = collector
        .query("QuerySar", async |c| c.query_sar(query).await)
        .await?;
    let rows: Vec<PlotRow> = answer.rows.iter().map(PlotRow::from_sar).collect();
    Ok(downsample(rows, selection.range, BUCKETS))
}

/// The OOM kills of `selection`, newest first.
///
/// # Errors
///
/// The collector's answer to `ListOomKills`.
pub async fn oom_kills(collector: &Collector, selection: &Selection) -> Result<Vec<OomKill>> {
    let query = OomQuery {
        hosts: selection.hosts.clone(),
        cluster: selection.cluster.clone(),
        since_ms: selection.range.since_ms,
        until_ms: selection.range.until_ms,
        limit: 0,
    };
    Ok(collector
        .query("ListOomKills", async |c| c.list_oom_kills(query).await)
        .await?
        .kills)
}

/// A marker for each kill: `OOM kill: COMM (pid N) on HOST`, linked with `link(id)`.
pub fn oom_markers(kills: &[OomKill], link: impl Fn(&str) -> Option<String>) -> Vec<Marker> {
    kills
        .iter()
        .filter_map(|kill| {
            let event = kill.event.as_ref()?;
            let victim = match (&event.victim_comm, event.victim_pid) {
                (Some(comm), Some(pid)) => format!("{comm} (pid {pid})"),
                (Some(comm), None) => comm.clone(),
                (None, Some(pid)) => format!("pid {pid}"),
                (None, None) => "unknown victim".to_owned(),
            };
            Some(Marker {
                time_ms: event.time_ms,
                label: format!(
                    "OOM kill: {victim} on {}",
                    host_name(&kill.hostname, &kill.host_id)
                ),
                link: link(&kill.id),
            })
        })
        .collect()
}
