//! The senders against a fake receiver in this process: in order, retried through an outage,
//! a refused request skipped and counted, and resumed from the persisted cursor after a restart
//! without sending again what was accepted.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// (host_id, time) of every `fleet_cpu_idle_percent` sample accepted, in arrival order.
    idle: Mutex<Vec<(String, i64)>>,
    headers_ok: Mutex<bool>,
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
                        let h = req.headers();
                        let ok = h["content-encoding"] == "snappy"
                            && h["content-type"] == "application/x-protobuf"
                            && h["x-prometheus-remote-write-version"] == "0.1.0";
                        *fake.headers_ok.lock().unwrap() = ok;
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let status = *fake.status.lock().unwrap();
                        if status / 100 == 2 {
                            let wr = wire::decode_body(&body).unwrap();
                            let mut idle = fake.idle.lock().unwrap();
                            for ts in wr.timeseries {
                                let label = |n: &str| {
                                    ts.labels
                                        .iter()
                                        .find(|l| l.name == n)
                                        .map(|l| l.value.clone())
                                };
                                if label("__name__").as_deref() == Some("fleet_cpu_idle_percent") {
                                    let host = label("host_id").unwrap();
                                    idle.extend(
                                        ts.samples.iter().map(|s| (host.clone(), s.timestamp)),
                                    );
                                }
                            }
                        }
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
    for _ in 0..500 {
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
    wait_until("a rejection", || stats.rejected.load(Relaxed) == 1).await;
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
