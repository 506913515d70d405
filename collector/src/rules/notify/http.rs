//! The notifiers' HTTP: one hyper client for `http://` and `https://` (hyper-rustls, with the
//! roots of `notify_ca` or the system's bundle), one JSON POST, and what its answer means (a
//! success, a retry, or a refusal).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The system's CA bundle on Debian and its derivatives.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS client config for https notifiers: the certificates of `ca` (PEM), or of the
/// system's bundle ([`SYSTEM_CA_BUNDLE`]) when `ca` is None.
///
/// # Errors
/// A message naming the file that cannot be read or holds no certificate.
pub fn client_tls(ca: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let path = ca.unwrap_or(std::path::Path::new(SYSTEM_CA_BUNDLE));
    let certs = crate::tls::read_certs("notify_ca", path)?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "notify_ca {}: no usable CA certificate",
            path.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub(super) enum PostError {
    /// Worth retrying: no connection, timeout, 5xx, 408, 429.
    Retry(String),
    /// The target said no (another 4xx).
    Rejected(String),
}

pub(super) async fn post(
    client: &HttpClient,
    https_ready: bool,
    uri: &Uri,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), PostError> {
    if uri.scheme_str() == Some("https") && !https_ready {
        return Err(PostError::Rejected("https without TLS roots".into()));
    }
    let req = json_post(Request::post(uri.clone()), body)?;
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| PostError::Retry(fleet_proto::errors::chain(&e)))?;
        Ok(answer(resp).await)
    };
    let (status, text) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| PostError::Retry(format!("no answer within {timeout:?}")))??;
    judge(status, text)
}

/// The notifiers' HTTP/1.1 client, for `http://` and `https://` alike.
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One client for both schemes: https connections check the server's certificate (and its name)
/// against `tls`'s roots; without `tls` the roots are empty and [`post`] refuses https URLs
/// before trying.
pub(super) fn http_client(tls: Option<&Arc<rustls::ClientConfig>>) -> HttpClient {
    let config = match tls {
        Some(c) => rustls::ClientConfig::clone(c),
        None => rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth(),
    };
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The POST of a JSON body, with our user agent.
fn json_post(
    builder: hyper::http::request::Builder,
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, PostError> {
    builder
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("fleet-collector/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| PostError::Rejected(e.to_string()))
}

/// The status and, for the message, the start of the body (a long or broken one is cut).
async fn answer(resp: hyper::Response<hyper::body::Incoming>) -> (StatusCode, String) {
    let status = resp.status();
    let text = match Limited::new(resp.into_body(), 1024).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    (status, text)
}

/// Success, a retry (5xx, 408, 429) or a refusal (another 4xx).
fn judge(status: StatusCode, text: String) -> Result<(), PostError> {
    if status.is_success() {
        return Ok(());
    }
    let why = format!("HTTP {status}: {text}");
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Err(PostError::Retry(why))
    } else {
        Err(PostError::Rejected(why))
    }
}
