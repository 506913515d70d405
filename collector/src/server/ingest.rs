//! The `Ingest` service: one bidirectional stream per agent.
//!
//! ```text
//! agent stream ─► session task ─► check_batch ─► Writer::submit (bounded) ─► writer thread
//!                      ▲                                                   │ one WriteBatch, fsync
//!                      └──── Ack{seq} ◄── acker task ◄── Written ◄─────────┘ (group commit)
//! ```
//!
//! - A stream opens with a hello: [`check_identity`], the caller's certificate must be the
//!   host's and bound to the cluster the hello names (a refused hello stores nothing), and
//!   [`Sessions`] caps the streams per host id ([`MAX_STREAMS_PER_HOST`]) and the
//!   connected hosts (`max_agents`). The welcome says the last seq stored for the agent's spool
//!   epoch, from which it resends.
//! - Each batch is checked ([`check_batch`]), screened for timestamps from the future
//!   (`future.rs`) and queued for the writer with the seq the stream sent before it (the
//!   store's watermark must reach it, see `IngestItem::after_seq`). Once the write that stored
//!   it returned, in stream order, what the batch said is fed to the live host state, when the
//!   write stored it for the first time (less the kills already stored, and the amendments of
//!   kills: `OomEvent.amends`, see `storage/oom.rs`), and its Ack goes out, held back as long as
//!   the agent asked (`acks.rs`: one cumulative Ack for several batches). A malformed batch ends
//!   the stream with `InvalidArgument` naming the field; a batch the store could not store ends
//!   it with `Unavailable`, and no later batch of the stream is acknowledged.
//! - Clock probes: every [`PROBE_EVERY`] the session sends a `TimeProbe` and turns the agent's
//!   echo into the host's clock offset against the collector (the NTP on-wire exchange).
//! - OOM policies (`policies.rs`): the host's policy set is pushed after the welcome and on every
//!   change; the agent's policy reports and process lists are taken.
//! - On shutdown (or when the agent ends its side) a session stops reading and finishes the acks
//!   of what it accepted; a stream the collector ends with an error gets those acks first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_proto::clock::{now_ms, now_us};
use fleet_proto::schema::schema_of_i32;
use fleet_proto::v1::{
    agent_message, collector_message, ingest_server::Ingest, AgentMessage, Batch, CollectorMessage,
    HostIdentity, TimeEcho, TimeProbe, Welcome,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::acks::{ack_delay, spawn_acker, Outbound, Pending};
use super::policies::{self, check_process_list};
use super::{blocking, Shared};
use crate::auth::Need;
use crate::rules::Observation;
use crate::storage::{HostRecord, IngestItem};

/// Batches one stream may have queued for writing before it stops reading.
const STREAM_PENDING: usize = 256;
/// How often the collector measures each agent's clock over its stream.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Streams one host id may have open at once: its agent and, briefly, the stream of a
/// reconnect while the old one is being torn down.
pub const MAX_STREAMS_PER_HOST: usize = 2;
/// How long a new stream may take to say Hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts open streams per host, so `connected` stays true while any stream of the host is open,
/// and caps them: [`MAX_STREAMS_PER_HOST`] per host id, and a number of connected hosts.
#[derive(Default)]
pub(super) struct Sessions {
    open: Mutex<HashMap<String, usize>>,
    /// Streams refused by the caps, since start.
    pub(super) refused: AtomicU64,
}

impl Sessions {
    /// Hosts with at least one open stream.
    pub(super) fn connected(&self) -> usize {
        self.open.lock().expect("sessions lock").len()
    }

    /// Whether `host_id` has a stream open.
    pub(super) fn is_open(&self, host_id: &str) -> bool {
        self.open
            .lock()
            .expect("sessions lock")
            .contains_key(host_id)
    }

    /// Counts a new stream of `host_id`, unless a cap is reached.
    fn try_open(&self, host_id: &str, max_hosts: usize) -> Result<(), Status> {
        let mut open = self.open.lock().expect("sessions lock");
        let n = open.get(host_id).copied().unwrap_or(0);
        let refusal = if n >= MAX_STREAMS_PER_HOST {
            format!(
                "host {host_id:?} already has {n} open streams (at most {MAX_STREAMS_PER_HOST}): \
                 is another agent running with the same host id?"
            )
        } else if n == 0 && open.len() >= max_hosts {
            format!(
                "the collector already serves {} connected agents (max_agents)",
                open.len()
            )
        } else {
            *open.entry(host_id.to_string()).or_default() += 1;
            return Ok(());
        };
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(Status::resource_exhausted(refusal))
    }

    /// Returns true when this was the host's last open stream.
    fn closed(&self, host_id: &str) -> bool {
        let mut open = self.open.lock().expect("sessions lock");
        let Some(n) = open.get_mut(host_id) else {
            return true;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            open.remove(host_id);
            true
        } else {
            false
        }
    }
}

/// Checks an agent's identity: the host id rule, lengths, and no control characters in any
/// text field (cluster, hostname, kernel, agent_version, label keys and values).
///
/// # Errors
/// `InvalidArgument` naming the field.
pub fn check_identity(id: &HostIdentity) -> Result<(), Status> {
    let bad =
        |field: &str, why: &str| Status::invalid_argument(format!("hello.identity.{field}: {why}"));
    fleet_proto::identity::check_host_id(&id.host_id)
        .map_err(|e| bad("host_id", &e.to_string()))?;
    fleet_proto::identity::check_cluster(&id.cluster)
        .map_err(|e| bad("cluster", &e.to_string()))?;
    if id.hostname.len() > 255 || id.kernel.len() > 255 || id.agent_version.len() > 64 {
        return Err(bad(
            "hostname",
            "hostname, kernel or agent_version too long",
        ));
    }
    if id.labels.len() > 64
        || id
            .labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 1024)
    {
        return Err(bad(
            "labels",
            "at most 64 labels, keys 1-128 and values up to 1024 characters",
        ));
    }
    // Operators read these in their terminals (`fleetctl hosts`): an escape sequence here would
    // be an agent driving the operator's terminal. fleetctl escapes what it prints anyway; the
    // collector does not store such text in the first place.
    let control = |text: &str| text.chars().find(|c| c.is_control());
    for (field, text) in [
        ("hostname", &id.hostname),
        ("kernel", &id.kernel),
        ("agent_version", &id.agent_version),
    ] {
        if let Some(c) = control(text) {
            return Err(bad(field, &format!("contains the control character {c:?}")));
        }
    }
    for (k, v) in &id.labels {
        if let Some(c) = control(k).or_else(|| control(v)) {
            // `{k:?}` escapes the key's own control characters.
            return Err(bad(
                "labels",
                &format!("label {k:?} contains the control character {c:?}"),
            ));
        }
    }
    Ok(())
}

/// Checks a batch against the rules both ends share ([`fleet_proto::check`]), after dropping
/// records of activities this collector does not know (a newer agent during a rolling upgrade);
/// returns how many were dropped.
///
/// # Errors
/// `InvalidArgument` naming the batch, sample, record and what is wrong (`batch seq N: ...`,
/// the text the agent reads the refused seq from).
pub fn check_batch(b: &mut Batch) -> Result<usize, Status> {
    let mut unknown = 0;
    for s in &mut b.samples {
        let before = s.records.len();
        s.records.retain(|r| schema_of_i32(r.activity).is_some());
        unknown += before - s.records.len();
    }
    fleet_proto::check::check_batch(b).map_err(|r| Status::invalid_argument(r.to_string()))?;
    Ok(unknown)
}

/// The `Ingest` service.
pub(super) struct IngestSvc(pub(super) Shared);

#[tonic::async_trait]
impl Ingest for IngestSvc {
    type SessionStream = ReceiverStream<Result<CollectorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let peer = request.remote_addr();
        let client = self.0.auth.check(&request, Need::Stream, "Session")?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| {
                Status::deadline_exceeded("no hello within 10s of opening the stream")
            })??;
        let hello = match first.and_then(|m| m.msg) {
            Some(agent_message::Msg::Hello(h)) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of a session must be a hello",
                ))
            }
        };
        let identity = hello
            .identity
            .ok_or_else(|| Status::invalid_argument("hello.identity is missing"))?;
        check_identity(&identity)?;
        // Before anything is stored: a refused hello leaves no trace but the log and the count.
        self.0
            .auth
            .check_hello(client.as_ref(), &identity.host_id, &identity.cluster)?;
        let shared = self.0.clone();
        let host_id = identity.host_id.clone();
        if let Err(status) = shared.sessions.try_open(&host_id, shared.max_agents) {
            warn!(%host_id, ?peer, reason = %status.message(), "agent stream refused");
            return Err(status);
        }
        let store = shared.store.clone();
        let rec: HostRecord =
            match blocking(move || store.upsert_host(&identity, now_ms(), true)).await {
                Ok(rec) => rec,
                Err(e) => {
                    shared.sessions.closed(&host_id);
                    return Err(e);
                }
            };
        let last_seq = shared.store.last_seq(rec.num, hello.spool_epoch);
        info!(host_id = %rec.identity.host_id, hostname = %rec.identity.hostname,
            cluster = %rec.identity.cluster, ?peer, last_seq, "agent connected");
        let (out_tx, out_rx) = mpsc::channel(STREAM_PENDING);
        out_tx
            .send(Ok(CollectorMessage {
                msg: Some(collector_message::Msg::Welcome(Welcome { last_seq })),
            }))
            .await
            .map_err(|_| {
                shared.sessions.closed(&host_id);
                Status::cancelled("stream closed")
            })?;
        let stream = Stream {
            epoch: hello.spool_epoch,
            welcomed: last_seq,
            ack_delay: ack_delay(hello.ack_delay_ms),
        };
        tokio::spawn(run_session(shared, rec, stream, inbound, out_tx));
        Ok(Response::new(ReceiverStream::new(out_rx)))
    }
}

/// The clock probes of one stream: the NTP on-wire exchange, every [`PROBE_EVERY`].
struct ClockProbe {
    /// When the last probe was sent (collector µs); only its echo counts.
    sent_us: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl ClockProbe {
    fn start(out: Outbound) -> ClockProbe {
        let sent_us = Arc::new(AtomicI64::new(0));
        let sent = sent_us.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            loop {
                tick.tick().await;
                let t1_us = now_us();
                sent.store(t1_us, Ordering::Relaxed);
                let probe = CollectorMessage {
                    msg: Some(collector_message::Msg::TimeProbe(TimeProbe { t1_us })),
                };
                if out.send(Ok(probe)).await.is_err() {
                    return;
                }
            }
        });
        ClockProbe { sent_us, task }
    }

    /// The agent's clock (offset ms, round-trip delay ms) from its echo, received at `t4_us`; None
    /// for an echo of anything but the probe this session sent last (stale or made up).
    fn measure(&self, echo: &TimeEcho, t4_us: i64) -> Option<(f64, f64)> {
        if echo.t1_us == 0 || self.sent_us.load(Ordering::Relaxed) != echo.t1_us {
            return None;
        }
        let offset_ms = ((echo.t2_us - echo.t1_us) + (echo.t3_us - t4_us)) as f64 / 2000.0;
        let delay_ms = ((t4_us - echo.t1_us) - (echo.t3_us - echo.t2_us)) as f64 / 1000.0;
        Some((offset_ms, delay_ms))
    }
}

impl Drop for ClockProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A stream's spool epoch and the seqs it carries.
struct Stream {
    epoch: u64,
    /// The `last_seq` of its welcome; then the highest seq it sent. Each batch is stored only
    /// once the host's watermark has reached the value before it (`IngestItem::after_seq`).
    welcomed: u64,
    /// How long its Acks may be held back (`acks.rs`).
    ack_delay: Duration,
}

impl Stream {
    /// The `after_seq` of batch `seq`, the next one of this stream.
    fn after(&mut self, seq: u64) -> u64 {
        let after = self.welcomed;
        self.welcomed = self.welcomed.max(seq);
        after
    }
}

/// One agent's stream after the welcome, until it ends, the agent misbehaves or the collector
/// stops; then the acks of everything accepted go out and the host is marked disconnected when
/// this was its last stream.
async fn run_session(
    shared: Shared,
    rec: HostRecord,
    mut stream: Stream,
    mut inbound: Streaming<AgentMessage>,
    out: Outbound,
) {
    let host = rec.identity.host_id.clone();
    let (ack_tx, ack_rx) = mpsc::channel(STREAM_PENDING);
    let acker = spawn_acker(
        out.clone(),
        ack_rx,
        shared.live.clone(),
        rec.num,
        stream.ack_delay,
    );
    let probe = ClockProbe::start(out.clone());
    let sent = Arc::new(policies::Sent::default());
    let pusher = policies::spawn_pusher(
        shared.policies.clone(),
        rec.clone(),
        out.clone(),
        sent.clone(),
    );
    let (reports, saver) = policies::spawn_report_saver(shared.policies.clone(), rec.clone(), sent);
    let mut stop = shared.stop.clone();
    let mut unknown_logged = false;
    let mut future_logged = false;
    // Why the collector ends the stream, sent after the Acks of what it stored before.
    let mut refusal = None;
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            m = inbound.message() => m,
        };
        let msg = match msg {
            Ok(Some(m)) => m.msg,
            Ok(None) => break,
            Err(status) => {
                debug!(host_id = %host, error = %status, "agent stream ended");
                break;
            }
        };
        match msg {
            Some(agent_message::Msg::Batch(mut batch)) => {
                match check_batch(&mut batch) {
                    Ok(0) => {}
                    Ok(n) => {
                        if !unknown_logged {
                            warn!(host_id = %host, records = n, "records of unknown activities dropped (agent newer than collector?)");
                            unknown_logged = true;
                        }
                    }
                    Err(status) => {
                        warn!(host_id = %host, error = %status.message(), "malformed batch; closing the stream");
                        refusal = Some(status);
                        break;
                    }
                }
                let screened = shared.future.screen(&mut batch, now_ms());
                if screened.any() && !future_logged {
                    warn!(host_id = %host, seq = batch.seq, samples_dropped = screened.samples_dropped,
                        kills_stamped_now = screened.kills_clamped, latest_ms = screened.latest_ms,
                        "timestamps from the future (is the host's clock ahead?): samples dropped, kills stamped with the collector's time");
                    future_logged = true;
                }
                let observation = Observation::take(&mut batch, screened.clocks);
                let seq = batch.seq;
                let item = IngestItem {
                    host_num: rec.num,
                    epoch: stream.epoch,
                    seq,
                    after_seq: stream.after(seq),
                    dropped_samples: batch.dropped_samples,
                    samples: batch.samples,
                    oom_events: batch.oom_events,
                    kmsg: batch.kmsg,
                    clocks: observation.clocks().to_vec(),
                };
                // Backpressure: both sends wait when the writer or this stream's ack queue is full.
                let Some(written) = shared.writer.submit(item).await else {
                    break;
                };
                let pending = Pending {
                    seq,
                    written,
                    observation,
                };
                if ack_tx.send(pending).await.is_err() {
                    break;
                }
            }
            Some(agent_message::Msg::TimeEcho(echo)) => {
                if let Some((offset_ms, delay_ms)) = probe.measure(&echo, now_us()) {
                    shared.live.collector_offset(rec.num, offset_ms, delay_ms);
                }
            }
            Some(agent_message::Msg::PolicyReport(report)) => {
                // Waits only when the saver has several reports queued (the store is failing).
                if reports.send(report).await.is_err() {
                    break;
                }
            }
            Some(agent_message::Msg::ProcessList(list)) => {
                if let Err(status) = check_process_list(&list) {
                    warn!(host_id = %host, error = %status.message(), "malformed process list; closing the stream");
                    refusal = Some(status);
                    break;
                }
                shared.policies.set_processes(rec.num, &list);
            }
            Some(agent_message::Msg::Hello(_)) | None => {
                refusal = Some(Status::invalid_argument(
                    "after the hello, a session carries batches, time echoes, policy reports and process lists only",
                ));
                break;
            }
        }
    }
    drop(probe);
    // Awaited, so no task of this session holds the store once the session ended.
    pusher.abort();
    let _ = pusher.await;
    drop(reports);
    let _ = saver.await;
    // Everything accepted is written and acknowledged before the stream closes.
    drop(ack_tx);
    let _ = acker.await;
    if let Some(status) = refusal {
        let _ = out.send(Err(status)).await;
    }
    if shared.sessions.closed(&host) {
        let store = shared.store.clone();
        let num = rec.num;
        if let Err(e) = blocking(move || store.set_connected(num, false, now_ms())).await {
            // Refused while the store takes no writes (logged once, there): the reopen marks
            // the hosts without a session disconnected.
            if shared.store.is_writable() {
                warn!(host_id = %host, error = %e.message(), "could not record disconnect");
            } else {
                tracing::debug!(host_id = %host, error = %e.message(), "could not record disconnect");
            }
        }
    }
    info!(host_id = %host, "agent disconnected");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_batch_follows_the_highest_seq_its_stream_sent_before_it() {
        let mut s = Stream {
            epoch: 1,
            welcomed: 4,
            ack_delay: Duration::ZERO,
        };
        assert_eq!(s.after(5), 4, "the first batch follows the welcome");
        assert_eq!(s.after(6), 5);
        // A replay of an older batch (a duplicate) does not lower it.
        assert_eq!(s.after(2), 6);
        assert_eq!(s.after(9), 6, "a gap the agent made");
        assert_eq!(s.after(10), 9);
    }

    #[test]
    fn streams_per_host_and_connected_hosts_are_capped() {
        let s = Sessions::default();
        s.try_open("web1", 2).unwrap();
        s.try_open("web1", 2).unwrap();
        let e = s.try_open("web1", 2).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("web1"), "{}", e.message());
        s.try_open("web2", 2).unwrap();
        let e = s.try_open("web3", 2).unwrap_err();
        assert!(e.message().contains("max_agents"), "{}", e.message());
        assert!(!s.closed("web1"));
        assert!(s.closed("web1"));
        s.try_open("web3", 2).unwrap();
        assert!(s.closed("unknown"), "closing an unknown host is harmless");
    }

    #[test]
    fn identity_text_with_control_characters_is_refused_naming_the_field() {
        let good = HostIdentity {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            cluster: "prod".into(),
            kernel: "6.1.0-18-amd64".into(),
            agent_version: "0.1.0".into(),
            labels: [("role".to_owned(), "wéb".to_owned())].into(),
        };
        check_identity(&good).unwrap();
        let refused = |id: HostIdentity| {
            let e = check_identity(&id).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            e.message().to_owned()
        };
        let esc = "\u{1b}]0;pwned\u{7}";
        let mut id = good.clone();
        id.hostname = format!("web-1{esc}");
        assert_eq!(
            refused(id),
            "hello.identity.hostname: contains the control character '\\u{1b}'"
        );
        for field in ["cluster", "kernel", "agent_version"] {
            let mut id = good.clone();
            let text = match field {
                "cluster" => &mut id.cluster,
                "kernel" => &mut id.kernel,
                _ => &mut id.agent_version,
            };
            text.push('\r');
            let message = refused(id);
            assert!(
                message.starts_with(&format!("hello.identity.{field}: ")),
                "{message}"
            );
        }
        let mut id = good.clone();
        id.labels.insert("role".into(), format!("web{esc}"));
        assert_eq!(
            refused(id),
            "hello.identity.labels: label \"role\" contains the control character '\\u{1b}'"
        );
        // A C1 control (CSI, U+009B) and DEL count too; the key is quoted escaped.
        let mut id = good.clone();
        id.labels.insert("k\u{9b}2J".into(), "v".into());
        assert_eq!(
            refused(id),
            "hello.identity.labels: label \"k\\u{9b}2J\" contains the control character '\\u{9b}'"
        );
        let mut id = good;
        id.hostname = "web\u{7f}".into();
        assert!(refused(id).starts_with("hello.identity.hostname: "));
    }
}
