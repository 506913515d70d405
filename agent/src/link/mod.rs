//! The link to the collector: one gRPC stream that ships the spool and brings back acks,
//! policies and time probes.
//!
//! - [`connector`]: how a stream is opened ([`Connector`]; [`TonicConnector`] in production,
//!   in-memory channels in tests);
//! - [`connection`]: [`Connection`], which keeps the stream up (backoff, the outage logged once
//!   per change), pumps the spool through a bounded window of batches in flight, frees what
//!   the collector acknowledges, and hands the agent one stream of [`LinkEvent`]s;
//! - [`outbound`]: what goes on the stream ([`Outbound`]: spooled batches as the spool holds
//!   them, never decoded) and the codec that writes it.
//!
//! ```text
//! Spool::next_unsent ──► pump (≤ MAX_IN_FLIGHT unacked) ──► stream ──► collector
//! Spool::ack ◄── Ack{seq} ◄── Welcome{last_seq} / PolicySync / TimeProbe ◄── collector
//! ```

pub mod connection;
pub mod connector;
pub mod outbound;

pub use connection::{Connection, LinkEvent, ACK_DELAY, MAX_IN_FLIGHT, SHUTDOWN_FLUSH};
pub use connector::{Connector, Session, TonicConnector};
pub use outbound::{Outbound, SpooledBatch};
