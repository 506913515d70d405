//! Where plotted data comes from: the one place `sar --plot` and `fleetctl ui` ask the collector
//! for rows to draw and for the OOM kills to mark.
//!
//! Rows come downsampled by the collector (`Query.QuerySarBuckets`): about one bucket per pixel
//! across (`step_ms` = the range divided by the pixels, rounded up), each drawn as its mean with
//! its min–max band ([`super::bucket::from_buckets`]), so a 24 h range at 1 s asks for 900
//! buckets, not 86,400 rows. When no bucket holds more than one sample (the range has fewer
//! samples than pixels), the raw rows (`Query.QuerySar`, as many as there are buckets at most)
//! are drawn instead: exact times and values, no bands. A collector without the downsampled
//! query (`Unimplemented`) gets `QuerySar` and the rows are bucketed here
//! ([`super::downsample`]), the same way.

use anyhow::Result;
use fleet_proto::v1::{OomKill, OomQuery, SarBucketQuery, SarQuery};
use tonic::Code;

use super::bucket::{from_buckets, step_ms};
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

/// The rows of `activity` (a wire value of `Activity`) for `selection`, about `buckets` per
/// series (host and instance): the collector's buckets with their min–max envelope, or the raw
/// rows when there are no more of them than buckets.
///
/// # Errors
///
/// The collector's answer to `QuerySarBuckets` or `QuerySar`, as `Collector::query` words it.
pub async fn sar_rows(
    collector: &Collector,
    activity: i32,
    selection: &Selection,
    buckets: usize,
) -> Result<Vec<PlotRow>> {
    let range = selection.range;
    let query = SarBucketQuery {
        activity,
        hosts: selection.hosts.clone(),
        cluster: selection.cluster.clone(),
        since_ms: range.since_ms,
        until_ms: range.until_ms,
        step_ms: step_ms(range, buckets),
    };
    match collector
        .query("QuerySarBuckets", async |c| {
            c.query_sar_buckets(query).await
        })
        .await
    {
        Ok(answer) => {
            let dense = answer
                .series
                .iter()
                .flat_map(|s| &s.buckets)
                .any(|b| b.count.iter().any(|n| *n > 1));
            if dense {
                return Ok(from_buckets(&answer.series, answer.step_ms, range));
            }
            if answer.series.is_empty() {
                return Ok(Vec::new());
            }
            // At most one sample per bucket: the raw rows are as few, and exact.
            raw_rows(collector, activity, selection).await
        }
        Err(err) if err.code() == Code::Unimplemented => Ok(downsample(
            raw_rows(collector, activity, selection).await?,
            range,
            buckets,
        )),
        Err(err) => Err(err.into()),
    }
}

/// Every row of `activity` for `selection` (`Query.QuerySar`).
async fn raw_rows(
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
    Ok(answer.rows.iter().map(PlotRow::from_sar).collect())
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
