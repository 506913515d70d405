//! Issue 12, "Oversized and self-asserted data": what an agent says (its clock, its instances,
//! replays, its policy reports) can neither freeze, inflate nor grow the collector's state, and
//! a host's policy set always fits in one message.

use std::time::Duration;

use fleet_proto::clock::now_ms;
use fleet_proto::limits::MAX_MESSAGE_BYTES;
use fleet_proto::v1::{
    agent_message, collector_message, Activity, ApplyPolicyRequest, ClockStatus, KernelClock,
    NtpQuery, OomEvent, OomProcess, OomQuery, PolicyHostStatus, PolicyName, PolicyRemoval,
    PolicyReport, PolicySync, Record, Sample, SarQuery, TopOomQuery,
};
use prost::Message;
use tonic::Code;

use crate::harness::*;

const EPOCH: u64 = 3;

/// A kill read from the kernel log (record `seq` of boot "boot-1").
fn kill(time_ms: i64, seq: u64) -> OomEvent {
    OomEvent {
        time_ms,
        kmsg_seq: Some(seq),
        boot_id: "boot-1".into(),
        victim_pid: Some(1000 + seq as i64),
        victim_comm: Some("java".into()),
        ..OomEvent::default()
    }
}

/// A batch of kills alone.
fn kills(seq: u64, events: Vec<OomEvent>) -> fleet_proto::v1::Batch {
    fleet_proto::v1::Batch {
        seq,
        oom_events: events,
        ..fleet_proto::v1::Batch::default()
    }
}

/// A clock reading whose kernel estimated error is `est_error_ms`.
fn clock(est_error_ms: f64) -> ClockStatus {
    ClockStatus {
        kernel: Some(KernelClock {
            synced: true,
            est_error_ms,
            ..KernelClock::default()
        }),
        ..ClockStatus::default()
    }
}

fn ranking(comm: &str) -> Vec<OomProcess> {
    vec![OomProcess {
        pid: 42,
        comm: comm.into(),
        oom_score: 900,
        ..OomProcess::default()
    }]
}

/// The disk record of `dev` whose `%util` is `util`.
fn disk(dev: &str, util: f64) -> Record {
    let mut values = vec![1.0; 8];
    values[7] = util;
    Record {
        activity: Activity::Disk as i32,
        instance: dev.into(),
        values,
    }
}

/// Waits until `rule` has an alert in `state` (or, with `none`, until it has none).
async fn wait_alert(c: &Collector, rule: &str, state: &str, none: bool) {
    let what = format!("rule {rule} {}{state}", if none { "not " } else { "" });
    wait_for(&what, || async {
        (c.alerts(rule, state).await.is_empty() == none).then_some(())
    })
    .await;
}

/// Issue 12: one sample from a host whose clock was ahead froze its clock status and its
/// "latest" top-oom ranking, and escaped retention; one such kill kept `oom_kill_burst` firing.
/// Now such samples are dropped, such kills and clock readings stamped with the collector's
/// time, and each is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_from_the_future_are_dropped_or_stamped_now_and_counted() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    let now = now_ms();
    let ahead = now + 3_600_000;
    let mut b = batch(1, now - 1000);
    b.samples[0].clock = Some(clock(1.0));
    b.samples.push(Sample {
        time_ms: ahead,
        interval_ms: 1000,
        records: vec![cpu(99.0)],
        top_oom: ranking("ahead"),
        clock: Some(clock(2.0)),
    });
    b.oom_events = vec![kill(ahead, 1)];
    a.store(b).await;
    let after = now_ms();

    let mut q = c.query().await;
    let rows = q
        .query_sar(SarQuery {
            activity: Activity::Cpu as i32,
            hosts: vec!["h1".into()],
            since_ms: now - 60_000,
            until_ms: ahead + 60_000,
            ..SarQuery::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let times: Vec<i64> = rows.iter().map(|r| r.time_ms).collect();
    assert_eq!(
        times,
        [now - 1000],
        "the sample from the future is not stored"
    );
    let kills = q
        .list_oom_kills(OomQuery {
            since_ms: now - 60_000,
            ..OomQuery::default()
        })
        .await
        .unwrap()
        .into_inner()
        .kills;
    assert_eq!(kills.len(), 1, "the kill is kept");
    let t = kills[0].event.as_ref().unwrap().time_ms;
    assert!((now..=after).contains(&t), "stamped when it arrived: {t}");
    let top = q
        .top_oom(TopOomQuery::default())
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert!(top.is_empty(), "no ranking from the future: {top:?}");
    let ntp = |q: &mut fleet_proto::v1::query_client::QueryClient<_>| {
        let mut q = q.clone();
        async move {
            q.list_ntp(NtpQuery::default())
                .await
                .unwrap()
                .into_inner()
                .hosts
                .remove(0)
        }
    };
    let reading = ntp(&mut q).await;
    assert!(
        (now..=after).contains(&reading.time_ms),
        "{}",
        reading.time_ms
    );
    assert_eq!(reading.clock.unwrap().kernel.unwrap().est_error_ms, 2.0);
    let s = c.status().await;
    assert_eq!(
        (
            s.future_samples_dropped,
            s.future_kills_clamped,
            s.future_clock_readings_clamped
        ),
        (1, 1, 1)
    );

    // The host carries on: its next ranking and reading are its latest.
    let later = now_ms();
    let mut b = batch(2, later);
    b.samples[0].top_oom = ranking("now");
    b.samples[0].clock = Some(clock(3.0));
    a.store(b).await;
    let top = q
        .top_oom(TopOomQuery::default())
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].time_ms, later);
    assert_eq!(top[0].process.as_ref().unwrap().comm, "now");
    let reading = ntp(&mut q).await;
    assert_eq!(reading.time_ms, later);
    assert_eq!(reading.clock.unwrap().kernel.unwrap().est_error_ms, 3.0);
}

/// Issue 12: a replayed batch (already stored, acked again) was observed again by the live
/// state, and so was a kill the agent read again from the kernel log: one kill counted twice
/// in `oom_kill_burst`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_counts_once_in_oom_kill_burst_whatever_is_replayed() {
    let c = Collector::start_with_rules(
        "[[rule]]\nname = \"burst\"\nkind = \"oom_kill_burst\"\ncount = 2\nwindow = \"5m\"\n",
    )
    .await;
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    let t = ago(5);
    a.store(kills(1, vec![kill(t, 1)])).await;
    // A lost ack: the same batch again, on the same stream and on a new one.
    a.store(kills(1, vec![kill(t, 1)])).await;
    a.close();
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    assert_eq!(a.last_seq, 1);
    a.store(kills(1, vec![kill(t, 1)])).await;
    // A restarted agent re-read its kernel log: the same record, its time a few ms off, in a
    // new batch.
    a.store(kills(2, vec![kill(t + 3, 1)])).await;
    // Several evaluations (every second, and at once when a kill arrives): no burst.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(c.alerts("burst", "firing").await.is_empty());
    assert!(c.alerts("burst", "").await.is_empty());

    // A second kill is a burst of two.
    a.store(kills(3, vec![kill(ago(1), 2)])).await;
    wait_alert(&c, "burst", "firing", false).await;
    let firing = c.alerts("burst", "firing").await;
    assert_eq!(firing[0].value, 2.0, "{firing:?}");
}

/// Issue 12: the live state kept every instance ever seen: a removed disk kept its last
/// values, and a `sar` rule on it fired until the collector restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_disk_leaves_the_live_state_and_its_alert_resolves() {
    let c = Collector::start_with_rules(
        "[[rule]]\nname = \"disk-busy\"\nkind = \"sar\"\ncolumn = \"%util\"\nop = \">\"\nvalue = 90\n",
    )
    .await;
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    let t = ago(60);
    let mut b = batch(1, t);
    b.samples[0].records = vec![disk("sda", 10.0), disk("sdb", 99.0)];
    a.store(b).await;
    wait_alert(&c, "disk-busy", "firing", false).await;
    // sdb is gone: three samples without it.
    for seq in 2..=4 {
        let mut b = batch(seq, t + seq as i64 * 1000);
        b.samples[0].records = vec![disk("sda", 10.0)];
        a.store(b).await;
    }
    wait_alert(&c, "disk-busy", "firing", true).await;
    assert_eq!(c.alerts("disk-busy", "resolved").await.len(), 1);
}

/// Issue 12: two 2.6 MB policies made every targeted agent's `PolicySync` exceed the 4 MiB
/// message limit. A big document is refused naming the limit, and so is a change that would
/// make the policies in force too big together; an agent's set stays far below the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_documents_and_sets_are_capped_and_every_sync_fits_in_a_message() {
    let c = Collector::start().await;
    let mut p = c.policies().await;
    let doc = |name: &str, bytes: usize| {
        let head = format!(
            "name: {name}\ntarget: {{cluster: prod}}\nmatch: {{exe: /usr/sbin/sshd}}\noom_score_adj: -500\n"
        );
        format!("{head}#{}\n", "x".repeat(bytes - head.len() - 2))
    };
    let apply = |document: String| ApplyPolicyRequest {
        document,
        origin: "big.yaml".into(),
        ..ApplyPolicyRequest::default()
    };
    let e = p
        .apply_policy(apply(doc("big", 2_600_000)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "big.yaml: the policy document is 2600000 bytes; a policy document is at most 65536 bytes (64 KiB)"
    );
    let mut applied = 0;
    let refusal = loop {
        match p
            .apply_policy(apply(doc(&format!("p{applied:03}"), 60 << 10)))
            .await
        {
            Ok(_) => applied += 1,
            Err(e) => break e,
        }
        assert!(applied < 100, "never refused");
    };
    assert_eq!(refusal.code(), Code::FailedPrecondition);
    assert!(
        refusal
            .message()
            .contains("a host's policy set is at most 2097152 bytes"),
        "{refusal:?}"
    );
    assert!(applied > 30, "{applied}");

    // An agent gets the whole set in one message and keeps flowing.
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    let sync = loop {
        if let Ok(Some(collector_message::Msg::PolicySync(s))) = a.next_message().await {
            break s;
        }
    };
    assert_eq!(sync.policies.len(), applied);
    let bytes = PolicySync::encoded_len(&sync);
    assert!(bytes < MAX_MESSAGE_BYTES / 2, "{bytes}");
    a.store(batch(1, ago(1))).await;
}

/// Issue 12: policy reports with invented names grew memory and the store without bound.
/// Only entries about policies the host was sent are taken; the others are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reports_about_policies_the_host_was_not_sent_are_dropped_and_counted() {
    let c = Collector::start().await;
    let mut p = c.policies().await;
    p.apply_policy(ApplyPolicyRequest {
        document: "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\noom_score_adj: -500\n".into(),
        ..ApplyPolicyRequest::default()
    })
    .await
    .unwrap();
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    loop {
        if let Ok(Some(collector_message::Msg::PolicySync(s))) = a.next_message().await {
            assert_eq!(s.policies.len(), 1);
            break;
        }
    }
    let status = |name: &str| PolicyHostStatus {
        name: name.into(),
        version: 1,
        matched: 1,
        set: 1,
        ..PolicyHostStatus::default()
    };
    let mut policies = vec![status("protect-sshd")];
    policies.extend((0..100).map(|i| status(&format!("invented-{i}"))));
    a.send(agent_message::Msg::PolicyReport(PolicyReport {
        time_ms: now_ms(),
        policies,
        removed: vec![PolicyRemoval {
            name: "never-sent".into(),
            version: 1,
            ..PolicyRemoval::default()
        }],
    }))
    .await;
    let state = || async {
        let report = c
            .policies()
            .await
            .get_policy_status(PolicyName {
                name: "protect-sshd".into(),
            })
            .await
            .ok()?
            .into_inner();
        (report.hosts.first()?.state == "enforced").then_some(())
    };
    wait_for("the report of protect-sshd", state).await;
    assert_eq!(c.status().await.policy_reports_dropped, 101);
    let e = p
        .get_policy_status(PolicyName {
            name: "invented-7".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Nothing of them reached the store: one version and one status.
    let stored = c.store.policy_records().unwrap();
    assert_eq!(stored.len(), 2, "{}", stored.len());
    a.store(batch(1, ago(1))).await;
}
