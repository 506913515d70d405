//! OOM bursts through the agent in-process: its loop, the kmsg watcher reading a fixture file
//! built from real reports (`support::kmsg_burst`), the spool and the link, against the fake
//! collector of `support`, which checks every batch as the collector does
//! ([`fleet_proto::check`], and the message size limit) before it acknowledges it.
//!
//! - A `memory.oom.group` kill of 600 processes (one kernel log burst) reaches the collector
//!   whole, in batches it takes; samples keep flowing; the kernel log cursor is saved; the agent
//!   keeps running. (Before: one spool frame of 600 events, each with the whole task table,
//!   over the frame limit: the agent stopped before it saved its cursor, again at every
//!   restart; or, under it, one batch the collector refused forever.)
//! - A storm of every kind of input (junk, an overlong line, a 2,000-process group kill, a
//!   9,000-row table): every kill arrives, the cursor is saved, the agent runs on.
//! - A global OOM whose task table has 9,000 rows: one event, its detail under the limit, the
//!   biggest rows kept and the others counted. (Before: a 3 MB detail, refused.)

mod support;

use std::time::Duration;

use fleet_agent::sources::kmsg::KmsgWatcher;
use fleet_agent::spool::pack;
use fleet_proto::check::{check_batch, fits_message};
use fleet_proto::limits::{MAX_EVENT_DETAIL_BYTES, MAX_MESSAGE_BYTES};
use fleet_proto::v1::{agent_message, AgentMessage, OomEvent};
use prost::Message;
use serde_json::Value;
use support::kmsg_burst::{global_oom, group_burst, FIRST_PID};
use support::{agent, Answer, FakeCollector};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What reached the fake collector from a kernel log.
struct Shipped {
    /// The victims, in the order they arrived.
    pids: Vec<i64>,
    /// Batches holding events.
    event_batches: usize,
    /// From the stream's start until every kill and three samples after them arrived.
    elapsed: Duration,
    /// The kernel log cursor the agent saved.
    cursor: String,
}

/// Runs the agent over the kernel log `text` until `kills` kills and three samples after them
/// reached the fake collector, which checks every batch as the collector does, then stops it.
async fn ship(text: &[u8], kills: usize) -> Shipped {
    let tmp = tempfile::tempdir().unwrap();
    let kmsg = tmp.path().join("kmsg");
    std::fs::write(&kmsg, text).unwrap();
    let mut collector = FakeCollector::new([Answer::Accept { last_seq: 0 }]);
    let watcher = KmsgWatcher::open(&kmsg, tmp.path(), tmp.path()).unwrap();
    let agent = agent(tmp.path(), Some(watcher), &collector);
    let (stop, stopped) = oneshot::channel::<()>();

    let collector_side = async {
        let mut peer = collector.next_stream().await;
        let mut pids = Vec::new();
        let mut event_batches = 0;
        let mut samples_after = 0;
        let start = Instant::now();
        while pids.len() < kills || samples_after < 3 {
            // Samples go on whatever happens to the kernel log: a bound, not the batches' end.
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{} kills of {kills} after 120 s",
                pids.len()
            );
            let batch = peer.batch().await;
            // What the collector does with each batch: its check, then its message limit.
            check_batch(&batch).unwrap_or_else(|r| panic!("the collector refuses it: {r}"));
            let message = AgentMessage {
                msg: Some(agent_message::Msg::Batch(batch.clone())),
            };
            assert!(message.encoded_len() <= MAX_MESSAGE_BYTES);
            if !batch.oom_events.is_empty() {
                event_batches += 1;
            }
            if pids.len() >= kills {
                samples_after += batch.samples.len();
            }
            pids.extend(batch.oom_events.iter().map(|e| e.victim_pid.unwrap()));
            peer.ack(batch.seq);
        }
        let elapsed = start.elapsed();
        stop.send(()).unwrap();
        (peer, pids, event_batches, elapsed)
    };
    let (ran, (_peer, pids, event_batches, elapsed)) = tokio::join!(
        agent.run(async {
            stopped.await.ok();
        }),
        collector_side
    );
    ran.expect("the agent ran to its shutdown");
    Shipped {
        pids,
        event_batches,
        elapsed,
        cursor: std::fs::read_to_string(tmp.path().join("kmsg.cursor")).unwrap(),
    }
}

fn burst_pids(kills: usize) -> Vec<i64> {
    (0..kills as u64).map(|i| (FIRST_PID + i) as i64).collect()
}

#[tokio::test(start_paused = true)]
async fn a_group_kill_of_600_processes_reaches_the_collector_in_batches_it_takes() {
    let burst = group_burst(600, 3000, 100_000_000);
    let last_seq = 3000 + burst.lines().count() - 1;
    let shipped = ship(burst.as_bytes(), 600).await;
    assert_eq!(shipped.pids, burst_pids(600), "every kill, once, in order");
    assert!(
        shipped.event_batches >= 3,
        "at most 256 events a batch: {}",
        shipped.event_batches
    );
    assert!(
        shipped.elapsed < Duration::from_secs(30),
        "{:?}",
        shipped.elapsed
    );
    assert!(
        shipped.cursor.starts_with(&format!("unknown {last_seq} ")),
        "the cursor is at the burst's last record: {}",
        shipped.cursor
    );
}

/// A storm of everything a kernel log can hold, through the agent's loop: a group kill of
/// 2,000 processes, lines that are no records, bytes that are no text, a record far longer
/// than a read, a record numbered at the top of the range, then a global OOM with a 9,000-row
/// table. Every kill arrives, the cursor is saved at the last record, the agent runs on to its
/// shutdown. (Before: an overlong line stalled the reader for good; a record numbered
/// u64::MAX made the gap count overflow, a panic in a debug build.)
#[tokio::test(start_paused = true)]
async fn no_kernel_log_input_stops_the_agent() {
    let mut text = group_burst(2_000, 1, 1_000_000).into_bytes();
    let next = 1 + text.iter().filter(|&&b| b == b'\n').count() as u64;
    text.extend_from_slice(b"not a record\n\xff\xfe\x00 binary\n6,abc,1,-;a bad seq\n");
    text.extend_from_slice(format!("6,{next},90000000,-;{}\n", "x".repeat(100_000)).as_bytes());
    text.extend_from_slice(format!("6,{},90000001,-;the top seq\n", u64::MAX).as_bytes());
    let global = global_oom(9_000, next + 1, 95_000_000);
    let last_seq = next + global.lines().count() as u64;
    text.extend_from_slice(global.as_bytes());

    let shipped = ship(&text, 2_001).await;
    let mut want = burst_pids(2_000);
    want.push(116);
    assert_eq!(shipped.pids, want, "every kill, once, in order");
    assert!(
        shipped.cursor.starts_with(&format!("unknown {last_seq} ")),
        "the cursor is at the last record: {}",
        shipped.cursor
    );
}

/// The kmsg watcher's events of `text`, as the agent reads them.
fn events_of(text: &str) -> Vec<OomEvent> {
    let tmp = tempfile::tempdir().unwrap();
    let kmsg = tmp.path().join("kmsg");
    std::fs::write(&kmsg, text).unwrap();
    let mut w = KmsgWatcher::open(&kmsg, tmp.path(), tmp.path()).unwrap();
    let mut events = w.read_available();
    while w.has_backlog() {
        events.extend(w.read_available());
    }
    events.extend(w.flush_idle());
    events
}

fn rss(row: &Value) -> u64 {
    row["rss"].as_u64().unwrap()
}

#[test]
fn a_task_table_of_9000_rows_keeps_its_biggest_rows_under_the_limit() {
    let events = events_of(&global_oom(9_000, 1, 50_000_000));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.victim_pid, Some(116));
    assert!(
        e.detail_json.len() <= MAX_EVENT_DETAIL_BYTES,
        "{} bytes",
        e.detail_json.len()
    );
    let detail: Value = serde_json::from_str(&e.detail_json).unwrap();
    let kept = detail["tasks"].as_array().unwrap();
    let omitted = detail["tasks_omitted"].as_u64().unwrap();
    assert_eq!(
        kept.len() as u64 + omitted,
        9_001,
        "every row kept or counted"
    );
    assert!(kept.len() > 4_000, "{} rows kept", kept.len());
    assert!(kept.iter().any(|r| r["pid"] == 116), "the victim's row");
    // The biggest: no row left out is bigger than the smallest kept (the victim's aside).
    let smallest = kept
        .iter()
        .filter(|r| r["pid"] != 116)
        .map(rss)
        .min()
        .unwrap();
    let all: Vec<u64> = (0..9_000u64)
        .map(|i| 100 + (i * 7919) % 1_000_000)
        .collect();
    let bigger = all.iter().filter(|&&r| r >= smallest).count();
    assert_eq!(bigger, kept.len() - 1, "exactly the biggest rows");
    // The kill line survives the raw lines' trim.
    let raw = detail["raw"].as_array().unwrap();
    assert!(raw
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .contains("Killed process 116"));
    assert!(detail["raw_dropped"].as_u64().unwrap() > 0);

    // Spooled, it is one batch the collector takes.
    let tmp = tempfile::tempdir().unwrap();
    let (mut spool, _) = fleet_agent::spool::Spool::open(tmp.path(), 64 << 20, 8 << 20).unwrap();
    let repairs = pack::spool_events(&mut spool, events).unwrap();
    assert!(!repairs.any(), "{repairs:?}");
    let frame = spool.next_unsent().unwrap().unwrap();
    let mut batch = fleet_proto::v1::Batch::decode(frame.payload.as_slice()).unwrap();
    batch.seq = frame.seq;
    check_batch(&batch).unwrap();
    assert!(fits_message(&batch));
}

/// The kills of a group after the first carry the victim's row and a pointer to the table, not
/// the table: a burst weighs one table, not one per kill.
#[test]
fn a_group_burst_carries_its_task_table_once() {
    let events = events_of(&group_burst(600, 1, 50_000_000));
    assert_eq!(events.len(), 600);
    let details: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.detail_json).unwrap())
        .collect();
    assert_eq!(details[0]["tasks"].as_array().unwrap().len(), 600);
    let first_seq = events[0].kmsg_seq.unwrap();
    for (i, d) in details.iter().enumerate().skip(1) {
        let tasks = d["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 1, "{d}");
        assert_eq!(tasks[0]["pid"], FIRST_PID + i as u64);
        assert_eq!(d["tasks_omitted"], 599);
        assert_eq!(d["tasks_with_kmsg_seq"], first_seq);
    }
    let total: usize = events.iter().map(|e| e.detail_json.len()).sum();
    assert!(total < 2 << 20, "{total} bytes for the burst");
}
