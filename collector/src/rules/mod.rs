//! The collector's alerting: the stateful half of the rules. Parsing and evaluation are pure and
//! live in the `fleet-rules` crate (shared with `fleetctl rules check`).
//!
//! - [`engine`]: [`RulesEngine`]: the rules in force (swapped by [`RulesEngine::reload`]), the
//!   alert book (saved in the store after every change, restored at start), and the notifiers.
//!   The server builds a [`fleet_rules::FleetView`] every second and calls
//!   [`RulesEngine::evaluate`].
//! - [`notify`]: where transitions go: the log, Prometheus Alertmanager (v2 API, firing alerts
//!   resent every minute) and a JSON webhook; each HTTP notifier in its own task behind a
//!   bounded queue, retried with backoff, so a notifier that is down never stalls evaluation.

pub mod engine;
pub mod notify;

pub use engine::{BlobStore, RulesEngine, ALERTS_BLOB, RESTART_HOLD};
pub use notify::{BadUrl, NotifierOptions, NotifierStats, Notifiers, Target};
