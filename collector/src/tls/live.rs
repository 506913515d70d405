//! The open TLS connections and their client certificates, so that a reload can close those
//! whose certificate is no longer acceptable (revoked, expired, from a CA no longer trusted).
//!
//! Each accepted connection is handed to tonic as a [`Conn`]: the TLS stream, and a [`Watch`]
//! holding the peer's certificate chain and a `closed` flag, which [`Live`] (the registry the
//! acceptor keeps) shares. [`Live::close_where`] sets the flag of each connection a check
//! refuses and wakes the task driving it; the connection's next read or write then fails, so
//! hyper ends the connection and every stream on it (an agent's session ends as if the agent
//! had gone). A connection leaves the registry when tonic drops it.
//!
//! ```text
//! accept ─► handshake ─► Conn { stream, Watch } ──► tonic / hyper (one task per connection)
//!                               │ Arc                    ▲ poll_read / poll_write: Err once closed
//!                               ▼                        │
//!                         Live registry ── SIGHUP: close_where(no longer acceptable) ── wake
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

/// What a reload needs to know of one open connection, shared by its [`Conn`] and [`Live`].
pub(super) struct Watch {
    /// The client's certificate chain as it presented it, end entity first.
    pub(super) certs: Arc<Vec<CertificateDer<'static>>>,
    pub(super) peer: SocketAddr,
    /// Set once: the connection's next read or write fails.
    closed: AtomicBool,
    /// The tasks last blocked reading and writing, woken when the connection is closed so that
    /// an idle connection notices at once.
    read: AtomicWaker,
    write: AtomicWaker,
}

impl Watch {
    pub(super) fn new(certs: Arc<Vec<CertificateDer<'static>>>, peer: SocketAddr) -> Watch {
        Watch {
            certs,
            peer,
            closed: AtomicBool::new(false),
            read: AtomicWaker::new(),
            write: AtomicWaker::new(),
        }
    }

    /// Fails the connection's next read and write, and wakes whoever waits on them.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.read.wake();
        self.write.wake();
    }

    /// Registers the waiting task, then says whether the connection is closed (in this order,
    /// so a close in between is never missed).
    fn closed(&self, waker: &AtomicWaker, cx: &Context<'_>) -> bool {
        waker.register(cx.waker());
        self.closed.load(Ordering::Acquire)
    }
}

/// The open connections that presented a client certificate.
#[derive(Default)]
pub(super) struct Live {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Watch>>>,
}

impl Live {
    fn add(&self, watch: Arc<Watch>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, watch);
        id
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Connections open now.
    pub(super) fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Closes each open connection for which `refuse` gives a reason; returns them with it.
    pub(super) fn close_where(
        &self,
        refuse: impl Fn(&Watch) -> Option<String>,
    ) -> Vec<(Arc<Watch>, String)> {
        let open: Vec<Arc<Watch>> = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        // Checked outside the lock: a chain verification takes a while, and connections keep
        // coming and going meanwhile.
        let mut closed = Vec::new();
        for w in open {
            if let Some(why) = refuse(&w) {
                w.close();
                closed.push((w, why));
            }
        }
        closed
    }
}

/// One accepted TLS connection, as tonic serves it: reads and writes fail once a reload closed
/// it. Carries tonic's TLS connect info, so requests see the peer's address and certificates.
pub struct Conn {
    stream: TlsStream<TcpStream>,
    /// None for a connection without a client certificate (TLS without a fleet CA).
    tracked: Option<Tracked>,
}

struct Tracked {
    watch: Arc<Watch>,
    id: u64,
    live: Arc<Live>,
}

impl Conn {
    /// The connection, registered in `live` when `watch` is given.
    pub(super) fn new(
        stream: TlsStream<TcpStream>,
        watch: Option<Arc<Watch>>,
        live: &Arc<Live>,
    ) -> Conn {
        let tracked = watch.map(|watch| Tracked {
            id: live.add(watch.clone()),
            watch,
            live: live.clone(),
        });
        Conn { stream, tracked }
    }

    /// The client's end-entity certificate, if it presented one.
    pub fn client_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.stream.get_ref().1.peer_certificates()?.first()
    }

    fn refused(&self, cx: &Context<'_>, read: bool) -> Option<io::Error> {
        let w = &self.tracked.as_ref()?.watch;
        let waker = if read { &w.read } else { &w.write };
        w.closed(waker, cx).then(|| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "closed: the client certificate is no longer acceptable",
            )
        })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(t) = &self.tracked {
            t.live.remove(t.id);
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = TlsConnectInfo<TcpConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused(cx, true) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused(cx, false) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused(cx, false) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused(cx, false) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
