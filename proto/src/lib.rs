//! `fleet-proto` owns Fleet's wire contract.
//!
//! - `fleet/v1/fleet.proto`: the messages and the two gRPC services (`Ingest` for agents, `Query`
//!   for fleetctl), compiled at build time by protox (no system `protoc`).
//! - [`schema`]: the sysstat column names of each activity, in wire order.
//! - [`limits`]: the message size limits both ends enforce.

pub mod schema;

/// Generated types and service stubs of package `fleet.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("fleet.v1");
}

/// gRPC metadata keys both ends use.
pub mod metadata {
    /// The name fleetctl's user gives for a policy change (`USER@HOSTNAME`). The collector
    /// records it, marked unauthenticated, only when no client certificate names the caller.
    pub const ACTOR: &str = "fleet-actor";
}

/// Limits shared by both ends of the stream.
pub mod limits {
    /// Largest encoded message either side accepts (gRPC decode limit).
    pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
    /// Most samples in one batch (an agent sends one per interval; replays stay one per batch).
    pub const MAX_SAMPLES_PER_BATCH: usize = 64;
    /// Most records in one sample (CPUs + disks + interfaces + the fixed activities).
    pub const MAX_RECORDS_PER_SAMPLE: usize = 16_384;
}
