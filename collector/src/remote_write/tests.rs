//! The senders against a fake receiver in this process (a hyper server on loopback that
//! decodes each snappy protobuf body): in order, retried through an outage, a refused request
//! skipped and counted, resumed from the persisted cursor after a restart without sending again
//! what was accepted; and the shards: N requests in flight, each series complete and in order,
//! a failing shard holding the cursor back while the others go on, what it held back sent
//! again after a restart, and nothing lost then by a receiver that refuses a whole request for
//! a sample it already has (as Prometheus does).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_proto::v1::{Activity, HostIdentity, Record, Sample};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use super::*;
use crate::storage::{IngestItem, StoreOptions};

/// What the fake receiver answers and what it took.
#[derive(Default)]
struct Fake {
    status: Mutex<u16>,
    /// How long it takes to answer.
    delay: Mutex<Duration>,
    /// A request holding a `fleet_cpu_idle_percent` sample of this host at or after this time
    /// is answered 503 (one shard's series failing).
    failing: Mutex<Option<(String, i64)>>,
    /// (host_id, time) of every `fleet_cpu_idle_percent` sample accepted, in arrival order.
    idle: Mutex<Vec<(String, i64)>>,
    /// Every sample accepted, by series (its labels), in arrival order.
    series: Mutex<HashMap<String, Vec<i64>>>,
    headers_ok: Mutex<bool>,
    /// Answers as Prometheus does: a request holding a sample older than its series' newest
    /// is refused whole (400), one at the newest's time is taken as a duplicate (dropped).
    strict: Mutex<bool>,
    newest: Mutex<HashMap<String, i64>>,
    /// Requests being answered, and the most at once.
    active: AtomicUsize,
    most_active: AtomicUsize,
}

impl Fake {
    /// Answers one request's body.
    fn take(&self, body: &[u8]) -> u16 {
        let wr = wire::decode_body(body).unwrap();
        let label = |ts: &wire::TimeSeries, n: &str| {
            (ts.labels.iter())
                .find(|l| l.name == n)
                .map(|l| l.value.clone())
        };
        let is_idle = |ts: &wire::TimeSeries| {
            label(ts, "__name__").as_deref() == Some("fleet_cpu_idle_percent")
        };
        if let Some((host, from)) = &*self.failing.lock().unwrap() {
            let failing = wr.timeseries.iter().any(|ts| {
                is_idle(ts)
                    && label(ts, "host_id").as_ref() == Some(host)
                    && ts.samples.iter().any(|s| s.timestamp >= *from)
            });
            if failing {
                return 503;
            }
        }
        let status = *self.status.lock().unwrap();
        if status / 100 != 2 {
            return status;
        }
        let name_of = |ts: &wire::TimeSeries| {
            (ts.labels.iter())
                .map(|l| format!("{}={}", l.name, l.value))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut newest = self.newest.lock().unwrap();
        let strict = *self.strict.lock().unwrap();
        let older = |ts: &wire::TimeSeries| {
            let last = newest.get(&name_of(ts)).copied().unwrap_or(i64::MIN);
            ts.samples.iter().any(|s| s.timestamp < last)
        };
        if strict && wr.timeseries.iter().any(older) {
            return 400;
        }
        let mut idle = self.idle.lock().unwrap();
        let mut series = self.series.lock().unwrap();
        for ts in wr.timeseries {
            let name = name_of(&ts);
            let last = newest.entry(name.clone()).or_insert(i64::MIN);
            let taken: Vec<i64> = (ts.samples.iter())
                .map(|s| s.timestamp)
                .filter(|t| !strict || *t > *last)
                .collect();
            *last = taken.iter().copied().max().unwrap_or(*last).max(*last);
            if is_idle(&ts) {
                let host = label(&ts, "host_id").unwrap();
                idle.extend(taken.iter().map(|t| (host.clone(), *t)));
            }
            series.entry(name).or_default().extend(taken);
        }
        status
    }
}

async fn fake_receiver(fake: Arc<Fake>) -> String {
    *fake.status.lock().unwrap() = 204;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((io, _)) = listener.accept().await else {
                return;
            };
            let fake = fake.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let fake = fake.clone();
                    async move {
                        let now = fake.active.fetch_add(1, Relaxed) + 1;
                        fake.most_active.fetch_max(now, Relaxed);
                        let h = req.headers();
                        let ok = h["content-encoding"] == "snappy"
                            && h["content-type"] == "application/x-protobuf"
                            && h["x-prometheus-remote-write-version"] == "0.1.0";
                        *fake.headers_ok.lock().unwrap() = ok;
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let delay = *fake.delay.lock().unwrap();
                        tokio::time::sleep(delay).await;
                        let status = fake.take(&body);
                        fake.active.fetch_sub(1, Relaxed);
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(io), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/api/v1/write")
}

fn item(host_num: u32, seq: u64) -> IngestItem {
    IngestItem {
        host_num,
        epoch: 1,
        seq,
        after_seq: seq - 1,
        samples: vec![Sample {
            time_ms: 1_700_000_000_000 + seq as i64 * 1000,
            interval_ms: 1000,
            records: vec![Record {
                activity: Activity::Cpu as i32,
                instance: "all".into(),
                values: vec![1.0, 0.0, 1.0, 0.0, 0.0, 98.0],
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn options(url: &str) -> RemoteWriteOptions {
    RemoteWriteOptions {
        urls: vec![url.to_owned()],
        client: ClientOptions {
            timeout: Duration::from_secs(5),
            ..Default::default()
        },
        sender: SenderOptions {
            backoff_base: Duration::from_millis(20),
            backoff_cap: Duration::from_millis(100),
            ..Default::default()
        },
        queue_entries: 1000,
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn times(fake: &Fake) -> Vec<i64> {
    fake.idle.lock().unwrap().iter().map(|s| s.1).collect()
}

fn expected(seqs: std::ops::RangeInclusive<u64>) -> Vec<i64> {
    seqs.map(|s| 1_700_000_000_000 + s as i64 * 1000).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_in_order_through_an_outage_a_refusal_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let o = StoreOptions {
            outbox_limit: Some(1000),
            ..Default::default()
        };
        Arc::new(Store::open(dir.path(), o).unwrap())
    };
    let store = open();
    let id = HostIdentity {
        host_id: "h1".into(),
        hostname: "one".into(),
        cluster: "c".into(),
        ..Default::default()
    };
    let h = store.upsert_host(&id, 0, true).unwrap().num;
    let fake = Arc::new(Fake::default());
    let url = fake_receiver(fake.clone()).await;
    let (stop_tx, stop) = watch::channel(false);
    let rw = RemoteWrite::start(store.clone(), Arc::default(), &options(&url), stop).unwrap();
    let stats = rw.stats()[0].clone();

    for seq in 1..=5 {
        store.write(&[item(h, seq)], 0).unwrap();
    }
    wait_until("5 samples", || times(&fake).len() >= 5).await;
    assert_eq!(times(&fake), expected(1..=5));
    assert!(*fake.headers_ok.lock().unwrap(), "remote-write 1.0 headers");

    // An outage: retried with backoff, nothing lost, nothing doubled, in order.
    *fake.status.lock().unwrap() = 503;
    for seq in 6..=10 {
        store.write(&[item(h, seq)], 0).unwrap();
    }
    wait_until("retries", || stats.failures.load(Relaxed) >= 3).await;
    *fake.status.lock().unwrap() = 204;
    wait_until("10 samples", || times(&fake).len() >= 10).await;
    assert_eq!(times(&fake), expected(1..=10));

    // A refusal: counted, skipped, the next batch goes through.
    *fake.status.lock().unwrap() = 400;
    store.write(&[item(h, 11)], 0).unwrap();
    // Every shard with a part of it refused it: the cursor passes it.
    wait_until("a rejection", || stats.cursor.load(Relaxed) == 12).await;
    // (The live series may have been refused too.)
    assert!(stats.rejected.load(Relaxed) >= 1);
    *fake.status.lock().unwrap() = 204;
    store.write(&[item(h, 12)], 0).unwrap();
    wait_until("12", || times(&fake).len() >= 11).await;
    assert_eq!(times(&fake).last(), expected(12..=12).last());
    wait_until("the cursor", || stats.cursor.load(Relaxed) == 13).await;

    // A restart: the cursor persisted; what was accepted is not sent again.
    stop_tx.send(true).unwrap();
    rw.shutdown().await;
    drop(stats);
    let store = Arc::try_unwrap(store)
        .ok()
        .expect("the senders let the store go");
    drop(store);
    let store = open();
    let (stop_tx, stop) = watch::channel(false);
    // Stored while no sender ran (as after a crash between the write and the send).
    store.write(&[item(h, 13)], 0).unwrap();
    let rw = RemoteWrite::start(store.clone(), Arc::default(), &options(&url), stop).unwrap();
    store.write(&[item(h, 14)], 0).unwrap();
    wait_until("14", || times(&fake).len() >= 13).await;
    let mut want = expected(1..=10);
    want.extend(expected(12..=14));
    assert_eq!(times(&fake), want);
    stop_tx.send(true).unwrap();
    rw.shutdown().await;
    // Everything was accepted: the outbox is empty again.
    let (first, next) = store.outbox_span();
    assert!(next - first <= 1, "{first}..{next}");
}

/// Samples in one outbox entry of [`item`]: six CPU columns and the host's OOM kill count.
const PER_ENTRY: usize = 7;

fn open_store(dir: &std::path::Path) -> Arc<Store> {
    let o = StoreOptions {
        outbox_limit: Some(100_000),
        ..Default::default()
    };
    Arc::new(Store::open(dir, o).unwrap())
}

/// Hosts h0, h1... known to the store; their numbers.
fn add_hosts(store: &Store, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            let id = HostIdentity {
                host_id: format!("h{i}"),
                hostname: format!("host{i}"),
                cluster: "c".into(),
                ..Default::default()
            };
            store.upsert_host(&id, 0, true).unwrap().num
        })
        .collect()
}

/// Steps `steps` of every host stored, step by step: one outbox entry per host and step.
fn store_steps(store: &Store, hosts: &[u32], steps: std::ops::RangeInclusive<u64>) {
    for step in steps {
        let items: Vec<IngestItem> = hosts.iter().map(|h| item(*h, step)).collect();
        store.write(&items, 0).unwrap();
    }
}

/// Options with `shards` shards and one step of `hosts` hosts per read batch.
fn sharded(url: &str, shards: usize, hosts: usize) -> RemoteWriteOptions {
    let mut o = options(url);
    o.queue_entries = 100_000;
    o.sender.shards = shards;
    o.sender.max_samples = hosts * PER_ENTRY;
    o
}

/// The stored series the fake took (not the live ones, sent at the collector's time), each
/// with its samples' times in arrival order.
fn stored_series(fake: &Fake) -> HashMap<String, Vec<i64>> {
    let series = fake.series.lock().unwrap();
    (series.iter())
        .filter(|(name, _)| {
            !name.contains(names::HOST_UP) && !name.contains(names::COLLECTOR_OFFSET)
        })
        .map(|(name, times)| (name.clone(), times.clone()))
        .collect()
}

fn newest_taken(fake: &Fake) -> i64 {
    (stored_series(fake).values())
        .filter_map(|t| t.iter().max().copied())
        .max()
        .unwrap_or(0)
}

/// Sends a backlog of `steps` steps of `hosts` hosts with `shards` shards to a receiver that
/// answers each request after 100 ms; the receiver and how long it took.
async fn send_backlog(shards: usize, hosts: usize, steps: u64) -> (Arc<Fake>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let nums = add_hosts(&store, hosts);
    store_steps(&store, &nums, 1..=steps);
    let fake = Arc::new(Fake::default());
    *fake.delay.lock().unwrap() = Duration::from_millis(100);
    let url = fake_receiver(fake.clone()).await;
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let opts = sharded(&url, shards, hosts);
    let rw = RemoteWrite::start(store.clone(), Arc::default(), &opts, stop).unwrap();
    let stats = rw.stats()[0].clone();
    let next = store.outbox_span().1;
    wait_until("the backlog sent", || stats.cursor.load(Relaxed) == next).await;
    let took = started.elapsed();
    assert_eq!(stats.shards, shards);
    assert_eq!(
        stats.samples.load(Relaxed),
        hosts as u64 * steps * PER_ENTRY as u64
    );
    stop_tx.send(true).unwrap();
    rw.shutdown().await;
    (fake, took)
}

/// Each stored series complete, in time order, once.
fn assert_complete(fake: &Fake, hosts: usize, steps: u64) {
    let series = stored_series(fake);
    assert_eq!(series.len(), hosts * PER_ENTRY, "{:?}", series.keys());
    for (name, times) in &series {
        assert_eq!(times, &expected(1..=steps), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_send_in_parallel_and_keep_each_series_in_order() {
    let (hosts, steps) = (16, 30);
    let (one, one_took) = send_backlog(1, hosts, steps).await;
    let (four, four_took) = send_backlog(4, hosts, steps).await;
    eprintln!("a backlog of {steps} batches at 100 ms a request: 1 shard {one_took:?}, 4 shards {four_took:?}");
    // One request in flight per shard, and every shard busy at once.
    assert_eq!(one.most_active.load(Relaxed), 1);
    assert_eq!(four.most_active.load(Relaxed), 4);
    assert_complete(&one, hosts, steps);
    assert_complete(&four, hosts, steps);
}

/// A sender held back by a failing shard, and what it runs against.
struct HeldBack {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    fake: Arc<Fake>,
    url: String,
    rw: RemoteWrite,
    stop_tx: watch::Sender<bool>,
}

/// Stores 20 steps of 8 hosts and sends them with 4 shards to a receiver that fails every
/// request holding h0's `fleet_cpu_idle_percent` from step 5 on; returns once the other shards
/// went as far as the window lets them: step 12 (8 batches of one step past the cursor).
async fn held_back_from_step_5() -> HeldBack {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let fake = Arc::new(Fake::default());
    let url = fake_receiver(fake.clone()).await;
    let (hosts, steps) = (8, 20);
    let nums = add_hosts(&store, hosts);
    *fake.failing.lock().unwrap() = Some(("h0".into(), expected(5..=5)[0]));
    let (stop_tx, stop) = watch::channel(false);
    let opts = sharded(&url, 4, hosts);
    let rw = RemoteWrite::start(store.clone(), Arc::default(), &opts, stop).unwrap();
    let stats = rw.stats()[0].clone();
    // Steps 1 to 4 accepted by every shard: the cursor after them (8 entries a step). Stored
    // first, so that no shard joins step 4 with step 5 in one request.
    store_steps(&store, &nums, 1..=4);
    let after_step_4 = 4 * hosts as u64 + 1;
    wait_until("steps 1 to 4", || {
        stats.cursor.load(Relaxed) == after_step_4
    })
    .await;
    store_steps(&store, &nums, 5..=steps);
    let step_12 = expected(12..=12)[0];
    wait_until("the other shards at the window's end", || {
        stats.failures.load(Relaxed) >= 3 && newest_taken(&fake) == step_12
    })
    .await;
    // The reader waits: nothing past the window, the cursor at the failing batch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(newest_taken(&fake), step_12);
    assert_eq!(stats.cursor.load(Relaxed), after_step_4);
    assert_eq!(store.outbox_cursor(&url).unwrap(), Some(after_step_4));
    let h0_idle: Vec<i64> = (fake.idle.lock().unwrap().iter())
        .filter(|(h, _)| h == "h0")
        .map(|s| s.1)
        .collect();
    assert_eq!(h0_idle, expected(1..=4));
    HeldBack {
        dir,
        store,
        fake,
        url,
        rw,
        stop_tx,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_shard_holds_the_cursor_back_while_the_others_go_on() {
    let held = held_back_from_step_5().await;
    let (store, fake) = (&held.store, &held.fake);
    let stats = held.rw.stats()[0].clone();
    // The receiver takes h0 again: the shard catches up, then the cursor.
    *fake.failing.lock().unwrap() = None;
    let next = store.outbox_span().1;
    wait_until("caught up", || stats.cursor.load(Relaxed) == next).await;
    assert_complete(fake, 8, 20);
    assert_eq!(store.outbox_cursor(&held.url).unwrap(), Some(next));
    held.stop_tx.send(true).unwrap();
    held.rw.shutdown().await;
}

/// Holds a sender back from step 5 (as [`held_back_from_step_5`]), stops it, and starts it
/// again on the same store with read batches of `steps` steps and the receiver taking h0
/// again; what the receiver had before the restart and its counters after.
async fn restarted_after_a_hold(
    strict: bool,
    steps: usize,
) -> (Arc<Fake>, HashMap<String, Vec<i64>>, Arc<SenderStats>) {
    let held = held_back_from_step_5().await;
    held.stop_tx.send(true).unwrap();
    held.rw.shutdown().await;
    let (dir, store, fake, url) = (held.dir, held.store, held.fake, held.url);
    let before = stored_series(&fake);
    let store = Arc::try_unwrap(store)
        .ok()
        .expect("the senders let the store go");
    drop(store);
    let store = open_store(dir.path());
    *fake.failing.lock().unwrap() = None;
    *fake.strict.lock().unwrap() = strict;
    let (stop_tx, stop) = watch::channel(false);
    let mut opts = sharded(&url, 4, 8);
    opts.sender.max_samples *= steps;
    let rw = RemoteWrite::start(store.clone(), Arc::default(), &opts, stop).unwrap();
    let stats = rw.stats()[0].clone();
    let next = store.outbox_span().1;
    wait_until("caught up", || stats.cursor.load(Relaxed) == next).await;
    stop_tx.send(true).unwrap();
    rw.shutdown().await;
    (fake, before, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resends_from_the_cursor_what_not_every_shard_delivered() {
    let (fake, before, _) = restarted_after_a_hold(false, 1).await;
    // Each series: what it had, then everything from the cursor (step 5) again. Steps 1 to 4,
    // before the cursor, are never sent twice; steps 5 to 12 that other shards had delivered
    // are (at least once).
    let after = stored_series(&fake);
    assert_eq!(after.len(), 8 * PER_ENTRY);
    let mut resent = 0;
    for (name, times) in &after {
        let had = before.get(name).cloned().unwrap_or_default();
        assert_eq!(had[..4], expected(1..=4), "{name}");
        assert_eq!(times[..had.len()], had[..], "{name}");
        assert_eq!(times[had.len()..], expected(5..=20), "{name}");
        resent += had.len() - 4;
    }
    assert!(
        resent > 0,
        "other shards had delivered steps after the cursor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_refusing_what_it_has_loses_nothing_after_a_restart() {
    // Read batches of 3 steps after the restart: without resending one entry per request, a
    // shard would join steps 11 and 12, which it had delivered, with step 13, which it had
    // not, and the whole request would be refused.
    let (fake, _, stats) = restarted_after_a_hold(true, 3).await;
    assert_complete(&fake, 8, 20);
    assert!(stats.rejected.load(Relaxed) > 0, "the resent steps refused");
}
