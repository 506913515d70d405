//! A fake NTP server for tests: it answers client requests with its own clock shifted by a
//! chosen offset, or as unsynchronised, with a kiss-o'-death, or with a spoofed reply. The
//! `fleet-fake-ntp` binary (crate `fleet-tests`) and the agent's own tests both run it; it is
//! compiled only with the `test-util` feature.
//!
//! It is a plain thread on a blocking socket: a test starts it with [`FakeServer::start`] on
//! `127.0.0.1:0` and it stops when dropped.
//!
//! # Control file
//!
//! With [`FakeConfig::control_file`] set, the file is re-read on every request and its
//! `key=value` lines override the settings given at start (a missing file overrides nothing):
//!
//! ```text
//! offset_ms=0
//! leap=3
//! stratum=2
//! kod=RATE          # empty: no kiss-o'-death
//! spoof=first       # never | first | only
//! ```
//!
//! Write it atomically (a temporary file, then `rename`) so a request never reads half of it.

use std::fs;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::packet::{self, NtpTimestamp, Packet, MODE_CLIENT, MODE_SERVER};

/// Whether to send a reply with a wrong origin timestamp (which a client must ignore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spoof {
    /// Answer correctly.
    #[default]
    Never,
    /// First a reply with a wrong origin and an offset one hour off, then the right one.
    First,
    /// Only the wrong-origin reply.
    Only,
}

/// How the fake server answers.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeConfig {
    /// Its clock minus the real clock, in milliseconds.
    pub offset_ms: f64,
    pub stratum: u8,
    pub leap: u8,
    /// Answer every request with this kiss-o'-death code (`RATE`, `DENY`...).
    pub kod: Option<String>,
    pub spoof: Spoof,
    /// Re-read on every request (see the module doc).
    pub control_file: Option<PathBuf>,
}

impl Default for FakeConfig {
    fn default() -> FakeConfig {
        FakeConfig {
            offset_ms: 0.0,
            stratum: 2,
            leap: 0,
            kod: None,
            spoof: Spoof::Never,
            control_file: None,
        }
    }
}

impl FakeConfig {
    /// Applies control-file text (`key=value` lines; `#` starts a comment).
    ///
    /// # Errors
    /// A message naming the line that does not parse; nothing is applied then.
    pub fn apply_control(&mut self, text: &str) -> Result<(), String> {
        let mut next = self.clone();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("not key=value: {line:?}"))?;
            let (k, v) = (k.trim(), v.trim());
            let bad = || format!("bad {k}: {v:?}");
            match k {
                "offset_ms" => next.offset_ms = v.parse().map_err(|_| bad())?,
                "stratum" => next.stratum = v.parse().map_err(|_| bad())?,
                "leap" => {
                    next.leap = v.parse().ok().filter(|l| *l <= 3).ok_or_else(bad)?;
                }
                "kod" => next.kod = parse_kod(v).map_err(|_| bad())?,
                "spoof" => next.spoof = parse_spoof(v).ok_or_else(bad)?,
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        *self = next;
        Ok(())
    }

    /// The settings in force for one request: these, with the control file applied if it can
    /// be read and parsed.
    pub fn current(&self) -> FakeConfig {
        let mut c = self.clone();
        if let Some(path) = &self.control_file {
            if let Ok(text) = fs::read_to_string(path) {
                if let Err(e) = c.apply_control(&text) {
                    eprintln!("fleet-fake-ntp: {}: {e}", path.display());
                }
            }
        }
        c
    }
}

/// A kiss code: 1 to 4 ASCII letters or digits; empty means none.
///
/// # Errors
/// When the code is longer than 4 characters or not alphanumeric ASCII.
pub fn parse_kod(v: &str) -> Result<Option<String>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() > 4 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "kiss code must be 1-4 ASCII letters or digits: {v:?}"
        ));
    }
    Ok(Some(v.to_string()))
}

/// `never`, `first` or `only`.
pub fn parse_spoof(v: &str) -> Option<Spoof> {
    match v {
        "never" => Some(Spoof::Never),
        "first" => Some(Spoof::First),
        "only" => Some(Spoof::Only),
        _ => None,
    }
}

fn shifted(t: SystemTime, offset_ms: f64) -> NtpTimestamp {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    NtpTimestamp::from_unix_nanos(nanos + (offset_ms * 1e6).round() as i128)
}

/// The datagrams that answer `request`, received at `t2` and answered at `t3` (real clock;
/// the offset is added here). None when the request is not an NTP client request.
pub fn answer(cfg: &FakeConfig, request: &[u8], t2: SystemTime, t3: SystemTime) -> Vec<Packet> {
    let Ok(req) = Packet::decode(request) else {
        return Vec::new();
    };
    if req.mode != MODE_CLIENT || !(1..=4).contains(&req.version) {
        return Vec::new();
    }
    let mut p = Packet {
        leap: cfg.leap,
        version: req.version,
        mode: MODE_SERVER,
        stratum: cfg.stratum,
        poll: if req.poll == 0 { 6 } else { req.poll },
        precision: -20,
        root_delay: packet::secs_to_short(0.010),
        root_dispersion: packet::secs_to_short(0.020),
        reference_id: if cfg.stratum <= 1 {
            *b"LOCL"
        } else {
            [192, 0, 2, 1]
        },
        reference: shifted(t2 - Duration::from_secs(30), cfg.offset_ms),
        origin: req.transmit,
        receive: shifted(t2, cfg.offset_ms),
        transmit: shifted(t3, cfg.offset_ms),
    };
    if let Some(code) = &cfg.kod {
        // As ntpd sends it: leap 3, stratum 0, the code as reference id.
        p.leap = 3;
        p.stratum = 0;
        let mut id = [0u8; 4];
        id[..code.len().min(4)].copy_from_slice(&code.as_bytes()[..code.len().min(4)]);
        p.reference_id = id;
    }
    let mut spoofed = p;
    spoofed.origin = NtpTimestamp(req.transmit.0 ^ 0x0000_0001_0000_0000);
    spoofed.receive = shifted(t2, cfg.offset_ms + 3_600_000.0);
    spoofed.transmit = shifted(t3, cfg.offset_ms + 3_600_000.0);
    match cfg.spoof {
        Spoof::Never => vec![p],
        Spoof::First => vec![spoofed, p],
        Spoof::Only => vec![spoofed],
    }
}

/// Answers requests on `socket` until `stop` is set (checked every 50 ms).
///
/// # Errors
/// A socket error other than a read timeout.
pub fn serve(socket: &UdpSocket, config: &FakeConfig, stop: &AtomicBool) -> io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let t2 = SystemTime::now();
        let cfg = config.current();
        for p in answer(&cfg, &buf[..n], t2, SystemTime::now()) {
            // A client that went away is not the server's problem.
            let _ = socket.send_to(&p.encode(), peer);
        }
    }
    Ok(())
}

/// A fake server on its own thread; stops when dropped.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a server on `127.0.0.1:0`.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub fn start(config: FakeConfig) -> io::Result<FakeServer> {
        FakeServer::start_on(UdpSocket::bind("127.0.0.1:0")?, config)
    }

    /// Starts a server on a socket the caller bound.
    ///
    /// # Errors
    /// When the socket's address cannot be read.
    pub fn start_on(socket: UdpSocket, config: FakeConfig) -> io::Result<FakeServer> {
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fake-ntp".into())
            .spawn(move || {
                if let Err(e) = serve(&socket, &config, &flag) {
                    eprintln!("fake NTP server on {addr}: {e}");
                }
            })?;
        Ok(FakeServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its address as `HOST:PORT`, as the probe takes it.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ntp::packet::{check_reply, client_request, offset_delay, Verdict};

    #[test]
    fn answers_with_the_offset_and_the_origin() {
        let cfg = FakeConfig {
            offset_ms: 250.0,
            ..FakeConfig::default()
        };
        let nonce = NtpTimestamp(0xdead_beef_0000_0001);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let out = answer(&cfg, &client_request(nonce).encode(), t, t);
        assert_eq!(out.len(), 1);
        let p = check_reply(&out[0].encode(), nonce).unwrap();
        assert_eq!(p.verdict(), Verdict::Synced);
        let ts = NtpTimestamp::from_system_time(t);
        let (offset, delay) = offset_delay(ts, p.receive, p.transmit, ts);
        assert!((offset - 0.250).abs() < 1e-6, "{offset}");
        assert!(delay.abs() < 1e-6);
    }

    #[test]
    fn spoof_kod_and_control() {
        let nonce = NtpTimestamp(77);
        let t = SystemTime::now();
        let req = client_request(nonce).encode();
        let mut cfg = FakeConfig {
            spoof: Spoof::First,
            ..FakeConfig::default()
        };
        let out = answer(&cfg, &req, t, t);
        assert_eq!(out.len(), 2);
        assert!(check_reply(&out[0].encode(), nonce).is_err());
        assert!(check_reply(&out[1].encode(), nonce).is_ok());
        cfg.apply_control("spoof=never\nkod=RATE\n").unwrap();
        let out = answer(&cfg, &req, t, t);
        assert_eq!(
            check_reply(&out[0].encode(), nonce).unwrap().verdict(),
            Verdict::KissOfDeath("RATE".into())
        );
        cfg.apply_control("kod=\nleap=3\noffset_ms=-12.5 # behind\n")
            .unwrap();
        assert_eq!((cfg.kod.clone(), cfg.leap, cfg.offset_ms), (None, 3, -12.5));
        assert!(cfg.apply_control("leap=4").is_err());
        assert!(cfg.apply_control("offset_ms=x").is_err());
        assert!(cfg.apply_control("colour=blue").is_err());
        assert_eq!(cfg.leap, 3, "a bad file changes nothing");
        // Not a client request: no answer.
        let mut server = client_request(nonce);
        server.mode = MODE_SERVER;
        assert!(answer(&cfg, &server.encode(), t, t).is_empty());
        assert!(answer(&cfg, &[0u8; 10], t, t).is_empty());
    }
}
