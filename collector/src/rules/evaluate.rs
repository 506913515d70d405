//! The rules loop: loads the rules file and builds the [`RulesEngine`] at start
//! ([`rules_engine`]), then evaluates it every [`EVAL_EVERY`], at once when an OOM kill arrives,
//! and when a pending alert's `for` is over ([`RulesEngine::next_due_ms`]), over a [`FleetView`]
//! built from the host registry and the [`Live`] state, and reloads the rules file on SIGHUP
//! ([`evaluate_rules`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleet_proto::clock::now_ms;
use fleet_proto::v1::Activity;
use fleet_rules::{FleetView, HostView};
use tokio::sync::watch;
use tracing::{error, info};

use super::live::Live;
use super::{NotifierOptions, Notifiers, RulesEngine, Target};
use crate::storage::Store;

/// How often the rules are evaluated.
pub const EVAL_EVERY: Duration = Duration::from_secs(1);

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
        notify.tls =
            Some(super::notify::client_tls(opts.notify_ca.as_deref()).map_err(anyhow::Error::msg)?);
    }
    let notifiers = Notifiers::start(targets, notify);
    info!(rules = rules.rules().len(), file = %opts.file.display(), "alert rules loaded");
    Ok(RulesEngine::load(store.clone(), rules, notifiers)?)
}

/// Everything the rules look at, as of now.
pub fn fleet_view(store: &Store, live: &Live) -> FleetView {
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
                ntp: l.clock.as_ref().map(|(_, c)| c.clone()),
                sar: l
                    .sar()
                    .filter_map(|(a, inst, v)| {
                        Some((Activity::try_from(a).ok()?, inst.to_owned(), v.to_vec()))
                    })
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

/// Sleeps until `at` (forever without one).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Evaluates the rules every [`EVAL_EVERY`], when an OOM kill arrives and when a pending alert
/// is due to fire, and reloads them on SIGHUP (a broken file is refused and the rules in force
/// stay), until `stop` changes. How long each evaluation took (the view
/// built, the rules evaluated, the transitions queued) goes to `took`.
pub async fn evaluate_rules(
    engine: Arc<tokio::sync::Mutex<RulesEngine>>,
    store: Arc<Store>,
    live: Arc<Live>,
    file: PathBuf,
    took: Arc<crate::metrics::Histogram>,
    mut stop: watch::Receiver<bool>,
) {
    // Returns when the next pending alert is due, as an instant of the loop's clock.
    let evaluate = || async {
        let started = std::time::Instant::now();
        let view = fleet_view(&store, &live);
        let mut engine = engine.lock().await;
        engine.evaluate(&view);
        took.observe(started.elapsed());
        engine.next_due_ms().map(|due| {
            let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
            tokio::time::Instant::now() + Duration::from_millis(wait)
        })
    };
    let mut due = None;
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
            _ = tick.tick() => due = evaluate().await,
            () = live.kill_arrived() => due = evaluate().await,
            () = sleep_until(due) => due = evaluate().await,
        }
    }
}
