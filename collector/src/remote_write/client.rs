//! The remote-write HTTP client: one hyper HTTP/1.1 client per receiver over `http://` or
//! `https://` (rustls: the receiver's certificate checked against `ca` or the system's bundle,
//! an optional client certificate), the POST of one body with its headers and credentials, and
//! what the answer means ([`Outcome`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

use super::wire;

/// How the client authenticates and checks the receiver (shared by every receiver).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// CA (PEM) the receiver's certificate must chain to; None: the system's bundle.
    pub ca: Option<PathBuf>,
    /// Client certificate chain and key (PEM), for receivers that ask for one.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// File holding `USER:PASSWORD` for HTTP basic auth (one line).
    pub basic_auth_file: Option<PathBuf>,
    /// File holding a bearer token (one line).
    pub bearer_token_file: Option<PathBuf>,
    /// How long one POST may take.
    pub timeout: Duration,
}

/// What a POST's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: accepted.
    Accepted,
    /// No connection, a timeout, 5xx or 429: send the same again later.
    Retry(String),
    /// Another answer (4xx): the receiver will never take this body.
    Rejected(String),
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One receiver's client.
pub struct Receiver {
    uri: Uri,
    client: HttpClient,
    authorization: Option<String>,
    timeout: Duration,
}

/// Reads a one-line secret file, trimmed.
fn secret(field: &str, path: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{field} {}: {e}", path.display()))?;
    let line = text.trim();
    if line.is_empty() {
        return Err(format!("{field} {}: the file is empty", path.display()));
    }
    Ok(line.to_owned())
}

/// The `Authorization` header the options ask for.
fn authorization(opts: &ClientOptions) -> Result<Option<String>, String> {
    use base64_lite::encode;
    match (&opts.basic_auth_file, &opts.bearer_token_file) {
        (Some(_), Some(_)) => Err(
            "remote_write_basic_auth_file and remote_write_bearer_token_file exclude each other"
                .into(),
        ),
        (Some(p), None) => {
            let pair = secret("remote_write_basic_auth_file", p)?;
            if !pair.contains(':') {
                return Err(format!(
                    "remote_write_basic_auth_file {}: expected USER:PASSWORD",
                    p.display()
                ));
            }
            Ok(Some(format!("Basic {}", encode(pair.as_bytes()))))
        }
        (None, Some(p)) => Ok(Some(format!(
            "Bearer {}",
            secret("remote_write_bearer_token_file", p)?
        ))),
        (None, None) => Ok(None),
    }
}

/// The TLS config: roots from `ca` or the system's bundle, a client certificate if given.
fn tls_config(opts: &ClientOptions) -> Result<rustls::ClientConfig, String> {
    let ca_path = opts
        .ca
        .as_deref()
        .unwrap_or(Path::new(crate::rules::notify::SYSTEM_CA_BUNDLE));
    let mut roots = rustls::RootCertStore::empty();
    // Without a readable bundle, https receivers fail their handshake (and say why); http ones
    // still work.
    if let Ok(certs) = crate::tls::read_certs("remote_write_ca", ca_path) {
        roots.add_parsable_certificates(certs);
    } else if opts.ca.is_some() {
        return Err(format!(
            "remote_write_ca {}: no certificate",
            ca_path.display()
        ));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots);
    match &opts.cert {
        Some((cert, key)) => {
            let chain = crate::tls::read_certs("remote_write_cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("remote_write_key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("remote_write_key: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Checks that the options' files load (for `--check-config`).
///
/// # Errors
/// A message naming the setting and file.
pub fn check(opts: &ClientOptions) -> Result<(), String> {
    authorization(opts)?;
    tls_config(opts).map(|_| ())
}

impl Receiver {
    /// A client of `url` (`http://` or `https://`).
    ///
    /// # Errors
    /// A message naming the bad URL or the file that does not load.
    pub fn new(url: &str, opts: &ClientOptions) -> Result<Receiver, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("remote_write {url:?}: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "remote_write {url:?}: an http:// or https:// URL with a host"
            ));
        }
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(opts)?)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Receiver {
            uri,
            client: Client::builder(TokioExecutor::new()).build(connector),
            authorization: authorization(opts)?,
            timeout: opts.timeout,
        })
    }

    /// POSTs one snappy-compressed `WriteRequest`.
    pub async fn post(&self, body: Vec<u8>) -> Outcome {
        let mut req = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, wire::CONTENT_TYPE)
            .header(CONTENT_ENCODING, wire::CONTENT_ENCODING)
            .header(wire::VERSION_HEADER.0, wire::VERSION_HEADER.1)
            .header(
                USER_AGENT,
                concat!("fleet-collector/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(a) = &self.authorization {
            req = req.header(AUTHORIZATION, a);
        }
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return Outcome::Rejected(e.to_string()),
        };
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| fleet_proto::errors::chain(&e))?;
            let status = resp.status();
            let text = match Limited::new(resp.into_body(), 1024).collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_owned(),
                Err(_) => String::new(),
            };
            Ok::<_, String>((status, text))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Outcome::Retry(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => Outcome::Retry(e),
            Ok(Ok((status, text))) => judge(status, &text),
        }
    }
}

/// Remote-write 1.0: 2xx accepted; 5xx and 429 retried; any other answer refused for good.
fn judge(status: StatusCode, text: &str) -> Outcome {
    if status.is_success() {
        return Outcome::Accepted;
    }
    let why = format!("HTTP {status}: {text}");
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry(why)
    } else {
        Outcome::Rejected(why)
    }
}

/// Base64 (standard alphabet, padded) for the basic-auth header: a dozen lines rather than a
/// crate.
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_as_the_protocol_says() {
        assert_eq!(judge(StatusCode::NO_CONTENT, ""), Outcome::Accepted);
        assert!(matches!(
            judge(StatusCode::SERVICE_UNAVAILABLE, ""),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            judge(StatusCode::TOO_MANY_REQUESTS, ""),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            judge(StatusCode::BAD_REQUEST, "out of order"),
            Outcome::Rejected(_)
        ));
        assert!(matches!(
            judge(StatusCode::UNAUTHORIZED, ""),
            Outcome::Rejected(_)
        ));
    }

    #[test]
    fn credentials_come_from_files() {
        assert_eq!(base64_lite::encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_lite::encode(b"ab"), "YWI=");
        assert_eq!(base64_lite::encode(b"a"), "YQ==");
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let opts = ClientOptions {
            bearer_token_file: Some(token.clone()),
            ..Default::default()
        };
        assert_eq!(
            authorization(&opts).unwrap().as_deref(),
            Some("Bearer s3cret")
        );
        let both = ClientOptions {
            basic_auth_file: Some(token.clone()),
            ..opts
        };
        assert!(authorization(&both).is_err());
        std::fs::write(&token, "user:pass").unwrap();
        let basic = ClientOptions {
            basic_auth_file: Some(token),
            ..Default::default()
        };
        assert_eq!(
            authorization(&basic).unwrap().as_deref(),
            Some("Basic dXNlcjpwYXNz")
        );
    }
}
