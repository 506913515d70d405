//! The agent's main loop: sample every interval, spool, and ship over one gRPC stream.
//!
//! One task owns the sampler, the spool and the stream, and reacts to four things with
//! `select!`: the interval tick, a finished connection attempt, a message from the collector, and
//! shutdown. No locks, no thread per source.
//!
//! ```text
//! tick ──► Sampler::sample ──► Spool::append (fsync) ──► pump: next_unsent ──► stream
//! stream ◄── Welcome{last_seq} / Ack{seq} ──► Spool::ack (frees segments)
//! ```
//!
//! The window of unacknowledged batches in flight is bounded ([`MAX_IN_FLIGHT`]); everything
//! else waits on disk, so memory does not grow while the collector is away.
//!
//! OOM policies ride the same stream: a `PolicySync` from the collector goes to the
//! [`PolicyRunner`] at once; while policies exist, a tick every [`POLICY_TICK`] applies them to new processes
//! (collector reachable or not); policy reports and process lists go out as live messages (not
//! spooled: each one replaces the previous), on connect and when they change.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use fleet_proto::limits::MAX_MESSAGE_BYTES;
use fleet_proto::v1::{
    agent_message, collector_message, ingest_client::IngestClient, AgentMessage, Batch,
    CollectorMessage, Hello, HostIdentity, PolicySpec, Sample, TimeEcho,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Streaming;
use tracing::{debug, error, info, warn};

use crate::config::Settings;
use crate::now_ms;
use crate::policy::PolicyRunner;
use crate::sources::kmsg::KmsgWatcher;
use crate::sources::ntp::NtpProbe;
use crate::sources::procfs::Sampler;
use crate::sources::topoom::TopOomScanner;
use crate::spool::Spool;
use fleet_proto::backoff::Backoff;
use fleet_proto::clock::now_us;
use fleet_proto::errors;
use fleet_proto::v1::ClockStatus;

/// What the agent reads each interval and continuously.
pub struct Sources {
    pub sampler: Sampler,
    /// None when top-oom is turned off (`top_oom_limit = 0`).
    pub top_oom: Option<TopOomScanner>,
    /// None when the kernel log is not read (`kmsg_path = ""`) or cannot be opened.
    pub kmsg: Option<KmsgWatcher>,
    /// None when no NTP server is configured or discovered.
    pub ntp: Option<NtpProbe>,
    /// None when the policy state cannot be opened (logged at start).
    pub policies: Option<PolicyRunner>,
}

/// How often policies are applied to new processes. A process caught inside execve (argv not
/// yet readable) is read again at the next tick, so every new process has its value within two
/// ticks: a second.
pub const POLICY_TICK: Duration = Duration::from_millis(500);

/// Sends the policy report and the process list when due. Live messages: when the stream is
/// full they are tried again at the next tick.
fn send_policy_state(session: &Session, runner: &mut PolicyRunner, new_session: bool) {
    if new_session {
        runner.report_due();
    }
    if let Some(report) = runner.take_report() {
        let msg = AgentMessage {
            msg: Some(agent_message::Msg::PolicyReport(report)),
        };
        if session.tx.try_send(msg).is_err() {
            runner.report_due();
        }
    }
    if let Some(list) = runner.process_list(new_session) {
        let msg = AgentMessage {
            msg: Some(agent_message::Msg::ProcessList(list)),
        };
        if session.tx.try_send(msg).is_err() {
            runner.list_unsent();
        }
    }
}

type Measuring = tokio::task::JoinHandle<(NtpProbe, ClockStatus)>;

/// Spools OOM events at once, in a batch of their own that the spool never drops.
fn spool_events(
    spool: &mut Spool,
    events: Vec<fleet_proto::v1::OomEvent>,
) -> Result<(), crate::spool::SpoolError> {
    if events.is_empty() {
        return Ok(());
    }
    for e in &events {
        info!(victim_pid = ?e.victim_pid, victim_comm = ?e.victim_comm, memcg = ?e.task_memcg,
            source = %e.source, "OOM kill");
    }
    let batch = Batch {
        oom_events: events,
        ..Batch::default()
    };
    spool.append(&batch.encode_to_vec(), 0, true).map(|_| ())
}

/// Batches sent but not yet acknowledged, at most.
pub const MAX_IN_FLIGHT: u64 = 256;
/// How long a graceful shutdown waits for the collector to acknowledge what is in flight.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// An open stream to the collector.
struct Session {
    tx: mpsc::Sender<AgentMessage>,
    inbound: Streaming<CollectorMessage>,
}

type Connecting = Pin<Box<dyn Future<Output = Result<(Session, u64), String>> + Send>>;

/// Builds the gRPC endpoint (TLS or, with `--insecure`, plaintext).
///
/// # Errors
/// A message naming the URL or certificate file that is wrong.
pub fn endpoint(settings: &Settings) -> Result<Endpoint, String> {
    let mut ep = Endpoint::from_shared(settings.collector.clone())
        .map_err(|e| format!("collector URL {:?}: {e}", settings.collector))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    if let Some(tls) = &settings.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            cfg = cfg.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        ep = ep
            .tls_config(cfg)
            .map_err(|e| format!("TLS configuration: {e}"))?;
    }
    Ok(ep)
}

async fn open_session(ep: Endpoint, hello: AgentMessage) -> Result<(Session, u64), String> {
    let channel = ep.connect().await.map_err(|e| errors::chain(&e))?;
    let mut client = IngestClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel(64);
    tx.send(hello)
        .await
        .map_err(|_| "stream closed".to_string())?;
    let response = client
        .session(ReceiverStream::new(rx))
        .await
        .map_err(|s| errors::status(&s))?;
    let mut inbound = response.into_inner();
    let first = tokio::time::timeout(WELCOME_TIMEOUT, inbound.message())
        .await
        .map_err(|_| "no welcome from the collector".to_string())?
        .map_err(|s| errors::status(&s))?;
    match first.and_then(|m| m.msg) {
        Some(collector_message::Msg::Welcome(w)) => Ok((Session { tx, inbound }, w.last_seq)),
        other => Err(format!("expected a welcome, got {other:?}")),
    }
}

/// The state of the link, for logging once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Starting,
    Up,
    Down,
}

/// Runs the agent loop until `shutdown` resolves, then flushes what it can.
///
/// # Errors
/// Only errors that make running impossible (the spool directory cannot be written).
pub async fn run(
    settings: Settings,
    identity: HostIdentity,
    sources: Sources,
    mut spool: Spool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::AgentError> {
    // Checked now so a wrong URL or certificate file stops the agent at start; later connection
    // attempts read the files again, so rotated certificates are used without a restart.
    endpoint(&settings).map_err(crate::AgentError::Setup)?;
    let connect = |hello: AgentMessage| -> Connecting {
        match endpoint(&settings) {
            Ok(ep) => Box::pin(open_session(ep, hello)),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let hello = AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            identity: Some(identity),
            spool_epoch: spool.epoch(),
        })),
    };
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.interval,
        settings.interval,
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut session: Option<Session> = None;
    let mut connecting: Option<Connecting> = Some(connect(hello.clone()));
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut link = LinkState::Starting;
    let mut last_connect_error: Option<String> = None;
    let mut down_since = Instant::now();
    let mut last_sample_error: Option<String> = None;
    let Sources {
        mut sampler,
        mut top_oom,
        mut kmsg,
        mut ntp,
        mut policies,
    } = sources;
    let mut policy_tick = tokio::time::interval(POLICY_TICK);
    policy_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // An NTP measurement runs as its own task (it waits up to its timeout on UDP replies) and
    // its result rides with the next sample.
    let mut measuring: Option<Measuring> = None;
    let mut clock: Option<ClockStatus> = None;
    tokio::pin!(shutdown);

    loop {
        let flush_at = kmsg.as_ref().and_then(KmsgWatcher::flush_deadline);
        tokio::select! {
            () = &mut shutdown => break,
            _ = async { hup.as_mut().expect("guarded").recv().await }, if hup.is_some() => {
                // Rotated certificates: a new connection reads the files again. What was in
                // flight is sent again from the spool; the collector drops what it already has.
                info!("SIGHUP: reconnecting with the TLS files read again");
                if session.take().is_some() || connecting.take().is_some() {
                    link = LinkState::Down;
                    down_since = Instant::now();
                }
                backoff.reset();
                retry_at = Some(tokio::time::Instant::now());
            }
            () = async { kmsg.as_mut().expect("guarded").readable().await }, if kmsg.is_some() => {
                let k = kmsg.as_mut().expect("guarded");
                let events = k.read_available();
                spool_events(&mut spool, events).map_err(crate::AgentError::Spool)?;
            }
            () = async { tokio::time::sleep_until(flush_at.expect("guarded").into()).await }, if flush_at.is_some() => {
                let k = kmsg.as_mut().expect("guarded");
                let events = k.flush_idle();
                spool_events(&mut spool, events).map_err(crate::AgentError::Spool)?;
                // Everything read so far is now in the durable spool.
                if let Err(e) = k.commit() {
                    warn!(error = %e, "cannot save the kernel log cursor");
                }
            }
            res = async { measuring.as_mut().expect("guarded").await }, if measuring.is_some() => {
                measuring = None;
                match res {
                    Ok((probe, status)) => {
                        ntp = Some(probe);
                        clock = Some(status);
                    }
                    Err(e) => error!(error = %e, "NTP measurement task failed"),
                }
            }
            _ = policy_tick.tick(), if policies.as_ref().is_some_and(PolicyRunner::has_policies) => {
                let runner = policies.as_mut().expect("guarded");
                runner.tick();
                if let Some(s) = &session {
                    send_policy_state(s, runner, false);
                }
            }
            _ = ticker.tick() => {
                if let (Some(s), Some(runner)) = (&session, policies.as_mut()) {
                    send_policy_state(s, runner, false);
                }
                if ntp.as_ref().is_some_and(|p| p.due(Instant::now())) {
                    let mut probe = ntp.take().expect("checked");
                    measuring = Some(tokio::spawn(async move {
                        let status = probe.measure().await;
                        (probe, status)
                    }));
                }
                if let Some(k) = kmsg.as_mut() {
                    let events = k.check_counter();
                    spool_events(&mut spool, events).map_err(crate::AgentError::Spool)?;
                }
                match sampler.sample() {
                    Ok(out) => {
                        if last_sample_error.take().is_some() {
                            info!("sampling recovered");
                        }
                        let mut ranking = Vec::new();
                        if let Some(scanner) = top_oom.as_mut().filter(|s| s.due(Instant::now())) {
                            match scanner.scan() {
                                Ok(r) => ranking = r,
                                Err(e) => debug!(error = %e, "top-oom scan failed"),
                            }
                        }
                        let batch = Batch {
                            samples: vec![Sample { time_ms: now_ms(), interval_ms: out.interval_ms, records: out.records, top_oom: ranking, clock: clock.take() }],
                            ..Batch::default()
                        };
                        let payload = batch.encode_to_vec();
                        let dropped_before = spool.dropped_samples();
                        spool.append(&payload, 1, false).map_err(crate::AgentError::Spool)?;
                        if spool.dropped_samples() > dropped_before {
                            warn!(dropped_samples = spool.dropped_samples(), pending = spool.pending_frames(),
                                "spool full: oldest samples discarded");
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if last_sample_error.as_deref() != Some(msg.as_str()) {
                            error!(error = %msg, "sampling failed");
                            last_sample_error = Some(msg);
                        }
                    }
                }
            }
            res = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                connecting = None;
                match res {
                    Ok((s, last_seq)) => {
                        if spool.resume_after(last_seq).map_err(crate::AgentError::Spool)? {
                            warn!(last_seq, "collector has newer sequence numbers than the spool; numbering continues above them");
                        }
                        if link == LinkState::Down {
                            info!(outage_secs = down_since.elapsed().as_secs(), backlog = spool.pending_frames(),
                                "collector reachable again; replaying spool");
                        } else {
                            info!(collector = %settings.collector, backlog = spool.pending_frames(), "connected to collector");
                        }
                        link = LinkState::Up;
                        last_connect_error = None;
                        backoff.reset();
                        if let Some(runner) = policies.as_mut() {
                            send_policy_state(&s, runner, true);
                        }
                        session = Some(s);
                    }
                    Err(e) => {
                        if link != LinkState::Down {
                            warn!(collector = %settings.collector, error = %e,
                                "collector unreachable; samples are spooled on disk until it is back");
                            link = LinkState::Down;
                            down_since = Instant::now();
                        } else if last_connect_error.as_ref().is_some_and(|last| *last != e) {
                            // A new reason (the collector came back but refuses this agent's
                            // certificate, say) is worth a line; the same one again is not.
                            warn!(collector = %settings.collector, error = %e,
                                "still no connection to the collector; the reason changed");
                        } else {
                            debug!(error = %e, "reconnect failed");
                        }
                        last_connect_error = Some(e);
                        retry_at = Some(tokio::time::Instant::now() + backoff.next_delay());
                    }
                }
            }
            () = async { tokio::time::sleep_until(retry_at.expect("guarded")).await }, if retry_at.is_some() && session.is_none() => {
                retry_at = None;
                connecting = Some(connect(hello.clone()));
            }
            msg = async { session.as_mut().expect("guarded").inbound.message().await }, if session.is_some() => {
                let s = session.as_ref().expect("guarded");
                match handle_inbound(msg, &mut spool, s) {
                    Ok(None) => {}
                    Ok(Some(specs)) => match policies.as_mut() {
                        Some(runner) => {
                            runner.sync(&specs);
                            send_policy_state(s, runner, false);
                        }
                        None => warn!(policies = specs.len(), "OOM policies received but not enforced (policy state unavailable)"),
                    },
                    Err(e) => {
                        warn!(error = %e, backlog = spool.pending_frames(), "stream to collector lost; reconnecting");
                        link = LinkState::Down;
                        down_since = Instant::now();
                        session = None;
                        retry_at = Some(tokio::time::Instant::now() + backoff.next_delay());
                    }
                }
            }
        }
        if let Some(s) = &session {
            let status = kmsg.as_ref().map(KmsgWatcher::status);
            pump(s, &mut spool, status).map_err(crate::AgentError::Spool)?;
        }
    }
    let status = kmsg.as_ref().map(KmsgWatcher::status);

    // Graceful shutdown: send what is spooled and wait a little for the acknowledgements.
    if let Some(mut s) = session.take() {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_FLUSH;
        pump(&s, &mut spool, status).map_err(crate::AgentError::Spool)?;
        while spool.pending_frames() > 0 {
            match tokio::time::timeout_at(deadline, s.inbound.message()).await {
                Ok(msg) => {
                    if handle_inbound(msg, &mut spool, &s).is_err() {
                        break;
                    }
                    pump(&s, &mut spool, status).map_err(crate::AgentError::Spool)?;
                }
                Err(_) => break,
            }
        }
    }
    spool.write_meta().map_err(crate::AgentError::Spool)?;
    info!(
        pending = spool.pending_frames(),
        dropped_samples = spool.dropped_samples(),
        "agent stopped; unacknowledged samples stay in the spool"
    );
    Ok(())
}

/// Handles one message from the collector; a policy set is returned for the caller to enforce.
fn handle_inbound(
    msg: Result<Option<CollectorMessage>, tonic::Status>,
    spool: &mut Spool,
    session: &Session,
) -> Result<Option<Vec<PolicySpec>>, String> {
    match msg {
        Ok(Some(CollectorMessage {
            msg: Some(collector_message::Msg::Ack(ack)),
        })) => spool.ack(ack.seq).map(|()| None).map_err(|e| e.to_string()),
        Ok(Some(CollectorMessage {
            msg: Some(collector_message::Msg::PolicySync(sync)),
        })) => Ok(Some(sync.policies)),
        Ok(Some(CollectorMessage {
            msg: Some(collector_message::Msg::TimeProbe(probe)),
        })) => {
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
            if session.tx.try_send(echo).is_err() {
                debug!("stream busy; time probe not answered");
            }
            Ok(None)
        }
        Ok(Some(other)) => {
            debug!(?other, "ignoring unexpected message");
            Ok(None)
        }
        Ok(None) => Err("collector closed the stream".into()),
        Err(s) => Err(format!("{}: {}", s.code(), s.message())),
    }
}

/// Sends spooled batches while the in-flight window and the channel have room.
fn pump(
    session: &Session,
    spool: &mut Spool,
    kmsg: Option<fleet_proto::v1::KmsgStatus>,
) -> Result<(), crate::spool::SpoolError> {
    loop {
        if spool.in_flight() >= MAX_IN_FLIGHT {
            return Ok(());
        }
        let Ok(permit) = session.tx.try_reserve() else {
            return Ok(());
        };
        let Some(frame) = spool.next_unsent()? else {
            return Ok(());
        };
        let mut batch = match Batch::decode(frame.payload.as_slice()) {
            Ok(b) => b,
            Err(e) => {
                // Cannot happen for frames that passed their CRC; never send garbage.
                error!(seq = frame.seq, error = %e, "undecodable spooled batch skipped");
                continue;
            }
        };
        batch.seq = frame.seq;
        batch.dropped_samples = spool.dropped_samples();
        batch.kmsg = kmsg;
        permit.send(AgentMessage {
            msg: Some(agent_message::Msg::Batch(batch)),
        });
    }
}
