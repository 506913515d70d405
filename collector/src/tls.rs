//! The collector's TLS: rustls with client certificates (mutual TLS), reloadable.
//!
//! [`TlsFiles`] name the certificate, key and CA; [`server_config`] reads them into a rustls
//! `ServerConfig` that requires a client certificate signed by the CA (or, without a CA, asks for
//! none). [`Acceptor`] holds the config in force and swaps it on [`Acceptor::reload`], which
//! [`reload_on_sighup`] calls on each SIGHUP, so certificates are rotated without a restart:
//! connections already open keep theirs, new ones get the new files. [`incoming`] accepts TCP
//! connections and hands tonic the streams whose handshake completed within
//! [`HANDSHAKE_TIMEOUT`]; a failed handshake (no certificate, another CA, expired) is logged and
//! counted, and never reaches a service.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, error, info, warn};

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once, at most; more connections wait in the listen backlog.
pub const MAX_HANDSHAKES: usize = 1024;

/// The files of the collector's TLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The fleet CA: client certificates must chain to it. None: no client certificate asked.
    pub ca: Option<PathBuf>,
}

/// The certificates of a PEM file; `field` names the setting in errors. At least one.
///
/// # Errors
/// A message naming the setting and the file that cannot be read or holds no certificate.
pub fn read_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{field} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{field} {}: no certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// Reads the files into a server config (HTTP/2 only, as gRPC needs).
///
/// # Errors
/// A message naming the file that cannot be read or understood.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, String> {
    let certs = read_certs("tls_cert", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("tls_key {}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &files.ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs("tls_ca", ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("tls_ca {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("tls_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert/tls_key {}: {e}", files.cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The TLS config in force, swapped on reload.
pub struct Acceptor {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    /// Handshakes refused since start (no certificate, unknown CA, expired, ...).
    pub refused: AtomicU64,
}

impl Acceptor {
    /// Reads the files.
    ///
    /// # Errors
    /// As [`server_config`].
    pub fn new(files: TlsFiles) -> Result<Acceptor, String> {
        let config = server_config(&files)?;
        Ok(Acceptor {
            files,
            current: RwLock::new(Arc::new(config)),
            refused: AtomicU64::new(0),
        })
    }

    /// Reads the files again; on an error the config in force stays.
    ///
    /// # Errors
    /// As [`server_config`].
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.files.ca.is_some()
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Reads the certificate, key and CA again on each SIGHUP (rotation without a restart), until
/// `stop` changes. A file that does not load is refused with a message and the certificates in
/// force stay.
pub async fn reload_on_sighup(acceptor: Arc<Acceptor>, mut stop: watch::Receiver<bool>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = hup.recv() => match acceptor.reload() {
                Ok(()) => info!("TLS certificates reloaded"),
                Err(e) => error!(error = %e, "TLS certificates not reloaded; the ones in force stay"),
            },
        }
    }
}

/// The TLS connections accepted on `listener`, for `Server::serve_with_incoming*`.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<Acceptor>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = tokio::select! {
                () = tx.closed() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: wait a little instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => {
                        let n = tls.refused.fetch_add(1, Ordering::Relaxed) + 1;
                        warn!(%peer, error = %e, refused_total = n, "TLS handshake refused");
                    }
                    Err(_) => {
                        let n = tls.refused.fetch_add(1, Ordering::Relaxed) + 1;
                        debug!(%peer, refused_total = n, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    info!("accepting TLS connections");
    ReceiverStream::new(rx)
}
