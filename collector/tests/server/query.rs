//! The Query service: hosts, sar, top-oom, OOM kills with their evidence, NTP, alerts, status.

use fleet_proto::clock::now_us;
use fleet_proto::v1::{
    agent_message, collector_message, Activity, AlertQuery, Batch, ClockStatus,
    CollectorStatusRequest, KernelClock, ListHostsRequest, NtpHistoryQuery, NtpQuery,
    NtpServerStatus, OomEvent, OomKillRequest, OomProcess, OomQuery, Sample, SarBucketQuery,
    SarQuery, TimeEcho, TopOomQuery,
};
use tonic::Code;

use crate::harness::*;

/// A process in a top-oom ranking.
fn proc(pid: i64, comm: &str, oom_score: i64) -> OomProcess {
    OomProcess {
        pid,
        comm: comm.into(),
        oom_score,
        rss_kb: 1024,
        ..OomProcess::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_listed_by_cluster_and_hostname_with_their_state() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let mut streams = Vec::new();
    for (id, cluster) in [("web2", "prod"), ("db1", "stage"), ("web1", "prod")] {
        let mut a = AgentStream::connect(&client, id, cluster, 1).await;
        a.store(batch(1, ago(5))).await;
        streams.push(a);
    }
    let mut q = c.query().await;
    let list = |cluster: &str| ListHostsRequest {
        cluster: cluster.into(),
    };
    let hosts = q.list_hosts(list("")).await.unwrap().into_inner().hosts;
    let names: Vec<(&str, &str, bool, u64)> = hosts
        .iter()
        .map(|h| {
            let id = h.identity.as_ref().unwrap();
            (
                id.cluster.as_str(),
                id.host_id.as_str(),
                h.connected,
                h.last_seq,
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("prod", "web1", true, 1),
            ("prod", "web2", true, 1),
            ("stage", "db1", true, 1)
        ]
    );
    let first = hosts[0].first_seen_ms;
    assert!(
        first > ago(60) && first <= hosts[0].last_seen_ms,
        "{hosts:?}"
    );
    let stage = q
        .list_hosts(list("stage"))
        .await
        .unwrap()
        .into_inner()
        .hosts;
    assert_eq!(stage.len(), 1);
    assert_eq!(stage[0].identity.as_ref().unwrap().hostname, "db1.example");

    // A host whose agent left stays known, disconnected.
    streams.remove(1).close();
    wait_for("db1 to be disconnected", || async {
        let hosts = c.query().await.list_hosts(list("stage")).await.ok()?;
        (!hosts.into_inner().hosts[0].connected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sar_rows_by_host_cluster_and_time_and_the_refusals() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let t = ago(30);
    for (id, user) in [("h2", 20.0), ("h1", 10.0)] {
        let mut a = AgentStream::connect(&client, id, "prod", 1).await;
        a.store(Batch {
            seq: 1,
            samples: vec![
                sample(t, vec![cpu(user), memory(4096.0)]),
                sample(t + 1000, vec![cpu(user + 1.0)]),
            ],
            ..Batch::default()
        })
        .await;
    }
    let mut q = c.query().await;
    let sar = |activity: Activity, hosts: &[&str], cluster: &str| SarQuery {
        activity: activity as i32,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        cluster: cluster.into(),
        since_ms: ago(3600),
        until_ms: 0,
    };
    let rows = |r: fleet_proto::v1::SarResult| -> Vec<(String, i64, String, f64)> {
        r.rows
            .into_iter()
            .map(|r| (r.host_id, r.time_ms, r.instance, r.values[0]))
            .collect()
    };

    // By hostname or host id; by cluster, ordered by hostname then time.
    let one = q
        .query_sar(sar(Activity::Cpu, &["h1.example"], ""))
        .await
        .unwrap();
    assert_eq!(
        rows(one.into_inner()),
        [
            ("h1".into(), t, "all".into(), 10.0),
            ("h1".into(), t + 1000, "all".into(), 11.0)
        ]
    );
    let all = q.query_sar(sar(Activity::Cpu, &[], "prod")).await.unwrap();
    let hosts: Vec<String> = rows(all.into_inner()).into_iter().map(|r| r.0).collect();
    assert_eq!(hosts, ["h1", "h1", "h2", "h2"]);
    let mem = q
        .query_sar(sar(Activity::Memory, &["h2"], ""))
        .await
        .unwrap();
    assert_eq!(
        rows(mem.into_inner()),
        [("h2".into(), t, "-".into(), 4096.0)]
    );
    let window = SarQuery {
        since_ms: t + 1,
        until_ms: t + 1000,
        ..sar(Activity::Cpu, &["h2"], "")
    };
    let late = q.query_sar(window).await.unwrap();
    assert_eq!(
        rows(late.into_inner()),
        [("h2".into(), t + 1000, "all".into(), 21.0)]
    );

    // Refusals name what is wrong.
    assert_eq!(
        refusal(q.query_sar(sar(Activity::Unspecified, &["h1"], "")).await),
        (Code::InvalidArgument, "unknown activity 0".into())
    );
    assert_eq!(
        refusal(q.query_sar(sar(Activity::Cpu, &[], "")).await),
        (Code::InvalidArgument, "select hosts or a cluster".into())
    );
    assert_eq!(
        refusal(q.query_sar(sar(Activity::Cpu, &["nope"], "")).await),
        (Code::NotFound, "no host matches nope".into())
    );
    assert_eq!(
        refusal(q.query_sar(sar(Activity::Cpu, &[], "qa")).await),
        (Code::NotFound, "no host in cluster \"qa\"".into())
    );
    let backwards = SarQuery {
        since_ms: t,
        until_ms: t - 1,
        ..sar(Activity::Cpu, &["h1"], "")
    };
    assert_eq!(
        refusal(q.query_sar(backwards).await),
        (Code::InvalidArgument, "since is after until".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sar_buckets_by_host_and_the_refusals_naming_what_is_wrong() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    // Ten samples a second apart in one 10 s bucket, a spike among them; two hosts.
    let t0 = ago(60) / 10_000 * 10_000;
    for (id, base) in [("h2", 20.0), ("h1", 10.0)] {
        let mut a = AgentStream::connect(&client, id, "prod", 1).await;
        let samples = (0..10)
            .map(|i| {
                let user = if i == 4 { 95.5 } else { base + f64::from(i) };
                sample(t0 + i64::from(i) * 1000, vec![cpu(user)])
            })
            .collect();
        a.store(Batch {
            seq: 1,
            samples,
            ..Batch::default()
        })
        .await;
    }
    let mut q = c.query().await;
    let query = |hosts: &[&str], since_ms: i64, until_ms: i64, step_ms: i64| SarBucketQuery {
        activity: Activity::Cpu as i32,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        cluster: String::new(),
        since_ms,
        until_ms,
        step_ms,
    };
    let r = q
        .query_sar_buckets(query(&["h2", "h1"], t0 - 60_000, 0, 10_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.step_ms, 10_000);
    let series: Vec<(&str, &str, usize)> = r
        .series
        .iter()
        .map(|s| (s.host_id.as_str(), s.instance.as_str(), s.buckets.len()))
        .collect();
    assert_eq!(series, [("h1", "all", 1), ("h2", "all", 1)]);
    let b = &r.series[0].buckets[0];
    assert_eq!(b.time_ms, t0);
    assert_eq!(b.count, vec![10; 6]);
    // 10, 11, 12, 13, 95.5, 15, ... 19: the spike is kept as the max.
    assert_eq!((b.min[0], b.max[0]), (10.0, 95.5));
    let mean = (10.0 + 11.0 + 12.0 + 13.0 + 95.5 + 15.0 + 16.0 + 17.0 + 18.0 + 19.0) / 10.0;
    assert!((b.mean[0] - mean).abs() < 1e-9, "{b:?}");

    // Two-second buckets cut at both ends of the range.
    let r = q
        .query_sar_buckets(query(&["h1"], t0 + 1000, t0 + 6000, 2000))
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(i64, u32)> = r.series[0]
        .buckets
        .iter()
        .map(|b| (b.time_ms - t0, b.count[0]))
        .collect();
    assert_eq!(counts, [(0, 1), (2000, 2), (4000, 2), (6000, 1)]);

    let (code, message) = refusal(q.query_sar_buckets(query(&["h1"], t0, 0, 0)).await);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(message, "step_ms must be positive, not 0");
    assert_eq!(
        refusal(q.query_sar_buckets(query(&["h1"], t0, t0 - 1, 1000)).await),
        (
            Code::InvalidArgument,
            format!("until_ms {} is before since_ms {t0}", t0 - 1)
        )
    );
    let (code, message) = refusal(
        q.query_sar_buckets(query(&["h1"], t0 - 3_600_000, t0, 100))
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.starts_with("step_ms 100 cuts the range into 36001 buckets, more than 10000"),
        "{message}"
    );
    assert_eq!(
        refusal(q.query_sar_buckets(query(&[], t0, 0, 1000)).await),
        (Code::InvalidArgument, "select hosts or a cluster".into())
    );
    let mut unknown = query(&["h1"], t0, 0, 1000);
    unknown.activity = 0;
    assert_eq!(
        refusal(q.query_sar_buckets(unknown).await),
        (Code::InvalidArgument, "unknown activity 0".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_oom_ranks_each_hosts_latest_ranking() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let t = ago(30);
    let ranking = |time_ms, procs| {
        let mut s = sample(time_ms, Vec::new());
        s.top_oom = procs;
        s
    };
    let mut h1 = AgentStream::connect(&client, "h1", "prod", 1).await;
    h1.store(Batch {
        seq: 1,
        samples: vec![ranking(t, vec![proc(1, "java", 900), proc(2, "sshd", 1)])],
        ..Batch::default()
    })
    .await;
    // A newer ranking replaces the host's older one.
    h1.store(Batch {
        seq: 2,
        samples: vec![ranking(t + 1000, vec![proc(4, "postgres", 300)])],
        ..Batch::default()
    })
    .await;
    let mut h2 = AgentStream::connect(&client, "h2", "stage", 1).await;
    h2.store(Batch {
        seq: 1,
        samples: vec![ranking(t, vec![proc(3, "redis", 500), proc(5, "cron", 2)])],
        ..Batch::default()
    })
    .await;

    let mut q = c.query().await;
    let top = |limit: u32, cluster: &str| TopOomQuery {
        limit,
        cluster: cluster.into(),
        ..TopOomQuery::default()
    };
    let rows = q.top_oom(top(0, "")).await.unwrap().into_inner().rows;
    let seen: Vec<(&str, i64, i64, &str)> = rows
        .iter()
        .map(|r| {
            let p = r.process.as_ref().unwrap();
            (r.host_id.as_str(), r.time_ms, p.pid, r.cluster.as_str())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("h2", t, 3, "stage"),
            ("h1", t + 1000, 4, "prod"),
            ("h2", t, 5, "stage")
        ]
    );
    assert_eq!(
        q.top_oom(top(1, "")).await.unwrap().into_inner().rows.len(),
        1
    );
    let prod = q.top_oom(top(0, "prod")).await.unwrap().into_inner().rows;
    assert_eq!(prod.len(), 1);
    assert_eq!(prod[0].hostname, "h1.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kills_are_listed_once_and_shown_with_their_evidence() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let t = ago(60);
    let kill = OomEvent {
        time_ms: t,
        kmsg_seq: Some(42),
        boot_id: "boot-1".into(),
        victim_pid: Some(1234),
        victim_comm: Some("java".into()),
        source: "kmsg".into(),
        ..OomEvent::default()
    };
    let mut a = AgentStream::connect(&client, "h1", "prod", 1).await;
    let mut before = sample(t - 30_000, vec![memory(512.0)]);
    before.top_oom = vec![proc(1234, "java", 999)];
    a.store(Batch {
        seq: 1,
        samples: vec![sample(t - 60_000, vec![memory(2048.0)]), before],
        ..Batch::default()
    })
    .await;
    a.store(Batch {
        seq: 2,
        oom_events: vec![kill.clone()],
        ..Batch::default()
    })
    .await;
    // The agent read the kernel log again (a restart): the same report is stored once.
    a.store(Batch {
        seq: 3,
        oom_events: vec![kill.clone()],
        samples: vec![sample(t + 10_000, vec![memory(8192.0)])],
        ..Batch::default()
    })
    .await;

    let mut q = c.query().await;
    let kills = q
        .list_oom_kills(OomQuery::default())
        .await
        .unwrap()
        .into_inner()
        .kills;
    assert_eq!(kills.len(), 1, "{kills:?}");
    let k = &kills[0];
    assert_eq!(
        (k.host_id.as_str(), k.hostname.as_str()),
        ("h1", "h1.example")
    );
    assert_eq!(k.cluster, "prod");
    assert_eq!(
        k.event.as_ref().unwrap().victim_comm.as_deref(),
        Some("java")
    );
    let by_host = OomQuery {
        hosts: vec!["h1.example".into()],
        ..OomQuery::default()
    };
    assert_eq!(
        q.list_oom_kills(by_host).await.unwrap().into_inner().kills,
        kills
    );

    // The kill in full, with the memory samples and the ranking taken before it.
    let detail = q
        .get_oom_kill(OomKillRequest {
            id: k.id.clone(),
            before_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.kill.as_ref(), Some(k));
    let free: Vec<(i64, f64)> = detail
        .memory
        .iter()
        .map(|r| (r.time_ms, r.values[0]))
        .collect();
    assert_eq!(free, [(t - 60_000, 2048.0), (t - 30_000, 512.0)]);
    assert_eq!(detail.top_oom_time_ms, t - 30_000);
    assert_eq!(detail.top_oom, [proc(1234, "java", 999)]);
    // `before_ms` bounds how far back the evidence reaches.
    let near = q
        .get_oom_kill(OomKillRequest {
            id: k.id.clone(),
            before_ms: 45_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(near.memory.len(), 1);

    let get = |id: &str| OomKillRequest {
        id: id.into(),
        before_ms: 0,
    };
    assert_eq!(
        refusal(q.get_oom_kill(get("ff-1-1")).await).0,
        Code::NotFound
    );
    // A malformed id is the caller's mistake, as the store says.
    assert_eq!(
        refusal(q.get_oom_kill(get("not an id")).await).0,
        Code::InvalidArgument
    );
    let backwards = OomQuery {
        since_ms: t,
        until_ms: t - 1,
        ..OomQuery::default()
    };
    assert_eq!(
        refusal(q.list_oom_kills(backwards).await).0,
        Code::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntp_shows_each_hosts_clock_and_its_offset_from_the_collector() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let clock = ClockStatus {
        servers: vec![NtpServerStatus {
            server: "ntp1:123".into(),
            reachable: true,
            offset_ms: 1.5,
            delay_ms: 0.4,
            stratum: 2,
            synced: true,
            ..NtpServerStatus::default()
        }],
        kernel: Some(KernelClock {
            synced: true,
            ..KernelClock::default()
        }),
    };
    let t = ago(5);
    let mut a = AgentStream::connect(&client, "h1", "prod", 1).await;
    // Answer the collector's first clock probe (sent on opening) as an agent whose clock is
    // 5 s ahead would.
    let t1_us = loop {
        match a.next_message().await.unwrap() {
            Some(collector_message::Msg::TimeProbe(p)) => break p.t1_us,
            Some(_) => continue,
            None => panic!("the stream ended"),
        }
    };
    let ahead = now_us() + 5_000_000;
    a.send(agent_message::Msg::TimeEcho(TimeEcho {
        t1_us,
        t2_us: ahead,
        t3_us: ahead,
    }))
    .await;

    let mut s = sample(t, vec![cpu(1.0)]);
    s.clock = Some(clock.clone());
    a.store(Batch {
        seq: 1,
        samples: vec![s],
        ..Batch::default()
    })
    .await;
    let _quiet = AgentStream::connect(&client, "h2", "prod", 1).await;

    let hosts = wait_for("the probe's offset", || async {
        let list = c.query().await.list_ntp(NtpQuery::default()).await.ok()?;
        let hosts = list.into_inner().hosts;
        hosts[0].collector_offset_ms.is_some().then_some(hosts)
    })
    .await;
    let h1 = &hosts[0];
    assert_eq!((h1.host_id.as_str(), h1.time_ms), ("h1", t));
    assert_eq!(h1.clock.as_ref(), Some(&clock));
    let offset = h1.collector_offset_ms.unwrap();
    assert!((4_000.0..6_000.0).contains(&offset), "offset {offset} ms");
    assert!(h1.collector_delay_ms.unwrap() >= 0.0, "{h1:?}");
    // A host that sent nothing yet has nothing to show.
    let h2 = &hosts[1];
    assert_eq!(h2.host_id, "h2");
    assert_eq!(
        (h2.time_ms, &h2.clock, h2.collector_offset_ms),
        (0, &None, None)
    );
    let only = NtpQuery {
        hosts: vec!["h2".into()],
        ..NtpQuery::default()
    };
    let listed = c.query().await.list_ntp(only).await.unwrap().into_inner();
    assert_eq!(listed.hosts.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntp_history_keeps_every_measurement_by_host_and_cluster() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let clock = |offset_ms: f64| ClockStatus {
        servers: vec![NtpServerStatus {
            server: "ntp1:123".into(),
            reachable: true,
            offset_ms,
            stratum: 2,
            synced: true,
            ..NtpServerStatus::default()
        }],
        kernel: None,
    };
    let with_clock = |t: i64, offset_ms: f64| Sample {
        clock: Some(clock(offset_ms)),
        ..sample(t, vec![cpu(1.0)])
    };
    let mut a = AgentStream::connect(&client, "h1", "prod", 1).await;
    let times = [ago(30), ago(20), ago(10)];
    a.store(Batch {
        seq: 1,
        samples: vec![
            with_clock(times[0], 1.0),
            sample(ago(25), vec![cpu(1.0)]),
            with_clock(times[1], 2.0),
        ],
        ..Batch::default()
    })
    .await;
    // A sample from an hour ahead is dropped, its measurement kept at the collector's time.
    let before_future = fleet_proto::clock::now_ms();
    a.store(Batch {
        seq: 2,
        samples: vec![with_clock(times[2], 3.0), with_clock(ago(-3600), 99.0)],
        ..Batch::default()
    })
    .await;
    let mut b = AgentStream::connect(&client, "h2", "staging", 1).await;
    b.store(Batch {
        seq: 1,
        samples: vec![with_clock(ago(15), -7.0)],
        ..Batch::default()
    })
    .await;

    let history = |q: NtpHistoryQuery| {
        let c = &c;
        async move { c.query().await.ntp_history(q).await }
    };
    let since = ago(60);
    let prod = history(NtpHistoryQuery {
        cluster: "prod".into(),
        since_ms: since,
        ..NtpHistoryQuery::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert!(!prod.truncated);
    assert_eq!(prod.hosts.len(), 1, "{prod:?}");
    let h1 = &prod.hosts[0];
    assert_eq!((h1.host_id.as_str(), h1.cluster.as_str()), ("h1", "prod"));
    let offsets: Vec<(i64, f64)> = h1
        .measurements
        .iter()
        .map(|m| (m.time_ms, m.clock.as_ref().unwrap().servers[0].offset_ms))
        .collect();
    assert_eq!(
        offsets[..3],
        [(times[0], 1.0), (times[1], 2.0), (times[2], 3.0)]
    );
    assert_eq!(offsets.len(), 4, "{offsets:?}");
    let (future_t, future_offset) = offsets[3];
    assert_eq!(future_offset, 99.0);
    assert!(
        future_t >= before_future && future_t <= fleet_proto::clock::now_ms(),
        "stamped with the collector's time: {future_t}"
    );
    assert_eq!(h1.measurements[0].clock, Some(clock(1.0)));

    // Every host; one host by name; a range that leaves out the oldest; a limit.
    let all = history(NtpHistoryQuery {
        since_ms: since,
        ..NtpHistoryQuery::default()
    })
    .await
    .unwrap()
    .into_inner();
    let hosts: Vec<(&str, usize)> = all
        .hosts
        .iter()
        .map(|h| (h.host_id.as_str(), h.measurements.len()))
        .collect();
    assert_eq!(hosts, [("h1", 4), ("h2", 1)]);
    let h2 = history(NtpHistoryQuery {
        hosts: vec!["h2".into()],
        since_ms: since,
        ..NtpHistoryQuery::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(h2.hosts.len(), 1);
    assert_eq!(
        h2.hosts[0].measurements[0].clock.as_ref().unwrap().servers[0].offset_ms,
        -7.0
    );
    let recent = history(NtpHistoryQuery {
        hosts: vec!["h1".into()],
        since_ms: times[1],
        until_ms: times[2],
        ..NtpHistoryQuery::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(recent.hosts[0].measurements.len(), 2);
    let limited = history(NtpHistoryQuery {
        since_ms: since,
        limit: 2,
        ..NtpHistoryQuery::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert!(limited.truncated);
    assert_eq!(
        limited
            .hosts
            .iter()
            .map(|h| h.measurements.len())
            .sum::<usize>(),
        2
    );

    let (code, message) = refusal(
        history(NtpHistoryQuery {
            since_ms: ago(1),
            until_ms: ago(10),
            ..NtpHistoryQuery::default()
        })
        .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(message, "since is after until");
    let (code, _) = refusal(
        history(NtpHistoryQuery {
            hosts: vec!["nope".into()],
            ..NtpHistoryQuery::default()
        })
        .await,
    );
    assert_eq!(code, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_agents_and_hosts_and_says_the_transport() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let _h1 = AgentStream::connect(&client, "h1", "prod", 1).await;
    AgentStream::connect(&client, "h2", "prod", 1).await.close();
    let mut q = c.query().await;
    let s = wait_for("h2 to leave", || async {
        let s = c
            .query()
            .await
            .get_collector_status(CollectorStatusRequest::default())
            .await
            .ok()?
            .into_inner();
        (s.connected_agents == 1).then_some(s)
    })
    .await;
    assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
    assert!(s.started_ms > ago(60) && s.started_ms <= ago(0), "{s:?}");
    assert_eq!(s.known_hosts, 2);
    assert_eq!(s.max_agents, 50_000);
    assert_eq!(
        (s.tls, s.mutual_tls, s.tls_handshakes_refused),
        (false, false, 0)
    );
    assert_eq!((s.unauthenticated, s.permission_denied), (0, 0));
    assert_eq!((s.streams_refused, s.policies), (0, 0));

    // Without a rules file there are no alerts; a state that does not exist is refused.
    let alerts = q.list_alerts(AlertQuery::default()).await.unwrap();
    assert!(alerts.into_inner().alerts.is_empty());
    let e = q
        .list_alerts(AlertQuery {
            state: "burning".into(),
            ..AlertQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pending, firing or resolved"), "{e:?}");
}
