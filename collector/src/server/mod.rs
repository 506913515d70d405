//! The gRPC services and the write path.
//!
//! ```text
//! agent stream ─► session task ─► validate ─► writer queue (bounded) ─► writer thread
//!                      ▲                                              │ one WriteBatch, fsync
//!                      └──── Ack{seq} ◄── acker task ◄── oneshot ◄────┘ (group commit)
//! ```
//!
//! - The writer is one OS thread that drains the bounded queue into one RocksDB write (group
//!   commit), so hundreds of agents share each fsync. When the disk is slow the queue fills and
//!   `send().await` blocks the session tasks, which stop reading their streams: HTTP/2 flow
//!   control then pushes back on the agents, which keep their data in their spools. Memory stays
//!   bounded by the queue and the per-stream windows.
//! - An Ack is sent only after the write that contains the batch returned, in stream order.
//! - OOM policies (`server/policies.rs`): each session pushes its host's policy set after the welcome
//!   and on every change, and takes the agent's policy reports and process lists.
//! - Shutdown: the listener stops accepting, sessions stop reading and finish their pending acks,
//!   the writer drains, RocksDB is flushed and closed.

mod policies;

pub use policies::{check_process_list, ACTOR_METADATA, MAX_PROCESSES};

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_proto::clock::{now_ms, now_us};
use fleet_proto::limits::{
    MAX_EVENTS_PER_BATCH, MAX_EVENT_DETAIL_BYTES, MAX_MESSAGE_BYTES, MAX_QUERY_RESPONSE_BYTES,
    MAX_SAMPLES_PER_BATCH,
};
use fleet_proto::schema::schema_of_i32;
use fleet_proto::v1::{
    agent_message, collector_message,
    ingest_server::{Ingest, IngestServer},
    policies_server::PoliciesServer,
    query_server::{Query, QueryServer},
    Activity, AgentMessage, AlertList, AlertQuery, Batch, ClockStatus, CollectorMessage,
    CollectorStatus, CollectorStatusRequest, HostIdentity, HostInfo, ListHostsRequest,
    ListHostsResponse, NtpHostStatus, NtpQuery, NtpStatusList, OomKill, OomKillDetail,
    OomKillRequest, OomKills, OomQuery, SarQuery, SarResult, SarRow, TimeProbe, TopOomQuery,
    TopOomResult, TopOomRow, Welcome,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::Server;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, error, info, warn};

use crate::auth::{Auth, Need, Refusals};
use crate::rules::{NotifierOptions, Notifiers, RulesEngine, Target};
use crate::storage::{
    validate_oom_event, validate_sample, HostRecord, IngestItem, Store, WriteOutcome,
};
use fleet_rules::{FleetView, HostView};
use std::path::{Path, PathBuf};

/// Capacity of the writer queue (batches), shared by all streams.
pub const WRITE_QUEUE: usize = 4096;
/// Most batches one group commit takes.
const GROUP_MAX_BATCHES: usize = 2048;
/// Batches one stream may have queued for writing before it stops reading.
const STREAM_PENDING: usize = 256;
/// How often the collector measures each agent's clock over its stream.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long the kill times of a host are kept in memory for `oom_kill_burst`.
const KILL_MEMORY_MS: i64 = 3_600_000;
/// Streams one host id may have open at once: its agent and, briefly, the stream of a
/// reconnect while the old one is being torn down.
pub const MAX_STREAMS_PER_HOST: usize = 2;
/// Default most connected agents.
pub const DEFAULT_MAX_AGENTS: usize = 50_000;
/// How long a unary request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a new stream may take to say Hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most rows one sar query returns.
pub const MAX_QUERY_ROWS: usize = 2_000_000;

struct WriteReq {
    item: IngestItem,
    done: oneshot::Sender<Result<WriteOutcome, String>>,
}

/// The group-commit writer thread: drains the queue into one RocksDB write at a time.
fn writer_thread(store: Arc<Store>, mut rx: mpsc::Receiver<WriteReq>) {
    while let Some(first) = rx.blocking_recv() {
        let mut reqs = vec![first];
        while reqs.len() < GROUP_MAX_BATCHES {
            match rx.try_recv() {
                Ok(r) => reqs.push(r),
                Err(_) => break,
            }
        }
        let (items, dones): (Vec<_>, Vec<_>) = reqs.into_iter().map(|r| (r.item, r.done)).unzip();
        match store.write(&items, now_ms()) {
            Ok(outcomes) => {
                for (done, outcome) in dones.into_iter().zip(outcomes) {
                    let _ = done.send(Ok(outcome));
                }
            }
            Err(e) => {
                error!(error = %e, batches = items.len(), "write failed; agents will resend");
                for done in dones {
                    let _ = done.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Counts open streams per host, so `connected` stays true while any stream of the host is open,
/// and caps them: [`MAX_STREAMS_PER_HOST`] per host id, and a number of connected hosts.
#[derive(Default)]
struct Sessions {
    open: Mutex<HashMap<String, usize>>,
    /// Streams refused by the caps, since start.
    refused: std::sync::atomic::AtomicU64,
}

impl Sessions {
    fn connected(&self) -> usize {
        self.open.lock().expect("sessions lock").len()
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
        self.refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

/// What the collector knows of each host right now, from its stream: the latest sar values, NTP
/// measurement, clock offset against the collector, and recent OOM kills. Feeds the rules and
/// `fleetctl ntp`; rebuilt from the streams after a restart.
#[derive(Default)]
pub struct Live {
    hosts: Mutex<HashMap<u32, HostLive>>,
    /// Woken when an OOM kill arrives, so `oom_kill_burst` is evaluated at once rather than at
    /// the next tick.
    kill_arrived: tokio::sync::Notify,
}

#[derive(Default, Clone)]
struct HostLive {
    /// (measured at, status) of the latest NTP measurement.
    clock: Option<(i64, ClockStatus)>,
    /// (offset ms, delay ms) of the latest probe over the stream.
    collector: Option<(f64, f64)>,
    /// Latest values per (activity, instance).
    sar: HashMap<(i32, String), Vec<f64>>,
    oom_kills: std::collections::VecDeque<i64>,
}

impl Live {
    fn observe(&self, num: u32, batch: &mut Batch) {
        let mut hosts = self.hosts.lock().expect("live lock");
        let h = hosts.entry(num).or_default();
        if let Some(last) = batch.samples.iter().max_by_key(|s| s.time_ms) {
            for r in &last.records {
                h.sar
                    .insert((r.activity, r.instance.clone()), r.values.clone());
            }
        }
        for s in &mut batch.samples {
            // The clock status is live state, not a time series: it is not stored with the sample.
            if let Some(c) = s.clock.take() {
                if h.clock.as_ref().is_none_or(|(t, _)| *t <= s.time_ms) {
                    h.clock = Some((s.time_ms, c));
                }
            }
        }
        let horizon = now_ms() - KILL_MEMORY_MS;
        for e in &batch.oom_events {
            if e.time_ms >= horizon {
                h.oom_kills.push_back(e.time_ms);
            }
        }
        while h.oom_kills.front().is_some_and(|t| *t < horizon) {
            h.oom_kills.pop_front();
        }
        // Bounded even if a host reports kills in a storm.
        while h.oom_kills.len() > 10_000 {
            h.oom_kills.pop_front();
        }
        drop(hosts);
        if !batch.oom_events.is_empty() {
            self.kill_arrived.notify_one();
        }
    }

    fn collector_offset(&self, num: u32, offset_ms: f64, delay_ms: f64) {
        let mut hosts = self.hosts.lock().expect("live lock");
        hosts.entry(num).or_default().collector = Some((offset_ms, delay_ms));
    }

    fn get(&self, num: u32) -> HostLive {
        self.hosts
            .lock()
            .expect("live lock")
            .get(&num)
            .cloned()
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct Shared {
    rules: Option<Arc<tokio::sync::Mutex<RulesEngine>>>,
    policies: Arc<crate::policy::PolicyBook>,
    auth: Arc<Auth>,
    max_agents: usize,
    /// None: plaintext.
    tls: Option<Arc<crate::tls::Acceptor>>,
    started_ms: i64,
    live: Arc<Live>,
    store: Arc<Store>,
    writer: mpsc::Sender<WriteReq>,
    sessions: Arc<Sessions>,
    stop: watch::Receiver<bool>,
}

/// The one place storage errors become gRPC statuses: a request the store refuses as malformed
/// is the caller's mistake; anything else is ours.
fn storage_status(e: crate::storage::StorageError) -> Status {
    match e {
        crate::storage::StorageError::InvalidArgument(m) => Status::invalid_argument(m),
        e => Status::internal(format!("storage: {e}")),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("storage task failed: {e}")))?
        .map_err(storage_status)
}

/// Checks an agent's identity.
///
/// # Errors
/// `InvalidArgument` naming the field.
pub fn check_identity(id: &HostIdentity) -> Result<(), Status> {
    let bad =
        |field: &str, why: &str| Status::invalid_argument(format!("hello.identity.{field}: {why}"));
    fleet_proto::identity::check_host_id(&id.host_id)
        .map_err(|e| bad("host_id", &e.to_string()))?;
    if id.cluster.is_empty() || id.cluster.len() > 128 {
        return Err(bad("cluster", "must be 1 to 128 characters"));
    }
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
    Ok(())
}

/// Checks a batch and drops records of activities this collector does not know (a newer agent
/// during a rolling upgrade); returns how many were dropped.
///
/// # Errors
/// `InvalidArgument` naming the batch, sample, record and what is wrong.
pub fn check_batch(b: &mut Batch) -> Result<usize, Status> {
    let bad = |why: String| Status::invalid_argument(format!("batch seq {}: {why}", b.seq));
    if b.seq == 0 {
        return Err(bad("seq must be at least 1".into()));
    }
    if b.samples.len() > MAX_SAMPLES_PER_BATCH {
        return Err(bad(format!(
            "{} samples; a batch holds at most {MAX_SAMPLES_PER_BATCH}",
            b.samples.len()
        )));
    }
    if b.samples.is_empty() && b.oom_events.is_empty() {
        return Err(bad("a batch carries samples, OOM events or both".into()));
    }
    if b.oom_events.len() > MAX_EVENTS_PER_BATCH {
        return Err(bad(format!(
            "{} OOM events; a batch holds at most {MAX_EVENTS_PER_BATCH}",
            b.oom_events.len()
        )));
    }
    for (ei, e) in b.oom_events.iter().enumerate() {
        if e.detail_json.len() > MAX_EVENT_DETAIL_BYTES {
            return Err(bad(format!(
                "OOM event {ei}: detail of {} bytes, at most {MAX_EVENT_DETAIL_BYTES}",
                e.detail_json.len()
            )));
        }
        if e.time_ms <= 0 {
            return Err(bad(format!("OOM event {ei}: time_ms must be positive")));
        }
        validate_oom_event(e).map_err(|err| bad(format!("OOM event {ei}: {err}")))?;
    }
    let mut unknown = 0;
    for (si, s) in b.samples.iter_mut().enumerate() {
        if s.time_ms <= 0 {
            return Err(bad(format!("sample {si}: time_ms must be positive")));
        }
        let before = s.records.len();
        s.records.retain(|r| schema_of_i32(r.activity).is_some());
        unknown += before - s.records.len();
        // The storage rules (schema lengths, instance names, record counts), checked here so a
        // bad batch is refused alone instead of failing a whole group commit.
        validate_sample(s).map_err(|e| bad(format!("sample {si}: {e}")))?;
        for (ri, r) in s.records.iter().enumerate() {
            let schema = schema_of_i32(r.activity).expect("retained");
            if r.instance.is_empty() {
                return Err(bad(format!(
                    "sample {si} record {ri} ({}): empty instance name",
                    schema.name
                )));
            }
            if let Some(ci) = r.values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "sample {si} record {ri} ({}): {} is not a finite number",
                    schema.name, schema.columns[ci]
                )));
            }
        }
    }
    Ok(unknown)
}

struct IngestSvc(Shared);

#[tonic::async_trait]
impl Ingest for IngestSvc {
    type SessionStream = ReceiverStream<Result<CollectorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let peer = request.remote_addr();
        let role = self.0.auth.check(&request, Need::Stream, "Session")?;
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
        self.0.auth.check_host(role.as_ref(), &identity.host_id)?;
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
        tokio::spawn(run_session(shared, rec, hello.spool_epoch, inbound, out_tx));
        Ok(Response::new(ReceiverStream::new(out_rx)))
    }
}

async fn run_session(
    shared: Shared,
    rec: HostRecord,
    epoch: u64,
    mut inbound: Streaming<AgentMessage>,
    out: mpsc::Sender<Result<CollectorMessage, Status>>,
) {
    let host = rec.identity.host_id.clone();
    let (ack_tx, mut ack_rx) =
        mpsc::channel::<(u64, oneshot::Receiver<Result<WriteOutcome, String>>)>(STREAM_PENDING);
    let acker_out = out.clone();
    let acker = tokio::spawn(async move {
        while let Some((seq, done)) = ack_rx.recv().await {
            let msg = match done.await {
                Ok(Ok(_)) => Ok(CollectorMessage {
                    msg: Some(collector_message::Msg::Ack(fleet_proto::v1::Ack { seq })),
                }),
                Ok(Err(e)) => Err(Status::unavailable(format!("storage write failed: {e}"))),
                Err(_) => Err(Status::unavailable("collector shutting down")),
            };
            let failed = msg.is_err();
            if acker_out.send(msg).await.is_err() || failed {
                break;
            }
        }
    });
    // Clock probes: the NTP on-wire exchange over this stream, every PROBE_EVERY.
    let probe_sent = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let prober = {
        let out = out.clone();
        let sent = probe_sent.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            loop {
                tick.tick().await;
                let t1_us = now_us();
                sent.store(t1_us, std::sync::atomic::Ordering::Relaxed);
                let probe = CollectorMessage {
                    msg: Some(collector_message::Msg::TimeProbe(TimeProbe { t1_us })),
                };
                if out.send(Ok(probe)).await.is_err() {
                    return;
                }
            }
        })
    };
    let pusher = policies::spawn_pusher(shared.policies.clone(), rec.clone(), out.clone());
    let mut stop = shared.stop.clone();
    let mut unknown_logged = false;
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            m = inbound.message() => m,
        };
        match msg {
            Ok(Some(AgentMessage {
                msg: Some(agent_message::Msg::Batch(mut batch)),
            })) => {
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
                        let _ = out.send(Err(status)).await;
                        break;
                    }
                }
                shared.live.observe(rec.num, &mut batch);
                let (done, done_rx) = oneshot::channel();
                let seq = batch.seq;
                let req = WriteReq {
                    item: IngestItem {
                        host_num: rec.num,
                        epoch,
                        seq,
                        dropped_samples: batch.dropped_samples,
                        samples: batch.samples,
                        oom_events: batch.oom_events,
                        kmsg: batch.kmsg,
                    },
                    done,
                };
                // Backpressure: both sends wait when the writer or this stream's ack queue is full.
                if shared.writer.send(req).await.is_err()
                    || ack_tx.send((seq, done_rx)).await.is_err()
                {
                    break;
                }
            }
            Ok(Some(AgentMessage {
                msg: Some(agent_message::Msg::TimeEcho(echo)),
            })) => {
                let t4 = now_us();
                // Only an echo of the probe this session sent last counts (not a stale or made-up one).
                if probe_sent.load(std::sync::atomic::Ordering::Relaxed) == echo.t1_us
                    && echo.t1_us != 0
                {
                    let offset_ms = ((echo.t2_us - echo.t1_us) + (echo.t3_us - t4)) as f64 / 2000.0;
                    let delay_ms = ((t4 - echo.t1_us) - (echo.t3_us - echo.t2_us)) as f64 / 1000.0;
                    shared.live.collector_offset(rec.num, offset_ms, delay_ms);
                }
            }
            Ok(Some(AgentMessage {
                msg: Some(agent_message::Msg::PolicyReport(report)),
            })) => {
                if let Err(e) =
                    policies::store_report(shared.policies.clone(), rec.clone(), report).await
                {
                    warn!(host_id = %host, error = %e.message(), "policy report not stored");
                }
            }
            Ok(Some(AgentMessage {
                msg: Some(agent_message::Msg::ProcessList(list)),
            })) => {
                if let Err(status) = check_process_list(&list) {
                    warn!(host_id = %host, error = %status.message(), "malformed process list; closing the stream");
                    let _ = out.send(Err(status)).await;
                    break;
                }
                shared.policies.set_processes(rec.num, &list);
            }
            Ok(Some(_)) => {
                let _ = out
                    .send(Err(Status::invalid_argument(
                        "after the hello, a session carries batches, time echoes, policy reports and process lists only",
                    )))
                    .await;
                break;
            }
            Ok(None) => break,
            Err(status) => {
                debug!(host_id = %host, error = %status, "agent stream ended");
                break;
            }
        }
    }
    prober.abort();
    pusher.abort();
    // Everything accepted is written and acknowledged before the stream closes.
    drop(ack_tx);
    let _ = acker.await;
    if shared.sessions.closed(&host) {
        let store = shared.store.clone();
        let num = rec.num;
        if let Err(e) = blocking(move || store.set_connected(num, false, now_ms())).await {
            warn!(host_id = %host, error = %e.message(), "could not record disconnect");
        }
    }
    info!(host_id = %host, "agent disconnected");
}

struct QuerySvc(Shared);

fn host_info(r: HostRecord) -> HostInfo {
    HostInfo {
        identity: Some(r.identity),
        connected: r.connected,
        first_seen_ms: r.first_seen_ms,
        last_seen_ms: r.last_seen_ms,
        dropped_samples: r.dropped_samples,
        last_seq: r.last_seq,
    }
}

#[tonic::async_trait]
impl Query for QuerySvc {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        self.0.auth.check(&request, Need::View, "ListHosts")?;
        let cluster = request.into_inner().cluster;
        let mut hosts: Vec<HostRecord> = self
            .0
            .store
            .hosts()
            .into_iter()
            .filter(|h| cluster.is_empty() || h.identity.cluster == cluster)
            .collect();
        hosts.sort_by(|a, b| {
            (
                &a.identity.cluster,
                &a.identity.hostname,
                &a.identity.host_id,
            )
                .cmp(&(
                    &b.identity.cluster,
                    &b.identity.hostname,
                    &b.identity.host_id,
                ))
        });
        Ok(Response::new(ListHostsResponse {
            hosts: hosts.into_iter().map(host_info).collect(),
        }))
    }

    async fn query_sar(&self, request: Request<SarQuery>) -> Result<Response<SarResult>, Status> {
        self.0.auth.check(&request, Need::View, "QuerySar")?;
        let q = request.into_inner();
        let activity = Activity::try_from(q.activity)
            .ok()
            .filter(|a| *a != Activity::Unspecified)
            .ok_or_else(|| Status::invalid_argument(format!("unknown activity {}", q.activity)))?;
        if q.hosts.is_empty() && q.cluster.is_empty() {
            return Err(Status::invalid_argument("select hosts or a cluster"));
        }
        let until = if q.until_ms == 0 {
            now_ms()
        } else {
            q.until_ms
        };
        if q.since_ms > until {
            return Err(Status::invalid_argument("since is after until"));
        }
        let mut hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        if hosts.is_empty() {
            return Err(Status::not_found(format!(
                "no host in cluster {:?}",
                q.cluster
            )));
        }
        hosts.sort_by(|a, b| a.identity.hostname.cmp(&b.identity.hostname));
        let store = self.0.store.clone();
        let since = q.since_ms;
        let rows = blocking(move || {
            let mut rows = Vec::new();
            for h in hosts {
                for r in store.query(h.num, activity, since, until)? {
                    rows.push(SarRow {
                        host_id: h.identity.host_id.clone(),
                        hostname: h.identity.hostname.clone(),
                        time_ms: r.time_ms,
                        interval_ms: r.interval_ms,
                        instance: r.instance,
                        values: r.values,
                    });
                }
                if rows.len() > MAX_QUERY_ROWS {
                    break;
                }
            }
            Ok(rows)
        })
        .await?;
        if rows.len() > MAX_QUERY_ROWS {
            return Err(Status::resource_exhausted(format!(
                "more than {MAX_QUERY_ROWS} rows; narrow --since/--until or the host selection"
            )));
        }
        Ok(Response::new(SarResult { rows }))
    }

    async fn top_oom(
        &self,
        request: Request<TopOomQuery>,
    ) -> Result<Response<TopOomResult>, Status> {
        self.0.auth.check(&request, Need::View, "TopOom")?;
        let q = request.into_inner();
        let limit = if q.limit == 0 {
            10
        } else {
            q.limit.min(10_000)
        } as usize;
        let hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        let mut rows = Vec::new();
        for h in hosts {
            if let Some((time_ms, procs)) = self.0.store.top_oom_latest(h.num) {
                rows.extend(procs.into_iter().map(|p| TopOomRow {
                    host_id: h.identity.host_id.clone(),
                    hostname: h.identity.hostname.clone(),
                    cluster: h.identity.cluster.clone(),
                    time_ms,
                    process: Some(p),
                }));
            }
        }
        let score = |r: &TopOomRow| r.process.as_ref().map_or(i64::MIN, |p| p.oom_score);
        rows.sort_by(|a, b| {
            score(b)
                .cmp(&score(a))
                .then_with(|| a.host_id.cmp(&b.host_id))
        });
        rows.truncate(limit);
        Ok(Response::new(TopOomResult { rows }))
    }

    async fn list_oom_kills(
        &self,
        request: Request<OomQuery>,
    ) -> Result<Response<OomKills>, Status> {
        self.0.auth.check(&request, Need::View, "ListOomKills")?;
        let q = request.into_inner();
        let until = if q.until_ms == 0 {
            now_ms()
        } else {
            q.until_ms
        };
        if q.since_ms > until {
            return Err(Status::invalid_argument("since is after until"));
        }
        let limit = if q.limit == 0 {
            1000
        } else {
            q.limit.min(100_000)
        } as usize;
        let all = q.hosts.is_empty() && q.cluster.is_empty();
        let hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        let by_num: HashMap<u32, HostRecord> = hosts.into_iter().map(|h| (h.num, h)).collect();
        if by_num.is_empty() {
            return Ok(Response::new(OomKills { kills: Vec::new() }));
        }
        let nums: Vec<u32> = if all {
            Vec::new()
        } else {
            by_num.keys().copied().collect()
        };
        let store = self.0.store.clone();
        let since = q.since_ms;
        let found = blocking(move || store.oom_kills(&nums, since, until, limit)).await?;
        let kills = found
            .into_iter()
            .filter_map(|k| {
                let h = by_num.get(&k.host_num)?;
                Some(oom_kill(k, h))
            })
            .collect();
        Ok(Response::new(OomKills { kills }))
    }

    async fn list_ntp(
        &self,
        request: Request<NtpQuery>,
    ) -> Result<Response<NtpStatusList>, Status> {
        self.0.auth.check(&request, Need::View, "ListNtp")?;
        let q = request.into_inner();
        let mut hosts = select_hosts(&self.0.store, &q.hosts, &q.cluster)?;
        hosts.sort_by(|a, b| {
            (&a.identity.cluster, &a.identity.hostname)
                .cmp(&(&b.identity.cluster, &b.identity.hostname))
        });
        let hosts = hosts
            .into_iter()
            .map(|h| {
                let live = self.0.live.get(h.num);
                let (time_ms, clock) = live.clock.unzip();
                NtpHostStatus {
                    host_id: h.identity.host_id,
                    hostname: h.identity.hostname,
                    cluster: h.identity.cluster,
                    time_ms: time_ms.unwrap_or(0),
                    clock,
                    collector_offset_ms: live.collector.map(|c| c.0),
                    collector_delay_ms: live.collector.map(|c| c.1),
                }
            })
            .collect();
        Ok(Response::new(NtpStatusList { hosts }))
    }

    async fn list_alerts(
        &self,
        request: Request<AlertQuery>,
    ) -> Result<Response<AlertList>, Status> {
        self.0.auth.check(&request, Need::View, "ListAlerts")?;
        let q = request.into_inner();
        if !matches!(q.state.as_str(), "" | "pending" | "firing" | "resolved") {
            return Err(Status::invalid_argument(format!(
                "state {:?}: use pending, firing or resolved",
                q.state
            )));
        }
        let alerts = match &self.0.rules {
            Some(engine) => engine.lock().await.alerts(&q.cluster, &q.state),
            None => Vec::new(),
        };
        Ok(Response::new(AlertList { alerts }))
    }

    async fn get_collector_status(
        &self,
        request: Request<CollectorStatusRequest>,
    ) -> Result<Response<CollectorStatus>, Status> {
        self.0
            .auth
            .check(&request, Need::View, "GetCollectorStatus")?;
        use std::sync::atomic::Ordering::Relaxed;
        let sh = &self.0;
        let (unauthenticated, permission_denied) = match sh.auth.as_ref() {
            Auth::Roles(r) => (
                r.unauthenticated.load(Relaxed),
                r.permission_denied.load(Relaxed),
            ),
            Auth::Open => (0, 0),
        };
        Ok(Response::new(CollectorStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms: sh.started_ms,
            connected_agents: sh.sessions.connected() as u32,
            max_agents: sh.max_agents.min(u32::MAX as usize) as u32,
            known_hosts: sh.store.hosts().len() as u32,
            tls: sh.tls.is_some(),
            mutual_tls: sh.tls.as_ref().is_some_and(|t| t.mutual()),
            tls_handshakes_refused: sh.tls.as_ref().map_or(0, |t| t.refused.load(Relaxed)),
            unauthenticated,
            permission_denied,
            streams_refused: sh.sessions.refused.load(Relaxed),
            policies: sh.policies.in_force_count() as u32,
        }))
    }

    async fn get_oom_kill(
        &self,
        request: Request<OomKillRequest>,
    ) -> Result<Response<OomKillDetail>, Status> {
        self.0.auth.check(&request, Need::View, "GetOomKill")?;
        let q = request.into_inner();
        let before = if q.before_ms <= 0 {
            10 * 60_000
        } else {
            q.before_ms
        };
        let store = self.0.store.clone();
        let id = q.id.clone();
        let found = blocking(move || store.oom_kill(&id)).await?;
        let Some(k) = found else {
            return Err(Status::not_found(format!("no OOM kill with id {:?}", q.id)));
        };
        let host = self.0.store.host_by_num(k.host_num).ok_or_else(|| {
            Status::internal(format!("kill {} names unknown host {}", q.id, k.host_num))
        })?;
        let t = k.event.time_ms;
        let (num, from) = (k.host_num, t.saturating_sub(before));
        let store = self.0.store.clone();
        let h = host.clone();
        let detail = blocking(move || {
            let rows = |a: Activity| -> Result<Vec<SarRow>, crate::storage::StorageError> {
                Ok(store
                    .query(num, a, from, t)?
                    .into_iter()
                    .map(|r| SarRow {
                        host_id: h.identity.host_id.clone(),
                        hostname: h.identity.hostname.clone(),
                        time_ms: r.time_ms,
                        interval_ms: r.interval_ms,
                        instance: r.instance,
                        values: r.values,
                    })
                    .collect())
            };
            let (top_time, top) = store.top_oom_before(num, t)?.unwrap_or_default();
            Ok(OomKillDetail {
                kill: None,
                memory: rows(Activity::Memory)?,
                swap: rows(Activity::Swap)?,
                swapping: rows(Activity::Swapping)?,
                paging: rows(Activity::Paging)?,
                top_oom_time_ms: top_time,
                top_oom: top,
            })
        })
        .await?;
        Ok(Response::new(OomKillDetail {
            kill: Some(oom_kill(k, &host)),
            ..detail
        }))
    }
}

fn oom_kill(k: crate::storage::StoredOomKill, h: &HostRecord) -> OomKill {
    OomKill {
        id: k.id,
        host_id: h.identity.host_id.clone(),
        hostname: h.identity.hostname.clone(),
        cluster: h.identity.cluster.clone(),
        event: Some(k.event),
    }
}

/// The hosts a query selects by id or hostname and/or cluster (every host when both are
/// empty); `NotFound` when names are given and match nothing.
fn select_hosts(store: &Store, names: &[String], cluster: &str) -> Result<Vec<HostRecord>, Status> {
    let hosts: Vec<HostRecord> = store
        .hosts()
        .into_iter()
        .filter(|h| {
            (names.is_empty()
                || names
                    .iter()
                    .any(|s| *s == h.identity.host_id || *s == h.identity.hostname))
                && (cluster.is_empty() || h.identity.cluster == cluster)
        })
        .collect();
    if hosts.is_empty() && !names.is_empty() {
        return Err(Status::not_found(format!(
            "no host matches {}",
            names.join(", ")
        )));
    }
    Ok(hosts)
}

/// Reads the certificate, key and CA again on SIGHUP (rotation without a restart). A file that
/// does not load is refused with a message and the certificates in force stay.
async fn reload_tls(acceptor: Arc<crate::tls::Acceptor>, mut stop: watch::Receiver<bool>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = hup.recv() => match acceptor.reload() {
                Ok(()) => info!("TLS certificates reloaded"),
                Err(e) => error!(error = %e, "TLS certificates not reloaded; the ones in force stay"),
            },
        }
    }
}

/// Periodic sealing of closed windows and retention.
async fn maintenance(store: Arc<Store>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention = None::<tokio::time::Instant>;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let s = store.clone();
        match blocking(move || s.seal(now_ms())).await {
            Ok(stats) => debug!(?stats, "sealed closed windows"),
            Err(e) => warn!(error = %e.message(), "sealing failed; raw data stays readable"),
        }
        if last_retention.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            last_retention = Some(tokio::time::Instant::now());
            let s = store.clone();
            if let Err(e) = blocking(move || s.enforce_retention(now_ms())).await {
                warn!(error = %e.message(), "retention failed");
            }
        }
    }
}

/// What `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Certificate, key and fleet CA (read at start and on SIGHUP); None serves plaintext.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Most agents connected at once; more are refused (`ResourceExhausted`).
    pub max_agents: usize,
    pub seal_every: Duration,
    /// Alert rules and where alerts go; None: no rules are evaluated.
    pub rules: Option<RulesOptions>,
}

/// The alerting part of the collector.
#[derive(Debug, Clone)]
pub struct RulesOptions {
    /// The rules file, read at start and on SIGHUP.
    pub file: PathBuf,
    pub alertmanager: Option<String>,
    pub webhook: Option<String>,
    /// CA (PEM) for https notifier URLs; None: the system's bundle.
    pub notify_ca: Option<PathBuf>,
}

/// How often the rules are evaluated.
pub const EVAL_EVERY: Duration = Duration::from_secs(1);

/// Reads and parses a rules file.
///
/// # Errors
/// A message naming the file, and each rule and field at fault.
pub fn load_rules(path: &Path) -> Result<fleet_rules::RuleSet, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read rules file {}: {e}", path.display()))?;
    fleet_rules::parse_rules(&text, &path.display().to_string()).map_err(|e| e.to_string())
}

/// Builds the rules engine: the rules file, the notifiers, and the alert state saved in the store.
///
/// # Errors
/// The rules file is unreadable or invalid, a notifier URL is bad, or the store cannot be read.
pub fn rules_engine(store: &Arc<Store>, opts: &RulesOptions) -> anyhow::Result<RulesEngine> {
    let rules = load_rules(&opts.file).map_err(anyhow::Error::msg)?;
    let mut targets = Vec::new();
    if let Some(url) = &opts.alertmanager {
        targets.push(Target::alertmanager(url)?);
    }
    if let Some(url) = &opts.webhook {
        targets.push(Target::webhook(url)?);
    }
    let mut notify = NotifierOptions::default();
    if targets.iter().any(Target::is_https) {
        notify.tls = Some(
            crate::rules::notify::client_tls(opts.notify_ca.as_deref())
                .map_err(anyhow::Error::msg)?,
        );
    }
    let notifiers = Notifiers::start(targets, notify);
    info!(rules = rules.rules().len(), file = %opts.file.display(), "alert rules loaded");
    Ok(RulesEngine::load(store.clone(), rules, notifiers)?)
}

/// Everything the rules look at, as of now.
fn fleet_view(store: &Store, live: &Live) -> FleetView {
    let hosts = store
        .hosts()
        .into_iter()
        .map(|h| {
            let l = live.get(h.num);
            HostView {
                host_id: h.identity.host_id,
                hostname: h.identity.hostname,
                cluster: h.identity.cluster,
                connected: h.connected,
                last_seen_ms: h.last_seen_ms,
                ntp: l.clock.map(|(_, c)| c),
                sar: l
                    .sar
                    .into_iter()
                    .filter_map(|((a, inst), v)| Some((Activity::try_from(a).ok()?, inst, v)))
                    .collect(),
                oom_kill_times_ms: l.oom_kills.into_iter().collect(),
            }
        })
        .collect();
    FleetView {
        now_ms: now_ms(),
        hosts,
    }
}

/// Evaluates the rules every [`EVAL_EVERY`] and reloads them on SIGHUP (a broken file is refused
/// and the rules in force stay).
async fn evaluate_rules(
    engine: Arc<tokio::sync::Mutex<RulesEngine>>,
    store: Arc<Store>,
    live: Arc<Live>,
    file: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(EVAL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                match load_rules(&file) {
                    Ok(rules) => {
                        info!(rules = rules.rules().len(), file = %file.display(), "alert rules reloaded");
                        engine.lock().await.reload(rules);
                    }
                    Err(e) => error!(error = %e, "rules file refused; the rules in force stay"),
                }
            }
            _ = tick.tick() => {
                let view = fleet_view(&store, &live);
                engine.lock().await.evaluate(&view);
            }
            () = live.kill_arrived.notified() => {
                let view = fleet_view(&store, &live);
                engine.lock().await.evaluate(&view);
            }
        }
    }
}

/// Serves the Ingest and Query services on `listener` until `shutdown` resolves, then drains:
/// stops accepting, lets sessions finish their acknowledged writes, stops the writer and flushes
/// RocksDB.
///
/// # Errors
/// TLS configuration or transport errors.
pub async fn run(
    listener: TcpListener,
    store: Arc<Store>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Hosts marked connected by a previous run that ended without closing their streams.
    let now = now_ms();
    for h in store.hosts().into_iter().filter(|h| h.connected) {
        store.set_connected(h.num, false, now)?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (writer_tx, writer_rx) = mpsc::channel(WRITE_QUEUE);
    let writer_store = store.clone();
    let writer = std::thread::Builder::new()
        .name("fleet-writer".into())
        .spawn(move || writer_thread(writer_store, writer_rx))?;
    let live: Arc<Live> = Arc::default();
    let engine = match &opts.rules {
        Some(r) => Some((
            Arc::new(tokio::sync::Mutex::new(rules_engine(&store, r)?)),
            r.file.clone(),
        )),
        None => None,
    };
    let evaluator = engine.as_ref().map(|(e, file)| {
        tokio::spawn(evaluate_rules(
            e.clone(),
            store.clone(),
            live.clone(),
            file.clone(),
            stop_rx.clone(),
        ))
    });
    let book = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || crate::policy::PolicyBook::open(store)).await??
    };
    let acceptor = match &opts.tls {
        Some(files) => Some(Arc::new(
            crate::tls::Acceptor::new(files.clone()).map_err(|e| anyhow::anyhow!(e))?,
        )),
        None => None,
    };
    let shared = Shared {
        tls: acceptor.clone(),
        started_ms: now_ms(),
        rules: engine.as_ref().map(|(e, _)| e.clone()),
        policies: Arc::new(book),
        max_agents: opts.max_agents,
        auth: Arc::new(match &opts.tls {
            Some(files) if files.ca.is_some() => Auth::Roles(Refusals::default()),
            _ => Auth::Open,
        }),
        live,
        store: store.clone(),
        writer: writer_tx,
        sessions: Arc::default(),
        stop: stop_rx.clone(),
    };
    let maint = tokio::spawn(maintenance(store.clone(), opts.seal_every, stop_rx.clone()));

    let reloader = acceptor
        .clone()
        .map(|acc| tokio::spawn(reload_tls(acc, stop_rx.clone())));
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        // Unary queries end within this; the agents' streams are not cut (it bounds the time to
        // the response headers).
        .timeout(REQUEST_TIMEOUT);
    let ingest = IngestServer::new(IngestSvc(shared.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let query = QueryServer::new(QuerySvc(shared.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_QUERY_RESPONSE_BYTES);
    let policies = PoliciesServer::new(policies::PoliciesSvc(shared.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_QUERY_RESPONSE_BYTES);
    drop(shared);
    let addr = listener.local_addr()?;
    info!(%addr, tls = acceptor.is_some(),
        mutual_tls = acceptor.as_ref().is_some_and(|a| a.mutual()), "fleet-collector serving");
    let router = builder
        .add_service(ingest)
        .add_service(query)
        .add_service(policies);
    let on_shutdown = async move {
        shutdown.await;
        info!("shutting down: no new connections; finishing writes");
        let _ = stop_tx.send(true);
    };
    match acceptor {
        Some(acc) => {
            router
                .serve_with_incoming_shutdown(crate::tls::incoming(listener, acc), on_shutdown)
                .await?
        }
        None => {
            router
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), on_shutdown)
                .await?
        }
    }
    if let Some(r) = reloader {
        r.abort();
    }
    let _ = maint.await;
    if let Some(ev) = evaluator {
        let _ = ev.await;
    }
    if let Some((engine, _)) = engine {
        // The last transitions reach the notifiers before the collector exits.
        if let Ok(engine) = Arc::try_unwrap(engine) {
            engine.into_inner().shutdown(Duration::from_secs(3)).await;
        }
    }
    // Every session task has ended (they hold the writer's senders): the writer drains and exits.
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))?;
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.flush()).await??;
    info!("storage flushed; collector stopped");
    Ok(())
}

#[cfg(test)]
mod sessions_tests {
    use super::*;

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
}
