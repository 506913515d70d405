//! Time: what the host's NTP servers say of its clock, and what the kernel says.
//!
//! Layout:
//! - [`packet`]: the RFC 5905 packet, the reply checks and the offset/delay arithmetic (pure;
//!   its doc shows a real exchange with chronyd);
//! - [`config`]: which servers the host uses, from chrony's, ntpd's or systemd-timesyncd's
//!   configuration (pure parsers, and [`config::discover`]);
//! - [`kernel`]: `adjtimex` (read-only) and whether chronyd runs, with the caveat about
//!   chrony and the kernel's "unsynchronised" flag;
//! - here: [`NtpProbe`], which measures every server at once, on its own period;
//! - `fake`: a fake NTP server for tests and the `fleet-fake-ntp` binary (hidden from docs;
//!   only with the `test-util` feature, never in the production build).
//!
//! # One measurement
//!
//! For each server (at most [`MAX_SERVERS`]), concurrently: resolve `HOST:PORT` (a pool name
//! gives several addresses: the first is used, the next ones only while an address refuses or
//! cannot be sent to), open a UDP socket on an ephemeral port of the matching family (`0.0.0.0:0` or `[::]:0`), connect
//! it to the server (so the kernel drops datagrams from anyone else and reports an ICMP "port
//! unreachable" as "connection refused"), send one client request whose transmit timestamp is
//! a random nonce, and wait for the reply whose origin timestamp is that nonce. Any other
//! datagram (a spoofed or stale reply, garbage) is ignored and the wait goes on until the
//! timeout. T1 and T4 are read from the wall clock at send and at receive; T4 is T1 plus the
//! monotonic time elapsed, so a clock step during the exchange does not distort it.
//!
//! Resolution and the exchange each get the timeout ([`DEFAULT_TIMEOUT`], 1 s), so a
//! measurement finishes within twice the timeout. Nothing in it panics: every failure ends up
//! in the server's `error` (`"timeout"`, `"origin mismatch"` when only mismatching replies
//! came, `"connection refused"`, `"kiss-o'-death RATE"`, `"unsynchronised (leap 3)"`,
//! `"cannot resolve: ..."`).
//!
//! # A server's verdict
//!
//! `synced` is true when a valid reply came with leap 0 to 2 and stratum 1 to 15. An
//! unsynchronised server still reports what it said (offset, stratum, leap...) with `synced`
//! false and the reason in `error`; a kiss-o'-death reports only its code, as its timestamps
//! mean nothing. This, not the kernel flag, is what says whether the host's time is right (see
//! [`kernel`] on chrony).
//!
//! # Scheduling
//!
//! The agent ticks every second; [`NtpProbe::due`] says when a measurement is due (every
//! [`DEFAULT_PERIOD`], 16 s: RFC 5905's shortest poll interval, MINPOLL, so a server is asked
//! no more often than the protocol allows any client), and [`NtpProbe::start`] returns the measurement as a
//! `Send + 'static` future to spawn or to poll in a `select!`, so the agent's loop never waits
//! on the network.

pub mod config;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod fake;
pub mod kernel;
pub mod packet;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use fleet_proto::v1::{ClockStatus, NtpServerStatus};
use tokio::net::UdpSocket;

use kernel::ChronydWatch;
use packet::{NtpTimestamp, ReplyError, Verdict};

/// How long to wait for a reply (and, separately, for name resolution).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the servers are measured.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(16);
/// Most servers measured; the rest of a longer list is left out (a host has a handful).
pub const MAX_SERVERS: usize = 16;
/// How early, before its period has fully elapsed, a measurement still counts as due: the
/// agent asks on its 1 s tick and the measurement records its start a little after the tick,
/// so without this slack a 16 s period would stretch to 17 s.
pub const DUE_SLACK: Duration = Duration::from_millis(250);
/// Receive buffer: the header plus room for extension fields, which are ignored.
const RECV_BUF: usize = 1024;

/// Why one server gave no usable measurement.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("bad server address {0:?} (want HOST:PORT)")]
    BadAddress(String),
    #[error("cannot resolve: {0}")]
    Resolve(io::Error),
    #[error("cannot resolve: timeout")]
    ResolveTimeout,
    #[error("cannot resolve: no address")]
    NoAddress,
    #[error("cannot send: {0}")]
    Send(io::Error),
    #[error("connection refused")]
    Refused,
    #[error("cannot receive: {0}")]
    Recv(io::Error),
    /// No reply within the timeout.
    #[error("timeout")]
    Timeout,
    /// Replies came, but none with our origin timestamp (spoofed or stale).
    #[error("origin mismatch")]
    OriginMismatch,
    /// Only datagrams that are not NTP server replies came.
    #[error("invalid reply: {0}")]
    Invalid(ReplyError),
}

/// A valid reply and the times around it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub reply: packet::Packet,
    /// Our clock when the request left.
    pub t1: NtpTimestamp,
    /// Our clock when the reply arrived.
    pub t4: NtpTimestamp,
}

/// Measures the host's NTP servers and the kernel clock; see the module doc.
#[derive(Debug)]
pub struct NtpProbe {
    servers: Vec<String>,
    timeout: Duration,
    period: Duration,
    chronyd: ChronydWatch,
    /// When the last measurement started; `None` before the first, which is due at once.
    last_start: Option<Instant>,
}

impl NtpProbe {
    /// A probe of `servers` (`HOST:PORT`; a missing port means 123; duplicates are dropped and
    /// the list is cut at [`MAX_SERVERS`]), waiting `timeout` for each reply, looking for
    /// chronyd under `proc_root`. The period is [`DEFAULT_PERIOD`].
    pub fn new(servers: Vec<String>, timeout: Duration, proc_root: &Path) -> NtpProbe {
        let mut list: Vec<String> = Vec::new();
        for s in servers {
            if list.len() == MAX_SERVERS {
                tracing::warn!(
                    max = MAX_SERVERS,
                    "too many NTP servers; the rest are not measured"
                );
                break;
            }
            if !list.contains(&s) {
                list.push(s);
            }
        }
        NtpProbe {
            servers: list,
            timeout,
            period: DEFAULT_PERIOD,
            chronyd: ChronydWatch::new(proc_root),
            last_start: None,
        }
    }

    /// Measures every `period` instead (at least 1 s).
    pub fn with_period(mut self, period: Duration) -> NtpProbe {
        self.period = period.max(Duration::from_secs(1));
        self
    }

    /// The servers measured, as given.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The period between measurements.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Whether a measurement is due at `now` (always before the first).
    pub fn due(&self, now: Instant) -> bool {
        match self.last_start {
            None => true,
            Some(t) => now.saturating_duration_since(t) + DUE_SLACK >= self.period,
        }
    }

    /// Starts a measurement: reads the kernel clock and looks for chronyd now (cheap, no
    /// waiting), records the start for [`due`](Self::due), and returns the network part as a
    /// future that owns everything it needs, to spawn or poll. It never panics and resolves
    /// within twice the timeout.
    pub fn start(&mut self) -> impl Future<Output = ClockStatus> + Send + 'static {
        self.last_start = Some(Instant::now());
        let chronyd = self.chronyd.running();
        let kernel = match kernel::read_timex() {
            Ok(r) => Some(kernel::kernel_clock(r, chronyd)),
            Err(e) => {
                tracing::debug!(error = %e, "adjtimex failed");
                None
            }
        };
        let queries: Vec<_> = self
            .servers
            .iter()
            .map(|s| Box::pin(query(s.clone(), self.timeout)))
            .collect();
        async move {
            ClockStatus {
                servers: join_all(queries).await,
                kernel,
            }
        }
    }

    /// Measures now: [`start`](Self::start), awaited.
    pub async fn measure(&mut self) -> ClockStatus {
        self.start().await
    }
}

/// Polls every future to completion; their outputs in order.
async fn join_all<F: Future + Unpin>(futures: Vec<F>) -> Vec<F::Output> {
    let mut slots: Vec<(F, Option<F::Output>)> = futures.into_iter().map(|f| (f, None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in slots.iter_mut().filter(|(_, out)| out.is_none()) {
            match Pin::new(f).poll(cx) {
                Poll::Ready(v) => *out = Some(v),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, out)| out).collect()
}

/// Measures one server (`HOST:PORT`): its status, with the failure in `error`.
pub async fn query(server: String, timeout: Duration) -> NtpServerStatus {
    let result = exchange(&server, timeout).await;
    status(server, result)
}

/// The wire status of one server from the outcome of its exchange.
pub fn status(server: String, result: Result<Exchange, QueryError>) -> NtpServerStatus {
    let mut st = NtpServerStatus {
        server,
        ..NtpServerStatus::default()
    };
    let x = match result {
        Ok(x) => x,
        Err(e) => {
            st.error = e.to_string();
            return st;
        }
    };
    let p = x.reply;
    st.reachable = true;
    st.stratum = u32::from(p.stratum);
    st.leap = u32::from(p.leap);
    st.reference_id = packet::render_reference_id(p.stratum, p.reference_id);
    st.root_delay_ms = packet::short_to_secs(p.root_delay) * 1000.0;
    st.root_dispersion_ms = packet::short_to_secs(p.root_dispersion) * 1000.0;
    st.precision = i32::from(p.precision);
    st.poll = i32::from(p.poll);
    let verdict = p.verdict();
    if !matches!(verdict, Verdict::KissOfDeath(_)) {
        let (offset, delay) = packet::offset_delay(x.t1, p.receive, p.transmit, x.t4);
        st.offset_ms = offset * 1000.0;
        st.delay_ms = delay * 1000.0;
    }
    match verdict {
        Verdict::Synced => st.synced = true,
        Verdict::Unsynchronised(why) => st.error = format!("unsynchronised ({why})"),
        Verdict::KissOfDeath(code) => st.error = format!("kiss-o'-death {code}"),
    }
    st
}

/// Resolves `server` within `timeout`: its addresses, in the resolver's order.
async fn resolve(server: &str, timeout: Duration) -> Result<Vec<SocketAddr>, QueryError> {
    let (host, port) =
        config::split_host_port(server).ok_or_else(|| QueryError::BadAddress(server.into()))?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs = tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .map_err(|_| QueryError::ResolveTimeout)?
        .map_err(QueryError::Resolve)?;
    let addrs: Vec<SocketAddr> = addrs.collect();
    if addrs.is_empty() {
        return Err(QueryError::NoAddress);
    }
    Ok(addrs)
}

/// A UDP socket on an ephemeral port, connected to `addr`.
async fn connect(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    Ok(sock)
}

/// One request/reply exchange with `server`; see the module doc. When it resolves to several
/// addresses, the next one is tried while an address cannot be sent to or refuses (`localhost`
/// giving `::1` first, where nothing listens), within the same timeout.
///
/// # Errors
/// [`QueryError`] when no valid reply came.
pub async fn exchange(server: &str, timeout: Duration) -> Result<Exchange, QueryError> {
    let addrs = resolve(server, timeout).await?;
    let deadline = Instant::now() + timeout;
    let mut last = QueryError::NoAddress;
    for addr in addrs {
        match exchange_with(server, addr, deadline).await {
            Err(e @ (QueryError::Refused | QueryError::Send(_))) => last = e,
            other => return other,
        }
    }
    Err(last)
}

/// One request to `addr` and the wait for its reply until `deadline`.
async fn exchange_with(
    server: &str,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<Exchange, QueryError> {
    let refused_or = |e: io::Error, other: fn(io::Error) -> QueryError| {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            QueryError::Refused
        } else {
            other(e)
        }
    };
    let sock = connect(addr).await.map_err(QueryError::Send)?;
    let nonce = packet::random_transmit();
    let request = packet::client_request(nonce).encode();
    let t1_wall = SystemTime::now();
    let t1_mono = Instant::now();
    sock.send(&request)
        .await
        .map_err(|e| refused_or(e, QueryError::Send))?;
    let deadline = tokio::time::Instant::from_std(deadline);
    let mut buf = [0u8; RECV_BUF];
    let mut ignored: Option<ReplyError> = None;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => {
                return Err(match ignored {
                    None => QueryError::Timeout,
                    Some(ReplyError::OriginMismatch) => QueryError::OriginMismatch,
                    Some(e) => QueryError::Invalid(e),
                })
            }
            Ok(Err(e)) => return Err(refused_or(e, QueryError::Recv)),
            Ok(Ok(n)) => n,
        };
        let t4_wall = t1_wall + t1_mono.elapsed();
        match packet::check_reply(&buf[..n], nonce) {
            Ok(reply) => {
                return Ok(Exchange {
                    reply,
                    t1: NtpTimestamp::from_system_time(t1_wall),
                    t4: NtpTimestamp::from_system_time(t4_wall),
                })
            }
            Err(e) => {
                tracing::debug!(server, %addr, error = %e, "NTP datagram ignored");
                // An origin mismatch is the more telling reason when both kinds came.
                if ignored != Some(ReplyError::OriginMismatch) {
                    ignored = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet::{Packet, MODE_SERVER};

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn probe_and_its_future_are_send() {
        let mut p = NtpProbe::new(vec![], DEFAULT_TIMEOUT, Path::new("/proc"));
        assert_send(&p);
        let f = p.start();
        assert_send(&f);
    }

    #[test]
    fn due_on_the_period() {
        let mut p = NtpProbe::new(
            vec!["a:123".into(), "a:123".into()],
            DEFAULT_TIMEOUT,
            Path::new("/nonexistent"),
        )
        .with_period(Duration::from_secs(4));
        assert_eq!(p.servers(), ["a:123"]);
        let t0 = Instant::now();
        assert!(p.due(t0));
        p.last_start = Some(t0);
        assert!(!p.due(t0 + Duration::from_secs(3)));
        // The next tick, a little before the full period, counts.
        assert!(p.due(t0 + Duration::from_millis(3_900)));
        assert!(p.due(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn too_many_servers_are_cut() {
        let servers = (0..40).map(|i| format!("10.0.0.{i}:123")).collect();
        let p = NtpProbe::new(servers, DEFAULT_TIMEOUT, Path::new("/proc"));
        assert_eq!(p.servers().len(), MAX_SERVERS);
    }

    fn reply(stratum: u8, leap: u8, id: [u8; 4]) -> Exchange {
        let t1 = NtpTimestamp::from_unix_nanos(1_700_000_000_000_000_000);
        Exchange {
            reply: Packet {
                leap,
                version: 4,
                mode: MODE_SERVER,
                stratum,
                poll: 6,
                precision: -20,
                root_delay: 0x0000_8000,
                root_dispersion: 0x0001_0000,
                reference_id: id,
                reference: t1,
                origin: NtpTimestamp(5),
                receive: NtpTimestamp::from_unix_nanos(1_700_000_000_255_000_000),
                transmit: NtpTimestamp::from_unix_nanos(1_700_000_000_255_000_000),
            },
            t1,
            t4: NtpTimestamp::from_unix_nanos(1_700_000_000_010_000_000),
        }
    }

    #[test]
    fn statuses() {
        let st = status("s:123".into(), Ok(reply(2, 0, [10, 0, 0, 1])));
        assert!(st.reachable && st.synced, "{st:?}");
        assert!((st.offset_ms - 250.0).abs() < 1e-6, "{}", st.offset_ms);
        assert!((st.delay_ms - 10.0).abs() < 1e-6, "{}", st.delay_ms);
        assert_eq!(st.reference_id, "10.0.0.1");
        assert_eq!((st.root_delay_ms, st.root_dispersion_ms), (500.0, 1000.0));
        assert_eq!((st.precision, st.poll, st.stratum, st.leap), (-20, 6, 2, 0));
        assert_eq!(st.error, "");

        let st = status("s:123".into(), Ok(reply(2, 3, [10, 0, 0, 1])));
        assert!(st.reachable && !st.synced);
        assert_eq!(st.error, "unsynchronised (leap 3)");
        assert!((st.offset_ms - 250.0).abs() < 1e-6);

        let st = status("s:123".into(), Ok(reply(0, 3, *b"RATE")));
        assert!(st.reachable && !st.synced);
        assert_eq!(st.error, "kiss-o'-death RATE");
        assert_eq!((st.offset_ms, st.delay_ms), (0.0, 0.0));
        assert_eq!(st.reference_id, "RATE");

        let st = status("s:123".into(), Err(QueryError::Timeout));
        assert!(!st.reachable && !st.synced);
        assert_eq!(st.error, "timeout");
        assert_eq!(st.server, "s:123");
    }

    #[tokio::test]
    async fn bad_addresses_are_reported() {
        let st = query("host:notaport".into(), DEFAULT_TIMEOUT).await;
        assert!(!st.reachable);
        assert!(st.error.starts_with("bad server address"), "{}", st.error);
        let st = query("nonexistent.invalid:123".into(), DEFAULT_TIMEOUT).await;
        assert!(!st.reachable);
        assert!(st.error.starts_with("cannot resolve"), "{}", st.error);
    }
}
