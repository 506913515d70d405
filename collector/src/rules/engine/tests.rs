//! The engine with a real store, restarts, and notifiers that are down.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use fleet_proto::v1::{ClockStatus, NtpServerStatus};
use fleet_rules::{parse_rules, HostView};

use super::*;
use crate::rules::notify::{NotifierOptions, Target};
use crate::storage::StoreOptions;

const T0: i64 = 1_700_000_000_000;

fn rules(text: &str) -> RuleSet {
    parse_rules(text, "rules.toml").unwrap_or_else(|e| panic!("{e}"))
}

const SKEW: &str =
    "[[rule]]\nname = \"skew\"\nkind = \"clock_skew\"\nthreshold_ms = 100\nfor = \"2s\"\n";
const OFFSET: &str = "[[rule]]\nname = \"offset\"\nkind = \"ntp_offset\"\nthreshold_ms = 100\n";

fn host(name: &str, cluster: &str, offset_ms: f64) -> HostView {
    HostView {
        host_id: format!("id-{name}"),
        hostname: name.into(),
        cluster: cluster.into(),
        connected: true,
        last_seen_ms: T0,
        ntp: Some(std::sync::Arc::new(ClockStatus {
            servers: vec![NtpServerStatus {
                server: "10.0.0.1:123".into(),
                reachable: true,
                synced: true,
                stratum: 2,
                offset_ms,
                ..Default::default()
            }],
            kernel: None,
        })),
        ..Default::default()
    }
}

fn view(t_s: i64, web3_offset: f64) -> FleetView {
    FleetView {
        now_ms: T0 + t_s * 1000,
        hosts: vec![
            host("web1", "prod", 0.4),
            host("web2", "prod", 0.1),
            host("web3", "prod", web3_offset),
            host("db1", "staging", 0.0),
        ],
    }
}

fn open(dir: &tempfile::TempDir) -> Arc<Store> {
    Arc::new(Store::open(dir.path(), StoreOptions::default()).expect("open store"))
}

#[test]
fn alerts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut e = RulesEngine::load(
        store.clone(),
        rules(&format!("{SKEW}{OFFSET}")),
        Notifiers::log_only(),
    )
    .unwrap();
    assert!(e.book().is_empty());
    for t in 0..=2 {
        e.evaluate(&view(t, 250.0));
    }
    let firing = e.alerts("", "firing");
    let rules_firing: Vec<&str> = firing.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules_firing, ["offset", "skew"]);
    assert_eq!(firing[1].hosts, ["web3"]);
    assert!(store.get_blob(ALERTS_BLOB).unwrap().is_some());
    drop(e);
    drop(store);

    // Restarted: the alerts are back, firing, and do not fire again. (No restart hold here:
    // see the next test.)
    let store = open(&dir);
    let mut e = RulesEngine::load(
        store,
        rules(&format!("{SKEW}{OFFSET}")),
        Notifiers::log_only(),
    )
    .unwrap()
    .with_restart_hold(Duration::ZERO);
    assert_eq!(e.alerts("prod", "firing").len(), 2);
    let t = e.evaluate(&view(60, 250.0));
    assert!(t.is_empty(), "{t:?}");
    // Still skewed after a restart: the same alert, with its original start.
    let skew = &e.alerts("prod", "firing")[1];
    assert_eq!((skew.rule.as_str(), skew.active_since_ms), ("skew", T0));
    // The clock is fixed: both resolve.
    let t = e.evaluate(&view(61, 0.2));
    let to: Vec<_> = t
        .iter()
        .map(|t| (t.alert.rule().to_owned(), t.to))
        .collect();
    assert_eq!(
        to,
        [
            ("offset".into(), AlertState::Resolved),
            ("skew".into(), AlertState::Resolved)
        ]
    );
    assert!(e.alerts("", "firing").is_empty());
    assert_eq!(e.alerts("", "resolved").len(), 2);
}

#[test]
fn restored_alerts_are_held_while_hosts_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut e = RulesEngine::load(store.clone(), rules(OFFSET), Notifiers::log_only()).unwrap();
    e.evaluate(&view(0, 250.0));
    drop(e);

    let mut e = RulesEngine::load(store.clone(), rules(OFFSET), Notifiers::log_only())
        .unwrap()
        .with_restart_hold(Duration::from_secs(30));
    // Right after the restart no host has reported yet.
    let empty = |t: i64| FleetView {
        now_ms: T0 + t * 1000,
        hosts: vec![],
    };
    assert!(e.evaluate(&empty(100)).is_empty());
    assert!(e.evaluate(&empty(129)).is_empty());
    assert_eq!(e.alerts("", "firing").len(), 1);
    let t = e.evaluate(&empty(130));
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, AlertState::Resolved);

    // A fresh store has nothing to hold.
    let dir2 = tempfile::tempdir().unwrap();
    let mut fresh = RulesEngine::load(open(&dir2), rules(OFFSET), Notifiers::log_only()).unwrap();
    fresh.evaluate(&view(0, 250.0));
    assert_eq!(fresh.evaluate(&empty(1)).len(), 1);
}

#[test]
fn a_reload_ends_the_alerts_of_removed_rules() {
    let mut e = RulesEngine::new(rules(&format!("{SKEW}{OFFSET}")), Notifiers::log_only());
    for t in 0..=2 {
        e.evaluate(&view(t, 250.0));
    }
    assert_eq!(e.alerts("", "firing").len(), 2);
    e.reload(rules(OFFSET));
    assert_eq!(e.rules().len(), 1);
    let t = e.evaluate(&view(3, 250.0));
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].alert.rule(), t[0].to), ("skew", AlertState::Resolved));
}

#[test]
fn alerts_filter_by_cluster_and_state() {
    let mut e = RulesEngine::new(rules(&format!("{SKEW}{OFFSET}")), Notifiers::log_only());
    e.evaluate(&view(0, 250.0));
    let all = e.alerts("", "");
    let got: Vec<_> = all
        .iter()
        .map(|a| (a.rule.as_str(), a.state.as_str()))
        .collect();
    assert_eq!(got, [("offset", "firing"), ("skew", "pending")]);
    assert_eq!(e.alerts("prod", "pending").len(), 1);
    assert!(e.alerts("staging", "").is_empty());
    assert!(e.alerts("", "fired").is_empty());
}

/// A store whose writes fail while `fail` is set.
#[derive(Default)]
struct FlakyStore {
    fail: AtomicBool,
    puts: AtomicUsize,
    value: Mutex<Option<Vec<u8>>>,
}

impl BlobStore for FlakyStore {
    fn put_blob(&self, _name: &str, value: &[u8]) -> Result<(), StorageError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StorageError::InvalidArgument("disk on fire".into()));
        }
        self.puts.fetch_add(1, Ordering::SeqCst);
        *self.value.lock().unwrap() = Some(value.to_vec());
        Ok(())
    }

    fn get_blob(&self, _name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.value.lock().unwrap().clone())
    }
}

#[test]
fn the_book_is_saved_on_changes_only_and_a_failed_save_is_retried() {
    let store = Arc::new(FlakyStore::default());
    let mut e = RulesEngine::load(store.clone(), rules(OFFSET), Notifiers::log_only()).unwrap();
    e.evaluate(&view(0, 0.0));
    assert_eq!(store.puts.load(Ordering::SeqCst), 0, "nothing changed");
    store.fail.store(true, Ordering::SeqCst);
    e.evaluate(&view(1, 250.0));
    e.evaluate(&view(2, 250.0));
    store.fail.store(false, Ordering::SeqCst);
    e.evaluate(&view(3, 250.0));
    assert_eq!(store.puts.load(Ordering::SeqCst), 1, "saved once it could");
    for t in 4..10 {
        e.evaluate(&view(t, 250.0 + t as f64));
    }
    assert_eq!(
        store.puts.load(Ordering::SeqCst),
        1,
        "value updates alone are not saved"
    );
    let saved = AlertBook::decode(store.value.lock().unwrap().as_deref().unwrap()).unwrap();
    assert_eq!(saved.firing().len(), 1);
}

#[tokio::test]
async fn evaluation_is_not_blocked_while_the_notifier_is_down() {
    // Nothing listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let opts = NotifierOptions {
        queue: 16,
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        ..NotifierOptions::default()
    };
    let notifiers = Notifiers::start(
        vec![
            Target::alertmanager(&format!("http://{addr}")).unwrap(),
            Target::webhook(&format!("http://{addr}/hook")).unwrap(),
        ],
        opts,
    );
    let mut e = RulesEngine::new(rules(OFFSET), notifiers);
    let start = std::time::Instant::now();
    let mut transitions = 0;
    let mut slowest = Duration::ZERO;
    // The offset flaps every second: a transition to notify at every evaluation.
    for t in 0..2000 {
        let one = std::time::Instant::now();
        transitions += e
            .evaluate(&view(t, if t % 2 == 0 { 250.0 } else { 0.0 }))
            .len();
        slowest = slowest.max(one.elapsed());
        if t % 100 == 0 {
            // Let the notifier tasks run and fail meanwhile.
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(transitions, 2000);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(100),
        "slowest evaluation {slowest:?}"
    );
    // The notifiers did try, and kept their queues bounded.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while e.notifier_stats().iter().any(|s| s.failed_attempts == 0) {
        assert!(
            std::time::Instant::now() < until,
            "{:?}",
            e.notifier_stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for s in e.notifier_stats() {
        assert!(s.queued <= 16, "{s:?}");
        assert!(s.dropped > 0, "{s:?}");
        assert_eq!(s.posts, 0, "{s:?}");
    }
    e.shutdown(Duration::from_secs(5)).await;
}

/// A pending alert is due when its `for` is over: the rules loop evaluates then. An OOM burst
/// with `for = 3s` is due 3 s after it went pending, fires when evaluated at that very moment,
/// and leaves nothing due; times before the last evaluation are never due (no busy loop).
#[test]
fn a_pending_alert_is_due_when_its_for_is_over() {
    let burst = "[[rule]]\nname = \"burst\"\nkind = \"oom_kill_burst\"\ncount = 1\nwindow = \"1m\"\nfor = \"3s\"\n";
    let mut e = RulesEngine::new(rules(&format!("{SKEW}{burst}")), Notifiers::log_only());
    assert_eq!(e.next_due_ms(), None, "never evaluated");
    let at = |ms: i64, kills: Vec<i64>| FleetView {
        now_ms: T0 + ms,
        hosts: vec![HostView {
            oom_kill_times_ms: kills,
            ..host("web1", "prod", 0.0)
        }],
    };
    e.evaluate(&at(0, vec![]));
    assert_eq!(e.next_due_ms(), None, "nothing pending");
    e.evaluate(&at(400, vec![T0 + 390]));
    assert_eq!(e.alerts("", "pending").len(), 1);
    assert_eq!(e.next_due_ms(), Some(T0 + 3_400));
    e.evaluate(&at(1_400, vec![T0 + 390]));
    assert_eq!(e.next_due_ms(), Some(T0 + 3_400), "still pending");
    let t = e.evaluate(&at(3_400, vec![T0 + 390]));
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(e.alerts("", "firing")[0].since_ms, T0 + 3_400);
    assert_eq!(e.next_due_ms(), None);
    // The skew rule (`for = 2s`) pending since 10 s; an evaluation after its due time (a
    // held alert) does not make it due again.
    let skewed = |ms: i64| FleetView {
        now_ms: T0 + ms,
        hosts: vec![host("web1", "prod", 0.0), host("web3", "prod", 250.0)],
    };
    e.evaluate(&skewed(10_000));
    assert_eq!(e.next_due_ms(), Some(T0 + 12_000));
    e.evaluate(&skewed(11_999));
    assert_eq!(e.next_due_ms(), Some(T0 + 12_000));
}
