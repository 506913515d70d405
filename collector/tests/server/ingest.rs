//! The Ingest service: hello and welcome, acks after the write, replays, refusals, stream caps.

use fleet_proto::v1::{
    agent_message, Activity, CollectorStatusRequest, ListHostsRequest, SarQuery,
};
use tonic::Code;

use crate::harness::*;

const EPOCH: u64 = 7;

/// The CPU rows stored for `host`, read through QuerySar.
async fn cpu_rows(c: &Collector, host: &str) -> Vec<fleet_proto::v1::SarRow> {
    c.query()
        .await
        .query_sar(SarQuery {
            activity: Activity::Cpu as i32,
            hosts: vec![host.into()],
            since_ms: ago(3600),
            ..SarQuery::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_acked_once_stored_and_a_reconnect_is_welcomed_at_the_last_seq() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    assert_eq!(a.last_seq, 0, "a new host starts from nothing");

    let t = ago(10);
    a.store(batch(1, t)).await;
    // Acked means stored: the rows and the seq are readable at once, no waiting.
    let rows = cpu_rows(&c, "h1").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].time_ms, rows[0].values[0]), (t, 1.0));
    assert_eq!(rows[0].hostname, "h1.example");
    let hosts = c
        .query()
        .await
        .list_hosts(ListHostsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .hosts;
    assert_eq!(hosts.len(), 1);
    assert_eq!((hosts[0].last_seq, hosts[0].connected), (1, true));

    a.store(batch(2, t + 1000)).await;
    a.close();
    wait_for("the host to be disconnected", || async {
        (!c.host("h1")?.connected).then_some(())
    })
    .await;

    // The same spool resumes after its last stored batch; a new spool (epoch) from nothing.
    let a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    assert_eq!(a.last_seq, 2);
    let b = AgentStream::connect(&client, "h1", "prod", EPOCH + 1).await;
    assert_eq!(b.last_seq, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_is_acked_again_and_stored_once() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    let t = ago(10);
    a.store(batch(1, t)).await;
    a.store(batch(2, t + 1000)).await;
    // An agent that lost the acks resends from its spool, on the same stream or a new one.
    a.store(batch(1, t)).await;
    a.close();
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    a.store(batch(2, t + 1000)).await;
    a.store(batch(3, t + 2000)).await;
    let rows = cpu_rows(&c, "h1").await;
    let times: Vec<i64> = rows.iter().map(|r| r.time_ms).collect();
    assert_eq!(times, [t, t + 1000, t + 2000]);
    assert_eq!(c.host("h1").unwrap().last_seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_batch_is_refused_naming_the_field_and_closes_the_stream() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    let t = ago(10);
    a.store(batch(1, t)).await;

    let mut bad = batch(2, t + 1000);
    bad.samples[0].records[0].values[2] = f64::NAN;
    a.send_batch(bad).await;
    match a.next().await {
        Said::Refused(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
            assert_eq!(
                s.message(),
                "batch seq 2: sample 0 record 0 (cpu): %system is not a finite number"
            );
        }
        other => panic!("{other:?}"),
    }
    // The stream is closed: a good batch sent afterwards is neither acked nor stored.
    a.send_batch(batch(3, t + 2000)).await;
    assert!(
        matches!(a.next().await, Said::Ended),
        "the stream stays closed"
    );
    assert_eq!(cpu_rows(&c, "h1").await.len(), 1);
    assert_eq!(c.host("h1").unwrap().last_seq, 1);

    // Another refusal of the same kind, through the identity check.
    let e = AgentStream::open(&client, identity("bad host id", "prod"), EPOCH)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("hello.identity.host_id: "), "{e:?}");
    // A second hello on an open stream ends it.
    let mut a = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    a.send(agent_message::Msg::Hello(Default::default())).await;
    match a.next().await {
        Said::Refused(s) => assert_eq!(s.code(), Code::InvalidArgument, "{s:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_held_back_as_the_agent_asked_and_one_stands_for_several() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let t = ago(100);

    // Held for the 300 ms asked: three batches, one Ack for all of them, no sooner.
    let mut a = AgentStream::open_paced(&client, identity("p1", "prod"), EPOCH, 300)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    for seq in 1..=3 {
        a.send_batch(batch(seq, t + seq as i64 * 1000)).await;
    }
    // Stored (and readable) before it is acknowledged.
    wait_for("three rows", || async {
        (cpu_rows(&c, "p1").await.len() == 3).then_some(())
    })
    .await;
    match a.next().await {
        Said::Ack(3) => {}
        other => panic!("one Ack for the three batches: {other:?}"),
    }
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(300),
        "held back for the delay asked: {:?}",
        start.elapsed()
    );

    // A long delay (cut to MAX_ACK_DELAY): a full Ack every ACK_EVERY batches; the rest goes out
    // as soon as the agent ends its side of the stream, not when the time is up.
    let mut a = AgentStream::open_paced(&client, identity("p2", "prod"), EPOCH, 60_000)
        .await
        .unwrap();
    let every = u64::from(fleet_collector::server::ACK_EVERY);
    let n = every + 4;
    for seq in 1..=n {
        a.send_batch(batch(seq, t + seq as i64 * 1000)).await;
    }
    a.end_sending();
    let start = std::time::Instant::now();
    assert!(matches!(a.next().await, Said::Ack(s) if s == every));
    assert!(matches!(a.next().await, Said::Ack(s) if s == n));
    assert!(matches!(a.next().await, Said::Ended));
    assert!(
        start.elapsed() < fleet_collector::server::MAX_ACK_DELAY,
        "the end of the agent's side sent the held Ack: {:?}",
        start.elapsed()
    );
    assert_eq!(c.host("p2").unwrap().last_seq, n);

    // A stream the collector ends with an error gets the Acks of what it stored first.
    let mut a = AgentStream::open_paced(&client, identity("p3", "prod"), EPOCH, 60_000)
        .await
        .unwrap();
    a.send_batch(batch(1, t)).await;
    a.send_batch(batch(2, t + 1000)).await;
    let mut bad = batch(3, t + 2000);
    bad.samples[0].records[0].values[2] = f64::NAN;
    a.send_batch(bad).await;
    assert!(matches!(a.next().await, Said::Ack(2)));
    match a.next().await {
        Said::Refused(s) => assert_eq!(s.code(), Code::InvalidArgument, "{s:?}"),
        other => panic!("refused after the Ack: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_host_and_connected_agents_are_capped() {
    let c = Collector::start_with(fleet_collector::server::ServeOptions {
        max_agents: 2,
        ..plaintext()
    })
    .await;
    let client = c.ingest().await;
    let first = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    // A reconnect while the old stream is being torn down is allowed; a third stream is not.
    let mut second = AgentStream::connect(&client, "h1", "prod", EPOCH).await;
    let e = AgentStream::open(&client, identity("h1", "prod"), EPOCH)
        .await
        .err()
        .expect("a third stream is refused");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("\"h1\" already has 2 open streams"),
        "{e:?}"
    );
    // The other streams keep working.
    second.store(batch(1, ago(5))).await;

    // max_agents counts hosts, not streams.
    let _h2 = AgentStream::connect(&client, "h2", "prod", EPOCH).await;
    let e = AgentStream::open(&client, identity("h3", "prod"), EPOCH)
        .await
        .err()
        .expect("a third host is refused");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("(max_agents)"), "{e:?}");

    let status = || async {
        c.query()
            .await
            .get_collector_status(CollectorStatusRequest::default())
            .await
            .unwrap()
            .into_inner()
    };
    let s = status().await;
    assert_eq!(
        (s.connected_agents, s.max_agents, s.streams_refused),
        (2, 2, 2)
    );

    // A closed stream frees its place.
    first.close();
    wait_for("h1's first stream to close", || async {
        AgentStream::open(&client, identity("h1", "prod"), EPOCH)
            .await
            .ok()
    })
    .await;
}
