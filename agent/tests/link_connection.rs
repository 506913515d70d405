//! The link to the collector in-process ([`Connection`] against the scripted fake collector of
//! `support`), on tokio's paused time: reconnects back off, growing to a cap; what was not
//! acknowledged is sent again after a dropped or refused stream, and what was is freed; the
//! shutdown flush waits for acks up to its deadline; an outage is logged once per change.

mod support;

use std::time::Duration;

use fleet_agent::link::connection::{BACKOFF_BASE, BACKOFF_MAX};
use fleet_agent::link::{Connection, Connector, LinkEvent, SHUTDOWN_FLUSH};
use fleet_agent::spool::Spool;
use fleet_proto::v1::{agent_message, AgentMessage, Hello, HostIdentity};
use support::{segments, settle, spool_with, Answer, FakeCollector, Logs, Peer};
use tokio::time::Instant;
use tonic::Status;

const COLLECTOR: &str = "http://collector.test:7443";

fn hello() -> AgentMessage {
    AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            identity: Some(HostIdentity {
                host_id: "h1".into(),
                ..HostIdentity::default()
            }),
            spool_epoch: 7,
        })),
    }
}

fn connection<C: Connector>(connector: C) -> Connection<C> {
    Connection::new(connector, hello(), COLLECTOR.to_string())
}

/// A link that is up, over a spool of `n` batches not sent yet; the collector's side of it.
async fn up_with(n: usize) -> (tempfile::TempDir, Spool, Connection<impl Connector>, Peer) {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), n);
    let mut collector = FakeCollector::new([Answer::Accept { last_seq: 0 }]);
    let mut conn = connection(collector.connector());
    let event = conn.next_event(&mut spool).await.unwrap();
    assert_eq!(event, LinkEvent::Connected { last_seq: 0 });
    let peer = collector.accepted();
    (tmp, spool, conn, peer)
}

fn refusals(reason: &str, n: usize) -> Vec<Answer> {
    vec![Answer::Refuse(reason.to_string()); n]
}

#[tokio::test(start_paused = true)]
async fn reconnects_back_off_growing_to_a_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 0);
    let mut script = refusals("connection refused", 12);
    script.push(Answer::Accept { last_seq: 0 });
    let mut collector = FakeCollector::new(script);
    let mut conn = connection(collector.connector());

    let event = conn.next_event(&mut spool).await.unwrap();
    assert_eq!(event, LinkEvent::Connected { last_seq: 0 });
    let peer = collector.accepted();
    assert_eq!(peer.hello, hello(), "every stream opens with the hello");

    let attempts = collector.attempts();
    assert_eq!(attempts.len(), 13);
    let delays: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // Attempt n waits a random time in [d/2, d] where d = 0.5 s · 2ⁿ, capped at 30 s (the
    // timer may round up to its next millisecond).
    for (n, delay) in delays.iter().enumerate() {
        let d = BACKOFF_BASE.saturating_mul(1 << n).min(BACKOFF_MAX);
        assert!(
            *delay >= d / 2 && *delay <= d + Duration::from_millis(2),
            "delay {n} is {delay:?}, want {:?}..{d:?}",
            d / 2
        );
    }
    assert!(delays[0] <= Duration::from_millis(502), "{delays:?}");
    assert!(
        delays[11] >= BACKOFF_MAX / 2,
        "the cap is reached: {delays:?}"
    );
    assert!(delays
        .iter()
        .all(|d| *d <= BACKOFF_MAX + Duration::from_millis(2)));

    // A success resets the backoff: after a lost stream the first retry is short again.
    drop(peer);
    let event = conn.next_event(&mut spool).await.unwrap();
    assert_eq!(event, LinkEvent::Lost("collector closed the stream".into()));
    collector.then([Answer::Accept { last_seq: 0 }]);
    let lost_at = Instant::now();
    let event = conn.next_event(&mut spool).await.unwrap();
    assert_eq!(event, LinkEvent::Connected { last_seq: 0 });
    let retry = *collector.attempts().last().unwrap() - lost_at;
    assert!(
        retry >= BACKOFF_BASE / 2 && retry <= BACKOFF_BASE + Duration::from_millis(2),
        "{retry:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_stream_is_replayed_from_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 5);
    assert_eq!(segments(tmp.path()), 5);
    let mut collector = FakeCollector::new([
        Answer::Accept { last_seq: 0 },
        Answer::Accept { last_seq: 2 },
    ]);
    let mut conn = connection(collector.connector());

    assert_eq!(
        conn.next_event(&mut spool).await.unwrap(),
        LinkEvent::Connected { last_seq: 0 }
    );
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    assert_eq!(peer.seqs(5).await, [1, 2, 3, 4, 5]);
    assert_eq!(spool.in_flight(), 5);

    // Acked frames are freed at once; the others stay on disk.
    peer.ack(2);
    assert_eq!(settle(&mut conn, &mut spool).await, None);
    assert_eq!(spool.pending_frames(), 3);
    assert_eq!(
        segments(tmp.path()),
        3,
        "the acked frames' segments are deleted"
    );

    // The stream drops with 3, 4 and 5 in flight: the next stream sends them again.
    drop(peer);
    let event = conn.next_event(&mut spool).await.unwrap();
    assert_eq!(event, LinkEvent::Lost("collector closed the stream".into()));
    assert_eq!(spool.pending_frames(), 3, "nothing unacknowledged is lost");
    assert_eq!(
        conn.next_event(&mut spool).await.unwrap(),
        LinkEvent::Connected { last_seq: 2 }
    );
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    assert_eq!(peer.seqs(3).await, [3, 4, 5]);
    assert!(
        peer.from_agent.try_recv().is_err(),
        "nothing acked is resent"
    );

    peer.ack(5);
    assert_eq!(settle(&mut conn, &mut spool).await, None);
    assert_eq!(spool.pending_frames(), 0);
    assert_eq!(
        segments(tmp.path()),
        1,
        "only the segment still open for appends"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_batch_stays_in_the_spool_and_is_sent_again() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 2);
    let mut collector = FakeCollector::new([
        Answer::Accept { last_seq: 0 },
        Answer::Accept { last_seq: 0 },
    ]);
    let mut conn = connection(collector.connector());
    conn.next_event(&mut spool).await.unwrap();
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    assert_eq!(peer.seqs(2).await, [1, 2]);

    // The collector refuses batch 1: a status closes the stream.
    peer.refuse(Status::invalid_argument("batch 1: too many samples"));
    let LinkEvent::Lost(reason) = conn.next_event(&mut spool).await.unwrap() else {
        panic!("the stream is lost");
    };
    assert!(reason.contains("batch 1: too many samples"), "{reason}");
    assert!(!conn.is_up());
    assert_eq!(spool.pending_frames(), 2, "the data stays in the spool");

    // The agent reconnects and sends both again.
    assert_eq!(
        conn.next_event(&mut spool).await.unwrap(),
        LinkEvent::Connected { last_seq: 0 }
    );
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    assert_eq!(peer.seqs(2).await, [1, 2]);
    assert_eq!(spool.pending_frames(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_flush_sends_the_spool_and_waits_for_the_acks() {
    let (_tmp, mut spool, mut conn, mut peer) = up_with(3).await;

    let start = Instant::now();
    let collector_side = async {
        // Acks come one by one, each after the batch it covers.
        for _ in 0..3 {
            let seq = peer.batch().await.seq;
            peer.ack(seq);
        }
        peer
    };
    let (flushed, _peer) = tokio::join!(conn.flush(&mut spool), collector_side);
    flushed.unwrap();
    assert_eq!(spool.pending_frames(), 0, "everything acknowledged");
    assert!(
        start.elapsed() < SHUTDOWN_FLUSH,
        "done at the last ack, not at the deadline"
    );
    assert!(!conn.is_up(), "the stream is closed after the flush");
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_flush_gives_up_at_its_deadline() {
    let (_tmp, mut spool, mut conn, mut peer) = up_with(3).await;

    let start = Instant::now();
    conn.flush(&mut spool).await.unwrap();
    assert_eq!(start.elapsed(), SHUTDOWN_FLUSH);
    assert_eq!(peer.seqs(3).await, [1, 2, 3], "everything was sent");
    assert_eq!(
        spool.pending_frames(),
        3,
        "unacknowledged batches stay spooled"
    );
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_logged_once_per_change() {
    let (logs, _guard) = Logs::capture();
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 0);
    let mut script = refusals("connection refused", 3);
    script.extend(refusals("certificate unknown", 3));
    script.push(Answer::Accept { last_seq: 0 });
    let mut collector = FakeCollector::new(script);
    let mut conn = connection(collector.connector());

    // Six failed attempts with two reasons, then a stream.
    assert_eq!(
        conn.next_event(&mut spool).await.unwrap(),
        LinkEvent::Connected { last_seq: 0 }
    );
    let unreachable = logs.lines("collector unreachable");
    assert_eq!(unreachable.len(), 1, "{}", logs.text());
    assert!(
        unreachable[0].contains("WARN")
            && unreachable[0].contains(&format!("collector={COLLECTOR}"))
            && unreachable[0].contains("error=connection refused")
            && unreachable[0]
                .contains("collector unreachable; samples are spooled on disk until it is back"),
        "{}",
        unreachable[0]
    );
    let changed = logs.lines("the reason changed");
    assert_eq!(changed.len(), 1, "{}", logs.text());
    assert!(
        changed[0].contains("WARN")
            && changed[0].contains("still no connection to the collector; the reason changed")
            && changed[0].contains("error=certificate unknown"),
        "{}",
        changed[0]
    );
    assert_eq!(
        logs.lines("reconnect failed").len(),
        4,
        "the same reason again: debug"
    );
    let back = logs.lines("collector reachable again");
    assert_eq!(back.len(), 1, "{}", logs.text());
    assert!(
        back[0].contains("INFO")
            && back[0].contains("collector reachable again; replaying spool")
            && back[0].contains("outage_secs=")
            && back[0].contains("backlog=0"),
        "{}",
        back[0]
    );
    assert!(logs.lines("connected to collector").is_empty());

    // The stream drops: one line; failures with the first reason are not news, a new reason is.
    drop(collector.accepted());
    collector.then(refusals("connection refused", 2));
    collector.then(refusals("deadline exceeded", 2));
    collector.then([Answer::Accept { last_seq: 0 }]);
    assert!(matches!(
        conn.next_event(&mut spool).await.unwrap(),
        LinkEvent::Lost(_)
    ));
    let lost = logs.lines("stream to collector lost");
    assert_eq!(lost.len(), 1, "{}", logs.text());
    assert!(
        lost[0].contains("WARN")
            && lost[0].contains("stream to collector lost; reconnecting")
            && lost[0].contains("error=collector closed the stream")
            && lost[0].contains("backlog=0"),
        "{}",
        lost[0]
    );
    assert_eq!(
        conn.next_event(&mut spool).await.unwrap(),
        LinkEvent::Connected { last_seq: 0 }
    );
    assert_eq!(
        logs.lines("collector unreachable").len(),
        1,
        "{}",
        logs.text()
    );
    let changed = logs.lines("the reason changed");
    assert_eq!(changed.len(), 2, "{}", logs.text());
    assert!(
        changed[1].contains("error=deadline exceeded"),
        "{}",
        changed[1]
    );
    assert_eq!(
        logs.lines("collector reachable again").len(),
        2,
        "{}",
        logs.text()
    );

    // A first connection is logged as such.
    let (logs, _guard) = Logs::capture();
    let mut collector = FakeCollector::new([Answer::Accept { last_seq: 0 }]);
    let mut conn = connection(collector.connector());
    conn.next_event(&mut spool).await.unwrap();
    let connected = logs.lines("connected to collector");
    assert_eq!(connected.len(), 1, "{}", logs.text());
    assert!(
        connected[0].contains("INFO") && connected[0].contains(&format!("collector={COLLECTOR}")),
        "{}",
        connected[0]
    );
    drop(collector.accepted());
}
