//! The metrics port: `GET /metrics` over HTTP/1.1 ([`serve`]).
//!
//! With TLS each connection's handshake is the gRPC port's ([`Acceptor::handshake`]: the same
//! certificate, fleet CA and CRL, reloaded on SIGHUP, and a connection whose certificate a
//! reload no longer accepts is closed). With a fleet CA a scraper without a client certificate
//! fails the handshake (as on the gRPC port); one whose certificate's role may not view (an
//! agent's, or one the rules refuse) gets `403 Forbidden` on every request, counted with the
//! gRPC refusals ([`Scrape::allow`]). Plaintext only with `--insecure`, where anyone who reaches
//! the port may read.
//!
//! The answer is the 0.0.4 text, or OpenMetrics when the Accept header asks for it
//! ([`Format::from_accept`]). Bounded: [`MAX_CONNECTIONS`] at once (more wait in the listen
//! backlog), [`HEADER_TIMEOUT`] to send a request's headers. On `stop` the port stops accepting
//! and each connection ends after the request it is answering.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::text::Format;
use crate::tls::{Acceptor, Protocol};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a scraper may not read the metrics: the HTTP status and the reason in words.
pub type Refusal = (StatusCode, String);

/// What the endpoint asks of the collector.
pub trait Scrape: Send + Sync + 'static {
    /// Whether a scraper presenting the DER certificate `cert` (None: none) may read.
    ///
    /// # Errors
    /// The status to answer and why.
    fn allow(&self, cert: Option<&[u8]>, peer: SocketAddr) -> Result<(), Refusal>;

    /// The metrics as text in `format`.
    fn render(&self, format: Format) -> impl Future<Output = String> + Send;
}

/// Serves `GET /metrics` on `listener` until `stop` changes, over TLS when `tls` is given;
/// returns once every connection ended.
pub async fn serve<S: Scrape>(
    listener: TcpListener,
    tls: Option<Arc<Acceptor>>,
    scrape: Arc<S>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, tls = tls.is_some(), "metrics endpoint serving /metrics");
    }
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "metrics port: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Reap the connections that ended, so the set holds only the open ones.
        while conns.try_join_next().is_some() {}
        let (tls, scrape, stop) = (tls.clone(), scrape.clone(), stop.clone());
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    let allowed = scrape.allow(None, peer);
                    connection(tcp, allowed, scrape, stop).await;
                }
                Some(acc) => {
                    let Some(conn) = acc.handshake(tcp, peer, Protocol::Http1).await else {
                        return;
                    };
                    let allowed = scrape.allow(conn.client_certificate().map(|c| c.as_ref()), peer);
                    connection(conn, allowed, scrape, stop).await;
                }
            }
        });
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Serves one connection until the client closes it or `stop` changes (then after the request
/// in progress).
async fn connection<S: Scrape>(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    allowed: Result<(), Refusal>,
    scrape: Arc<S>,
    mut stop: watch::Receiver<bool>,
) {
    let allowed = Arc::new(allowed);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (scrape, allowed) = (scrape.clone(), allowed.clone());
        async move { Ok::<_, Infallible>(answer(&req, &allowed, &*scrape).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The answer to one request.
async fn answer<S: Scrape>(
    req: &Request<Incoming>,
    allowed: &Result<(), Refusal>,
    scrape: &S,
) -> Response<Full<Bytes>> {
    if let Err((status, why)) = allowed {
        return plain(*status, why.clone());
    }
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "only /metrics is served here".into());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics".into());
    }
    let accept = req.headers().get(ACCEPT).and_then(|a| a.to_str().ok());
    let format = Format::from_accept(accept);
    let mut r = Response::new(Full::new(Bytes::from(scrape.render(format).await)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(format.content_type()),
    );
    r
}
