//! The collector's alerting: the stateful half of the rules. Parsing and evaluation are pure and
//! live in the `fleet-rules` crate (shared with `fleetctl rules check`).
//!
//! - [`live`]: [`Live`], what the collector knows of each host right now (latest sar values, NTP
//!   measurement, clock probe, recent OOM kills), fed by the ingest sessions with what each
//!   batch stored for the first time said ([`Observation`]).
//! - [`evaluate`]: the rules loop: builds a [`fleet_rules::FleetView`] from the host registry
//!   and [`Live`] every second (and at once when an OOM kill arrives), calls
//!   [`RulesEngine::evaluate`], and reloads the rules file on SIGHUP.
//! - [`engine`]: [`RulesEngine`]: the rules in force (swapped by [`RulesEngine::reload`]), the
//!   alert book (saved in the store after every change, restored at start), and the notifiers.
//! - [`notify`]: where transitions go: the log, Prometheus Alertmanager (v2 API, firing alerts
//!   resent every minute) and a JSON webhook; each HTTP notifier in its own task behind a
//!   bounded queue, retried with backoff, so a notifier that is down never stalls evaluation.

pub mod engine;
pub mod evaluate;
pub mod live;
pub mod notify;

pub use engine::{BlobStore, RulesEngine, ALERTS_BLOB, RESTART_HOLD};
pub use evaluate::{fleet_view, load_rules, refresh_view, rules_engine, RulesOptions, EVAL_EVERY};
pub use live::{HostLive, Live, Observation};
pub use notify::{BadUrl, NotifierOptions, NotifierStats, Notifiers, Target};
