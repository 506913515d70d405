//! A stream's acknowledgements: each batch's Ack goes out once its write returned, in stream
//! order, paced as the agent asked in its hello (`Hello.ack_delay_ms`).
//!
//! An Ack is cumulative (every batch up to its seq is durable), so one can stand for several.
//! An agent sampling every second wakes up for each message the collector sends it: an Ack per
//! batch doubles its wake-ups, and a wake-up with cold caches is a good part of what a sample
//! costs. So the agent may ask the collector to hold Acks back for up to `ack_delay_ms`: the
//! first batch stored after an Ack starts the clock, and one Ack goes out when it runs out, when
//! [`ACK_EVERY`] batches are held (a backlog being resent keeps its window moving), when the
//! agent ended its side of the stream or the collector is stopping (nothing more is coming), and
//! before the stream is ended with an error. An agent that asks for 0 (an older one, a test) gets
//! each Ack as soon as its batch is stored.
//!
//! What a held Ack does not delay: the batch is stored and fed to the live host state (rules,
//! alerts, the console) as soon as its write returns, as before.

use std::sync::Arc;
use std::time::Duration;

use fleet_proto::v1::{collector_message, Ack, CollectorMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use super::writer::Written;
use crate::rules::{Live, Observation};
use crate::storage::WriteOutcome;

/// Batches one held Ack may stand for at most (an agent keeps 256 in flight).
pub const ACK_EVERY: u32 = 16;
/// The longest an agent may have its Acks held back: what it asks for above this is cut to it.
pub const MAX_ACK_DELAY: Duration = Duration::from_secs(10);

/// What a session sends its agent.
pub(super) type Outbound = mpsc::Sender<Result<CollectorMessage, Status>>;

/// A batch queued for the writer, waiting for its write to return.
pub(super) struct Pending {
    pub(super) seq: u64,
    pub(super) written: Written,
    /// What the batch tells the live state, once stored.
    pub(super) observation: Observation,
}

/// The Ack being held back: the highest seq stored, how many batches it covers, and when it
/// must go out.
#[derive(Debug, Default, PartialEq, Eq)]
struct Held {
    seq: u64,
    batches: u32,
    due: Option<Instant>,
}

impl Held {
    /// Counts `seq` as stored at `now`; true when the Ack must go out now.
    fn stored(&mut self, seq: u64, now: Instant, delay: Duration) -> bool {
        self.seq = self.seq.max(seq);
        self.batches += 1;
        let due = *self.due.get_or_insert(now + delay);
        self.batches >= ACK_EVERY || now >= due
    }

    /// The seq to acknowledge, if any batch is held; nothing is held after it.
    fn take(&mut self) -> Option<u64> {
        let seq = (self.batches > 0).then_some(self.seq);
        *self = Held::default();
        seq
    }
}

/// The Ack message for `seq`.
fn ack(seq: u64) -> Result<CollectorMessage, Status> {
    Ok(CollectorMessage {
        msg: Some(collector_message::Msg::Ack(Ack { seq })),
    })
}

/// The delay an agent asked for, cut to [`MAX_ACK_DELAY`].
pub(super) fn ack_delay(asked_ms: u32) -> Duration {
    Duration::from_millis(u64::from(asked_ms)).min(MAX_ACK_DELAY)
}

/// Acknowledges each queued batch once its write returned, in stream order and paced by `delay`
/// (see the module), after feeding the live state what a batch stored for the first time said;
/// ends the stream with `Unavailable` (after acknowledging what was stored before) if a write
/// failed, a batch was not stored behind one that failed, or the writer stopped.
pub(super) fn spawn_acker(
    out: Outbound,
    mut pending: mpsc::Receiver<Pending>,
    live: Arc<Live>,
    host_num: u32,
    delay: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut held = Held::default();
        loop {
            let next = match held.due {
                Some(due) => tokio::select! {
                    p = pending.recv() => p,
                    () = tokio::time::sleep_until(due) => {
                        let seq = held.take().expect("a due Ack is held");
                        if out.send(ack(seq)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                },
                None => pending.recv().await,
            };
            // The stream ended or the collector is stopping: nothing more is coming.
            let Some(Pending {
                seq,
                written,
                mut observation,
            }) = next
            else {
                break;
            };
            let refusal = match written.await {
                Ok(Ok(WriteOutcome::Stored { repeated_kills })) => {
                    observation.forget_kills(&repeated_kills);
                    live.observe(host_num, observation);
                    None
                }
                Ok(Ok(WriteOutcome::Duplicate)) => None,
                Ok(Ok(WriteOutcome::Blocked)) => Some(Status::unavailable(format!(
                    "batch {seq} not stored: a batch sent before it was not stored; \
                     resend from the welcome"
                ))),
                Ok(Err(e)) => Some(Status::unavailable(format!("storage write failed: {e}"))),
                Err(_) => Some(Status::unavailable("collector shutting down")),
            };
            if let Some(status) = refusal {
                if let Some(seq) = held.take() {
                    let _ = out.send(ack(seq)).await;
                }
                let _ = out.send(Err(status)).await;
                return;
            }
            if held.stored(seq, Instant::now(), delay) {
                let seq = held.take().expect("a batch was just held");
                if out.send(ack(seq)).await.is_err() {
                    return;
                }
            }
        }
        if let Some(seq) = held.take() {
            let _ = out.send(ack(seq)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_ack_goes_out_when_due_or_full() {
        let t0 = Instant::now();
        let delay = Duration::from_secs(2);
        let mut h = Held::default();
        assert_eq!(h.take(), None, "nothing held, nothing to send");
        assert!(!h.stored(5, t0, delay));
        assert!(!h.stored(6, t0 + Duration::from_secs(1), delay));
        assert_eq!(
            h.due,
            Some(t0 + delay),
            "the first batch held starts the clock"
        );
        assert!(h.stored(7, t0 + delay, delay), "due");
        assert_eq!(h.take(), Some(7));
        assert_eq!(h, Held::default());

        for seq in 1..ACK_EVERY {
            assert!(!h.stored(u64::from(seq), t0, delay));
        }
        assert!(h.stored(99, t0, delay), "full");
        assert_eq!(h.take(), Some(99));

        // A duplicate resent below what is held does not lower it.
        h.stored(10, t0, delay);
        h.stored(4, t0, delay);
        assert_eq!(h.take(), Some(10));
    }

    #[test]
    fn no_delay_acknowledges_each_batch_and_a_long_one_is_cut() {
        let mut h = Held::default();
        assert!(h.stored(1, Instant::now(), ack_delay(0)));
        assert_eq!(ack_delay(2000), Duration::from_secs(2));
        assert_eq!(ack_delay(u32::MAX), MAX_ACK_DELAY);
    }
}
