//! The connection to the collector's `Query` and `Policies` services (`client/policy.rs`), and
//! the one place where transport errors and gRPC statuses become fleetctl's messages.

mod policy;

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use fleet_proto::v1::policies_client::PoliciesClient;
use fleet_proto::v1::query_client::QueryClient;
use fleet_proto::v1::{
    Alert, AlertQuery, HostInfo, ListHostsRequest, NtpHostStatus, NtpQuery, OomKill, OomKillDetail,
    OomKillRequest, OomQuery, SarQuery, SarRow, TopOomQuery, TopOomRow,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use crate::config::{Settings, TlsFiles};

/// How long to wait for TCP and TLS to come up before saying the collector is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one query may take; a collector that hangs must not hang the operator's shell.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer fleetctl decodes: the collector's encoding limit for its answers.
const MAX_RESPONSE_BYTES: usize = fleet_proto::limits::MAX_QUERY_RESPONSE_BYTES;

/// A connection to the collector: its `Query` and `Policies` clients.
#[derive(Debug, Clone)]
pub struct Collector {
    client: QueryClient<Channel>,
    /// The `Policies` service, on the same connection.
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
        let client =
            QueryClient::new(channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES);
        let policies = PoliciesClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(Collector {
            client,
            policies,
            url,
        })
    }

    /// `Query.ListHosts`; `cluster` empty for every cluster.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn list_hosts(&self, cluster: &str) -> Result<Vec<HostInfo>> {
        let request = ListHostsRequest {
            cluster: cluster.to_owned(),
        };
        match self.client.clone().list_hosts(request).await {
            Ok(response) => Ok(response.into_inner().hosts),
            Err(status) => Err(self.status_error("ListHosts", status)),
        }
    }

    /// `Query.QuerySar`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn query_sar(&self, query: SarQuery) -> Result<Vec<SarRow>> {
        match self.client.clone().query_sar(query).await {
            Ok(response) => Ok(response.into_inner().rows),
            Err(status) => Err(self.status_error("QuerySar", status)),
        }
    }

    /// `Query.TopOom`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn top_oom(&self, query: TopOomQuery) -> Result<Vec<TopOomRow>> {
        match self.client.clone().top_oom(query).await {
            Ok(response) => Ok(response.into_inner().rows),
            Err(status) => Err(self.status_error("TopOom", status)),
        }
    }

    /// `Query.ListOomKills`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn list_oom_kills(&self, query: OomQuery) -> Result<Vec<OomKill>> {
        match self.client.clone().list_oom_kills(query).await {
            Ok(response) => Ok(response.into_inner().kills),
            Err(status) => Err(self.status_error("ListOomKills", status)),
        }
    }

    /// `Query.GetOomKill`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it (`NotFound` for an
    /// unknown id).
    pub async fn get_oom_kill(&self, request: OomKillRequest) -> Result<OomKillDetail> {
        match self.client.clone().get_oom_kill(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.status_error("GetOomKill", status)),
        }
    }

    /// `Query.ListNtp`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn list_ntp(&self, query: NtpQuery) -> Result<Vec<NtpHostStatus>> {
        match self.client.clone().list_ntp(query).await {
            Ok(response) => Ok(response.into_inner().hosts),
            Err(status) => Err(self.status_error("ListNtp", status)),
        }
    }

    /// `Query.GetCollectorStatus`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn collector_status(&self) -> Result<fleet_proto::v1::CollectorStatus> {
        match self
            .client
            .clone()
            .get_collector_status(fleet_proto::v1::CollectorStatusRequest {})
            .await
        {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.status_error("GetCollectorStatus", status)),
        }
    }

    /// `Query.ListAlerts`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn list_alerts(&self, query: AlertQuery) -> Result<Vec<Alert>> {
        match self.client.clone().list_alerts(query).await {
            Ok(response) => Ok(response.into_inner().alerts),
            Err(status) => Err(self.status_error("ListAlerts", status)),
        }
    }

    /// A failed call as the operator reads it: an unreachable collector names its URL, any other
    /// status gives its code and the collector's message.
    fn status_error(&self, rpc: &str, status: Status) -> anyhow::Error {
        status_message(&self.url, rpc, &status)
    }
}

fn status_message(url: &str, rpc: &str, status: &Status) -> anyhow::Error {
    let message = match status.message() {
        "" => status.code().description(),
        message => message,
    };
    match status.code() {
        Code::Unavailable => anyhow!("cannot reach collector at {url}: {message}"),
        // tonic's own deadline (REQUEST_TIMEOUT) reports itself this way.
        Code::Cancelled if message == "Timeout expired" => anyhow!(
            "{rpc}: collector at {url} did not answer within {}s",
            REQUEST_TIMEOUT.as_secs()
        ),
        code => anyhow!("{rpc} failed ({code:?}): {message}"),
    }
}

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

    #[test]
    fn statuses_read_well() {
        let url = "https://collector:7443";
        let err = status_message(url, "QuerySar", &Status::not_found("no host matches web-9"));
        assert_eq!(
            err.to_string(),
            "QuerySar failed (NotFound): no host matches web-9"
        );
        let err = status_message(url, "ListHosts", &Status::unavailable("connection reset"));
        assert_eq!(
            err.to_string(),
            "cannot reach collector at https://collector:7443: connection reset"
        );
        let err = status_message(url, "ListHosts", &Status::new(Code::Internal, ""));
        assert_eq!(
            err.to_string(),
            "ListHosts failed (Internal): Internal error"
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
            output: crate::render::OutputFormat::Table,
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
            output: crate::render::OutputFormat::Table,
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
            output: crate::render::OutputFormat::Table,
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
