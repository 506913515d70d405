//! [`Connection`]: the agent's one stream to the collector, kept open across outages.
//!
//! It owns what a link needs and nothing else: the [`Connector`] (attempts read the TLS files
//! again), the [`Backoff`] between attempts (0.5 s doubling to 30 s, jittered), the link state
//! behind the log lines, and the window of batches in flight. The agent's loop sees one stream
//! of [`LinkEvent`]s from [`Connection::next_event`]; acknowledgements go straight into the
//! spool and time probes are answered inside.
//!
//! The backoff starts again from 0.5 s only after a stream stayed up for [`HEALTHY_AFTER`]: a
//! collector that welcomes the agent and then cuts the stream at once (a message it cannot
//! send, a batch it refuses) sees the agent's attempts slow down, not come three times a second.
//!
//! A batch the collector refuses as invalid (`InvalidArgument`, `batch seq N: ...`, see
//! [`fleet_proto::check`]) is set aside in the spool ([`Spool::set_aside`]): logged once, kept
//! on disk, never sent again; the stream comes back and the batches after it flow on.
//!
//! ```text
//!           ┌──────── backoff ◄─────── attempt failed (logged once per outage and reason)
//!           ▼                                   │
//! Waiting ──► Connecting ── Hello … Welcome ──► Up ── Ack{seq} ──► Spool::ack, pump
//!   ▲                                           │  ── TimeProbe ──► TimeEcho
//!   └────────────── stream lost ◄───────────────┘  ── PolicySync ──► LinkEvent::PolicySync
//!                   (a refused batch set aside)
//! ```
//!
//! Outage logging: one warning when an outage starts (`collector unreachable; …` or `stream to
//! collector lost; …`), one more only when the reason of the failed attempts changes, one info
//! line when it ends (`collector reachable again; …`); every other failed attempt is at debug.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use fleet_proto::backoff::Backoff;
use fleet_proto::check::Refusal;
use fleet_proto::clock::now_us;
use fleet_proto::errors;
use fleet_proto::v1::{
    agent_message, collector_message, AgentMessage, Batch, CollectorMessage, KmsgStatus,
    PolicySpec, TimeEcho,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::Status;
use tracing::{debug, error, info, warn};

use super::connector::{Connector, Session};
use super::outbound::{Outbound, SpooledBatch};
use crate::spool::{Spool, SpoolError};

/// Batches sent but not yet acknowledged, at most.
pub const MAX_IN_FLIGHT: u64 = 256;
/// How long the collector may hold its Acks back so that one covers several batches
/// (`Hello.ack_delay_ms`): the agent wakes up for an Ack every other second instead of after each
/// sample. Well inside the spool's `SYNC_EVERY` (5 s), so a sample the collector holds is still
/// acknowledged before it would be owed an fsync of its own.
pub const ACK_DELAY: Duration = Duration::from_secs(2);
/// How long a graceful shutdown waits for the collector to acknowledge what is in flight.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);
/// How long a new stream may take to bring the collector's `Welcome`.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry delay; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// The longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a stream stays up before the backoff starts again from [`BACKOFF_BASE`]; a welcome
/// alone does not reset it.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// What the link tells the agent's loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A stream is up: the collector holds every batch up to `last_seq`, and the spool sends
    /// again from there.
    Connected { last_seq: u64 },
    /// The collector's OOM policies (the whole set, replacing the previous one).
    PolicySync(Vec<PolicySpec>),
    /// The stream ended, for this reason; a new attempt follows after the backoff.
    Lost(String),
}

/// An attempt under way: the stream, then the collector's welcome and its `last_seq`.
type Attempt = Pin<Box<dyn Future<Output = Result<(Session, u64), String>> + Send>>;

/// Where the link is.
enum State {
    /// No stream; the next attempt starts at this instant.
    Waiting(Instant),
    Connecting(Attempt),
    Up(Session),
    /// After the shutdown flush: no more attempts.
    Closed,
}

/// The state of the link as the log shows it, for logging once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Starting,
    Up,
    Down,
}

/// The agent's stream to the collector; see the module doc.
pub struct Connection<C> {
    connector: C,
    /// The first message of every stream.
    hello: AgentMessage,
    /// The collector's URL, for the log lines.
    collector: String,
    state: State,
    backoff: Backoff,
    shown: Shown,
    /// Why the last attempt failed, so that only a new reason is logged again.
    last_connect_error: Option<String>,
    down_since: Instant,
    /// When the stream that is up now was welcomed.
    up_since: Instant,
    /// The kernel log counters stamped on every batch sent, as the agent last gave them.
    kmsg: Option<KmsgStatus>,
}

impl<C: Connector> Connection<C> {
    /// A link that makes its first attempt at once (on the first [`next_event`](Self::next_event)).
    pub fn new(connector: C, hello: AgentMessage, collector: String) -> Connection<C> {
        let mut connection = Connection {
            connector,
            hello,
            collector,
            state: State::Waiting(Instant::now()),
            backoff: Backoff::new(BACKOFF_BASE, BACKOFF_MAX),
            shown: Shown::Starting,
            last_connect_error: None,
            down_since: Instant::now(),
            up_since: Instant::now(),
            kmsg: None,
        };
        connection.state = State::Connecting(connection.attempt());
        connection
    }

    /// Whether a stream is up.
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    /// The open stream's sender, for live messages (policy reports, process lists).
    pub fn sender(&self) -> Option<&mpsc::Sender<Outbound>> {
        match &self.state {
            State::Up(s) => Some(&s.tx),
            _ => None,
        }
    }

    /// Drops the stream (or the attempt) and connects again at once, with the backoff reset
    /// (SIGHUP: rotated certificates). What was in flight is sent again from the spool; the
    /// collector drops what it already has.
    pub fn reconnect(&mut self) {
        if !matches!(self.state, State::Waiting(_)) {
            self.shown = Shown::Down;
            self.down_since = Instant::now();
        }
        self.backoff.reset();
        self.state = State::Waiting(Instant::now());
    }

    /// Waits for the next thing the agent must hear of, connecting, backing off and applying
    /// acknowledgements on the way. Cancel-safe: every wait keeps its state in `self`, so the
    /// agent can call it in a `select!`.
    ///
    /// # Errors
    /// Only a spool that cannot be written (after a welcome, or pumping after an ack).
    pub async fn next_event(&mut self, spool: &mut Spool) -> Result<LinkEvent, SpoolError> {
        loop {
            match &mut self.state {
                State::Waiting(at) => {
                    tokio::time::sleep_until(*at).await;
                    self.state = State::Connecting(self.attempt());
                }
                State::Connecting(attempt) => {
                    let outcome = attempt.await;
                    self.state = State::Waiting(Instant::now());
                    match outcome {
                        Ok((session, last_seq)) => return self.connected(session, last_seq, spool),
                        Err(e) => self.attempt_failed(e),
                    }
                }
                State::Up(session) => {
                    let msg = session.inbound.next().await;
                    match handle_inbound(msg, spool, Some(&session.tx)) {
                        Ok(Inbound::Nothing) => {}
                        Ok(Inbound::Acked) => pump(&session.tx, spool, self.kmsg)?,
                        Ok(Inbound::Policies(specs)) => return Ok(LinkEvent::PolicySync(specs)),
                        Err(lost) => return self.lost(lost, spool),
                    }
                }
                State::Closed => std::future::pending().await,
            }
        }
    }

    /// Sends spooled batches while the in-flight window ([`MAX_IN_FLIGHT`]) and the channel
    /// have room; room in the channel is reserved before a frame is read from the spool. `kmsg`
    /// is stamped on every batch (and on those sent after later acks). Nothing to do without a
    /// stream.
    ///
    /// # Errors
    /// The spool cannot be read.
    pub fn pump(&mut self, spool: &mut Spool, kmsg: Option<KmsgStatus>) -> Result<(), SpoolError> {
        self.kmsg = kmsg;
        match &self.state {
            State::Up(session) => pump(&session.tx, spool, kmsg),
            _ => Ok(()),
        }
    }

    /// Graceful shutdown: sends what is spooled, ends the agent's side of the stream once all
    /// of it is sent (the collector then sends the Acks it holds back at once, see [`ACK_DELAY`])
    /// and waits up to [`SHUTDOWN_FLUSH`] for the acknowledgements, then closes the stream for
    /// good. Nothing to send without a stream.
    ///
    /// # Errors
    /// The spool cannot be read.
    pub async fn flush(&mut self, spool: &mut Spool) -> Result<(), SpoolError> {
        let State::Up(Session { tx, mut inbound }) =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            return Ok(());
        };
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        let mut tx = Some(tx);
        while spool.pending_frames() > 0 {
            if let Some(sender) = &tx {
                pump(sender, spool, self.kmsg)?;
                if spool.all_sent() {
                    tx = None;
                }
            }
            let Ok(msg) = tokio::time::timeout_at(deadline, inbound.next()).await else {
                break;
            };
            if handle_inbound(msg, spool, tx.as_ref()).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Starts an attempt: the connector opens the stream, then the collector's welcome is
    /// awaited.
    fn attempt(&mut self) -> Attempt {
        let open = self.connector.connect(self.hello.clone());
        Box::pin(async move {
            let mut session = open.await?;
            let first = tokio::time::timeout(WELCOME_TIMEOUT, session.inbound.next())
                .await
                .map_err(|_| "no welcome from the collector".to_string())?
                .transpose()
                .map_err(|s| errors::status(&s))?;
            match first.and_then(|m| m.msg) {
                Some(collector_message::Msg::Welcome(w)) => Ok((session, w.last_seq)),
                other => Err(format!("expected a welcome, got {other:?}")),
            }
        })
    }

    /// A welcome came: the spool resumes after what the collector has, and the end of an
    /// outage is logged.
    fn connected(
        &mut self,
        session: Session,
        last_seq: u64,
        spool: &mut Spool,
    ) -> Result<LinkEvent, SpoolError> {
        if spool.resume_after(last_seq)? {
            warn!(
                last_seq,
                "collector has newer sequence numbers than the spool; numbering continues above them"
            );
        }
        if self.shown == Shown::Down {
            info!(
                outage_secs = self.down_since.elapsed().as_secs(),
                backlog = spool.pending_frames(),
                "collector reachable again; replaying spool"
            );
        } else {
            info!(collector = %self.collector, backlog = spool.pending_frames(), "connected to collector");
        }
        self.shown = Shown::Up;
        self.last_connect_error = None;
        self.up_since = Instant::now();
        self.state = State::Up(session);
        Ok(LinkEvent::Connected { last_seq })
    }

    /// The stream ended: a batch the collector refused as invalid is set aside, the loss is
    /// logged, and the next attempt waits for the backoff (from its start again only after a
    /// stream that was up for [`HEALTHY_AFTER`]).
    ///
    /// # Errors
    /// The spool cannot set the refused batch aside.
    fn lost(&mut self, lost: Lost, spool: &mut Spool) -> Result<LinkEvent, SpoolError> {
        warn!(error = %lost.reason, backlog = spool.pending_frames(), "stream to collector lost; reconnecting");
        if let Some(seq) = lost.refused {
            if let Some(aside) = spool.set_aside(seq, &lost.reason)? {
                error!(
                    seq,
                    kept_in = %aside.path.display(),
                    samples = aside.samples,
                    oom_events = aside.precious,
                    rejected_batches = spool.rejected_batches(),
                    "the collector refused a batch as invalid: set aside, it will not be sent again (its samples count as dropped)"
                );
            }
        }
        if self.up_since.elapsed() >= HEALTHY_AFTER {
            self.backoff.reset();
        }
        self.shown = Shown::Down;
        self.down_since = Instant::now();
        self.state = State::Waiting(Instant::now() + self.backoff.next_delay());
        Ok(LinkEvent::Lost(lost.reason))
    }

    /// An attempt failed: the start of an outage is logged, and a new reason for it; the next
    /// attempt waits for the backoff.
    fn attempt_failed(&mut self, e: String) {
        if self.shown != Shown::Down {
            warn!(collector = %self.collector, error = %e,
                "collector unreachable; samples are spooled on disk until it is back");
            self.shown = Shown::Down;
            self.down_since = Instant::now();
        } else if self
            .last_connect_error
            .as_ref()
            .is_some_and(|last| *last != e)
        {
            // A new reason (the collector came back but refuses this agent's certificate, say)
            // is worth a line; the same one again is not.
            warn!(collector = %self.collector, error = %e,
                "still no connection to the collector; the reason changed");
        } else {
            debug!(error = %e, "reconnect failed");
        }
        self.last_connect_error = Some(e);
        self.state = State::Waiting(Instant::now() + self.backoff.next_delay());
    }
}

/// Why a stream ended.
struct Lost {
    /// As logged and reported.
    reason: String,
    /// The seq of the batch the collector refused as invalid, if that is why.
    refused: Option<u64>,
}

impl Lost {
    fn closed(reason: impl Into<String>) -> Lost {
        Lost {
            reason: reason.into(),
            refused: None,
        }
    }

    fn status(s: &Status) -> Lost {
        Lost {
            reason: format!("{}: {}", s.code(), s.message()),
            refused: (s.code() == tonic::Code::InvalidArgument)
                .then(|| Refusal::seq_in(s.message()))
                .flatten(),
        }
    }
}

/// What one message from the collector asks of the link.
enum Inbound {
    Nothing,
    /// The spool freed what was acknowledged: there may be room in the window.
    Acked,
    Policies(Vec<PolicySpec>),
}

/// Handles one message from the collector; the error is why the stream is lost. `tx` is None
/// once the agent ended its side of the stream (a time probe then goes unanswered).
fn handle_inbound(
    msg: Option<Result<CollectorMessage, Status>>,
    spool: &mut Spool,
    tx: Option<&mpsc::Sender<Outbound>>,
) -> Result<Inbound, Lost> {
    use collector_message::Msg;
    let msg = match msg {
        Some(Ok(m)) => m,
        None => return Err(Lost::closed("collector closed the stream")),
        Some(Err(s)) => return Err(Lost::status(&s)),
    };
    match msg {
        CollectorMessage {
            msg: Some(Msg::Ack(ack)),
        } => spool
            .ack(ack.seq)
            .map(|()| Inbound::Acked)
            .map_err(|e| Lost::closed(e.to_string())),
        CollectorMessage {
            msg: Some(Msg::PolicySync(sync)),
        } => Ok(Inbound::Policies(sync.policies)),
        CollectorMessage {
            msg: Some(Msg::TimeProbe(probe)),
        } => {
            // Answer at once, ahead of queued batches when there is room: the collector measures
            // this host's clock against its own from the four timestamps.
            let t2_us = now_us();
            let echo = AgentMessage {
                msg: Some(agent_message::Msg::TimeEcho(TimeEcho {
                    t1_us: probe.t1_us,
                    t2_us,
                    t3_us: now_us(),
                })),
            };
            if tx.is_none_or(|tx| tx.try_send(Outbound::Message(echo)).is_err()) {
                debug!("stream busy; time probe not answered");
            }
            Ok(Inbound::Nothing)
        }
        other => {
            debug!(?other, "ignoring unexpected message");
            Ok(Inbound::Nothing)
        }
    }
}

/// Sends spooled batches while the in-flight window and the channel have room.
fn pump(
    tx: &mpsc::Sender<Outbound>,
    spool: &mut Spool,
    kmsg: Option<KmsgStatus>,
) -> Result<(), SpoolError> {
    loop {
        if spool.in_flight() >= MAX_IN_FLIGHT {
            return Ok(());
        }
        let Ok(permit) = tx.try_reserve() else {
            return Ok(());
        };
        let Some(frame) = spool.next_unsent()? else {
            return Ok(());
        };
        // A frame read back from disk passed its CRC, so it is the batch an agent encoded; still,
        // one that does not decode (written by a faulty version) is never sent: the collector
        // could not say which batch it refuses, and the stream would end on it at every attempt.
        // What this process appended is sent without this check.
        if frame.from_disk {
            if let Err(e) = Batch::decode(frame.payload.as_slice()) {
                let reason = format!("the spooled batch does not decode: {e}");
                if spool.set_aside(frame.seq, &reason)?.is_some() {
                    error!(seq = frame.seq, error = %e, rejected_batches = spool.rejected_batches(),
                        "a spooled batch that does not decode was set aside; it will not be sent");
                }
                continue;
            }
        }
        // Sent as spooled, with the fields of this send after it (see `outbound`).
        permit.send(Outbound::Batch(SpooledBatch {
            payload: frame.payload,
            seq: frame.seq,
            dropped_samples: spool.dropped_samples(),
            kmsg,
        }));
    }
}
