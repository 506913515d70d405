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
use fleet_rules::{FleetView, HostView, RuleSet};
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

/// Everything `rules` look at, as of now: of the hosts' sar values, only the activities that
/// `rules` name are copied.
pub fn fleet_view(store: &Store, live: &Live, rules: &RuleSet) -> FleetView {
    let mut view = FleetView::default();
    refresh_view(&mut view, store, live, rules);
    view
}

/// [`fleet_view`] into the view of the previous evaluation: its strings and vectors are
/// overwritten in place, so a fleet that did not change shape costs no allocation but the NTP
/// measurements' shared pointers.
pub fn refresh_view(view: &mut FleetView, store: &Store, live: &Live, rules: &RuleSet) {
    let activities = rules.sar_activities();
    let mut n = 0;
    store.for_each_host(|h| {
        if view.hosts.len() == n {
            view.hosts.push(HostView::default());
        }
        let v = &mut view.hosts[n];
        n += 1;
        overwrite(&mut v.host_id, &h.identity.host_id);
        overwrite(&mut v.hostname, &h.identity.hostname);
        overwrite(&mut v.cluster, &h.identity.cluster);
        v.connected = h.connected;
        v.last_seen_ms = h.last_seen_ms;
        live.with_host(h.num, |l| {
            v.ntp = l.clock.as_ref().map(|(_, c)| c.clone());
            v.oom_kill_times_ms.clear();
            v.oom_kill_times_ms.extend(l.oom_kills.iter().copied());
            let mut k = 0;
            for (a, instance, values) in l.sar() {
                let Some(a) = Activity::try_from(a)
                    .ok()
                    .filter(|a| activities.contains(a))
                else {
                    continue;
                };
                if v.sar.len() == k {
                    v.sar.push((a, String::new(), Vec::new()));
                }
                let e = &mut v.sar[k];
                k += 1;
                e.0 = a;
                overwrite(&mut e.1, instance);
                e.2.clear();
                e.2.extend_from_slice(values);
            }
            v.sar.truncate(k);
        });
    });
    view.hosts.truncate(n);
    view.now_ms = now_ms();
}

/// `to` becomes `from`, in its own allocation when it fits.
fn overwrite(to: &mut String, from: &str) {
    if to != from {
        to.clear();
        to.push_str(from);
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
    let mut view = FleetView::default();
    // Returns when the next pending alert is due, as an instant of the loop's clock.
    let evaluate = async |view: &mut FleetView| {
        let started = std::time::Instant::now();
        let mut engine = engine.lock().await;
        refresh_view(view, &store, &live, engine.rules());
        engine.evaluate(view);
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
            _ = tick.tick() => due = evaluate(&mut view).await,
            () = live.kill_arrived() => due = evaluate(&mut view).await,
            () = sleep_until(due) => due = evaluate(&mut view).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Observation;
    use crate::storage::StoreOptions;
    use fleet_proto::v1::{Batch, HostIdentity, Record, Sample};

    fn sample(records: &[(Activity, &str, f64)]) -> Batch {
        Batch {
            seq: 1,
            samples: vec![Sample {
                time_ms: now_ms(),
                interval_ms: 1000,
                records: records
                    .iter()
                    .map(|&(a, instance, v)| Record {
                        activity: a as i32,
                        instance: instance.into(),
                        values: vec![v; 3],
                    })
                    .collect(),
                ..Sample::default()
            }],
            ..Batch::default()
        }
    }

    #[test]
    fn the_view_holds_the_activities_the_rules_name_and_a_refresh_equals_a_new_view() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let live = Live::default();
        let rules = fleet_rules::parse_rules(
            "[[rule]]\nname = \"busy-disk\"\nkind = \"sar\"\nactivity = \"disk\"\n\
             column = \"tps\"\nop = \">\"\nvalue = 100\n",
            "test",
        )
        .unwrap();
        let mut nums = Vec::new();
        for id in ["web1", "web2"] {
            let identity = HostIdentity {
                host_id: id.into(),
                cluster: "prod".into(),
                ..HostIdentity::default()
            };
            nums.push(store.upsert_host(&identity, now_ms(), true).unwrap().num);
        }
        let (cpu, disk) = (Activity::Cpu, Activity::Disk);
        let mut b = sample(&[(cpu, "all", 1.0), (disk, "sda", 2.0), (disk, "sdb", 3.0)]);
        live.observe(nums[0], Observation::take(&mut b, vec![]));
        let mut view = fleet_view(&store, &live, &rules);
        let sar = |v: &FleetView, i: usize| -> Vec<(Activity, String, f64)> {
            v.hosts[i]
                .sar
                .iter()
                .map(|(a, inst, vals)| (*a, inst.clone(), vals[0]))
                .collect()
        };
        assert_eq!(
            sar(&view, 0),
            [(disk, "sda".into(), 2.0), (disk, "sdb".into(), 3.0)],
            "the CPU is no rule's business"
        );
        assert!(view.hosts[1].sar.is_empty());
        // web1's disks change, web2 reports one: the refreshed view is a new one.
        let mut b = sample(&[(disk, "nvme0n1", 4.0)]);
        live.observe(nums[1], Observation::take(&mut b, vec![]));
        let mut b = sample(&[(disk, "sda", 5.0)]);
        live.observe(nums[0], Observation::take(&mut b, vec![]));
        refresh_view(&mut view, &store, &live, &rules);
        let new = fleet_view(&store, &live, &rules);
        view.now_ms = new.now_ms;
        assert_eq!(view, new);
        assert_eq!(sar(&view, 1), [(disk, "nvme0n1".into(), 4.0)]);
    }
}
