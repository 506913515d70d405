//! The `Query` service (fleetctl's reads): hosts, sar rows (raw or downsampled), the top-oom
//! ranking, OOM kills and one kill with its evidence, NTP and clock state and NTP history (raw or
//! downsampled), alerts, and the collector's own status.
//!
//! Each RPC checks the caller's role, selects hosts from the registry ([`select`]: by host id, or
//! by a hostname only one host reports, and/or cluster), and reads the store off the async
//! threads ([`blocking`]). Answers are bounded: [`MAX_QUERY_ROWS`] sar rows, and the limits of
//! each request.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fleet_proto::clock::now_ms;
use fleet_proto::v1::{
    query_server::Query, Activity, AlertList, AlertQuery, CollectorStatus, CollectorStatusRequest,
    HostInfo, ListHostsRequest, ListHostsResponse, NtpBucket, NtpBucketQuery, NtpBucketResult,
    NtpHistoryQuery, NtpHistoryResult, NtpHostBuckets, NtpHostHistory, NtpHostStatus,
    NtpMeasurement, NtpQuery, NtpStatusList, OomKill, OomKillDetail, OomKillRequest, OomKills,
    OomQuery, SarBucket, SarBucketQuery, SarBucketResult, SarBucketSeries, SarQuery, SarResult,
    SarRow, StorageStatus, TopOomQuery, TopOomResult, TopOomRow,
};
use tonic::{Request, Response, Status};

use super::{blocking, Shared};
use crate::auth::Need;
use crate::storage::buckets::{bucket_count, Bucket};
use crate::storage::{HostRecord, StorageError, Store, StoreState, StoredOomKill, StoredRow};

/// Most rows one sar query returns.
pub const MAX_QUERY_ROWS: usize = 2_000_000;
/// Most values (buckets × columns) one downsampled sar query returns: at 26 bytes a value (min,
/// max, mean, count) about 210 MB, under the 256 MiB of an answer.
pub const MAX_QUERY_BUCKET_VALUES: usize = 8_000_000;

/// The `Query` service.
pub(super) struct QuerySvc(pub(super) Shared);

fn host_info(r: HostRecord) -> HostInfo {
    HostInfo {
        identity: Some(r.identity),
        connected: r.connected,
        first_seen_ms: r.first_seen_ms,
        last_seen_ms: r.last_seen_ms,
        dropped_samples: r.dropped_samples,
        last_seq: r.last_seq,
    }
}

/// The store's state as `fleetctl status` shows it.
fn storage_status(state: StoreState) -> StorageStatus {
    use fleet_proto::v1::storage_status::State;
    let (state, since_ms, error) = match state {
        StoreState::Writable => (State::Ok, 0, String::new()),
        StoreState::Failing { since_ms, error } => (State::Failing, since_ms, error),
        StoreState::ReadOnly { since_ms, error } => (State::ReadOnly, since_ms, error),
    };
    StorageStatus {
        state: state as i32,
        since_ms,
        error,
    }
}

#[tonic::async_trait]
impl Query for QuerySvc {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        self.0.auth.check(&request, Need::View, "ListHosts")?;
        let cluster = request.into_inner().cluster;
        let mut hosts: Vec<HostRecord> = self
            .0
            .store
            .hosts()
            .into_iter()
            .filter(|h| cluster.is_empty() || h.identity.cluster == cluster)
            .collect();
        hosts.sort_by(|a, b| {
            (
                &a.identity.cluster,
                &a.identity.hostname,
                &a.identity.host_id,
            )
                .cmp(&(
                    &b.identity.cluster,
                    &b.identity.hostname,
                    &b.identity.host_id,
                ))
        });
        Ok(Response::new(ListHostsResponse {
            hosts: hosts.into_iter().map(host_info).collect(),
        }))
    }

    async fn query_sar(&self, request: Request<SarQuery>) -> Result<Response<SarResult>, Status> {
        self.0.auth.check(&request, Need::View, "QuerySar")?;
        let q = request.into_inner();
        let activity = sar_activity(q.activity)?;
        let until = time_range(q.since_ms, q.until_ms)?;
        let hosts = sar_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        let store = self.0.store.clone();
        let since = q.since_ms;
        let rows = blocking(move || {
            let mut rows = Vec::new();
            for h in hosts {
                rows.extend(
                    store
                        .query(h.num, activity, since, until)?
                        .into_iter()
                        .map(|r| sar_row(&h, r)),
                );
                if rows.len() > MAX_QUERY_ROWS {
                    break;
                }
            }
            Ok(rows)
        })
        .await?;
        if rows.len() > MAX_QUERY_ROWS {
            return Err(Status::resource_exhausted(format!(
                "more than {MAX_QUERY_ROWS} rows; narrow --since/--until or the host selection"
            )));
        }
        Ok(Response::new(SarResult { rows }))
    }

    async fn query_sar_buckets(
        &self,
        request: Request<SarBucketQuery>,
    ) -> Result<Response<SarBucketResult>, Status> {
        self.0.auth.check(&request, Need::View, "QuerySarBuckets")?;
        let q = request.into_inner();
        let activity = sar_activity(q.activity)?;
        let until = if q.until_ms == 0 {
            now_ms()
        } else {
            q.until_ms
        };
        bucket_count(q.since_ms, until, q.step_ms).map_err(Status::invalid_argument)?;
        let hosts = sar_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        let store = self.0.store.clone();
        let (since, step) = (q.since_ms, q.step_ms);
        let answer = blocking(move || {
            let mut series = Vec::new();
            let mut values = 0;
            for h in hosts {
                for s in store.query_buckets(h.num, activity, since, until, step)? {
                    values += s.buckets.iter().map(|b| b.count.len()).sum::<usize>();
                    series.push(SarBucketSeries {
                        host_id: h.identity.host_id.clone(),
                        hostname: h.identity.hostname.clone(),
                        instance: s.instance,
                        buckets: s.buckets.into_iter().map(sar_bucket).collect(),
                    });
                }
                if values > MAX_QUERY_BUCKET_VALUES {
                    return Ok(None);
                }
            }
            Ok(Some(series))
        })
        .await?;
        let Some(series) = answer else {
            return Err(Status::resource_exhausted(format!(
                "more than {MAX_QUERY_BUCKET_VALUES} bucket values; use a larger step, a shorter \
                 range or fewer hosts"
            )));
        };
        Ok(Response::new(SarBucketResult {
            step_ms: q.step_ms,
            series,
        }))
    }

    async fn top_oom(
        &self,
        request: Request<TopOomQuery>,
    ) -> Result<Response<TopOomResult>, Status> {
        self.0.auth.check(&request, Need::View, "TopOom")?;
        let q = request.into_inner();
        let limit = if q.limit == 0 {
            10
        } else {
            q.limit.min(10_000)
        } as usize;
        let hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        let mut rows = Vec::new();
        for h in hosts {
            if let Some((time_ms, procs)) = self.0.store.top_oom_latest(h.num) {
                rows.extend(procs.into_iter().map(|p| TopOomRow {
                    host_id: h.identity.host_id.clone(),
                    hostname: h.identity.hostname.clone(),
                    cluster: h.identity.cluster.clone(),
                    time_ms,
                    process: Some(p),
                }));
            }
        }
        let score = |r: &TopOomRow| r.process.as_ref().map_or(i64::MIN, |p| p.oom_score);
        rows.sort_by(|a, b| {
            score(b)
                .cmp(&score(a))
                .then_with(|| a.host_id.cmp(&b.host_id))
        });
        rows.truncate(limit);
        Ok(Response::new(TopOomResult { rows }))
    }

    async fn list_oom_kills(
        &self,
        request: Request<OomQuery>,
    ) -> Result<Response<OomKills>, Status> {
        self.0.auth.check(&request, Need::View, "ListOomKills")?;
        let q = request.into_inner();
        let until = time_range(q.since_ms, q.until_ms)?;
        let limit = if q.limit == 0 {
            1000
        } else {
            q.limit.min(100_000)
        } as usize;
        let all = q.hosts.is_empty() && q.cluster.is_empty();
        let hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        let by_num: HashMap<u32, HostRecord> = hosts.into_iter().map(|h| (h.num, h)).collect();
        if by_num.is_empty() {
            return Ok(Response::new(OomKills { kills: Vec::new() }));
        }
        let nums: Vec<u32> = if all {
            Vec::new()
        } else {
            by_num.keys().copied().collect()
        };
        let store = self.0.store.clone();
        let since = q.since_ms;
        let found = blocking(move || store.oom_kills(&nums, since, until, limit)).await?;
        let kills = found
            .into_iter()
            .filter_map(|k| {
                let h = by_num.get(&k.host_num)?;
                Some(oom_kill(k, h))
            })
            .collect();
        Ok(Response::new(OomKills { kills }))
    }

    async fn list_ntp(
        &self,
        request: Request<NtpQuery>,
    ) -> Result<Response<NtpStatusList>, Status> {
        self.0.auth.check(&request, Need::View, "ListNtp")?;
        let q = request.into_inner();
        let mut hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        hosts.sort_by(|a, b| {
            (&a.identity.cluster, &a.identity.hostname)
                .cmp(&(&b.identity.cluster, &b.identity.hostname))
        });
        let hosts = hosts
            .into_iter()
            .map(|h| {
                let (clock, collector) = self
                    .0
                    .live
                    .with_host(h.num, |l| (l.clock.clone(), l.collector));
                let clock = clock.map(|(t, c)| (t, Arc::unwrap_or_clone(c)));
                let (time_ms, clock) = clock.unzip();
                NtpHostStatus {
                    host_id: h.identity.host_id,
                    hostname: h.identity.hostname,
                    cluster: h.identity.cluster,
                    time_ms: time_ms.unwrap_or(0),
                    clock,
                    collector_offset_ms: collector.map(|c| c.0),
                    collector_delay_ms: collector.map(|c| c.1),
                }
            })
            .collect();
        Ok(Response::new(NtpStatusList { hosts }))
    }

    async fn ntp_history(
        &self,
        request: Request<NtpHistoryQuery>,
    ) -> Result<Response<NtpHistoryResult>, Status> {
        self.0.auth.check(&request, Need::View, "NtpHistory")?;
        let q = request.into_inner();
        let until = time_range(q.since_ms, q.until_ms)?;
        let max = fleet_proto::limits::MAX_NTP_MEASUREMENTS;
        let limit = match q.limit as usize {
            0 => max,
            n => n.min(max),
        };
        let hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        if hosts.is_empty() {
            return Ok(Response::new(NtpHistoryResult::default()));
        }
        let nums: Vec<u32> = hosts.iter().map(|h| h.num).collect();
        let store = self.0.store.clone();
        let since = q.since_ms;
        let found = blocking(move || store.ntp_history(&nums, since, until, limit)).await?;
        let mut by_num: HashMap<u32, NtpHostHistory> = HashMap::new();
        for m in found.measurements {
            by_num
                .entry(m.host_num)
                .or_default()
                .measurements
                .push(NtpMeasurement {
                    time_ms: m.time_ms,
                    clock: Some(m.clock),
                });
        }
        let mut out: Vec<NtpHostHistory> = hosts
            .into_iter()
            .filter_map(|h| {
                let history = by_num.remove(&h.num)?;
                Some(NtpHostHistory {
                    host_id: h.identity.host_id,
                    hostname: h.identity.hostname,
                    cluster: h.identity.cluster,
                    ..history
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.cluster, &a.hostname, &a.host_id).cmp(&(&b.cluster, &b.hostname, &b.host_id))
        });
        Ok(Response::new(NtpHistoryResult {
            hosts: out,
            truncated: found.truncated,
        }))
    }

    async fn ntp_history_buckets(
        &self,
        request: Request<NtpBucketQuery>,
    ) -> Result<Response<NtpBucketResult>, Status> {
        self.0
            .auth
            .check(&request, Need::View, "NtpHistoryBuckets")?;
        let q = request.into_inner();
        let until = time_range(q.since_ms, q.until_ms)?;
        bucket_count(q.since_ms, until, q.step_ms).map_err(Status::invalid_argument)?;
        let hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        if hosts.is_empty() {
            return Ok(Response::new(NtpBucketResult {
                step_ms: q.step_ms,
                hosts: Vec::new(),
            }));
        }
        let nums: Vec<u32> = hosts.iter().map(|h| h.num).collect();
        let store = self.0.store.clone();
        let (since, step) = (q.since_ms, q.step_ms);
        let found = blocking(move || store.ntp_buckets(&nums, since, until, step)).await?;
        let by_num: HashMap<u32, HostRecord> = hosts.into_iter().map(|h| (h.num, h)).collect();
        let mut out: Vec<NtpHostBuckets> = found
            .into_iter()
            .filter_map(|f| {
                let h = by_num.get(&f.host_num)?;
                Some(NtpHostBuckets {
                    host_id: h.identity.host_id.clone(),
                    hostname: h.identity.hostname.clone(),
                    cluster: h.identity.cluster.clone(),
                    buckets: f
                        .buckets
                        .into_iter()
                        .map(|b| NtpBucket {
                            time_ms: b.start_ms,
                            count: b.count,
                            min: b.min,
                            max: b.max,
                            mean: b.mean,
                        })
                        .collect(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.cluster, &a.hostname, &a.host_id).cmp(&(&b.cluster, &b.hostname, &b.host_id))
        });
        Ok(Response::new(NtpBucketResult {
            step_ms: q.step_ms,
            hosts: out,
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<AlertQuery>,
    ) -> Result<Response<AlertList>, Status> {
        self.0.auth.check(&request, Need::View, "ListAlerts")?;
        let q = request.into_inner();
        if !matches!(q.state.as_str(), "" | "pending" | "firing" | "resolved") {
            return Err(Status::invalid_argument(format!(
                "state {:?}: use pending, firing or resolved",
                q.state
            )));
        }
        let alerts = match &self.0.rules {
            Some(engine) => engine.lock().await.alerts(&q.cluster, &q.state),
            None => Vec::new(),
        };
        Ok(Response::new(AlertList { alerts }))
    }

    async fn get_collector_status(
        &self,
        request: Request<CollectorStatusRequest>,
    ) -> Result<Response<CollectorStatus>, Status> {
        self.0
            .auth
            .check(&request, Need::View, "GetCollectorStatus")?;
        use std::sync::atomic::Ordering::Relaxed;
        let sh = &self.0;
        let refused = sh.auth.counts();
        Ok(Response::new(CollectorStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms: sh.started_ms,
            connected_agents: sh.sessions.connected() as u32,
            max_agents: sh.max_agents.min(u32::MAX as usize) as u32,
            known_hosts: sh.store.hosts().len() as u32,
            tls: sh.tls.is_some(),
            mutual_tls: sh.tls.as_ref().is_some_and(|t| t.mutual()),
            tls_handshakes_refused: sh.tls.as_ref().map_or(0, |t| t.refused.load(Relaxed)),
            unauthenticated: refused.unauthenticated,
            permission_denied: refused.permission_denied,
            streams_refused: sh.sessions.refused.load(Relaxed),
            policies: sh.policies.in_force_count() as u32,
            cluster_refused: refused.cluster,
            connections_closed: sh.tls.as_ref().map_or(0, |t| t.closed.load(Relaxed)),
            storage: Some(storage_status(sh.store.state())),
            future_samples_dropped: sh.future.samples_dropped.load(Relaxed),
            future_kills_clamped: sh.future.kills_clamped.load(Relaxed),
            future_clock_readings_clamped: sh.future.clocks_clamped.load(Relaxed),
            policy_reports_dropped: sh.policies.reports_dropped(),
        }))
    }

    async fn get_oom_kill(
        &self,
        request: Request<OomKillRequest>,
    ) -> Result<Response<OomKillDetail>, Status> {
        self.0.auth.check(&request, Need::View, "GetOomKill")?;
        let q = request.into_inner();
        let before = if q.before_ms <= 0 {
            10 * 60_000
        } else {
            q.before_ms
        };
        let store = self.0.store.clone();
        let id = q.id.clone();
        let found = blocking(move || store.oom_kill(&id)).await?;
        let Some(k) = found else {
            return Err(Status::not_found(format!("no OOM kill with id {:?}", q.id)));
        };
        let host = self.0.store.host_by_num(k.host_num).ok_or_else(|| {
            Status::internal(format!("kill {} names unknown host {}", q.id, k.host_num))
        })?;
        let t = k.event.time_ms;
        let (num, from) = (k.host_num, t.saturating_sub(before));
        let store = self.0.store.clone();
        let h = host.clone();
        let detail = blocking(move || {
            let rows = |a: Activity| -> Result<Vec<SarRow>, StorageError> {
                Ok(store
                    .query(num, a, from, t)?
                    .into_iter()
                    .map(|r| sar_row(&h, r))
                    .collect())
            };
            let (top_time, top) = store.top_oom_before(num, t)?.unwrap_or_default();
            Ok(OomKillDetail {
                kill: None,
                memory: rows(Activity::Memory)?,
                swap: rows(Activity::Swap)?,
                swapping: rows(Activity::Swapping)?,
                paging: rows(Activity::Paging)?,
                top_oom_time_ms: top_time,
                top_oom: top,
            })
        })
        .await?;
        Ok(Response::new(OomKillDetail {
            kill: Some(oom_kill(k, &host)),
            ..detail
        }))
    }
}

/// The end of a `since..until` request (0: now).
///
/// # Errors
/// `InvalidArgument` when since is after until.
fn time_range(since_ms: i64, until_ms: i64) -> Result<i64, Status> {
    let until = if until_ms == 0 { now_ms() } else { until_ms };
    if since_ms > until {
        return Err(Status::invalid_argument("since is after until"));
    }
    Ok(until)
}

/// The activity of a sar query.
///
/// # Errors
/// `InvalidArgument` for an unknown or unspecified one.
fn sar_activity(activity: i32) -> Result<Activity, Status> {
    Activity::try_from(activity)
        .ok()
        .filter(|a| *a != Activity::Unspecified)
        .ok_or_else(|| Status::invalid_argument(format!("unknown activity {activity}")))
}

/// The hosts of a sar query, by hostname: it must name hosts or a cluster.
///
/// # Errors
/// `InvalidArgument` without either, `NotFound` when they select no host, and as [`select`].
fn sar_hosts(store: &Store, names: &[String], cluster: &str) -> Result<Vec<HostRecord>, Status> {
    if names.is_empty() && cluster.is_empty() {
        return Err(Status::invalid_argument("select hosts or a cluster"));
    }
    let mut hosts = select_hosts(store, names, cluster)?;
    if hosts.is_empty() {
        return Err(Status::not_found(format!("no host in cluster {cluster:?}")));
    }
    hosts.sort_by(|a, b| {
        (&a.identity.hostname, &a.identity.host_id)
            .cmp(&(&b.identity.hostname, &b.identity.host_id))
    });
    Ok(hosts)
}

fn sar_bucket(b: Bucket) -> SarBucket {
    SarBucket {
        time_ms: b.start_ms,
        count: b.count,
        min: b.min,
        max: b.max,
        mean: b.mean,
    }
}

fn sar_row(h: &HostRecord, r: StoredRow) -> SarRow {
    SarRow {
        host_id: h.identity.host_id.clone(),
        hostname: h.identity.hostname.clone(),
        time_ms: r.time_ms,
        interval_ms: r.interval_ms,
        instance: r.instance,
        values: r.values,
    }
}

fn oom_kill(k: StoredOomKill, h: &HostRecord) -> OomKill {
    OomKill {
        id: k.id,
        host_id: h.identity.host_id.clone(),
        hostname: h.identity.hostname.clone(),
        cluster: h.identity.cluster.clone(),
        event: Some(k.event),
    }
}

/// The hosts a query selects by id or hostname and/or cluster (every host when both are
/// empty): see [`select`].
///
/// # Errors
/// As [`select`].
fn select_hosts(store: &Store, names: &[String], cluster: &str) -> Result<Vec<HostRecord>, Status> {
    select(store.hosts(), names, cluster)
}

/// The hosts of `cluster` (every cluster when empty) that `names` select, in the order of
/// `hosts`; all of them when `names` is empty.
///
/// A name selects the host whose id it is. Otherwise it is a hostname, which is only a display
/// name: the agent reports it, and two hosts may report the same one. A hostname selects its
/// host only when exactly one host (in the cluster) reports it; one shared by several is refused
/// with their ids, rather than guessing or answering for all of them.
///
/// # Errors
/// `InvalidArgument` for a hostname shared by several hosts, naming their ids; `NotFound` when
/// names are given and match nothing.
fn select(
    hosts: Vec<HostRecord>,
    names: &[String],
    cluster: &str,
) -> Result<Vec<HostRecord>, Status> {
    let mut hosts: Vec<HostRecord> = hosts
        .into_iter()
        .filter(|h| cluster.is_empty() || h.identity.cluster == cluster)
        .collect();
    if names.is_empty() {
        return Ok(hosts);
    }
    let mut chosen = HashSet::new();
    for name in names {
        if let Some(h) = hosts.iter().find(|h| h.identity.host_id == *name) {
            chosen.insert(h.num);
            continue;
        }
        let named: Vec<&HostRecord> = hosts
            .iter()
            .filter(|h| h.identity.hostname == *name)
            .collect();
        if let [_, _, ..] = named[..] {
            return Err(shared_hostname(name, &named));
        }
        chosen.extend(named.iter().map(|h| h.num));
    }
    if chosen.is_empty() {
        return Err(Status::not_found(format!(
            "no host matches {}",
            names.join(", ")
        )));
    }
    hosts.retain(|h| chosen.contains(&h.num));
    Ok(hosts)
}

/// The refusal of a hostname that several hosts report.
fn shared_hostname(name: &str, hosts: &[&HostRecord]) -> Status {
    let mut ids: Vec<String> = hosts
        .iter()
        .map(|h| format!("{} (cluster {})", h.identity.host_id, h.identity.cluster))
        .collect();
    ids.sort();
    // `{name:?}`: the name is quoted, and a control character in it escaped.
    Status::invalid_argument(format!(
        "hostname {name:?} is reported by {} hosts: {}; use the host id",
        hosts.len(),
        ids.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_proto::v1::HostIdentity;

    fn host(num: u32, host_id: &str, hostname: &str, cluster: &str) -> HostRecord {
        HostRecord {
            num,
            identity: HostIdentity {
                host_id: host_id.into(),
                hostname: hostname.into(),
                cluster: cluster.into(),
                ..HostIdentity::default()
            },
            first_seen_ms: 0,
            last_seen_ms: 0,
            connected: false,
            dropped_samples: 0,
            epoch: 0,
            last_seq: 0,
            kmsg: Default::default(),
        }
    }

    fn fleet() -> Vec<HostRecord> {
        vec![
            host(1, "a1", "web-1", "prod"),
            host(2, "b2", "web-1", "prod"),
            host(3, "c3", "web-1", "staging"),
            host(4, "d4", "db-1", "prod"),
            // An id that is also another host's hostname.
            host(5, "db-1", "db-1.old", "prod"),
        ]
    }

    fn ids(r: Result<Vec<HostRecord>, Status>) -> Vec<String> {
        r.unwrap().into_iter().map(|h| h.identity.host_id).collect()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_shared_hostname_is_refused_with_the_host_ids() {
        let e = select(fleet(), &names(&["web-1"]), "").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "hostname \"web-1\" is reported by 3 hosts: a1 (cluster prod), b2 (cluster prod), \
             c3 (cluster staging); use the host id"
        );
        // Within a cluster too; among other names as well.
        let e = select(fleet(), &names(&["d4", "web-1"]), "prod").unwrap_err();
        assert!(e
            .message()
            .contains("2 hosts: a1 (cluster prod), b2 (cluster prod)"));
        // A cluster where the hostname is unique selects its host.
        assert_eq!(ids(select(fleet(), &names(&["web-1"]), "staging")), ["c3"]);
    }

    #[test]
    fn host_ids_win_and_unique_hostnames_select() {
        assert_eq!(
            ids(select(fleet(), &names(&["a1", "c3"]), "")),
            ["a1", "c3"]
        );
        // "db-1" is host 5's id and host 4's hostname: the id wins.
        assert_eq!(ids(select(fleet(), &names(&["db-1"]), "")), ["db-1"]);
        assert_eq!(
            ids(select(fleet(), &names(&["db-1.old", "d4"]), "")),
            ["d4", "db-1"]
        );
        // A host named twice is selected once.
        assert_eq!(ids(select(fleet(), &names(&["a1", "a1"]), "")), ["a1"]);
        assert_eq!(ids(select(fleet(), &[], "staging")), ["c3"]);
        assert_eq!(select(fleet(), &[], "").unwrap().len(), 5);
        // An id outside the cluster does not select.
        let e = select(fleet(), &names(&["c3"]), "prod").unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert_eq!(e.message(), "no host matches c3");
        // Names that match nothing next to one that does: the others answer.
        assert_eq!(ids(select(fleet(), &names(&["nope", "a1"]), "")), ["a1"]);
    }
}
