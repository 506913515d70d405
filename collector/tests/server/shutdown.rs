//! Graceful shutdown: the shutdown future stops the server, and what was acknowledged is in the
//! store when `run` returns.

use fleet_proto::v1::Activity;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_every_acknowledged_batch_into_the_store() {
    let mut c = Collector::start().await;
    let client = c.ingest().await;
    let mut a = AgentStream::connect(&client, "h1", "prod", 1).await;
    let t = ago(600);
    a.store(batch(1, t)).await;
    // Batches in flight when the shutdown comes: the session stops reading, and acks what it took.
    const SENT: u64 = 200;
    for seq in 2..=SENT {
        a.send_batch(batch(seq, t + seq as i64 * 1000)).await;
    }
    let acks = async {
        let mut acked = vec![1];
        loop {
            match a.next().await {
                Said::Ack(seq) => acked.push(seq),
                Said::Ended | Said::Refused(_) => return acked,
            }
        }
    };
    let ((), acked) = tokio::join!(c.stop(), acks);

    // Acks come in stream order, one per batch taken.
    let last = *acked.last().unwrap();
    assert_eq!(acked, (1..=last).collect::<Vec<_>>());
    assert!(last <= SENT);
    // `run` returned: each acknowledged batch is in the store, nothing else, and the host is
    // marked disconnected.
    let h = host(&c.store, "h1").unwrap();
    assert!(!h.connected);
    assert!(
        h.last_seq >= last,
        "acked {last}, stored up to {}",
        h.last_seq
    );
    let rows = c.store.query(h.num, Activity::Cpu, 0, i64::MAX).unwrap();
    assert_eq!(rows.len() as u64, h.last_seq);
    // Nothing of the server holds the store any more: it can be closed.
    assert_eq!(std::sync::Arc::strong_count(&c.store), 1);
    // The listener is closed.
    let url = format!("http://{}", c.addr);
    assert!(fleet_proto::v1::ingest_client::IngestClient::connect(url)
        .await
        .is_err());
}
