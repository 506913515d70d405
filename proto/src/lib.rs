//! `fleet-proto` owns Fleet's wire contract and the few rules both ends of it share.
//!
//! - `fleet/v1/fleet.proto`: the messages and the three gRPC services (`Ingest` for agents,
//!   `Query` and `Policies` for fleetctl), compiled at build time by protox (no system `protoc`);
//!   the generated code is [`v1`].
//! - [`schema`]: the sysstat column names of each activity, in wire order.
//! - [`limits`]: the size and count limits both ends enforce.
//! - [`check`]: the rules a batch meets to be stored, checked by the agent before it spools a
//!   batch and by the collector on receipt.
//! - [`identity`]: the host id and cluster rules (agent ids, `Hello`s, agent certificate names),
//!   and the URI that binds an agent certificate to its cluster.
//! - [`metadata`]: the gRPC metadata keys.
//! - [`clock`]: the wall clock in the wire's units (Unix ms and µs).
//! - [`ntp`]: which NTP source sets a host's offset (fleetctl's spread, the collector's NTP
//!   buckets).
//! - [`backoff`]: jittered exponential retry delays (agent reconnects, collector notifiers).
//! - [`errors`]: an error or a gRPC status in words, with its causes.

pub mod backoff;
pub mod check;
pub mod clock;
pub mod errors;
pub mod identity;
pub mod ntp;
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
    /// Largest encoded batch an agent builds: [`MAX_MESSAGE_BYTES`] less 64 KiB of headroom for
    /// what is filled in when it is sent (seq, dropped samples, the kernel log counters) and the
    /// message around it.
    pub const MAX_BATCH_BYTES: usize = MAX_MESSAGE_BYTES - 64 * 1024;
    /// Most samples in one batch (an agent sends one per interval; replays stay one per batch).
    pub const MAX_SAMPLES_PER_BATCH: usize = 64;
    /// Most records in one sample (CPUs + disks + interfaces + the fixed activities).
    pub const MAX_RECORDS_PER_SAMPLE: usize = 16_384;
    /// Longest instance name of a record (a CPU, disk or interface name), in bytes.
    pub const MAX_INSTANCE_BYTES: usize = 255;
    /// Most OOM events in one batch.
    pub const MAX_EVENTS_PER_BATCH: usize = 256;
    /// Largest parse-kmsg detail (`detail_json`) of one OOM event.
    pub const MAX_EVENT_DETAIL_BYTES: usize = 2 * 1024 * 1024;
    /// Most processes in one `ProcessList`.
    pub const MAX_PROCESSES: usize = 65_536;
    /// Largest `Query` or `Policies` answer: an answer grows with its time range and host count,
    /// not with an agent's batch size, so it may be far larger than [`MAX_MESSAGE_BYTES`].
    pub const MAX_QUERY_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
    /// Most buckets one downsampled sar query (`QuerySarBuckets`) cuts its range into: a graph
    /// asks for about one per pixel, and 10,000 is more than a 4K screen is wide. Bounds the
    /// answer to 10,000 buckets per series.
    pub const MAX_SAR_BUCKETS: u64 = 10_000;
    /// Most NTP measurements one `NtpHistory` answer holds (about 15 MB with one server each):
    /// an hour of 400 hosts measured every 16 s, or a day of 18.
    pub const MAX_NTP_MEASUREMENTS: usize = 100_000;
}
