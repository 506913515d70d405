//! The connection to the collector (TLS via rustls, timeouts, the answer size limit) and the one
//! place where transport errors and gRPC statuses become fleetctl's messages ([`CallError`]).
//!
//! Commands call the generated clients themselves, through [`Collector::query`] and
//! [`Collector::policies`], so a new RPC needs no wrapper here:
//!
//! ```text
//! let hosts = collector
//!     .query("ListHosts", async |c| c.list_hosts(request).await)
//!     .await?
//!     .hosts;
//! ```

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use fleet_proto::v1::policies_client::PoliciesClient;
use fleet_proto::v1::query_client::QueryClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Response, Status};

use crate::config::{Settings, TlsFiles};

/// How long to wait for TCP and TLS to come up before saying the collector is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one query may take; a collector that hangs must not hang the operator's shell.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer fleetctl decodes: the collector's encoding limit for its answers.
const MAX_RESPONSE_BYTES: usize = fleet_proto::limits::MAX_QUERY_RESPONSE_BYTES;

/// A connection to the collector: its `Query` and `Policies` clients, on one channel.
#[derive(Debug, Clone)]
pub struct Collector {
    query: QueryClient<Channel>,
    policies: PoliciesClient<Channel>,
    url: String,
}

impl Collector {
    /// Connects to `settings.collector`, with TLS unless the URL is plaintext `http://`.
    ///
    /// # Errors
    ///
    /// Unreadable or invalid TLS files (naming the setting), and "cannot reach collector at URL"
    /// when TCP or the TLS handshake fails.
    pub async fn connect(settings: &Settings) -> Result<Self> {
        let url = settings.collector.clone();
        let mut endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("collector: `{url}` is not a valid URL"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("fleetctl/", env!("CARGO_PKG_VERSION")))?;
        if let Some(tls) = &settings.tls {
            endpoint = endpoint
                .tls_config(tls_config(tls)?)
                .context("TLS setup from tls_ca, tls_cert and tls_key")?;
        }
        // The endpoint's connect timeout covers TCP only; a peer that accepts TLS but never speaks
        // HTTP/2 would otherwise hang here, so the whole connection gets the same deadline.
        let channel = match tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect()).await {
            Ok(connected) => {
                connected.with_context(|| format!("cannot reach collector at {url}"))?
            }
            Err(_) => bail!(
                "cannot reach collector at {url}: no gRPC connection within {}s",
                CONNECT_TIMEOUT.as_secs()
            ),
        };
        let query = QueryClient::new(channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES);
        let policies = PoliciesClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(Collector {
            query,
            policies,
            url,
        })
    }

    /// Makes one call of the `Query` service: `call` gets the client, `rpc` names the call in
    /// errors. Returns the answer's message.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`CallError`] words it.
    pub async fn query<T>(
        &self,
        rpc: &'static str,
        call: impl AsyncFnOnce(&mut QueryClient<Channel>) -> Result<Response<T>, Status>,
    ) -> Result<T, CallError> {
        let mut client = self.query.clone();
        let answer = call(&mut client).await;
        self.answer(rpc, answer)
    }

    /// Makes one call of the `Policies` service, as [`Collector::query`] does for `Query`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`CallError`] words it.
    pub async fn policies<T>(
        &self,
        rpc: &'static str,
        call: impl AsyncFnOnce(&mut PoliciesClient<Channel>) -> Result<Response<T>, Status>,
    ) -> Result<T, CallError> {
        let mut client = self.policies.clone();
        let answer = call(&mut client).await;
        self.answer(rpc, answer)
    }

    fn answer<T>(
        &self,
        rpc: &'static str,
        answer: Result<Response<T>, Status>,
    ) -> Result<T, CallError> {
        answer
            .map(Response::into_inner)
            .map_err(|status| CallError {
                rpc,
                url: self.url.clone(),
                status,
            })
    }
}

/// A failed call as the operator reads it: an unreachable collector names its URL, a call that
/// timed out says so, any other status gives the call, its code and the collector's message.
#[derive(Debug)]
pub struct CallError {
    rpc: &'static str,
    url: String,
    status: Status,
}

impl CallError {
    /// The gRPC status code the collector answered with.
    pub fn code(&self) -> Code {
        self.status.code()
    }

    /// This error, except that `NotFound` reads `message()`: for a call that names the thing it
    /// asks for (`no policy named NAME`), which the command can say better than the status.
    pub fn not_found_as(self, message: impl FnOnce() -> String) -> anyhow::Error {
        if self.status.code() == Code::NotFound {
            anyhow!(message())
        } else {
            self.into()
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rpc, url, status) = (self.rpc, &self.url, &self.status);
        let message = match status.message() {
            "" => status.code().description(),
            message => message,
        };
        match status.code() {
            Code::Unavailable => write!(f, "cannot reach collector at {url}: {message}"),
            // tonic's own deadline (REQUEST_TIMEOUT) reports itself this way.
            Code::Cancelled if message == "Timeout expired" => write!(
                f,
                "{rpc}: collector at {url} did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ),
            code => write!(f, "{rpc} failed ({code:?}): {message}"),
        }
    }
}

/// No `source`: the message already says what the status says, once.
impl std::error::Error for CallError {}

const PEM_CERT: &str = "-----BEGIN CERTIFICATE-----";

fn tls_config(tls: &TlsFiles) -> Result<ClientTlsConfig> {
    let read = |setting: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("{setting}: cannot read {}", path.display()))
    };
    let ca = read("tls_ca", &tls.ca)?;
    // rustls skips what is not a certificate, so a wrong file would only show up later as an
    // unknown issuer; say so here instead.
    if !ca.windows(PEM_CERT.len()).any(|w| w == PEM_CERT.as_bytes()) {
        bail!("tls_ca: {} holds no PEM certificate", tls.ca.display());
    }
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(
            read("tls_cert", cert)?,
            read("tls_key", key)?,
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_error(rpc: &'static str, status: Status) -> CallError {
        CallError {
            rpc,
            url: "https://collector:7443".into(),
            status,
        }
    }

    #[test]
    fn statuses_read_well() {
        let err = call_error("QuerySar", Status::not_found("no host matches web-9"));
        assert_eq!(
            err.to_string(),
            "QuerySar failed (NotFound): no host matches web-9"
        );
        let err = call_error("ListHosts", Status::unavailable("connection reset"));
        assert_eq!(
            err.to_string(),
            "cannot reach collector at https://collector:7443: connection reset"
        );
        let err = call_error("ListHosts", Status::new(Code::Internal, ""));
        assert_eq!(
            err.to_string(),
            "ListHosts failed (Internal): Internal error"
        );
        let err = call_error("ListHosts", Status::cancelled("Timeout expired"));
        assert_eq!(
            err.to_string(),
            "ListHosts: collector at https://collector:7443 did not answer within 60s"
        );
    }

    #[test]
    fn not_found_can_say_what_is_missing() {
        let named = || "no policy named p".to_owned();
        let err = call_error(
            "GetPolicyStatus",
            Status::not_found("policy \"p\" not found"),
        );
        assert_eq!(err.not_found_as(named).to_string(), "no policy named p");
        let err = call_error("GetPolicyStatus", Status::permission_denied("viewer"));
        assert_eq!(
            err.not_found_as(named).to_string(),
            "GetPolicyStatus failed (PermissionDenied): viewer"
        );
    }

    #[tokio::test]
    async fn unreachable_collector_names_the_url() {
        // A port nobody listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = Settings {
            collector: format!("http://127.0.0.1:{port}"),
            output: crate::output::OutputFormat::Table,
            tls: None,
        };
        let err = Collector::connect(&settings).await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with(&format!(
                "cannot reach collector at http://127.0.0.1:{port}: "
            )),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let settings = Settings {
            collector: "https://127.0.0.1:1".into(),
            output: crate::output::OutputFormat::Table,
            tls: Some(TlsFiles {
                ca: ca.clone(),
                identity: None,
            }),
        };
        let msg = format!("{:#}", Collector::connect(&settings).await.unwrap_err());
        assert_eq!(
            msg,
            format!("tls_ca: {} holds no PEM certificate", ca.display())
        );
    }

    #[tokio::test]
    async fn unreadable_tls_file_names_the_setting() {
        let settings = Settings {
            collector: "https://127.0.0.1:1".into(),
            output: crate::output::OutputFormat::Table,
            tls: Some(TlsFiles {
                ca: "/nonexistent/fleet-ca.pem".into(),
                identity: None,
            }),
        };
        let msg = format!("{:#}", Collector::connect(&settings).await.unwrap_err());
        assert!(
            msg.starts_with("tls_ca: cannot read /nonexistent/fleet-ca.pem"),
            "{msg}"
        );
    }
}
