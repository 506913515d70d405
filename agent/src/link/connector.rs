//! How a stream to the collector is opened: the [`Connector`] trait, and [`TonicConnector`],
//! the production one (gRPC over TLS, or plaintext with `--insecure`).
//!
//! A connector turns a `Hello` into a [`Session`]: a bounded sender of agent messages and the
//! stream of the collector's answers. The [`Connection`](super::Connection) does the rest
//! (welcome, backoff, acks), so tests drive it with a connector made of in-memory channels.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use fleet_proto::errors;
use fleet_proto::limits::MAX_MESSAGE_BYTES;
use fleet_proto::v1::{ingest_server, AgentMessage, CollectorMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{GrpcMethod, Status};

use super::outbound::{AgentCodec, Outbound};
use crate::config::{Settings, TlsFiles};

/// The collector's side of a session, as the agent reads it.
pub type Inbound = Pin<Box<dyn Stream<Item = Result<CollectorMessage, Status>> + Send>>;

/// An open stream to the collector.
pub struct Session {
    /// Messages to the collector. Bounded: the connection reserves room before it reads a batch
    /// from the spool, and live messages that find it full are tried again later.
    pub tx: mpsc::Sender<Outbound>,
    /// The collector's messages; it ends (or yields a status) when the stream closes.
    pub inbound: Inbound,
}

/// A connection attempt under way.
pub type Connecting = Pin<Box<dyn Future<Output = Result<Session, String>> + Send>>;

/// Opens streams to the collector.
pub trait Connector {
    /// Starts opening a stream whose first message is `hello`. The error is the reason the
    /// attempt failed, as it will be logged.
    fn connect(&mut self, hello: AgentMessage) -> Connecting;
}

/// Any `FnMut(hello) -> future of a session` is a connector (tests use closures).
impl<F, Fut> Connector for F
where
    F: FnMut(AgentMessage) -> Fut,
    Fut: Future<Output = Result<Session, String>> + Send + 'static,
{
    fn connect(&mut self, hello: AgentMessage) -> Connecting {
        Box::pin(self(hello))
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The gRPC path of `Ingest.Session` (checked against the generated service in the tests).
const SESSION_PATH: &str = "/fleet.v1.Ingest/Session";
/// Room in the channel to the collector, in messages.
const CHANNEL: usize = 64;

/// The production connector: the collector's `Ingest.Session` RPC over tonic. The TLS files are
/// read again at every attempt, so rotated certificates are used without a restart.
#[derive(Debug, Clone)]
pub struct TonicConnector {
    collector: String,
    tls: Option<TlsFiles>,
}

impl TonicConnector {
    /// A connector for the collector the settings name, after checking once that its URL and
    /// TLS files are usable (a wrong one stops the agent at start).
    ///
    /// # Errors
    /// A message naming the URL or certificate file that is wrong.
    pub fn new(settings: &Settings) -> Result<TonicConnector, String> {
        let connector = TonicConnector {
            collector: settings.collector.clone(),
            tls: settings.tls.clone(),
        };
        connector.endpoint()?;
        Ok(connector)
    }

    /// Builds the gRPC endpoint (TLS or, with `--insecure`, plaintext), reading the TLS files.
    ///
    /// # Errors
    /// A message naming the URL or certificate file that is wrong.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let mut ep = Endpoint::from_shared(self.collector.clone())
            .map_err(|e| format!("collector URL {:?}: {e}", self.collector))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        if let Some(tls) = &self.tls {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            let mut cfg =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
                cfg = cfg.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            ep = ep
                .tls_config(cfg)
                .map_err(|e| format!("TLS configuration: {e}"))?;
        }
        Ok(ep)
    }
}

impl Connector for TonicConnector {
    fn connect(&mut self, hello: AgentMessage) -> Connecting {
        match self.endpoint() {
            Ok(ep) => Box::pin(open_session(ep, hello)),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

async fn open_session(ep: Endpoint, hello: AgentMessage) -> Result<Session, String> {
    let channel = ep.connect().await.map_err(|e| errors::chain(&e))?;
    // `Ingest.Session` as the generated client calls it, with the agent's codec (spooled
    // batches go out as they are stored; see `outbound`).
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    grpc.ready()
        .await
        .map_err(|e| format!("collector not ready: {}", errors::chain(&e)))?;
    let (tx, rx) = mpsc::channel(CHANNEL);
    // The hello goes in first: the collector reads it before it answers the call.
    tx.send(Outbound::Message(hello))
        .await
        .map_err(|_| "stream closed".to_string())?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request
        .extensions_mut()
        .insert(GrpcMethod::new(ingest_server::SERVICE_NAME, "Session"));
    let response = grpc
        .streaming(request, PathAndQuery::from_static(SESSION_PATH), AgentCodec)
        .await
        .map_err(|s| errors::status(&s))?;
    Ok(Session {
        tx,
        inbound: Box::pin(response.into_inner()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_path_is_the_generated_services() {
        assert_eq!(
            SESSION_PATH,
            format!("/{}/Session", ingest_server::SERVICE_NAME)
        );
    }
}
