//! The collector's TLS: rustls with client certificates (mutual TLS), revocation, reloadable.
//!
//! [`TlsSettings`] name the certificate, key, CA and CRL files and the rules client
//! certificates must follow; [`check`] reads them as the collector would. [`Acceptor`] holds
//! the config in force and swaps it on [`Acceptor::reload`], which [`reload_on_sighup`] calls on
//! each SIGHUP, so certificates, CA and CRL are rotated without a restart: new connections get
//! the new files, and every open connection whose client certificate the new files no longer
//! accept (revoked by the CRL, expired, from a CA no longer trusted, or against the
//! [`CertRules`]) is closed (`live.rs`). A file that does not load is refused with a message and
//! the config in force stays, connections untouched.
//!
//! [`incoming`] accepts TCP connections and hands tonic the [`Conn`]s whose handshake completed
//! within [`HANDSHAKE_TIMEOUT`]; a failed handshake (no certificate, another CA, expired,
//! revoked) is logged and counted, and never reaches a service.
//!
//! Revocation: `tls_crl` is a PEM file of one or more CRLs, each issued by a CA of `tls_ca`
//! (checked when it is read). Each client certificate's revocation is checked against the CRL
//! of its issuer; a certificate of a CA without a CRL in the file is not checked (its status is
//! unknown, which is accepted), and the CRL's next-update time is not enforced.

mod live;

pub use live::Conn;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::Signal;
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, error, info, warn};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::auth::{client_of_cert, CertRules};
use live::{Live, Watch};

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once, at most; more connections wait in the listen backlog.
pub const MAX_HANDSHAKES: usize = 1024;

/// The collector's TLS identity, whom it trusts, and what client certificates must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The fleet CA: client certificates must chain to it. None: no client certificate asked.
    pub ca: Option<PathBuf>,
    /// CRLs (PEM) of the CA: the certificates they list are refused. Only with `ca`.
    pub crl: Option<PathBuf>,
    /// The organisation and cluster rules for client certificates.
    pub clients: CertRules,
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

/// The CRLs of a PEM file (at least one), each issued by one of `cas`.
fn read_crls(
    path: &Path,
    cas: &[CertificateDer<'static>],
) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let bad = |m: String| format!("tls_crl {}: {m}", path.display());
    let crls: Vec<CertificateRevocationListDer<'static>> =
        CertificateRevocationListDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| bad(e.to_string()))?;
    if crls.is_empty() {
        return Err(bad(
            "no CRL in the file (`fleetctl certs revoke --dir DIR` writes one)".into(),
        ));
    }
    let subjects: Vec<Vec<u8>> = cas
        .iter()
        .filter_map(|c| X509Certificate::from_der(c).ok())
        .map(|(_, c)| c.subject().as_raw().to_vec())
        .collect();
    for (i, der) in crls.iter().enumerate() {
        let (_, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| bad(format!("CRL {}: {e}", i + 1)))?;
        if !subjects.iter().any(|s| s == crl.issuer().as_raw()) {
            return Err(bad(format!(
                "CRL {} is issued by {}, which is not a CA of tls_ca",
                i + 1,
                crl.issuer()
            )));
        }
    }
    Ok(crls)
}

/// A config read from the files, and the verifier it checks client certificates with.
struct Loaded {
    config: Arc<ServerConfig>,
    /// The same with HTTP/1.1 as the protocol, for the metrics port (`crate::metrics::http`).
    http: Arc<ServerConfig>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// Counts reloads: a connection whose handshake used an older config is checked again.
    generation: u64,
}

/// Reads the files into a server config (HTTP/2 only, as gRPC needs), and its HTTP/1.1 twin.
fn load(settings: &TlsSettings, generation: u64) -> Result<Loaded, String> {
    let certs = read_certs("tls_cert", &settings.cert)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key)
        .map_err(|e| format!("tls_key {}: {e}", settings.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let verifier = match &settings.ca {
        Some(ca) => {
            let cas = read_certs("tls_ca", ca)?;
            let mut roots = RootCertStore::empty();
            for c in cas.iter().cloned() {
                roots
                    .add(c)
                    .map_err(|e| format!("tls_ca {}: {e}", ca.display()))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if let Some(crl) = &settings.crl {
                verifier = verifier
                    .with_crls(read_crls(crl, &cas)?)
                    .only_check_end_entity_revocation()
                    .allow_unknown_revocation_status();
            }
            Some(
                verifier
                    .build()
                    .map_err(|e| format!("tls_ca {}: {e}", ca.display()))?,
            )
        }
        None if settings.crl.is_some() => {
            return Err("tls_crl: revocation needs client certificates (tls_ca)".into())
        }
        None => None,
    };
    let builder = match &verifier {
        Some(v) => builder.with_client_cert_verifier(v.clone()),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert/tls_key {}: {e}", settings.cert.display()))?;
    let mut http = config.clone();
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        http: Arc::new(http),
        verifier,
        generation,
    })
}

/// Reads the files as the collector would at start (`--check-config`).
///
/// # Errors
/// A message naming the setting and the file that cannot be read or understood.
pub fn check(settings: &TlsSettings) -> Result<(), String> {
    load(settings, 0).map(drop)
}

/// The TLS config in force, swapped on reload, and the connections it admitted.
pub struct Acceptor {
    settings: TlsSettings,
    current: RwLock<Arc<Loaded>>,
    /// The generation of the last config read (one reload task: never two at once).
    generation: AtomicU64,
    live: Arc<Live>,
    /// Handshakes refused since start (no certificate, unknown CA, expired, revoked, ...).
    pub refused: AtomicU64,
    /// Open connections closed by a reload since start (their certificate was no longer
    /// acceptable).
    pub closed: AtomicU64,
}

impl Acceptor {
    /// Reads the files.
    ///
    /// # Errors
    /// A message naming the setting and the file that cannot be read or understood.
    pub fn new(settings: TlsSettings) -> Result<Acceptor, String> {
        let loaded = load(&settings, 0)?;
        Ok(Acceptor {
            settings,
            current: RwLock::new(Arc::new(loaded)),
            generation: AtomicU64::new(0),
            live: Arc::default(),
            refused: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        })
    }

    /// Reads the files again and puts them in force, then closes every open connection whose
    /// client certificate they no longer accept; returns how many. On an error the config in
    /// force stays and no connection is touched.
    ///
    /// # Errors
    /// A message naming the setting and the file that cannot be read or understood.
    pub fn reload(&self) -> Result<usize, String> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let loaded = Arc::new(load(&self.settings, generation)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded.clone();
        let closed = self
            .live
            .close_where(|w| self.acceptable(&loaded, &w.certs).err());
        for (w, why) in &closed {
            warn!(peer = %w.peer, reason = %why, "connection closed: its client certificate is no longer accepted");
        }
        self.closed
            .fetch_add(closed.len() as u64, Ordering::Relaxed);
        Ok(closed.len())
    }

    /// Whether the client certificate chain `certs` passes `loaded`'s verifier (chain, dates,
    /// revocation) and the rules.
    fn acceptable(&self, loaded: &Loaded, certs: &[CertificateDer<'static>]) -> Result<(), String> {
        let Some((end, intermediates)) = certs.split_first() else {
            return Err("no client certificate".into());
        };
        if let Some(v) = &loaded.verifier {
            v.verify_client_cert(end, intermediates, UnixTime::now())
                .map_err(|e| e.to_string())?;
        }
        client_of_cert(end, &self.settings.clients).map(drop)
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.settings.ca.is_some()
    }

    /// Open connections with a client certificate.
    pub fn open_connections(&self) -> usize {
        self.live.len()
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A connection whose handshake `used` a config: registered for reloads, and checked
    /// against the config in force now if a reload came in between (which may have missed it).
    fn admit(
        &self,
        stream: TlsStream<TcpStream>,
        peer: std::net::SocketAddr,
        used: &Loaded,
    ) -> Conn {
        let watch = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| Arc::new(Watch::new(Arc::new(c.to_vec()), peer)));
        let conn = Conn::new(stream, watch.clone(), &self.live);
        let now = self.loaded();
        if let Some(w) = watch.filter(|_| now.generation != used.generation) {
            if let Err(why) = self.acceptable(&now, &w.certs) {
                w.close();
                self.closed.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, reason = %why, "connection closed: its client certificate is no longer accepted");
            }
        }
        conn
    }
}

/// What a connection speaks after the handshake (its ALPN protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2, the gRPC port.
    Grpc,
    /// HTTP/1.1, the metrics port.
    Http1,
}

impl Acceptor {
    /// The TLS handshake of one accepted connection with the config in force, within
    /// [`HANDSHAKE_TIMEOUT`]: the connection, registered for reloads, or None when it was
    /// refused (logged and counted in `refused`).
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        peer: std::net::SocketAddr,
        protocol: Protocol,
    ) -> Option<Conn> {
        let _ = tcp.set_nodelay(true);
        let loaded = self.loaded();
        let config = match protocol {
            Protocol::Grpc => loaded.config.clone(),
            Protocol::Http1 => loaded.http.clone(),
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(tcp)).await {
            Ok(Ok(stream)) => Some(self.admit(stream, peer, &loaded)),
            Ok(Err(e)) => {
                let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                warn!(%peer, error = %e, refused_total = n, ?protocol, "TLS handshake refused");
                None
            }
            Err(_) => {
                let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                debug!(%peer, refused_total = n, ?protocol, "TLS handshake timed out");
                None
            }
        }
    }
}

/// Listens for SIGHUP. Called before the files are first read, so that no SIGHUP after that
/// read is missed. (The collector's `main` installs a SIGHUP handler first thing, so a SIGHUP
/// before this only does not kill it.)
///
/// # Errors
/// When the signal handler cannot be installed.
pub fn sighups() -> std::io::Result<Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

/// Reads the certificate, key, CA and CRL again on each SIGHUP (rotation and revocation
/// without a restart), until `stop` changes. See [`Acceptor::reload`].
pub async fn reload_on_sighup(
    acceptor: Arc<Acceptor>,
    mut hup: Signal,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = hup.recv() => match acceptor.reload() {
                Ok(closed) => info!(connections_closed = closed, "TLS certificates reloaded"),
                Err(e) => error!(error = %e, "TLS certificates not reloaded; the ones in force stay"),
            },
        }
    }
}

/// The TLS connections accepted on `listener`, for `Server::serve_with_incoming*`.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<Acceptor>,
) -> ReceiverStream<std::io::Result<Conn>> {
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
            let tx = tx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Some(conn) = tls.handshake(tcp, peer, Protocol::Grpc).await {
                    let _ = tx.send(Ok(conn)).await;
                }
            });
        }
    });
    info!("accepting TLS connections");
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests;
