//! The gRPC services and the write path, and [`run`], which serves them until shutdown.
//!
//! - `ingest`: the `Ingest` service: one stream per agent (hello, caps, identity and batch
//!   checks, acks after the write, clock probes).
//! - `writer`: the group-commit writer thread behind a bounded queue.
//! - `query`: the `Query` service (fleetctl's reads).
//! - `policies`: the `Policies` service, and what a session does with policies.
//! - `future`: what a session does with timestamps from the future ([`FutureScreen`]).
//! - `metrics`: what the metrics port (`--metrics-listen`, [`crate::metrics::http`]) reports.
//!
//! Backpressure: the writer queue is bounded; when the disk is slow it fills, `submit` waits and
//! the session tasks stop reading their streams, so HTTP/2 flow control pushes back on the
//! agents, which keep their data in their spools. Memory stays bounded by the queue and the
//! per-stream windows. An Ack is sent only after the write that contains the batch returned.
//!
//! A failed write makes the store refuse writes until it reopened its database
//! ([`crate::storage::health`]): the writer then refuses every batch at once, the sessions end
//! their streams with `Unavailable`, queries are still answered, and [`run`] keeps the recovery
//! loop going. If the store cannot continue at all (its database cannot even be opened for
//! reading), `run` shuts down as on the shutdown future and returns the error.
//!
//! Shutdown ([`run`]): the listener stops accepting, sessions stop reading and finish their
//! pending acks, the rules loop ends and the last alert changes reach the notifiers, the writer
//! drains, RocksDB is flushed (when it takes writes: otherwise what was acknowledged is in its
//! synced write-ahead log).

mod acks;
mod future;
mod ingest;
mod metrics;
mod policies;
mod query;
mod writer;

pub use acks::{ACK_EVERY, MAX_ACK_DELAY};
pub use future::{FutureScreen, Screened};
pub use ingest::{check_batch, check_identity, HELLO_TIMEOUT, MAX_STREAMS_PER_HOST, PROBE_EVERY};
pub use policies::{check_process_list, ACTOR_METADATA, MAX_PROCESSES};
pub use query::MAX_QUERY_ROWS;
pub use writer::WRITE_QUEUE;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fleet_proto::clock::now_ms;
use fleet_proto::limits::{MAX_MESSAGE_BYTES, MAX_QUERY_RESPONSE_BYTES};
use fleet_proto::v1::{
    ingest_server::IngestServer, policies_server::PoliciesServer, query_server::QueryServer,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic::Status;
use tracing::info;

use crate::auth::Auth;
use crate::rules::evaluate::{evaluate_rules, rules_engine};
use crate::rules::{Live, RulesEngine, RulesOptions};
use crate::storage::{Store, StoreState};
use ingest::Sessions;
use writer::Writer;

/// How long a unary request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What every service shares; one clone per service and per session.
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
    /// The writer thread ends when the last clone is dropped, i.e. when every session ended.
    writer: Writer,
    sessions: Arc<Sessions>,
    /// Timestamps from the future, screened by every session and counted.
    future: Arc<FutureScreen>,
    stop: watch::Receiver<bool>,
}

/// The one place storage errors become gRPC statuses: a request the store refuses as malformed
/// is the caller's mistake; a store that takes no writes (a full disk), or an I/O error, is
/// `Unavailable` (try again later); anything else is ours.
fn storage_status(e: crate::storage::StorageError) -> Status {
    use crate::storage::StorageError;
    match e {
        StorageError::InvalidArgument(m) => Status::invalid_argument(m),
        StorageError::Unavailable(m) => Status::unavailable(m),
        StorageError::Rocks(e) if e.kind() == rocksdb::ErrorKind::IOError => {
            Status::unavailable(format!("storage: {e}"))
        }
        e => Status::internal(format!("storage: {e}")),
    }
}

/// Runs a store call off the async threads; its error as a gRPC status.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, Status> {
    crate::storage::off_thread(f).await.map_err(storage_status)
}

/// What `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Certificate, key, fleet CA and CRL (read at start and on SIGHUP) and the rules client
    /// certificates follow; None serves plaintext.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Most agents connected at once; more are refused (`ResourceExhausted`).
    pub max_agents: usize,
    pub seal_every: Duration,
    /// Alert rules and where alerts go; None: no rules are evaluated.
    pub rules: Option<RulesOptions>,
    /// How far ahead of the collector's clock an agent's timestamp may be (see [`FutureScreen`]).
    pub max_future_skew: Duration,
    /// The bound listener of the metrics port (`GET /metrics`, [`crate::metrics::http`]), with
    /// the TLS and client certificates of the gRPC port; None: no metrics port. Shared so the
    /// options stay `Clone`; `run` serves a duplicate of it.
    pub metrics: Option<Arc<std::net::TcpListener>>,
    /// Remote-write receivers ([`crate::remote_write`]); the store must have been opened with
    /// an outbox (`StoreOptions::outbox_limit`). None: off.
    pub remote_write: Option<crate::remote_write::RemoteWriteOptions>,
}

/// Serves the Ingest and Query services on `listener` until `shutdown` resolves, then drains:
/// stops accepting, lets sessions finish their acknowledged writes, stops the writer and flushes
/// RocksDB. Meanwhile reopens the store's database whenever a write failed
/// ([`crate::storage::health::recover`]).
///
/// # Errors
/// TLS configuration or transport errors; a store that cannot continue (then `run` shuts down
/// by itself, as on `shutdown`, and returns its error).
pub async fn run(
    listener: TcpListener,
    store: Arc<Store>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Hosts marked connected by a previous run that ended without closing their streams (a
    // read-only store marked them disconnected in memory only).
    let now = now_ms();
    for h in store.hosts().into_iter().filter(|h| h.connected) {
        if store.is_writable() {
            store.set_connected(h.num, false, now)?;
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (writer, writer_thread) = Writer::start(store.clone())?;
    let rules_eval: Arc<crate::metrics::Histogram> = Arc::default();
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
            rules_eval.clone(),
            stop_rx.clone(),
        ))
    });
    let book = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || crate::policy::PolicyBook::open(store)).await??
    };
    // SIGHUP is listened for before the TLS files are read, so none after the read is missed.
    let hup = match opts.tls.as_ref().map(|_| crate::tls::sighups()) {
        Some(Ok(hup)) => Some(hup),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "no SIGHUP handler: the TLS files are read at start only");
            None
        }
        None => None,
    };
    let acceptor = match &opts.tls {
        Some(tls) => Some(Arc::new(
            crate::tls::Acceptor::new(tls.clone()).map_err(|e| anyhow::anyhow!(e))?,
        )),
        None => None,
    };
    let remote_write = match &opts.remote_write {
        Some(rw) if store.outbox_limit().is_some() => Some(
            crate::remote_write::RemoteWrite::start(
                store.clone(),
                live.clone(),
                rw,
                stop_rx.clone(),
            )
            .map_err(|e| anyhow::anyhow!(e))?,
        ),
        Some(_) => anyhow::bail!(
            "remote-write needs a store opened with an outbox (StoreOptions::outbox_limit)"
        ),
        None => None,
    };
    let sessions: Arc<Sessions> = Arc::default();
    let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel();
    let recovery = {
        let open = sessions.clone();
        let connected = Arc::new(move |host_id: &str| open.is_open(host_id));
        let recover = crate::storage::health::recover(store.clone(), connected, stop_rx.clone());
        tokio::spawn(async move {
            let result = recover.await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "storage cannot continue; stopping");
                let _ = fatal_tx.send(());
            }
            result
        })
    };
    let shared = Shared {
        tls: acceptor.clone(),
        started_ms: now_ms(),
        rules: engine.as_ref().map(|(e, _)| e.clone()),
        policies: Arc::new(book),
        max_agents: opts.max_agents,
        auth: Arc::new(match &opts.tls {
            Some(tls) if tls.ca.is_some() => Auth::roles(tls.clients.clone()),
            _ => Auth::Open,
        }),
        live,
        store: store.clone(),
        writer,
        sessions,
        future: Arc::new(FutureScreen::new(opts.max_future_skew)),
        stop: stop_rx.clone(),
    };
    let metrics = match &opts.metrics {
        Some(l) => {
            let l = l.try_clone()?;
            l.set_nonblocking(true)?;
            let gauges = metrics::Gauges {
                shared: shared.clone(),
                rules_eval,
                remote_write: (remote_write.iter())
                    .flat_map(|rw| rw.stats().iter().cloned())
                    .collect(),
            };
            Some(tokio::spawn(crate::metrics::http::serve(
                TcpListener::from_std(l)?,
                acceptor.clone(),
                Arc::new(gauges),
                stop_rx.clone(),
            )))
        }
        None => None,
    };
    let maint = tokio::spawn(crate::storage::maintenance::run(
        store.clone(),
        opts.seal_every,
        stop_rx.clone(),
    ));

    let reloader = acceptor
        .clone()
        .zip(hup)
        .map(|(acc, hup)| tokio::spawn(crate::tls::reload_on_sighup(acc, hup, stop_rx.clone())));
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        // Unary queries end within this; the agents' streams are not cut (it bounds the time to
        // the response headers).
        .timeout(REQUEST_TIMEOUT);
    let ingest = IngestServer::new(ingest::IngestSvc(shared.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let query = QueryServer::new(query::QuerySvc(shared.clone()))
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
        tokio::select! {
            () = shutdown => {}
            // Only when the store cannot continue (the sender is kept until then).
            Ok(()) = fatal_rx => {}
        }
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
    // Stopped with everything else: a request in flight is sent again after the next start.
    if let Some(rw) = remote_write {
        rw.shutdown().await;
    }
    // Holds a clone of the writer: ends before the writer is waited for.
    if let Some(m) = metrics {
        let _ = m.await;
    }
    let _ = maint.await;
    // Ends at the stop, after any reopen in progress: the database is never left closed.
    let recovered = recovery.await?;
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
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))?;
    recovered?;
    match store.state() {
        StoreState::Writable => {
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.flush()).await??;
            info!("storage flushed; collector stopped");
        }
        state => {
            tracing::warn!(state = %state.refusal(), "storage not flushed: it takes no writes; what was acknowledged is in its write-ahead log; collector stopped");
        }
    }
    Ok(())
}
