//! The collector's Prometheus endpoint (`--metrics-listen`), apart from what it reports:
//!
//! - [`text`]: metric families in, the Prometheus 0.0.4 or OpenMetrics 1.0 text out (pure).
//! - [`histogram`]: a lock-free duration histogram the writer thread and the rules loop record
//!   into.
//! - [`http`]: the HTTP/1.1 server of `GET /metrics`: TLS through the gRPC port's
//!   [`crate::tls::Acceptor`] (same certificate, CA, CRL and SIGHUP reloads), the scraper's
//!   role checked by [`crate::auth::Auth`], content negotiation, and the graceful stop.
//!
//! What is reported, and from which counters, is `server/metrics.rs`; the names are listed in
//! README's "Metrics" table.

pub mod histogram;
pub mod http;
pub mod text;

pub use histogram::{Histogram, LATENCY_BOUNDS};
pub use text::{render, Buckets, Family, Format, Kind};
