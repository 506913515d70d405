//! `fleet-collector`: the central service.
//!
//! Layout:
//! - [`server`]: the gRPC services (`Ingest` for agents, `Query` for fleetctl), the group-commit
//!   writer and the graceful shutdown path.
//! - [`storage`]: the RocksDB store: key encoding, columnar chunks, the host registry.
//! - [`rules`]: the alert rules engine (state kept across restarts) and its notifiers
//!   (Alertmanager, JSON webhook, log); rule parsing and evaluation are the pure `fleet-rules`.
//! - [`config`]: settings from the TOML file and flags.
//!
//! The binary (`src/main.rs`) parses flags, opens the store, binds the listener and calls
//! [`server::run`]; tests call the same function.

pub mod auth;
pub mod config;
pub mod policy;
pub mod rules;
pub mod server;
pub mod storage;
pub mod tls;
