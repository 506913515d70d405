//! A collector served in-process by [`server::run`] on a `127.0.0.1:0` listener over a temporary
//! store, and a scripted agent stream ([`AgentStream`]) driven by the generated tonic clients.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fleet_collector::config::{DEFAULT_MAX_AGENTS, DEFAULT_MAX_FUTURE_SKEW};
use fleet_collector::rules::RulesOptions;
use fleet_collector::server::{self, ServeOptions};
use fleet_collector::storage::{HostRecord, Store, StoreOptions};
use fleet_proto::clock::now_ms;
use fleet_proto::schema::schema;
use fleet_proto::v1::{
    agent_message, collector_message, ingest_client::IngestClient, policies_client::PoliciesClient,
    query_client::QueryClient, Activity, AgentMessage, Alert, AlertQuery, Batch, CollectorMessage,
    CollectorStatus, CollectorStatusRequest, Hello, HostIdentity, Record, Sample,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `f` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn wait_for<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `fut`, or a test failure naming `what` after [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The options of a plaintext collector without rules.
pub fn plaintext() -> ServeOptions {
    ServeOptions {
        tls: None,
        max_agents: DEFAULT_MAX_AGENTS,
        seal_every: Duration::from_secs(60),
        rules: None,
        max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
        metrics: None,
        remote_write: None,
    }
}

/// A collector running in this process.
pub struct Collector {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    shutdown: Option<oneshot::Sender<()>>,
    run: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    /// Holds the rules file of [`Collector::start_with_rules`].
    _rules: Option<tempfile::TempDir>,
}

impl Collector {
    /// A plaintext collector without rules.
    pub async fn start() -> Collector {
        Collector::start_with(plaintext()).await
    }

    pub async fn start_with(opts: ServeOptions) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Store::open(&dir.path().join("data"), StoreOptions::default()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let run = tokio::spawn(server::run(listener, store.clone(), opts, async {
            let _ = rx.await;
        }));
        Collector {
            addr,
            store,
            shutdown: Some(tx),
            run: Some(run),
            _dir: dir,
            _rules: None,
        }
    }

    /// A plaintext collector evaluating the rules `rules` (TOML), without notifiers.
    pub async fn start_with_rules(rules: &str) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.toml");
        std::fs::write(&file, rules).unwrap();
        let mut c = Collector::start_with(ServeOptions {
            rules: Some(RulesOptions {
                file,
                alertmanager: None,
                webhook: None,
                notify_ca: None,
            }),
            ..plaintext()
        })
        .await;
        c._rules = Some(dir);
        c
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn ingest(&self) -> IngestClient<Channel> {
        IngestClient::new(self.channel().await)
    }

    pub async fn query(&self) -> QueryClient<Channel> {
        QueryClient::new(self.channel().await)
    }

    pub async fn policies(&self) -> PoliciesClient<Channel> {
        PoliciesClient::new(self.channel().await)
    }

    /// `GetCollectorStatus`.
    pub async fn status(&self) -> CollectorStatus {
        self.query()
            .await
            .get_collector_status(CollectorStatusRequest::default())
            .await
            .unwrap()
            .into_inner()
    }

    /// The alerts of rule `rule` in `state` ("firing", "resolved", ...).
    pub async fn alerts(&self, rule: &str, state: &str) -> Vec<Alert> {
        let all = self
            .query()
            .await
            .list_alerts(AlertQuery {
                state: state.into(),
                ..AlertQuery::default()
            })
            .await
            .unwrap()
            .into_inner()
            .alerts;
        all.into_iter().filter(|a| a.rule == rule).collect()
    }

    /// Resolves the shutdown future and waits for `run` to return; the store stays open for the
    /// test to read.
    pub async fn stop(&mut self) {
        let _ = self.shutdown.take().expect("running").send(());
        within("run to return", self.run.take().expect("running"))
            .await
            .expect("the run task")
            .expect("run");
    }

    /// The registry record of `host_id`.
    pub fn host(&self, host_id: &str) -> Option<HostRecord> {
        host(&self.store, host_id)
    }
}

/// A collector still running at the end of a test is stopped as [`Collector::stop`] does, so
/// the writer thread ends and RocksDB is closed before the test process exits (a database left
/// open in a detached thread can abort the process at exit). Needs the multi-thread runtime.
impl Drop for Collector {
    fn drop(&mut self) {
        if self.run.is_none() {
            return;
        }
        if std::thread::panicking() {
            self.run.take().unwrap().abort();
            return;
        }
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(self.stop()));
    }
}

/// The registry record of `host_id` in `store`.
pub fn host(store: &Store, host_id: &str) -> Option<HostRecord> {
    store
        .hosts()
        .into_iter()
        .find(|h| h.identity.host_id == host_id)
}

/// An identity in `cluster` whose hostname is `HOST_ID.example`.
pub fn identity(host_id: &str, cluster: &str) -> HostIdentity {
    HostIdentity {
        host_id: host_id.into(),
        hostname: format!("{host_id}.example"),
        cluster: cluster.into(),
        kernel: "6.1.0".into(),
        agent_version: "test".into(),
        ..HostIdentity::default()
    }
}

/// A CPU record for instance "all" whose `%user` is `user`.
pub fn cpu(user: f64) -> Record {
    let mut values = vec![0.0; schema(Activity::Cpu).unwrap().columns.len()];
    values[0] = user;
    *values.last_mut().unwrap() = 100.0 - user;
    Record {
        activity: Activity::Cpu as i32,
        instance: "all".into(),
        values,
    }
}

/// A memory record whose `kbmemfree` is `free_kb`.
pub fn memory(free_kb: f64) -> Record {
    let mut values = vec![0.0; schema(Activity::Memory).unwrap().columns.len()];
    values[0] = free_kb;
    Record {
        activity: Activity::Memory as i32,
        instance: "-".into(),
        values,
    }
}

/// A sample taken at `time_ms` over one second.
pub fn sample(time_ms: i64, records: Vec<Record>) -> Sample {
    Sample {
        time_ms,
        interval_ms: 1000,
        records,
        ..Sample::default()
    }
}

/// Batch `seq` with one CPU sample at `time_ms`.
pub fn batch(seq: u64, time_ms: i64) -> Batch {
    Batch {
        seq,
        samples: vec![sample(time_ms, vec![cpu(seq as f64)])],
        ..Batch::default()
    }
}

/// Now, less `secs` seconds.
pub fn ago(secs: i64) -> i64 {
    now_ms() - secs * 1000
}

/// The code and message of a refused call.
pub fn refusal<T: std::fmt::Debug>(r: Result<tonic::Response<T>, Status>) -> (tonic::Code, String) {
    let s = r.expect_err("the call is refused");
    (s.code(), s.message().to_string())
}

/// What the collector said next on a stream, probes and policy pushes aside.
#[derive(Debug)]
pub enum Said {
    Ack(u64),
    Refused(Status),
    Ended,
}

/// One agent's stream, scripted by the test.
pub struct AgentStream {
    /// None once the agent's side is ended ([`AgentStream::end_sending`]).
    tx: Option<mpsc::Sender<AgentMessage>>,
    rx: Streaming<CollectorMessage>,
    /// `last_seq` of the welcome.
    pub last_seq: u64,
}

impl AgentStream {
    /// Opens a stream with a hello for `identity` and spool `epoch`, and takes the welcome. Each
    /// batch is acknowledged as soon as it is stored.
    ///
    /// # Errors
    /// The status the collector refused the stream with.
    pub async fn open(
        client: &IngestClient<Channel>,
        identity: HostIdentity,
        epoch: u64,
    ) -> Result<AgentStream, Status> {
        AgentStream::open_paced(client, identity, epoch, 0).await
    }

    /// [`AgentStream::open`] with a hello that lets the collector hold Acks back for
    /// `ack_delay_ms`, as fleet-agent does.
    ///
    /// # Errors
    /// The status the collector refused the stream with.
    pub async fn open_paced(
        client: &IngestClient<Channel>,
        identity: HostIdentity,
        epoch: u64,
        ack_delay_ms: u32,
    ) -> Result<AgentStream, Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(AgentMessage {
            msg: Some(agent_message::Msg::Hello(Hello {
                identity: Some(identity),
                spool_epoch: epoch,
                ack_delay_ms,
            })),
        })
        .await
        .unwrap();
        let mut rx = within(
            "the session to open",
            client.clone().session(ReceiverStream::new(rx)),
        )
        .await?
        .into_inner();
        let first = within("the welcome", rx.message()).await?;
        let Some(CollectorMessage {
            msg: Some(collector_message::Msg::Welcome(w)),
        }) = first
        else {
            panic!("the first message was not a welcome: {first:?}");
        };
        Ok(AgentStream {
            tx: Some(tx),
            rx,
            last_seq: w.last_seq,
        })
    }

    /// Opens a stream for `host_id` (hostname `HOST_ID.example`) in `cluster`; the test fails if
    /// the collector refuses it.
    pub async fn connect(
        client: &IngestClient<Channel>,
        host_id: &str,
        cluster: &str,
        epoch: u64,
    ) -> AgentStream {
        AgentStream::open(client, identity(host_id, cluster), epoch)
            .await
            .unwrap_or_else(|s| panic!("stream of {host_id} refused: {s:?}"))
    }

    /// Sends `msg`; a stream the collector already closed takes nothing, silently.
    pub async fn send(&self, msg: agent_message::Msg) {
        let tx = self.tx.as_ref().expect("the agent's side is not ended");
        let _ = tx.send(AgentMessage { msg: Some(msg) }).await;
    }

    pub async fn send_batch(&self, batch: Batch) {
        self.send(agent_message::Msg::Batch(batch)).await;
    }

    /// The next message, whatever it is (None: the stream ended).
    pub async fn next_message(&mut self) -> Result<Option<collector_message::Msg>, Status> {
        within("a message from the collector", self.rx.message())
            .await
            .map(|m| m.and_then(|m| m.msg))
    }

    /// The next ack, refusal or end of stream.
    pub async fn next(&mut self) -> Said {
        loop {
            match self.next_message().await {
                Ok(Some(collector_message::Msg::Ack(a))) => return Said::Ack(a.seq),
                Ok(Some(collector_message::Msg::Welcome(w))) => panic!("a second welcome: {w:?}"),
                Ok(Some(_)) => continue,
                Ok(None) => return Said::Ended,
                Err(s) => return Said::Refused(s),
            }
        }
    }

    /// Sends `batch` and waits for its ack.
    pub async fn store(&mut self, batch: Batch) {
        let seq = batch.seq;
        self.send_batch(batch).await;
        match self.next().await {
            Said::Ack(s) if s == seq => {}
            other => panic!("batch {seq}: {other:?}"),
        }
    }

    /// Closes the agent's side of the stream.
    pub fn close(self) {}

    /// Ends the agent's side of the stream and keeps the collector's, to read what it says
    /// after that.
    pub fn end_sending(&mut self) {
        self.tx = None;
    }
}
