//! The agent's main loop in-process ([`Agent::run`] with the scripted fake collector of
//! `support`, sampling the fixture /proc tree), on tokio's paused time: samples are spooled and
//! shipped each interval, a dropped stream is replayed, and the shutdown future flushes (sends
//! what is spooled, waits for the acks up to its deadline, writes the spool metadata).

mod support;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use fleet_agent::agent::Agent;
use fleet_agent::link::{Connector, SHUTDOWN_FLUSH};
use fleet_agent::spool::Spool;
use fleet_proto::v1::agent_message;
use support::{agent, Answer, FakeCollector, Logs};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Runs the agent until `shutdown` and its flush are done, beside the collector's side (whose
/// output comes back: the stream stays open until then).
async fn run<T>(
    agent: Agent<impl Connector>,
    shutdown: impl Future<Output = ()>,
    collector_side: impl Future<Output = T>,
) -> T {
    let (ran, out) = tokio::join!(agent.run(shutdown), collector_side);
    ran.unwrap();
    out
}

/// A shutdown future that resolves when the test says so.
async fn on(stop: oneshot::Receiver<()>) {
    stop.await.ok();
}

/// The spool the agent left behind. (Acknowledged frames in its open segment count as pending
/// again: the collector's welcome says which it has.)
fn reopen(state_dir: &Path) -> Spool {
    let (spool, report) = Spool::open(&state_dir.join("spool"), 64 << 20, 1 << 20).unwrap();
    assert_eq!(
        report.meta_problem, None,
        "the metadata was written at shutdown"
    );
    spool
}

#[tokio::test(start_paused = true)]
async fn samples_each_interval_and_the_shutdown_flush_waits_for_the_acks() {
    let (logs, _guard) = Logs::capture();
    let tmp = tempfile::tempdir().unwrap();
    let mut collector = FakeCollector::new([Answer::Accept { last_seq: 0 }]);
    let agent = agent(tmp.path(), None, &collector);
    let (stop, stopped) = oneshot::channel::<()>();
    // Said by the shutdown future as it resolves: the loop then goes straight into the flush.
    let (flushing_tx, flushing) = oneshot::channel::<()>();

    let collector_side = async {
        let mut peer = collector.next_stream().await;
        let Some(agent_message::Msg::Hello(hello)) = peer.hello.msg.clone() else {
            panic!("a hello first");
        };
        assert_eq!(hello.identity.unwrap().host_id, "h1");
        assert_eq!(
            u128::from(hello.ack_delay_ms),
            fleet_agent::link::ACK_DELAY.as_millis(),
            "the collector may hold Acks back"
        );
        // One sample per interval, each a batch of its own.
        let first = peer.batch().await;
        let first_at = Instant::now();
        assert_eq!(first.seq, 1);
        assert_eq!(first.samples.len(), 1);
        assert!(
            !first.samples[0].records.is_empty(),
            "sar records from the fixture /proc"
        );
        assert_eq!(peer.batch().await.seq, 2);
        // An interval apart (the loop's deadlines are std Instants, which tokio's timers round
        // up to the millisecond).
        let gap = first_at.elapsed();
        assert!(
            gap >= Duration::from_millis(999) && gap <= Duration::from_millis(1001),
            "{gap:?}"
        );
        peer.ack(1);
        // Shutdown with batch 2 unacknowledged: the agent waits for its ack.
        stop.send(()).unwrap();
        flushing.await.unwrap();
        assert!(
            logs.lines("agent stopped").is_empty(),
            "the agent waits for the ack"
        );
        peer.ack(2);
        peer
    };
    let shutdown = async {
        stopped.await.ok();
        flushing_tx.send(()).unwrap();
    };
    run(agent, shutdown, collector_side).await;
    let stopped = logs.lines("agent stopped");
    assert_eq!(stopped.len(), 1, "{}", logs.text());
    assert!(stopped[0].contains("pending=0"), "{}", stopped[0]);
    reopen(tmp.path());
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_flush_keeps_what_was_not_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut collector = FakeCollector::new([Answer::Accept { last_seq: 0 }]);
    let agent = agent(tmp.path(), None, &collector);
    let (stop, stopped) = oneshot::channel::<()>();

    let mut stopped_at = None;
    let collector_side = async {
        let mut peer = collector.next_stream().await;
        assert_eq!(peer.seqs(3).await, [1, 2, 3]);
        stop.send(()).unwrap();
        stopped_at = Some(Instant::now());
        peer
    };
    run(agent, on(stopped), collector_side).await;
    assert_eq!(
        stopped_at.unwrap().elapsed(),
        SHUTDOWN_FLUSH,
        "it waited for the acks until the deadline"
    );
    let mut spool = reopen(tmp.path());
    assert_eq!(
        spool.pending_frames(),
        3,
        "unacknowledged samples stay in the spool"
    );
    assert_eq!(spool.next_unsent().unwrap().unwrap().seq, 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_stream_is_replayed_and_sampling_goes_on() {
    let (logs, _guard) = Logs::capture();
    let tmp = tempfile::tempdir().unwrap();
    let mut collector = FakeCollector::new([
        Answer::Accept { last_seq: 0 },
        Answer::Refuse("connection refused".into()),
        Answer::Accept { last_seq: 1 },
    ]);
    let agent = agent(tmp.path(), None, &collector);
    let (stop, stopped) = oneshot::channel::<()>();

    let collector_side = async {
        let mut peer = collector.next_stream().await;
        assert_eq!(peer.seqs(3).await, [1, 2, 3]);
        peer.ack(1);
        // The collector goes away with 2 and 3 unacknowledged; the agent keeps sampling into
        // the spool while it reconnects, and sends everything after 1 on the next stream.
        drop(peer);
        let mut peer = collector.next_stream().await;
        let seqs = peer.seqs(3).await;
        assert_eq!(seqs, [2, 3, 4], "replayed in order from the spool");
        peer.ack(4);
        stop.send(()).unwrap();
        peer
    };
    run(agent, on(stopped), collector_side).await;
    assert_eq!(collector.attempts().len(), 3);
    assert_eq!(
        logs.lines("stream to collector lost").len(),
        1,
        "{}",
        logs.text()
    );
    assert_eq!(
        logs.lines("collector reachable again").len(),
        1,
        "{}",
        logs.text()
    );
    let stopped = logs.lines("agent stopped");
    assert!(stopped[0].contains("pending=0"), "{}", logs.text());
}
