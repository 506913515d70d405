//! `fleet-collector`: the central service.
//!
//! Layout:
//! - [`server`]: the gRPC services and [`server::run`] (listener, shutdown future, drain order):
//!   `server/ingest.rs` (the agents' streams: session, stream caps, identity and batch checks,
//!   clock probes), `server/writer.rs` (the group-commit writer thread), `server/query.rs`
//!   (fleetctl's reads), `server/policies.rs` (the `Policies` service).
//! - [`storage`]: the RocksDB store: key and value codecs, columnar chunks, one file per record
//!   family (hosts, samples, OOM, blobs, policies), sealing and retention, and the store's
//!   health (writes refused after a failed write, the database reopened once the disk takes
//!   writes again: `storage::health`).
//! - [`rules`]: alerting: the live host state the sessions feed ([`rules::Live`]), the
//!   evaluation loop (every second, rules reloaded on SIGHUP), the rules engine (alert state kept
//!   across restarts) and its notifiers (Alertmanager, JSON webhook, log); rule parsing and
//!   evaluation are the pure `fleet-rules`.
//! - [`policy`]: the OOM policy book (versions, history, each host's status) behind the
//!   `Policies` service.
//! - [`auth`]: who may call what: the role, organisation and (for agents) cluster in the client
//!   certificate.
//! - [`tls`]: mutual TLS with certificates, CA and CRL reloaded on SIGHUP; `tls/live.rs` keeps
//!   the open connections, so a reload closes those whose certificate it no longer accepts.
//! - [`metrics`]: the Prometheus endpoint (`--metrics-listen`): the text formats, histograms,
//!   and its HTTP server; what it reports is `server/metrics.rs`.
//! - [`config`]: the settings, declared once for flags and the TOML file, and their validation.
//!
//! The binary (`src/main.rs`) ignores SIGHUP before any other code runs, parses flags, opens the
//! store, binds the listener and calls [`server::run`]; tests (`tests/`) call the same function on a `127.0.0.1:0` listener.

pub mod auth;
pub mod config;
pub mod metrics;
pub mod policy;
pub mod remote_write;
pub mod rules;
pub mod server;
pub mod storage;
pub mod tls;
