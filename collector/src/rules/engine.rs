//! [`RulesEngine`]: the rules in force, the alert book and the notifiers, put together.
//!
//! Every second the server builds a [`FleetView`] and calls [`RulesEngine::evaluate`], which
//! runs the pure [`fleet_rules::evaluate`] and [`AlertBook::step`], hands the transitions to the
//! notifiers (a queue push each: never waits on the network) and, when some alert changed state,
//! saves the book in the store (one synced write of its JSON under the blob
//! [`ALERTS_BLOB`]). [`RulesEngine::load`] reads it back at start, so pending alerts keep their
//! start and firing ones do not fire (and notify) a second time after a restart.
//!
//! After a restart, hosts reconnect and send their next NTP measurement only over the following
//! seconds or minutes; until then their findings are missing. For [`RESTART_HOLD`] after the
//! first evaluation, restored alerts whose finding is missing therefore keep their state
//! instead of resolving (see [`AlertBook::hold_until`]); new alerts still fire.

use std::sync::Arc;
use std::time::Duration;

use fleet_proto::v1;
use fleet_rules::{AlertBook, AlertState, FleetView, RuleSet, Transition};

use super::notify::{NotifierStats, Notifiers};
use crate::storage::{StorageError, Store};

/// The store blob holding the alert book.
pub const ALERTS_BLOB: &str = "rules/alerts";

/// How long restored alerts are held after a restart (see the module doc).
pub const RESTART_HOLD: Duration = Duration::from_secs(120);

/// How often the firing set is handed to the Alertmanager resends when nothing changed state
/// (they happen every 60 s; the summaries they carry are at most this old).
const PUBLISH_EVERY_MS: i64 = 10_000;

/// Where the engine keeps its state: the two calls of [`Store`] it needs, as a trait so tests
/// can count or fail writes.
pub trait BlobStore: Send + Sync {
    /// # Errors
    /// The store's.
    fn put_blob(&self, name: &str, value: &[u8]) -> Result<(), StorageError>;
    /// # Errors
    /// The store's.
    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
}

impl BlobStore for Store {
    fn put_blob(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        Store::put_blob(self, name, value)
    }

    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Store::get_blob(self, name)
    }
}

/// The rules in force, the state of their alerts, and where transitions go.
pub struct RulesEngine {
    rules: RuleSet,
    book: AlertBook,
    notifiers: Notifiers,
    store: Option<Arc<dyn BlobStore>>,
    /// The book revision last saved (or loaded).
    saved_revision: u64,
    /// Whether the last save failed (logged once until one succeeds).
    save_failing: bool,
    /// Set at load; applied to the first view's clock, then cleared.
    restart_hold: Option<Duration>,
    /// Clock of the last `publish_firing`.
    published_ms: Option<i64>,
    /// Clock of the last evaluation.
    evaluated_ms: Option<i64>,
}

impl std::fmt::Debug for RulesEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesEngine")
            .field("rules", &self.rules.len())
            .field("alerts", &self.book.len())
            .field("notifiers", &self.notifiers)
            .finish()
    }
}

impl RulesEngine {
    /// An engine whose alert state lives in memory only.
    pub fn new(rules: RuleSet, notifiers: Notifiers) -> RulesEngine {
        RulesEngine {
            rules,
            book: AlertBook::new(),
            notifiers,
            store: None,
            saved_revision: 0,
            save_failing: false,
            restart_hold: None,
            published_ms: None,
            evaluated_ms: None,
        }
    }

    /// An engine that restores its alert book from `store` and saves it there after every
    /// change. A stored book that does not decode (written by an incompatible version, or
    /// damaged) is logged and replaced: alert state must not keep the collector from starting.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be read.
    pub fn load(
        store: Arc<dyn BlobStore>,
        rules: RuleSet,
        notifiers: Notifiers,
    ) -> Result<RulesEngine, StorageError> {
        let book = match store.get_blob(ALERTS_BLOB)? {
            None => AlertBook::new(),
            Some(bytes) => match AlertBook::decode(&bytes) {
                Ok(book) => {
                    let firing = book.firing().len();
                    tracing::info!(alerts = book.len(), firing, "alert state restored");
                    book
                }
                Err(error) => {
                    tracing::warn!(%error, "stored alert state unreadable; starting without it");
                    AlertBook::new()
                }
            },
        };
        let restart_hold = (!book.is_empty()).then_some(RESTART_HOLD);
        Ok(RulesEngine {
            saved_revision: book.revision(),
            book,
            store: Some(store),
            restart_hold,
            ..RulesEngine::new(rules, notifiers)
        })
    }

    /// Changes how long restored alerts are held after the restart (default [`RESTART_HOLD`];
    /// zero: not at all). Call before the first [`RulesEngine::evaluate`].
    pub fn with_restart_hold(mut self, hold: Duration) -> RulesEngine {
        if self.restart_hold.is_some() {
            self.restart_hold = Some(hold);
        }
        self
    }

    /// Puts new rules in force from the next evaluation on. Alerts of rules that are gone then
    /// resolve (firing) or are dropped (pending); rules kept under the same name keep their
    /// alerts, with their new `for`, thresholds and labels.
    pub fn reload(&mut self, rules: RuleSet) {
        let gone = self
            .rules
            .rules()
            .iter()
            .filter(|r| rules.get(&r.name).is_none())
            .count();
        tracing::info!(
            origin = rules.origin(),
            rules = rules.len(),
            removed = gone,
            "alert rules reloaded"
        );
        self.rules = rules;
    }

    /// When the first pending alert has been pending for its rule's `for` (it fires then if its
    /// condition still holds), if that is after the last evaluation: the rules loop evaluates
    /// at that moment rather than at its next tick, so an alert with a `for` fires when it is
    /// due, not up to a tick later. Restored alerts held after a restart, due before the last
    /// evaluation, are left to the ticks.
    pub fn next_due_ms(&self) -> Option<i64> {
        let last = self.evaluated_ms?;
        self.book
            .alerts()
            .into_iter()
            .filter(|a| a.state == AlertState::Pending)
            .filter_map(|a| {
                let rule = self.rules.get(&a.key.rule)?;
                let for_ms = i64::try_from(rule.pending_for().as_millis()).ok()?;
                Some(a.active_since_ms.saturating_add(for_ms))
            })
            .filter(|&due| due > last)
            .min()
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The alert book.
    pub fn book(&self) -> &AlertBook {
        &self.book
    }

    /// Evaluates the rules on `view`, advances the alerts, notifies, and saves the book when an
    /// alert changed state. Returns the transitions.
    ///
    /// Never waits on a notifier. The save is one synced RocksDB write, only on a change of
    /// state; a failed save is logged and retried at the next evaluation.
    pub fn evaluate(&mut self, view: &FleetView) -> Vec<Transition> {
        if let Some(hold) = self.restart_hold.take() {
            let hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
            self.book.hold_until(view.now_ms.saturating_add(hold_ms));
        }
        let findings = fleet_rules::evaluate(&self.rules, view);
        let transitions = self.book.step(&self.rules, findings, view.now_ms);
        self.evaluated_ms = Some(view.now_ms);
        self.notifiers.notify(&transitions);
        if self.notifiers.wants_firing() {
            let due = self
                .published_ms
                .is_none_or(|t| view.now_ms.saturating_sub(t) >= PUBLISH_EVERY_MS);
            if due || !transitions.is_empty() {
                let firing = self.book.firing().into_iter().cloned().collect();
                self.notifiers.publish_firing(firing);
                self.published_ms = Some(view.now_ms);
            }
        }
        self.save();
        transitions
    }

    fn save(&mut self) {
        let Some(store) = &self.store else {
            return;
        };
        let revision = self.book.revision();
        if revision == self.saved_revision {
            return;
        }
        match store.put_blob(ALERTS_BLOB, &self.book.encode()) {
            Ok(()) => {
                self.saved_revision = revision;
                if self.save_failing {
                    tracing::info!("alert state saved again");
                    self.save_failing = false;
                }
            }
            Err(error) => {
                if !self.save_failing {
                    tracing::warn!(%error, "cannot save alert state; will retry at each evaluation");
                    self.save_failing = true;
                }
            }
        }
    }

    /// The alerts of `cluster` (every cluster when empty) in `state` (`pending`, `firing` or
    /// `resolved`; every state when empty; an unknown state matches nothing: check it first
    /// with `str::parse::<fleet_rules::AlertState>`). Firing first, then pending, then
    /// resolved; within a state by rule, cluster and hosts.
    pub fn alerts(&self, cluster: &str, state: &str) -> Vec<v1::Alert> {
        let state = match state {
            "" => None,
            s => match s.parse::<AlertState>() {
                Ok(s) => Some(s),
                Err(_) => return Vec::new(),
            },
        };
        let rank = |s: AlertState| match s {
            AlertState::Firing => 0,
            AlertState::Pending => 1,
            AlertState::Resolved => 2,
            AlertState::Inactive => 3,
        };
        let mut alerts: Vec<_> = self
            .book
            .alerts()
            .into_iter()
            .filter(|a| cluster.is_empty() || a.cluster == cluster)
            .filter(|a| state.is_none_or(|s| a.state == s))
            .collect();
        alerts.sort_by(|a, b| {
            rank(a.state)
                .cmp(&rank(b.state))
                .then_with(|| a.key.rule.cmp(&b.key.rule))
                .then_with(|| a.cluster.cmp(&b.cluster))
                .then_with(|| a.hosts.cmp(&b.hosts))
        });
        alerts.into_iter().map(|a| a.to_proto()).collect()
    }

    /// The notifiers' counters.
    pub fn notifier_stats(&self) -> Vec<NotifierStats> {
        self.notifiers.stats()
    }

    /// Saves the book a last time and lets the notifiers deliver what they hold, within
    /// `deadline`. Notifications stop there: later transitions go to the log only. Takes
    /// `&mut self` so it can be called through the server's `Mutex`.
    pub async fn shutdown(&mut self, deadline: Duration) {
        self.save();
        let notifiers = std::mem::replace(&mut self.notifiers, Notifiers::log_only());
        notifiers.shutdown(deadline).await;
    }
}

#[cfg(test)]
mod tests;
