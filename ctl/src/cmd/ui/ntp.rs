//! `/ntp`: the fleet's clocks. Per cluster, over a range (`?since=&until=` as on a host page,
//! default the last hour; `?cluster=C` for one cluster), one graph with each host's NTP offset
//! over time (a line per host, so a drifting host stands out), a graph of the cluster's spread
//! (max − min of the hosts' offsets), and a table of each host's time sources now: server,
//! reachable and synced, stratum, offset, delay, error.
//!
//! A host's offset is the one `fleetctl ntp` counts ([`best_offset`]: its synced source with
//! the lowest stratum). The spread at a measurement is taken over the hosts whose latest
//! measurement is no older than twice their measuring period, so a host that stopped measuring
//! drops out instead of holding the spread. Lines longer than a panel's pixels are bucketed
//! with their min–max envelope ([`downsample`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use fleet_proto::v1::{NtpHistoryQuery, NtpHistoryResult, NtpHostHistory, NtpHostStatus, NtpQuery};

use super::html::{e, page as layout, query_value, range, range_links, seg, table, time};
use super::PageError;
use crate::client::Collector;
use crate::cmd::ntp::{best_offset, source_synced};
use crate::output::host_name;
use crate::plot::source::BUCKETS;
use crate::plot::{downsample, value_panel, PlotRow, Range};

/// The measuring period assumed for a host with fewer than two measurements (the agent's default).
const DEFAULT_PERIOD_MS: i64 = 16_000;

/// The page.
pub(super) async fn page(collector: &Collector, query: Option<&str>) -> Result<String, PageError> {
    let range = range(query, Duration::from_secs(3600), Utc::now())
        .map_err(|err| PageError::BadRequest(format!("since/until: {err}")))?;
    let cluster = query_value(query, "cluster").unwrap_or_default();
    let history = NtpHistoryQuery {
        hosts: Vec::new(),
        cluster: cluster.clone(),
        since_ms: range.since_ms,
        until_ms: range.until_ms,
        limit: 0,
    };
    let history = collector.query("NtpHistory", async |c| c.ntp_history(history).await);
    let latest = NtpQuery {
        hosts: Vec::new(),
        cluster: cluster.clone(),
    };
    let latest = collector.query("ListNtp", async |c| c.list_ntp(latest).await);
    let (history, latest) = tokio::try_join!(history, latest)?;
    let base = if cluster.is_empty() {
        "/ntp?".to_owned()
    } else {
        format!("/ntp?cluster={}&", seg(&cluster))
    };
    Ok(render(&history, &latest.hosts, range, &base))
}

/// The page's HTML for a history and the latest statuses; `base` starts the range links
/// (`/ntp?`, `/ntp?cluster=C&`).
fn render(
    history: &NtpHistoryResult,
    latest: &[NtpHostStatus],
    range: Range,
    base: &str,
) -> String {
    let mut body = range_links(base, range);
    if history.truncated {
        body.push_str(
            "<p class=\"error\">The collector returned only the oldest measurements of this \
             range: narrow it, or choose a cluster.</p>",
        );
    }
    let mut clusters: BTreeMap<&str, (Vec<&NtpHostHistory>, Vec<&NtpHostStatus>)> = BTreeMap::new();
    for h in &history.hosts {
        clusters.entry(&h.cluster).or_default().0.push(h);
    }
    for s in latest {
        clusters.entry(&s.cluster).or_default().1.push(s);
    }
    if clusters.is_empty() {
        body.push_str("<p class=\"note\">No host has reported an NTP measurement.</p>");
    }
    for (cluster, (hosts, now)) in clusters {
        body.push_str(&format!(
            "<section class=\"cluster\" data-cluster=\"{c}\"><h2>Cluster {c}</h2>",
            c = e(cluster)
        ));
        let offsets: Vec<PlotRow> = hosts.iter().flat_map(|h| offset_rows(h)).collect();
        let spread = spread_rows(&hosts);
        body.push_str(
            &value_panel(
                "NTP offset per host (ms, server minus host)",
                "ntp-offset",
                &downsample(offsets, range, BUCKETS),
                range,
                &[],
            )
            .svg,
        );
        body.push_str(
            &value_panel(
                "Spread of the cluster (ms, max − min of the hosts' offsets)",
                "ntp-spread",
                &downsample(spread, range, BUCKETS),
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
        let page = render(&history, &latest, range(), "/ntp?");
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
            &NtpHistoryResult::default(),
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
