//! A scripted fake collector for the in-process tests of the link and the agent's loop: a
//! [`Connector`] made of in-memory channels. No sockets, so tokio's paused time (which jumps
//! ahead whenever the runtime is idle) stays deterministic; and no fixed sleeps: a test waits
//! for what the agent sends, or lets the link take what is queued for it ([`settle`]).

#![allow(dead_code)] // Each test file uses its own part of it.

pub mod kmsg_burst;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use fleet_agent::agent::{Agent, Sources};
use fleet_agent::config::{Options, Settings};
use fleet_agent::link::{Connection, Connector, LinkEvent, Outbound, Session};
use fleet_agent::sources::kmsg::KmsgWatcher;
use fleet_agent::sources::procfs::Sampler;
use fleet_agent::spool::Spool;
use fleet_proto::v1::{
    agent_message, collector_message, Ack, AgentMessage, Batch, CollectorMessage, HostIdentity,
    Sample, Welcome,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Status;

/// How the fake collector answers one connection attempt.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The attempt fails with this reason.
    Refuse(String),
    /// The stream opens and the welcome says the collector holds everything up to `last_seq`.
    Accept { last_seq: u64 },
}

/// The collector's side of one accepted stream.
pub struct Peer {
    pub hello: AgentMessage,
    /// What the agent writes, as the collector decodes it.
    pub from_agent: mpsc::Receiver<Outbound>,
    pub to_agent: mpsc::UnboundedSender<Result<CollectorMessage, Status>>,
}

/// A test waits this long at most for what the agent sends (paused time: it only passes when
/// the agent would never send it).
const PATIENCE: Duration = Duration::from_secs(600);

impl Peer {
    /// The next batch the agent sends (other messages are skipped).
    pub async fn batch(&mut self) -> Batch {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.from_agent.recv())
                .await
                .expect("the agent sent no batch")
                .expect("the agent closed the stream")
                .to_message()
                .expect("what the agent sends decodes");
            if let Some(agent_message::Msg::Batch(b)) = msg.msg {
                return b;
            }
        }
    }

    /// The sequence numbers of the next `n` batches.
    pub async fn seqs(&mut self, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.batch().await.seq);
        }
        out
    }

    /// Acknowledges every batch up to `seq`.
    pub fn ack(&self, seq: u64) {
        self.send(collector_message::Msg::Ack(Ack { seq }));
    }

    pub fn send(&self, msg: collector_message::Msg) {
        let _ = self.to_agent.send(Ok(CollectorMessage { msg: Some(msg) }));
    }

    /// Closes the stream with a status, as the collector does when it refuses a batch.
    pub fn refuse(&self, status: Status) {
        let _ = self.to_agent.send(Err(status));
    }
}

/// The fake collector: answers attempts from its script and hands the test each stream.
pub struct FakeCollector {
    script: Arc<Mutex<VecDeque<Answer>>>,
    attempts: Arc<Mutex<Vec<Instant>>>,
    streams_tx: mpsc::UnboundedSender<Peer>,
    streams: mpsc::UnboundedReceiver<Peer>,
}

impl FakeCollector {
    /// A collector answering attempts in this order; once the script is done it refuses.
    pub fn new(script: impl IntoIterator<Item = Answer>) -> FakeCollector {
        let (streams_tx, streams) = mpsc::unbounded_channel();
        FakeCollector {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            attempts: Arc::default(),
            streams_tx,
            streams,
        }
    }

    /// More answers, after those scripted so far.
    pub fn then(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// The connector the agent uses to reach this collector.
    pub fn connector(&self) -> impl Connector + Send + 'static {
        let script = self.script.clone();
        let attempts = self.attempts.clone();
        let streams = self.streams_tx.clone();
        move |hello: AgentMessage| {
            attempts.lock().unwrap().push(Instant::now());
            let answer = script.lock().unwrap().pop_front();
            let result = match answer {
                None => Err("no answer scripted".to_string()),
                Some(Answer::Refuse(reason)) => Err(reason),
                Some(Answer::Accept { last_seq }) => {
                    let (tx, from_agent) = mpsc::channel(64);
                    let (to_agent, rx) = mpsc::unbounded_channel();
                    let welcome = collector_message::Msg::Welcome(Welcome { last_seq });
                    let _ = to_agent.send(Ok(CollectorMessage { msg: Some(welcome) }));
                    let _ = streams.send(Peer {
                        hello,
                        from_agent,
                        to_agent,
                    });
                    Ok(Session {
                        tx,
                        inbound: Box::pin(UnboundedReceiverStream::new(rx)),
                    })
                }
            };
            std::future::ready(result)
        }
    }

    /// The stream the agent opened last (it must have connected already).
    pub fn accepted(&mut self) -> Peer {
        self.streams.try_recv().expect("the agent has connected")
    }

    /// Waits for the agent's next stream.
    pub async fn next_stream(&mut self) -> Peer {
        tokio::time::timeout(PATIENCE, self.streams.recv())
            .await
            .expect("the agent did not connect")
            .expect("the fake collector is alive")
    }

    /// When each connection attempt started.
    pub fn attempts(&self) -> Vec<Instant> {
        self.attempts.lock().unwrap().clone()
    }
}

/// The agent's test fixtures (a /proc and /sys tree, kernel logs).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// An agent (host `h1`, state in `state_dir`) sampling the fixture /proc every second, reading
/// the kernel log with `kmsg` if given (no NTP, no policies), shipping to `collector`.
pub fn agent(
    state_dir: &Path,
    kmsg: Option<KmsgWatcher>,
    collector: &FakeCollector,
) -> Agent<impl Connector> {
    let settings = Settings::validate(Options {
        collector: Some("http://collector.test:7443".into()),
        insecure: true,
        state_dir: Some(state_dir.to_path_buf()),
        interval: Some("1s".into()),
        ..Options::default()
    })
    .unwrap();
    let sources = Sources {
        sampler: Sampler::new(&fixtures().join("proc-1"), &fixtures().join("sys")).unwrap(),
        top_oom: None,
        kmsg,
        ntp: None,
        policies: None,
    };
    let (spool, _) = fleet_agent::agent::open_spool(&settings).unwrap();
    let identity = HostIdentity {
        host_id: "h1".into(),
        ..HostIdentity::default()
    };
    // The tests run on tokio's paused clock.
    Agent::new(&settings, identity, sources, spool, collector.connector()).on_tokio_clock()
}

/// Lets the connection take everything already queued for it (acks, probes) without letting
/// time pass; returns an event if one came.
pub async fn settle<C: Connector>(
    conn: &mut Connection<C>,
    spool: &mut Spool,
) -> Option<LinkEvent> {
    tokio::select! {
        biased;
        event = conn.next_event(spool) => Some(event.expect("spool")),
        () = tokio::task::yield_now() => None,
    }
}

/// A spool in `dir` whose every frame is a segment of its own (so freed frames show as
/// deleted files), holding `n` one-sample batches.
pub fn spool_with(dir: &Path, n: usize) -> Spool {
    let (mut spool, _) = Spool::open(dir, 64 << 20, 1).expect("open the spool");
    for i in 0..n {
        let batch = Batch {
            samples: vec![Sample {
                time_ms: 1_000 * i as i64,
                interval_ms: 1_000,
                ..Sample::default()
            }],
            ..Batch::default()
        };
        spool.append(&batch.encode_to_vec(), 1, false).unwrap();
    }
    spool
}

/// Segment files in a spool directory.
pub fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        })
        .count()
}

/// Log lines captured from the current thread (the paused-time tests run on one thread).
///
/// One global subscriber writes each thread's lines to that thread's buffer, if it has one.
/// (A subscriber per test, set with `set_default`, is not enough: tracing caches whether a
/// call site is enabled across threads, and a test running without one can switch it off.)
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: RefCell<Option<Logs>> = const { RefCell::new(None) };
}

/// Stops the capture of this thread's lines when dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

/// Where the global subscriber writes: the current thread's capture, or nowhere.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(logs) = c.borrow().as_ref() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures every log line of this thread until the guard is dropped.
    pub fn capture() -> (Logs, CaptureGuard) {
        static INIT: Once = Once::new();
        INIT.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .without_time()
                .with_writer(|| ThreadWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        });
        let logs = Logs::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(logs.clone()));
        (logs, CaptureGuard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The captured lines holding `needle`.
    pub fn lines(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}
