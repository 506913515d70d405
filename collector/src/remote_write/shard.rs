//! One shard of a receiver's send queue: takes its parts of the read batches in order, joins
//! those waiting into one request of up to [`SenderOptions::max_samples`] samples (not the
//! parts marked `Part::alone`), sends it
//! (one request in flight per shard) until the receiver accepts or refuses it for good, then
//! reports each part done to the reader, which moves the cursor.
//!
//! - 2xx: done.
//! - 5xx, 429, no connection, a timeout: the same body again after a jittered backoff
//!   ([`Backoff`], 0.5 s to 30 s), counted in `failures`; the first failure of an outage and
//!   the recovery are logged once per receiver, whichever shard sees them.
//! - Another answer (a 4xx: the receiver will never take it): counted in `rejected`, logged at
//!   warn the first time (debug after), and done: the parts are skipped.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

use fleet_proto::backoff::Backoff;
use fleet_proto::clock::now_ms;
use fleet_proto::v1::HostIdentity;
use tokio::sync::{mpsc, watch};

use super::client::{Outcome, Receiver};
use super::sender::{sleep_or_stop, SenderOptions, SenderStats};
use super::series::Batch;
use super::wire;
use crate::storage::Store;

/// What a receiver's reader and shards share.
pub(super) struct Target {
    pub(super) store: Arc<Store>,
    pub(super) receiver: Receiver,
    pub(super) stats: Arc<SenderStats>,
    pub(super) opts: SenderOptions,
    /// A refusal was logged at warn (later ones at debug).
    logged_rejection: AtomicBool,
    /// When the receiver started failing (Unix ms), 0 while it accepts: one warning per outage,
    /// however many shards meet it.
    failing_since: AtomicI64,
}

/// A shard's part of one read batch.
pub(super) struct Part {
    /// The read batch's id in the reader's window.
    pub(super) id: u64,
    pub(super) batch: Batch,
    /// Sent in a request of its own: one entry resent after a restart, which this shard had
    /// either delivered whole or not at all (a receiver such as Prometheus refuses a whole
    /// request for one sample it already has).
    pub(super) alone: bool,
}

/// How a delivery ended.
pub(super) enum Delivered {
    Accepted,
    Rejected,
    Stopped,
}

impl Target {
    pub(super) fn new(
        store: Arc<Store>,
        receiver: Receiver,
        stats: Arc<SenderStats>,
        opts: SenderOptions,
    ) -> Target {
        Target {
            store,
            receiver,
            stats,
            opts,
            logged_rejection: AtomicBool::new(false),
            failing_since: AtomicI64::new(0),
        }
    }

    /// The request body of `batch`: its series with their hosts' labels, snappy-compressed.
    fn body(&self, batch: Batch) -> Option<Vec<u8>> {
        let store = &self.store;
        let hosts =
            |num: u32| -> Option<HostIdentity> { store.host_by_num(num).map(|r| r.identity) };
        match wire::body(&batch.into_request(&hosts, &self.opts.labels)) {
            Ok(b) if !b.is_empty() => Some(b),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, "remote-write: cannot compress a request; skipped");
                None
            }
        }
    }

    /// Posts `body` until the receiver accepts or refuses it for good, or the collector stops.
    pub(super) async fn deliver(
        &self,
        body: Vec<u8>,
        stop: &mut watch::Receiver<bool>,
    ) -> Delivered {
        let mut backoff = Backoff::new(self.opts.backoff_base, self.opts.backoff_cap);
        loop {
            let outcome = tokio::select! {
                o = self.receiver.post(body.clone()) => o,
                // A stop interrupts a slow post: what it carried is sent again after a restart.
                _ = stop.changed() => return Delivered::Stopped,
            };
            match outcome {
                Outcome::Accepted => {
                    let since = self.failing_since.swap(0, Relaxed);
                    if since != 0 {
                        tracing::info!(receiver = %self.stats.receiver, down_s = (now_ms() - since) / 1000, "remote-write: receiver accepts again");
                    }
                    return Delivered::Accepted;
                }
                Outcome::Rejected(why) => {
                    self.stats.rejected.fetch_add(1, Relaxed);
                    if self.logged_rejection.swap(true, Relaxed) {
                        tracing::debug!(receiver = %self.stats.receiver, why, "remote-write: request refused; its entries skipped");
                    } else {
                        tracing::warn!(receiver = %self.stats.receiver, why, "remote-write: request refused; its entries skipped (logged once; counted in fleet_collector_remote_write_rejected_total)");
                    }
                    return Delivered::Rejected;
                }
                Outcome::Retry(why) => {
                    self.stats.failures.fetch_add(1, Relaxed);
                    let first = (self.failing_since)
                        .compare_exchange(0, now_ms().max(1), Relaxed, Relaxed)
                        .is_ok();
                    if first {
                        tracing::warn!(receiver = %self.stats.receiver, why, "remote-write: receiver failing; retrying with backoff");
                    }
                    if sleep_or_stop(stop, backoff.next_delay()).await {
                        return Delivered::Stopped;
                    }
                }
            }
        }
    }
}

/// Runs one shard until `stop` turns true or the reader closes `parts`.
pub(super) async fn run(
    target: Arc<Target>,
    mut parts: mpsc::Receiver<Part>,
    done: mpsc::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let max = target.opts.max_samples;
    // A part taken from the queue that did not fit in the last request.
    let mut carry: Option<Part> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let first = match carry.take() {
            Some(p) => p,
            None => tokio::select! {
                p = parts.recv() => match p {
                    Some(p) => p,
                    None => return,
                },
                _ = stop.changed() => return,
            },
        };
        let mut ids = vec![first.id];
        let alone = first.alone;
        let mut batch = first.batch;
        while batch.samples < max && !alone {
            match parts.try_recv() {
                Ok(p) if p.alone || batch.samples + p.batch.samples > max => {
                    carry = Some(p);
                    break;
                }
                Ok(p) => {
                    ids.push(p.id);
                    batch.append(p.batch);
                }
                Err(_) => break,
            }
        }
        let samples = batch.samples as u64;
        if let Some(body) = target.body(batch) {
            target.stats.in_flight.fetch_add(1, Relaxed);
            let delivered = target.deliver(body, &mut stop).await;
            target.stats.in_flight.fetch_sub(1, Relaxed);
            match delivered {
                Delivered::Stopped => return,
                Delivered::Accepted => {
                    target.stats.samples.fetch_add(samples, Relaxed);
                    target.stats.requests.fetch_add(1, Relaxed);
                }
                Delivered::Rejected => {}
            }
        }
        for id in ids {
            if done.send(id).await.is_err() {
                return;
            }
        }
    }
}
