//! Remote-write: every stored sample, NTP reading and OOM kill sent to Prometheus remote-write
//! receivers (protocol 1.0: a snappy-compressed protobuf `prometheus.WriteRequest`).
//!
//! - [`names`]: the naming contract (metric names and labels), README's table.

pub mod names;
