//! The link to the collector in-process ([`Connection`] against the scripted fake collector of
//! `support`), on tokio's paused time: reconnects back off, growing to a cap, and start again
//! only after a stream stayed up a while (not at every welcome); what was not acknowledged is
//! sent again after a dropped stream, and what was is freed; a batch refused as invalid is set
//! aside while the others flow on, and so is a spooled batch that does not decode; the shutdown
//! flush waits for acks up to its deadline; an outage is logged once per change.

mod support;

use std::time::Duration;

use fleet_agent::link::connection::{BACKOFF_BASE, BACKOFF_MAX, HEALTHY_AFTER};
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
            ack_delay_ms: 0,
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

    // A welcome alone does not reset the backoff: a stream lost at once waits at the cap.
    let retry = lose_and_reconnect(&mut conn, &mut spool, &collector, peer).await;
    assert!(retry >= BACKOFF_MAX / 2, "{retry:?}");

    // A stream that stayed up for a while does: after it is lost the first retry is short again.
    let peer = collector.accepted();
    tokio::time::sleep(HEALTHY_AFTER).await;
    let retry = lose_and_reconnect(&mut conn, &mut spool, &collector, peer).await;
    assert!(
        retry >= BACKOFF_BASE / 2 && retry <= BACKOFF_BASE + Duration::from_millis(2),
        "{retry:?}"
    );
}

/// Closes the stream of `peer`, lets the link reconnect, and returns how long it waited.
async fn lose_and_reconnect<C: Connector>(
    conn: &mut Connection<C>,
    spool: &mut Spool,
    collector: &FakeCollector,
    peer: Peer,
) -> Duration {
    drop(peer);
    let event = conn.next_event(spool).await.unwrap();
    assert_eq!(event, LinkEvent::Lost("collector closed the stream".into()));
    collector.then([Answer::Accept { last_seq: 0 }]);
    let lost_at = Instant::now();
    let event = conn.next_event(spool).await.unwrap();
    assert_eq!(event, LinkEvent::Connected { last_seq: 0 });
    *collector.attempts().last().unwrap() - lost_at
}

/// A collector that welcomes the agent and cuts the stream at once, every time (a policy set
/// larger than a message, say): the agent's attempts slow down to the cap like failed ones,
/// instead of coming back twice a second.
#[tokio::test(start_paused = true)]
async fn streams_cut_right_after_the_welcome_back_off_too() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 0);
    let mut collector = FakeCollector::new(vec![Answer::Accept { last_seq: 0 }; 10]);
    let mut conn = connection(collector.connector());
    for _ in 0..10 {
        assert_eq!(
            conn.next_event(&mut spool).await.unwrap(),
            LinkEvent::Connected { last_seq: 0 }
        );
        // Up for a moment only.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(collector.accepted());
        assert!(matches!(
            conn.next_event(&mut spool).await.unwrap(),
            LinkEvent::Lost(_)
        ));
    }
    let attempts = collector.attempts();
    assert_eq!(attempts.len(), 10);
    // Between attempts: the 100 ms the stream was up, then the backoff, growing.
    let delays: Vec<Duration> = attempts
        .windows(2)
        .map(|w| w[1] - w[0] - Duration::from_millis(100))
        .collect();
    for (n, delay) in delays.iter().enumerate() {
        let d = BACKOFF_BASE.saturating_mul(1 << n).min(BACKOFF_MAX);
        assert!(
            *delay >= d / 2 && *delay <= d + Duration::from_millis(2),
            "delay {n} is {delay:?}, want {:?}..{d:?}",
            d / 2
        );
    }
    let total = *attempts.last().unwrap() - attempts[0];
    assert!(
        total >= Duration::from_secs(60),
        "ten cut streams take minutes, not seconds: {total:?}"
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

/// A stream closed with a status that names no batch (an error of another kind, or a refusal
/// of something else than a batch): nothing is set aside, everything is sent again.
#[tokio::test(start_paused = true)]
async fn a_refusal_that_names_no_batch_keeps_everything_in_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 2);
    let mut collector = FakeCollector::new([
        Answer::Accept { last_seq: 0 },
        Answer::Accept { last_seq: 0 },
        Answer::Accept { last_seq: 0 },
    ]);
    let mut conn = connection(collector.connector());
    conn.next_event(&mut spool).await.unwrap();
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    assert_eq!(peer.seqs(2).await, [1, 2]);

    for status in [
        Status::invalid_argument("batch 1: too many samples"),
        // Names a batch, but it is not a refusal of it.
        Status::unavailable("batch seq 1: storage write failed"),
    ] {
        let text = status.message().to_string();
        peer.refuse(status);
        let LinkEvent::Lost(reason) = conn.next_event(&mut spool).await.unwrap() else {
            panic!("the stream is lost");
        };
        assert!(reason.contains(&text), "{reason}");
        assert!(!conn.is_up());
        assert_eq!(spool.pending_frames(), 2, "the data stays in the spool");

        // The agent reconnects and sends both again.
        assert_eq!(
            conn.next_event(&mut spool).await.unwrap(),
            LinkEvent::Connected { last_seq: 0 }
        );
        conn.pump(&mut spool, None).unwrap();
        peer = collector.accepted();
        assert_eq!(peer.seqs(2).await, [1, 2]);
        assert_eq!(spool.pending_frames(), 2);
    }
    assert_eq!(spool.rejected_batches(), 0);
}

/// The collector refuses batch 2 as invalid (its `check_batch` text names the seq): the agent
/// sets it aside once (kept on disk, logged, its sample counted as dropped), reconnects, and
/// sends everything else; the collector's ack past it frees it. It is never sent again.
#[tokio::test(start_paused = true)]
async fn a_batch_refused_as_invalid_is_set_aside_and_the_others_flow_on() {
    let (logs, _guard) = Logs::capture();
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 4);
    let mut collector = FakeCollector::new([
        Answer::Accept { last_seq: 0 },
        Answer::Accept { last_seq: 1 },
    ]);
    let mut conn = connection(collector.connector());
    conn.next_event(&mut spool).await.unwrap();
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    assert_eq!(peer.seqs(4).await, [1, 2, 3, 4]);
    peer.ack(1);
    peer.refuse(Status::invalid_argument(
        "batch seq 2: sample 0 record 0 (cpu): %system is not a finite number",
    ));
    let LinkEvent::Lost(reason) = conn.next_event(&mut spool).await.unwrap() else {
        panic!("the stream is lost");
    };
    assert!(
        reason.contains("invalid argument: batch seq 2: "),
        "{reason}"
    );
    assert_eq!(spool.rejected_batches(), 1);
    assert_eq!(spool.dropped_samples(), 1, "its sample counts as dropped");
    assert_eq!(spool.pending_frames(), 2, "3 and 4");
    let kept: Vec<_> = std::fs::read_dir(tmp.path().join("rejected"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 2, "the batch and why: {kept:?}");
    let set_aside = logs.lines("set aside");
    assert_eq!(set_aside.len(), 1, "{}", logs.text());
    assert!(
        set_aside[0].contains("ERROR") && set_aside[0].contains("seq=2"),
        "{}",
        set_aside[0]
    );

    // The next stream carries 3 and 4, not 2.
    assert_eq!(
        conn.next_event(&mut spool).await.unwrap(),
        LinkEvent::Connected { last_seq: 1 }
    );
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    let batch = peer.batch().await;
    assert_eq!(batch.seq, 3);
    assert_eq!(batch.dropped_samples, 1, "the loss is never silent");
    assert_eq!(peer.batch().await.seq, 4);
    peer.ack(4);
    assert_eq!(settle(&mut conn, &mut spool).await, None);
    assert_eq!(spool.pending_frames(), 0);
    assert_eq!(
        segments(tmp.path()),
        1,
        "freed with the others (but the open segment)"
    );
    assert_eq!(logs.lines("set aside").len(), 1, "logged once");
}

/// A spooled batch read back from disk that does not decode (what a faulty agent could have
/// written: its CRC is right) is set aside and never sent; the batches around it are sent. A
/// batch handed out from memory as it was appended is sent without decoding it.
#[tokio::test(start_paused = true)]
async fn a_spooled_batch_that_does_not_decode_is_set_aside_not_sent() {
    let (logs, _guard) = Logs::capture();
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = spool_with(tmp.path(), 1);
    // A length-delimited field whose length runs past the end.
    spool.append(&[0x12, 0x7f, 0x01], 1, false).unwrap();
    spool_with_more(&mut spool, 1);
    spool.close().unwrap();
    let (mut spool, _) = Spool::open(tmp.path(), 64 << 20, 1).unwrap();
    let mut collector = FakeCollector::new([Answer::Accept { last_seq: 0 }]);
    let mut conn = connection(collector.connector());
    conn.next_event(&mut spool).await.unwrap();
    conn.pump(&mut spool, None).unwrap();
    let mut peer = collector.accepted();
    assert_eq!(peer.seqs(2).await, [1, 3]);
    assert_eq!(spool.rejected_batches(), 1);
    assert_eq!(spool.dropped_samples(), 1, "its sample counts as dropped");
    let set_aside = logs.lines("does not decode");
    assert_eq!(set_aside.len(), 1, "{}", logs.text());
    assert!(set_aside[0].contains("seq=2"), "{}", set_aside[0]);
    peer.ack(3);
    assert_eq!(settle(&mut conn, &mut spool).await, None);
    assert_eq!(spool.pending_frames(), 0);
}

/// Appends `n` more valid batches.
fn spool_with_more(spool: &mut Spool, n: usize) {
    use prost::Message;
    for _ in 0..n {
        let batch = fleet_proto::v1::Batch {
            samples: vec![fleet_proto::v1::Sample::default()],
            ..fleet_proto::v1::Batch::default()
        };
        spool.append(&batch.encode_to_vec(), 1, false).unwrap();
    }
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
async fn the_shutdown_flush_ends_the_agents_side_so_held_acks_come_at_once() {
    let (_tmp, mut spool, mut conn, mut peer) = up_with(3).await;

    let start = Instant::now();
    let collector_side = async {
        // A collector that holds Acks back (Hello.ack_delay_ms) sends them when the agent's
        // side of the stream ends: the agent must end it once everything is sent.
        assert_eq!(peer.seqs(3).await, [1, 2, 3]);
        let more = tokio::time::timeout(SHUTDOWN_FLUSH, peer.from_agent.recv()).await;
        assert!(
            matches!(more, Ok(None)),
            "the agent ended its side after the last batch"
        );
        peer.ack(3);
        peer
    };
    let (flushed, _peer) = tokio::join!(conn.flush(&mut spool), collector_side);
    flushed.unwrap();
    assert_eq!(spool.pending_frames(), 0, "everything acknowledged");
    assert_eq!(start.elapsed(), Duration::ZERO, "no waiting on a timer");
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
