//! `/ntp`: the fleet's clocks. Per cluster, over a range (`?since=&until=` as on a host page,
//! default the last hour; `?cluster=C` for one cluster), one graph with each host's NTP offset
//! over time (a line per host, so a drifting host stands out), a graph of the cluster's spread
//! (max − min of the hosts' offsets), and a table of each host's time sources now: server,
//! reachable and synced, stratum, offset, delay, error.
//!
//! A host's offset is the one `fleetctl ntp` counts ([`best_offset`]: its synced source with
//! the lowest stratum).
//!
//! The offsets come downsampled by the collector (`Query.NtpHistoryBuckets`, about one bucket
//! per pixel, as the host page's graphs): each host's line is its buckets' means with their
//! min–max band, and the spread at a bucket is that of the hosts' means in it (at least two
//! hosts). When no bucket holds more than one measurement (a range with fewer measurements than
//! pixels), or the collector has no such query (`Unimplemented`), every measurement is fetched
//! (`Query.NtpHistory`, at most `limits::MAX_NTP_MEASUREMENTS`) and drawn: the spread at a
//! measurement is then taken over the hosts whose latest measurement is no older than twice
//! their measuring period, so a host that stopped measuring drops out instead of holding the
//! spread, and lines longer than a panel's pixels are bucketed with their min–max envelope
//! ([`downsample`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use fleet_proto::v1::{
    NtpBucketQuery, NtpBucketResult, NtpHistoryQuery, NtpHistoryResult, NtpHostHistory,
    NtpHostStatus, NtpQuery, SarBucket, SarBucketSeries,
};
use tonic::Code;

use super::html::{e, page as layout, query_value, range, range_links, seg, table, time};
use super::PageError;
use crate::client::Collector;
use crate::cmd::ntp::{best_offset, source_synced};
use crate::output::host_name;
use crate::plot::source::BUCKETS;
use crate::plot::{downsample, from_buckets, step_ms, value_panel, PlotRow, Range};

/// The measuring period assumed for a host with fewer than two measurements (the agent's default).
const DEFAULT_PERIOD_MS: i64 = 16_000;

/// The page.
pub(super) async fn page(collector: &Collector, query: Option<&str>) -> Result<String, PageError> {
    let range = range(query, Duration::from_secs(3600), Utc::now())
        .map_err(|err| PageError::BadRequest(format!("since/until: {err}")))?;
    let cluster = query_value(query, "cluster").unwrap_or_default();
    let latest = NtpQuery {
        hosts: Vec::new(),
        cluster: cluster.clone(),
    };
    let latest = async {
        let list = collector.query("ListNtp", async |c| c.list_ntp(latest).await);
        list.await.map_err(PageError::from)
    };
    let (lines, latest) = tokio::try_join!(offsets(collector, &cluster, range), latest)?;
    let base = if cluster.is_empty() {
        "/ntp?".to_owned()
    } else {
        format!("/ntp?cluster={}&", seg(&cluster))
    };
    Ok(render(&lines, &latest.hosts, range, &base))
}

/// A cluster's lines: each host's offsets, and the cluster's spread.
type ClusterLines = (Vec<PlotRow>, Vec<PlotRow>);

/// What the graphs of each cluster draw.
#[derive(Debug, Default)]
struct Lines {
    /// By cluster: each host's offsets, and the cluster's spread.
    clusters: BTreeMap<String, ClusterLines>,
    /// The raw history was cut at the collector's limit.
    truncated: bool,
}

/// The offsets of `cluster` (every cluster when empty) over `range`: the collector's buckets,
/// or every measurement when there are no more of them than buckets (see the module doc).
async fn offsets(collector: &Collector, cluster: &str, range: Range) -> Result<Lines, PageError> {
    let query = NtpBucketQuery {
        hosts: Vec::new(),
        cluster: cluster.to_owned(),
        since_ms: range.since_ms,
        until_ms: range.until_ms,
        step_ms: step_ms(range, BUCKETS),
    };
    match collector
        .query("NtpHistoryBuckets", async |c| {
            c.ntp_history_buckets(query).await
        })
        .await
    {
        Ok(answer)
            if answer
                .hosts
                .iter()
                .flat_map(|h| &h.buckets)
                .any(|b| b.count > 1) =>
        {
            return Ok(from_ntp_buckets(&answer, range));
        }
        Ok(answer) if answer.hosts.is_empty() => return Ok(Lines::default()),
        Ok(_) => {}
        Err(err) if err.code() == Code::Unimplemented => {}
        Err(err) => return Err(err.into()),
    }
    let history = NtpHistoryQuery {
        hosts: Vec::new(),
        cluster: cluster.to_owned(),
        since_ms: range.since_ms,
        until_ms: range.until_ms,
        limit: 0,
    };
    let history = collector
        .query("NtpHistory", async |c| c.ntp_history(history).await)
        .await?;
    Ok(from_history(&history, range))
}

/// Lines from every measurement: each host's offsets and the cluster's spread, bucketed when
/// longer than a panel's pixels.
fn from_history(history: &NtpHistoryResult, range: Range) -> Lines {
    let mut by_cluster: BTreeMap<&str, Vec<&NtpHostHistory>> = BTreeMap::new();
    for h in &history.hosts {
        by_cluster.entry(&h.cluster).or_default().push(h);
    }
    Lines {
        clusters: by_cluster
            .into_iter()
            .map(|(cluster, hosts)| {
                let offsets = hosts.iter().flat_map(|h| offset_rows(h)).collect();
                let spread = spread_rows(&hosts);
                (
                    cluster.to_owned(),
                    (
                        downsample(offsets, range, BUCKETS),
                        downsample(spread, range, BUCKETS),
                    ),
                )
            })
            .collect(),
        truncated: history.truncated,
    }
}

/// Lines from the collector's buckets: each host's bucket means with their min–max band, and per
/// bucket where at least two hosts of a cluster have one, the spread of their means.
fn from_ntp_buckets(answer: &NtpBucketResult, range: Range) -> Lines {
    let mut clusters: BTreeMap<String, ClusterLines> = BTreeMap::new();
    for h in &answer.hosts {
        // One host's buckets as a one-column sar series, drawn as the sar buckets are.
        let series = SarBucketSeries {
            host_id: h.host_id.clone(),
            hostname: h.hostname.clone(),
            instance: String::new(),
            buckets: h
                .buckets
                .iter()
                .map(|b| SarBucket {
                    time_ms: b.time_ms,
                    count: vec![b.count],
                    min: vec![b.min],
                    max: vec![b.max],
                    mean: vec![b.mean],
                })
                .collect(),
        };
        let rows = from_buckets(&[series], answer.step_ms, range);
        clusters
            .entry(h.cluster.clone())
            .or_default()
            .0
            .extend(rows);
    }
    for (offsets, spread) in clusters.values_mut() {
        // A bucket's rows of different hosts share its time (the middle of the bucket).
        let mut at: BTreeMap<i64, (f64, f64, usize, u32)> = BTreeMap::new();
        for r in offsets.iter() {
            let e = at
                .entry(r.time_ms)
                .or_insert((f64::INFINITY, f64::NEG_INFINITY, 0, 0));
            *e = (
                e.0.min(r.values[0]),
                e.1.max(r.values[0]),
                e.2 + 1,
                r.interval_ms,
            );
        }
        *spread = at
            .into_iter()
            .filter(|(_, (_, _, hosts, _))| *hosts >= 2)
            .map(|(time_ms, (lo, hi, _, interval_ms))| PlotRow {
                host_id: String::new(),
                host: "spread".to_owned(),
                instance: String::new(),
                time_ms,
                interval_ms,
                values: vec![hi - lo],
                envelope: None,
            })
            .collect();
    }
    Lines {
        clusters,
        truncated: false,
    }
}

/// The page's HTML for the lines and the latest statuses; `base` starts the range links
/// (`/ntp?`, `/ntp?cluster=C&`).
fn render(lines: &Lines, latest: &[NtpHostStatus], range: Range, base: &str) -> String {
    let mut body = range_links(base, range);
    if lines.truncated {
        body.push_str(
            "<p class=\"error\">The collector returned only the oldest measurements of this \
             range: narrow it, or choose a cluster.</p>",
        );
    }
    let mut clusters: BTreeMap<&str, (Option<&ClusterLines>, Vec<&NtpHostStatus>)> =
        BTreeMap::new();
    for (cluster, rows) in &lines.clusters {
        clusters.entry(cluster).or_default().0 = Some(rows);
    }
    for s in latest {
        clusters.entry(&s.cluster).or_default().1.push(s);
    }
    if clusters.is_empty() {
        body.push_str("<p class=\"note\">No host has reported an NTP measurement.</p>");
    }
    for (cluster, (rows, now)) in clusters {
        body.push_str(&format!(
            "<section class=\"cluster\" data-cluster=\"{c}\"><h2>Cluster {c}</h2>",
            c = e(cluster)
        ));
        let (offsets, spread) = rows.map_or((&[][..], &[][..]), |(o, s)| (&o[..], &s[..]));
        body.push_str(
            &value_panel(
                "NTP offset per host (ms, server minus host)",
                "ntp-offset",
                offsets,
                range,
                &[],
            )
            .svg,
        );
        body.push_str(
            &value_panel(
                "Spread of the cluster (ms, max − min of the hosts' offsets)",
                "ntp-spread",
                spread,
                range,
                &[],
            )
            .svg,
        );
        body.push_str("<h3>Time sources now</h3>");
        body.push_str(&sources_table(&now));
        body.push_str("</section>");
    }
    layout("Clocks", &body, None)
}

/// A host's offsets, one row per measurement with a synced source.
fn offset_rows(h: &NtpHostHistory) -> Vec<PlotRow> {
    let period = period_ms(h);
    let name = host_name(&h.hostname, &h.host_id);
    h.measurements
        .iter()
        .filter_map(|m| {
            let offset = best_offset(&NtpHostStatus {
                clock: m.clock.clone(),
                ..NtpHostStatus::default()
            })?;
            Some(PlotRow {
                host_id: h.host_id.clone(),
                host: name.to_owned(),
                instance: String::new(),
                time_ms: m.time_ms,
                interval_ms: u32::try_from(period).unwrap_or(u32::MAX),
                values: vec![offset],
                envelope: None,
            })
        })
        .collect()
}

/// A host's measuring period: the median step between its measurements.
fn period_ms(h: &NtpHostHistory) -> i64 {
    let mut steps: Vec<i64> = h
        .measurements
        .windows(2)
        .map(|w| w[1].time_ms - w[0].time_ms)
        .filter(|s| *s > 0)
        .collect();
    steps.sort_unstable();
    steps
        .get(steps.len() / 2)
        .copied()
        .unwrap_or(DEFAULT_PERIOD_MS)
}

/// The cluster's spread at each measurement of any of `hosts` where at least two hosts have a
/// fresh offset (measured within twice their period).
fn spread_rows(hosts: &[&NtpHostHistory]) -> Vec<PlotRow> {
    let periods: Vec<i64> = hosts.iter().map(|h| period_ms(h)).collect();
    let mut events: Vec<(i64, usize, f64)> = hosts
        .iter()
        .enumerate()
        .flat_map(|(i, h)| {
            offset_rows(h)
                .into_iter()
                .map(move |r| (r.time_ms, i, r.values[0]))
        })
        .collect();
    events.sort_by_key(|(t, i, _)| (*t, *i));
    let interval = periods.iter().copied().max().unwrap_or(DEFAULT_PERIOD_MS);
    let mut latest: Vec<Option<(i64, f64)>> = vec![None; hosts.len()];
    let mut rows = Vec::new();
    for (t, i, offset) in events {
        latest[i] = Some((t, offset));
        let fresh: Vec<f64> = latest
            .iter()
            .zip(&periods)
            .filter_map(|(l, p)| l.filter(|(lt, _)| t - lt <= 2 * p).map(|(_, o)| o))
            .collect();
        if fresh.len() < 2 {
            continue;
        }
        let (lo, hi) = fresh
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), o| {
                (lo.min(*o), hi.max(*o))
            });
        rows.push(PlotRow {
            host_id: String::new(),
            host: "spread".to_owned(),
            instance: String::new(),
            time_ms: t,
            interval_ms: u32::try_from(interval).unwrap_or(u32::MAX),
            values: vec![hi - lo],
            envelope: None,
        });
    }
    rows
}

/// Each host's sources in its latest measurement, hosts by name.
fn sources_table(now: &[&NtpHostStatus]) -> String {
    let mut now = now.to_vec();
    now.sort_by(|a, b| (&a.hostname, &a.host_id).cmp(&(&b.hostname, &b.host_id)));
    let mut cells = Vec::new();
    for s in now {
        let host = format!(
            "<a href=\"/hosts/{}\">{}</a>",
            seg(&s.host_id),
            e(host_name(&s.hostname, &s.host_id))
        );
        let servers = s.clock.as_ref().map_or(&[][..], |c| &c.servers[..]);
        if servers.is_empty() {
            cells.push(vec![
                host.clone(),
                e(&time(s.time_ms)).into_owned(),
                "-".to_owned(),
                "<span class=\"error\">no source</span>".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
            ]);
        }
        for src in servers {
            let measured = |v: f64, signed: bool| match v {
                v if !src.reachable || !v.is_finite() => "-".to_owned(),
                v if signed => format!("{v:+.3}"),
                v => format!("{v:.3}"),
            };
            let state = if source_synced(src) {
                "<span class=\"ok\">synced</span>"
            } else if src.reachable {
                "<span class=\"error\">reachable, not synced</span>"
            } else {
                "<span class=\"error\">unreachable</span>"
            };
            cells.push(vec![
                host.clone(),
                e(&time(s.time_ms)).into_owned(),
                e(&src.server).into_owned(),
                state.to_owned(),
                if src.reachable {
                    src.stratum.to_string()
                } else {
                    "-".to_owned()
                },
                measured(src.offset_ms, true),
                measured(src.delay_ms, false),
                if src.error.is_empty() {
                    "-".to_owned()
                } else {
                    e(&src.error).into_owned()
                },
            ]);
        }
    }
    table(
        "sortable sources",
        &[
            "host",
            "measured",
            "server",
            "state",
            "stratum",
            "offset ms",
            "delay ms",
            "error",
        ],
        &cells,
    )
}

#[cfg(test)]
mod tests {
    use fleet_proto::v1::{ClockStatus, NtpMeasurement, NtpServerStatus};

    use super::*;
    use crate::cmd::testing::T0;

    fn source(offset_ms: f64) -> NtpServerStatus {
        NtpServerStatus {
            server: "10.0.0.1:123".into(),
            reachable: true,
            offset_ms,
            delay_ms: 0.4,
            stratum: 2,
            synced: true,
            ..NtpServerStatus::default()
        }
    }

    /// `name` measured every 16 s from T0 - 10 min, `offset(i)` at the i-th measurement.
    fn host(name: &str, n: i64, offset: impl Fn(i64) -> f64) -> NtpHostHistory {
        NtpHostHistory {
            host_id: format!("id-{name}"),
            hostname: name.into(),
            cluster: "prod".into(),
            measurements: (0..n)
                .map(|i| NtpMeasurement {
                    time_ms: T0 - 600_000 + i * 16_000,
                    clock: Some(ClockStatus {
                        servers: vec![source(offset(i))],
                        kernel: None,
                    }),
                })
                .collect(),
        }
    }

    fn range() -> Range {
        Range {
            since_ms: T0 - 3_600_000,
            until_ms: T0,
        }
    }

    /// The `data-mean` of the line labelled `label` in the panel of `kind`.
    fn mean(page: &str, kind: &str, label: &str) -> Option<f64> {
        let panel = page
            .split("<svg")
            .find(|p| p.contains(&format!("data-activity=\"{kind}\"")))?;
        let line = panel
            .split("<path class=\"series\"")
            .find(|p| p.contains(&format!("data-label=\"{label}\"")))?;
        let at = line.find("data-mean=\"")? + "data-mean=\"".len();
        line[at..].split('"').next()?.parse().ok()
    }

    #[test]
    fn a_drifting_host_stands_out_and_the_spread_follows_it() {
        let history = NtpHistoryResult {
            hosts: vec![
                host("web1", 30, |_| 0.5),
                host("web2", 30, |_| 250.0),
                // Stopped measuring long ago: not in the spread at the end.
                host("web3", 2, |_| -900.0),
            ],
            truncated: false,
        };
        let latest = vec![NtpHostStatus {
            host_id: "id-web2".into(),
            hostname: "web<2>".into(),
            cluster: "prod".into(),
            time_ms: T0,
            clock: Some(ClockStatus {
                servers: vec![
                    source(250.0),
                    NtpServerStatus {
                        server: "10.0.0.9:123".into(),
                        error: "timeout".into(),
                        ..NtpServerStatus::default()
                    },
                ],
                kernel: None,
            }),
            ..NtpHostStatus::default()
        }];
        let page = render(&from_history(&history, range()), &latest, range(), "/ntp?");
        assert_eq!(mean(&page, "ntp-offset", "web1"), Some(0.5));
        assert_eq!(mean(&page, "ntp-offset", "web2"), Some(250.0));
        assert_eq!(mean(&page, "ntp-offset", "web3"), Some(-900.0));
        // Spread: 1150.5 while web3 is fresh (its first 3 measurements at most), 249.5 after.
        let spread = mean(&page, "ntp-spread", "spread").unwrap();
        assert!(spread > 249.5 && spread < 400.0, "{spread}");
        assert!(page.contains("data-cluster=\"prod\""), "{page}");
        assert!(page.contains("web&lt;2&gt;"), "{page}");
        assert!(page.contains("<span class=\"ok\">synced</span>"), "{page}");
        assert!(page.contains("unreachable"), "{page}");
        assert!(page.contains("timeout"), "{page}");
        assert!(page.contains("href=\"/ntp?since=6h\""), "{page}");
    }

    #[test]
    fn the_collectors_buckets_draw_bands_and_the_spread_of_their_means() {
        use fleet_proto::v1::{NtpBucket, NtpHostBuckets};
        let step = 240_000;
        let start = (T0 - 3_600_000).div_euclid(step) * step + step;
        let host = |name: &str, cluster: &str, offset: f64, buckets: i64| NtpHostBuckets {
            host_id: format!("id-{name}"),
            hostname: name.into(),
            cluster: cluster.into(),
            buckets: (0..buckets)
                .map(|i| NtpBucket {
                    time_ms: start + i * step,
                    count: 15,
                    min: offset - 1.0,
                    // One spike, kept in the band.
                    max: if i == 3 { offset + 900.0 } else { offset + 1.0 },
                    mean: offset,
                })
                .collect(),
        };
        let answer = NtpBucketResult {
            step_ms: step,
            hosts: vec![
                host("web1", "prod", 0.5, 10),
                host("web2", "prod", 250.0, 10),
                // Alone in its cluster: no spread there.
                host("db1", "dev", -3.0, 10),
            ],
        };
        let lines = from_ntp_buckets(&answer, range());
        assert_eq!(lines.clusters["prod"].0.len(), 20);
        assert_eq!(lines.clusters["prod"].1.len(), 10);
        assert!(lines.clusters["dev"].1.is_empty());
        let spread = &lines.clusters["prod"].1[0];
        assert_eq!(spread.values, vec![249.5]);
        assert_eq!(spread.time_ms, start + step / 2);
        let page = render(&lines, &[], range(), "/ntp?");
        // Clusters in name order: dev's panels first.
        let prod = page.split("data-cluster=\"prod\"").nth(1).unwrap();
        assert_eq!(mean(prod, "ntp-offset", "web1"), Some(0.5));
        assert_eq!(mean(prod, "ntp-offset", "web2"), Some(250.0));
        assert_eq!(mean(prod, "ntp-spread", "spread"), Some(249.5));
        assert!(page.contains("class=\"envelope\""), "{page}");
        assert!(page.contains("data-cluster=\"dev\""), "{page}");
    }

    #[test]
    fn the_spread_needs_two_fresh_hosts() {
        let one = host("web1", 10, |i| i as f64);
        assert!(spread_rows(&[&one]).is_empty());
        let other = host("web2", 10, |_| 5.0);
        let rows = spread_rows(&[&one, &other]);
        // web1's first measurement finds web2 not yet measured; after that, one per measurement.
        assert_eq!(rows.len(), 19);
        assert_eq!(rows.last().unwrap().values, vec![4.0]);
        assert_eq!(period_ms(&one), 16_000);
    }

    #[test]
    fn a_cluster_filter_stays_in_the_range_links() {
        let page = render(
            &from_history(&NtpHistoryResult::default(), range()),
            &[],
            range(),
            "/ntp?cluster=a%20b&",
        );
        assert!(
            page.contains("href=\"/ntp?cluster=a%20b&amp;since=24h\""),
            "{page}"
        );
        assert!(page.contains("No host has reported"), "{page}");
    }
}
