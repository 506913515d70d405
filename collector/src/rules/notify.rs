//! Notifiers: where alert transitions go.
//!
//! - **The log**, synchronously: one line per transition (`warn` when an alert fires, `info`
//!   otherwise), with the rule, cluster, hosts, value and summary as fields.
//! - **Prometheus Alertmanager** (v2 API): `POST {url}/api/v2/alerts` with a JSON array of
//!   postable alerts, at once on each transition to firing or resolved, and every
//!   [`NotifierOptions::resend_every`] (60 s) for every alert still firing: Alertmanager
//!   resolves an alert it has not heard of for its `resolve_timeout` (5 m by default), which
//!   is also what happens to our alerts if the collector dies. Pending alerts are not sent
//!   (as in Prometheus).
//! - **A JSON webhook**: `POST url` with `{"alerts":[...]}`, one object per transition to firing
//!   or resolved, in the form of `fleet.v1.Alert` (see [`webhook_json`]) plus `previous_state`.
//!
//! Both HTTP notifiers speak HTTP/1.1 (hyper) over `http://` or `https://`. For https the
//! server's certificate must chain to [`NotifierOptions::tls`]'s roots: the CA file given with
//! `--notify-ca`, or the system's bundle (`/etc/ssl/certs/ca-certificates.crt`, Debian's
//! ca-certificates); see [`client_tls`]. One hyper client (hyper-rustls's connector) serves both
//! schemes and keeps its connections alive between posts.
//!
//! Here: the options, the targets, the bounded queues and each notifier's task;
//! `notify/payload.rs` builds what is posted, `notify/http.rs` posts it.
//!
//! # Never stalling evaluation
//!
//! Each HTTP notifier runs in its own task behind a bounded queue ([`NotifierOptions::queue`]
//! events). [`Notifiers::notify`] only pushes to the queues; when one is full the oldest event is
//! dropped and counted ([`NotifierStats::dropped`]). A notifier that is down is retried with
//! jittered exponential backoff capped at 30 s; everything queued meanwhile goes in the next
//! attempt. For Alertmanager nothing is lost for long even when events are dropped: the
//! periodic resend carries every firing alert, and explicitly resolves any alert it told
//! Alertmanager about that is no longer firing.
//!
//! # Alertmanager labels
//!
//! `alertname` (the rule name), `rule`, `kind`, `cluster`, `hosts` (comma-joined) and the rule's
//! own labels; annotations `summary` and `value`; `startsAt` is when the alert last started
//! firing; resolved alerts carry `endsAt` = when they resolved. Labels are an alert's identity
//! in Alertmanager, and `hosts` of a cluster-wide alert can change while it fires (a second host
//! drifts off): the old label set is then resolved in the same post, so no stale alert lingers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use fleet_proto::backoff::Backoff;
use fleet_rules::{Alert, AlertKey, AlertState, Transition};
use hyper::Uri;
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the HTTP notifiers behave.
#[derive(Clone, Debug)]
pub struct NotifierOptions {
    /// Events each notifier may hold while its target is slow or down; beyond it the oldest is
    /// dropped. Default 1024.
    pub queue: usize,
    /// How often every firing alert is sent again to Alertmanager. Default 60 s (Alertmanager's
    /// default `resolve_timeout` is 5 m).
    pub resend_every: Duration,
    /// First retry delay after a failed post; doubles up to `backoff_cap`, with jitter.
    /// Default 500 ms.
    pub backoff_base: Duration,
    /// Default 30 s.
    pub backoff_cap: Duration,
    /// Deadline of one post, connection included. Default 10 s.
    pub timeout: Duration,
    /// The roots https targets are checked against; None: https targets are refused at start
    /// (see [`client_tls`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue: 1024,
            resend_every: Duration::from_secs(60),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// A notifier URL that cannot be used.
#[derive(Debug, Error)]
#[error("{what} URL {url:?}: {why}")]
pub struct BadUrl {
    pub what: &'static str,
    pub url: String,
    pub why: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Alertmanager,
    Webhook,
}

/// Where an HTTP notifier posts.
#[derive(Clone, Debug)]
pub struct Target {
    kind: Kind,
    /// The URL posted to.
    uri: Uri,
}

impl Target {
    /// Alertmanager at `url` (`http://HOST:PORT`, with a path prefix if it is served under
    /// one); alerts are posted to `{url}/api/v2/alerts`.
    ///
    /// # Errors
    /// [`BadUrl`] unless `url` is an `http://` or `https://` URL with a host and without a
    /// query.
    pub fn alertmanager(url: &str) -> Result<Target, BadUrl> {
        let base = parse_http_url("alertmanager", url)?;
        if base.query().is_some() {
            return Err(BadUrl {
                what: "alertmanager",
                url: url.to_owned(),
                why: "must not have a query string".into(),
            });
        }
        let path = format!("{}/api/v2/alerts", base.path().trim_end_matches('/'));
        let uri = Uri::builder()
            .scheme(base.scheme_str().unwrap_or("http"))
            .authority(base.authority().map_or("", |a| a.as_str()))
            .path_and_query(path)
            .build()
            .map_err(|e| BadUrl {
                what: "alertmanager",
                url: url.to_owned(),
                why: e.to_string(),
            })?;
        Ok(Target {
            kind: Kind::Alertmanager,
            uri,
        })
    }

    /// A webhook receiving `POST url` with `{"alerts":[...]}`.
    ///
    /// # Errors
    /// [`BadUrl`] unless `url` is an `http://` or `https://` URL with a host.
    pub fn webhook(url: &str) -> Result<Target, BadUrl> {
        Ok(Target {
            kind: Kind::Webhook,
            uri: parse_http_url("webhook", url)?,
        })
    }

    /// Whether posts go over TLS.
    pub fn is_https(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }

    /// `alertmanager http://...` or `webhook http://...`, for logs and stats.
    pub fn name(&self) -> String {
        match self.kind {
            Kind::Alertmanager => format!("alertmanager {}", self.uri),
            Kind::Webhook => format!("webhook {}", self.uri),
        }
    }
}

fn parse_http_url(what: &'static str, url: &str) -> Result<Uri, BadUrl> {
    let bad = |why: &str| BadUrl {
        what,
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(uri)
}

/// What one notifier has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// [`Target::name`].
    pub target: String,
    /// Successful posts.
    pub posts: u64,
    /// Alerts carried by those posts.
    pub alerts_sent: u64,
    /// Posts that failed and were retried (connection refused, timeout, 5xx, 408, 429).
    pub failed_attempts: u64,
    /// Events dropped because the queue was full (oldest first), or still undelivered at
    /// shutdown.
    pub dropped: u64,
    /// Alerts the target refused (another 4xx): retrying would not help, so they are dropped.
    pub rejected: u64,
    /// Events waiting now.
    pub queued: u64,
}

#[derive(Default)]
struct Counters {
    posts: AtomicU64,
    alerts_sent: AtomicU64,
    failed_attempts: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
}

/// One transition to deliver.
#[derive(Clone, Debug)]
struct Event {
    alert: Alert,
    from: AlertState,
}

/// A bounded queue that drops its oldest event when full.
struct Queue {
    items: Mutex<VecDeque<Event>>,
    cap: usize,
    wake: Notify,
    closed: AtomicBool,
}

impl Queue {
    fn push(&self, e: Event, counters: &Counters) {
        {
            let mut q = self.items.lock().unwrap_or_else(PoisonError::into_inner);
            if q.len() >= self.cap {
                q.pop_front();
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(e);
        }
        self.wake.notify_one();
    }

    fn drain(&self) -> Vec<Event> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }

    fn len(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

struct Worker {
    name: String,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

/// The log and the HTTP notifiers, each HTTP one in its own task.
pub struct Notifiers {
    workers: Vec<Worker>,
    /// The firing alerts as of the last [`Notifiers::publish_firing`], for the Alertmanager
    /// resends. `None` without an Alertmanager.
    firing: Option<watch::Sender<Arc<Vec<Alert>>>>,
}

impl std::fmt::Debug for Notifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.workers.iter().map(|w| &w.name))
            .finish()
    }
}

impl Notifiers {
    /// The log only.
    pub fn log_only() -> Notifiers {
        Notifiers {
            workers: Vec::new(),
            firing: None,
        }
    }

    /// Starts one task per target. Must be called within a tokio runtime.
    pub fn start(targets: Vec<Target>, opts: NotifierOptions) -> Notifiers {
        let firing = targets
            .iter()
            .any(|t| t.kind == Kind::Alertmanager)
            .then(|| watch::channel(Arc::new(Vec::new())).0);
        let workers = targets
            .into_iter()
            .map(|target| {
                let queue = Arc::new(Queue {
                    items: Mutex::new(VecDeque::new()),
                    cap: opts.queue.max(1),
                    wake: Notify::new(),
                    closed: AtomicBool::new(false),
                });
                let counters = Arc::new(Counters::default());
                let name = target.name();
                tracing::info!(notifier = %name, "alert notifier started");
                let ctx = WorkerCtx {
                    name: name.clone(),
                    target,
                    opts: opts.clone(),
                    queue: queue.clone(),
                    counters: counters.clone(),
                    firing: firing.as_ref().map(watch::Sender::subscribe),
                };
                Worker {
                    name,
                    queue,
                    counters,
                    task: tokio::spawn(run(ctx)),
                }
            })
            .collect();
        Notifiers { workers, firing }
    }

    /// Logs each transition and queues those to firing or resolved for the HTTP notifiers.
    /// Never blocks on the network.
    pub fn notify(&self, transitions: &[Transition]) {
        for t in transitions {
            log_transition(t);
            if !matches!(t.to, AlertState::Firing | AlertState::Resolved) {
                continue;
            }
            for w in &self.workers {
                w.queue.push(
                    Event {
                        alert: t.alert.clone(),
                        from: t.from,
                    },
                    &w.counters,
                );
            }
        }
    }

    /// Whether an Alertmanager wants [`Notifiers::publish_firing`].
    pub fn wants_firing(&self) -> bool {
        self.firing.is_some()
    }

    /// Replaces the set of firing alerts the Alertmanager notifiers resend.
    pub fn publish_firing(&self, firing: Vec<Alert>) {
        if let Some(tx) = &self.firing {
            tx.send_replace(Arc::new(firing));
        }
    }

    /// Per notifier counters.
    pub fn stats(&self) -> Vec<NotifierStats> {
        self.workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                NotifierStats {
                    target: w.name.clone(),
                    posts: c.posts.load(Ordering::Relaxed),
                    alerts_sent: c.alerts_sent.load(Ordering::Relaxed),
                    failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    rejected: c.rejected.load(Ordering::Relaxed),
                    queued: w.queue.len() as u64,
                }
            })
            .collect()
    }

    /// Asks every notifier to deliver what it holds (one more attempt each) and stop, and waits
    /// for them up to `deadline` in all; those still busy then are stopped where they are.
    pub async fn shutdown(self, deadline: Duration) {
        for w in &self.workers {
            w.queue.close();
        }
        let until = Instant::now() + deadline;
        for w in self.workers {
            let mut task = w.task;
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(notifier = %w.name, "alert notifier stopped before it could deliver everything");
            }
        }
    }
}

fn log_transition(t: &Transition) {
    let a = &t.alert;
    let hosts = a.hosts.join(",");
    match t.to {
        AlertState::Firing => tracing::warn!(
            rule = %a.key.rule, kind = %a.kind, cluster = %a.cluster, hosts = %hosts,
            value = a.value, summary = %a.summary, from = %t.from, "alert firing"
        ),
        AlertState::Resolved => tracing::info!(
            rule = %a.key.rule, kind = %a.kind, cluster = %a.cluster, hosts = %hosts,
            value = a.value, summary = %a.summary, "alert resolved"
        ),
        AlertState::Pending => tracing::info!(
            rule = %a.key.rule, kind = %a.kind, cluster = %a.cluster, hosts = %hosts,
            value = a.value, summary = %a.summary, "alert pending"
        ),
        AlertState::Inactive => tracing::info!(
            rule = %a.key.rule, kind = %a.kind, cluster = %a.cluster, hosts = %hosts,
            "pending alert dropped: its condition stopped holding before it fired"
        ),
    }
}

struct WorkerCtx {
    name: String,
    target: Target,
    opts: NotifierOptions,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    firing: Option<watch::Receiver<Arc<Vec<Alert>>>>,
}

/// One notifier's task: waits for events (or the resend time), posts them, retries with
/// backoff, and merges what arrives meanwhile into the next attempt.
async fn run(ctx: WorkerCtx) {
    let client = http_client(ctx.opts.tls.as_ref());
    let am = ctx.target.kind == Kind::Alertmanager;
    let mut backoff = Backoff::new(ctx.opts.backoff_base, ctx.opts.backoff_cap);
    let mut pending: Vec<Event> = Vec::new();
    let mut retry_at: Option<Instant> = None;
    let mut resend_at = Instant::now() + ctx.opts.resend_every;
    // The Alertmanager label sets last delivered as firing, per alert.
    let mut told: HashMap<AlertKey, Told> = HashMap::new();
    let mut failing = false;

    loop {
        if !ctx.queue.is_closed() {
            let nothing_queued = pending.is_empty() && ctx.queue.len() == 0;
            let wake_at = match retry_at {
                Some(t) => Some(t),
                None if nothing_queued && am => Some(resend_at),
                None if nothing_queued => None,
                None => Some(Instant::now()),
            };
            match wake_at {
                Some(t) => {
                    tokio::select! {
                        () = ctx.queue.wake.notified() => {}
                        () = tokio::time::sleep_until(t) => {}
                    }
                }
                None => ctx.queue.wake.notified().await,
            }
            // Woken by new events during a backoff: they wait for the retry.
            if retry_at.is_some_and(|t| Instant::now() < t) && !ctx.queue.is_closed() {
                continue;
            }
        }
        retry_at = None;
        let closing = ctx.queue.is_closed();
        pending.extend(ctx.queue.drain());
        if pending.len() > ctx.opts.queue {
            let excess = pending.len() - ctx.opts.queue;
            pending.drain(..excess);
            ctx.counters
                .dropped
                .fetch_add(excess as u64, Ordering::Relaxed);
        }
        let now = Instant::now();
        let resend = am && now >= resend_at;
        if pending.is_empty() && !resend {
            if closing {
                break;
            }
            continue;
        }

        let (body, count, new_told) = if am {
            let snapshot = match (&ctx.firing, resend) {
                (Some(rx), true) => Some(rx.borrow().clone()),
                _ => None,
            };
            let (alerts, new_told) = alertmanager_payload(
                &pending,
                snapshot.as_deref().map(Vec::as_slice),
                &told,
                SystemTime::now(),
            );
            let n = alerts.len();
            (serde_json::to_vec(&alerts), n, Some(new_told))
        } else {
            let alerts: Vec<Value> = pending
                .iter()
                .map(|e| webhook_json(&e.alert, e.from))
                .collect();
            let n = alerts.len();
            (serde_json::to_vec(&json!({ "alerts": alerts })), n, None)
        };
        let body = body.expect("alerts serialise to JSON");

        let result = if count == 0 {
            Ok(())
        } else {
            post(
                &client,
                ctx.opts.tls.is_some(),
                &ctx.target.uri,
                body,
                ctx.opts.timeout,
            )
            .await
        };
        match result {
            Ok(()) => {
                if count > 0 {
                    ctx.counters.posts.fetch_add(1, Ordering::Relaxed);
                    ctx.counters
                        .alerts_sent
                        .fetch_add(count as u64, Ordering::Relaxed);
                }
                if failing {
                    tracing::info!(notifier = %ctx.name, "alert notifier delivers again");
                    failing = false;
                }
                if let Some(t) = new_told {
                    told = t;
                }
                pending.clear();
                backoff.reset();
                if resend {
                    resend_at = now + ctx.opts.resend_every;
                }
            }
            Err(PostError::Rejected(why)) => {
                tracing::warn!(notifier = %ctx.name, alerts = count, error = %why, "alert notifier target refused the alerts; dropped");
                ctx.counters
                    .rejected
                    .fetch_add(count as u64, Ordering::Relaxed);
                pending.clear();
                if resend {
                    resend_at = now + ctx.opts.resend_every;
                }
            }
            Err(PostError::Retry(why)) => {
                ctx.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                failing = true;
                if closing {
                    tracing::warn!(notifier = %ctx.name, alerts = pending.len(), error = %why, "alert notifier down at shutdown; undelivered alerts dropped");
                    ctx.counters
                        .dropped
                        .fetch_add(pending.len() as u64, Ordering::Relaxed);
                    break;
                }
                let delay = backoff.next_delay();
                tracing::warn!(notifier = %ctx.name, alerts = count, error = %why, retry_in_ms = delay.as_millis() as u64, "alert notifier post failed; will retry");
                retry_at = Some(Instant::now() + delay);
            }
        }
        if closing && ctx.queue.len() == 0 && pending.is_empty() {
            break;
        }
    }
}

mod http;
mod payload;

pub use http::{client_tls, SYSTEM_CA_BUNDLE};
pub use payload::{alertmanager_labels, webhook_json};

use http::{http_client, post, PostError};
use payload::{alertmanager_payload, Told};

#[cfg(test)]
mod tests;
