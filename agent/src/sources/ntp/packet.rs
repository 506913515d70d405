//! The NTP packet (RFC 5905 §7.3), pure: bytes in, typed packets out, and the client-side checks
//! and arithmetic. No sockets and no clock: times are passed in.
//!
//! The 48-byte header, big-endian:
//!
//! ```text
//!  0               1               2               3
//! |LI | VN  |Mode |    Stratum    |     Poll      |   Precision   |
//! |                         Root Delay  (16.16 s)                 |
//! |                      Root Dispersion (16.16 s)                |
//! |                          Reference ID                         |
//! |                 Reference Timestamp (32.32 s, 8 bytes)        |
//! |                 Origin Timestamp  (T1 as the client sent it)  |
//! |                 Receive Timestamp (T2, server clock)          |
//! |                 Transmit Timestamp (T3, server clock)         |
//! ```
//!
//! A real exchange with chronyd 4.3 (`local stratum 8`, no sources) on loopback, a request
//! asking with poll 6 then chronyd's reply:
//!
//! ```text
//! 23 00 06 20  00000000 00000000 00000000  0000000000000000 0000000000000000 0000000000000000 b73e9b5a80f76621
//! 24 08 06 e6  00000000 00000000 7f7f0101  eeb1edc3ec1a1a50 b73e9b5a80f76621 eeb1edc5e9cac445 eeb1edc5e9cea7d6
//! ```
//!
//! The request is version 4, mode 3 (client), with nothing but a poll and a transmit
//! timestamp; the reply is leap 0, version 4, mode 4 (server), stratum 8, poll 6, precision 2^-26 s, reference id
//! 127.127.1.1 (chrony's local clock), and its origin timestamp is our transmit timestamp,
//! copied byte for byte.
//!
//! # The transmit timestamp is a nonce
//!
//! As chrony does (and draft-ietf-ntp-data-minimization recommends), the request's transmit
//! timestamp is 64 random bits rather than our clock: a server copies it into the reply's
//! origin field unchanged, so it works as a nonce that an off-path attacker cannot guess, and
//! it does not tell the network what our clock says. T1 itself is kept locally
//! ([`offset_delay`] takes it apart from the packet).
//!
//! # Timestamps and eras
//!
//! An NTP timestamp counts seconds since 1900-01-01 in 32 bits, so it wraps every 2^32 s
//! (136 years; era 1 begins 2036-02-07T06:28:16Z). The differences between two timestamps
//! that the offset and delay need are taken in wrapping 64-bit arithmetic (RFC 5905 §6), which
//! is right across an era boundary as long as the clocks are within 68 years of each other.
//! Converting one timestamp to an absolute Unix time needs a pivot, an instant known to be
//! within 68 years of it ([`NtpTimestamp::to_unix_nanos`]).

use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of the NTP header; extension fields and MACs after it are ignored.
pub const PACKET_LEN: usize = 48;
/// The NTP port.
pub const NTP_PORT: u16 = 123;
/// Seconds from 1900-01-01 (the NTP epoch) to 1970-01-01 (the Unix epoch).
pub const NTP_UNIX_OFFSET_SECS: i64 = 2_208_988_800;
/// The NTP version Fleet speaks.
pub const VERSION: u8 = 4;
/// Mode 3: a client request.
pub const MODE_CLIENT: u8 = 3;
/// Mode 4: a server reply.
pub const MODE_SERVER: u8 = 4;
/// Leap indicator 3: the server's clock is not synchronised.
pub const LEAP_UNSYNCHRONISED: u8 = 3;
/// Stratum 16 (and above): unsynchronised.
pub const STRATUM_UNSYNCHRONISED: u8 = 16;

const ERA_SECS: i64 = 1 << 32;
const FRAC_PER_SEC: f64 = 4_294_967_296.0; // 2^32

/// A 64-bit NTP timestamp: 32 bits of seconds since 1900 (mod 2^32), 32 bits of fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The timestamp of `unix_nanos` nanoseconds after the Unix epoch (negative: before it).
    /// The era is dropped, as on the wire.
    pub fn from_unix_nanos(unix_nanos: i128) -> NtpTimestamp {
        let secs = unix_nanos.div_euclid(1_000_000_000);
        let nanos = unix_nanos.rem_euclid(1_000_000_000) as u64;
        let ntp_secs = (secs + i128::from(NTP_UNIX_OFFSET_SECS)).rem_euclid(1 << 32) as u64;
        // Round to the nearest 2^-32 s (stays below 2^32: 999_999_999 ns is 2^32 - 4.3 units).
        let frac = ((nanos << 32) + 500_000_000) / 1_000_000_000;
        NtpTimestamp((ntp_secs << 32).wrapping_add(frac))
    }

    /// The timestamp of a system time (before 1970 works too).
    pub fn from_system_time(t: SystemTime) -> NtpTimestamp {
        let nanos = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        NtpTimestamp::from_unix_nanos(nanos)
    }

    /// Whole seconds since the start of its era.
    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The fraction of a second, in units of 2^-32 s.
    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Nanoseconds since the Unix epoch, in the era that puts it within 2^31 s (68 years) of
    /// `pivot_unix_secs` (usually "now" or the build date).
    pub fn to_unix_nanos(self, pivot_unix_secs: i64) -> i128 {
        let base = i64::from(self.seconds()) - NTP_UNIX_OFFSET_SECS; // era 0
        let era = (pivot_unix_secs - base + ERA_SECS / 2).div_euclid(ERA_SECS);
        let secs = base + era * ERA_SECS;
        let nanos = (u128::from(self.fraction()) * 1_000_000_000 + (1 << 31)) >> 32;
        i128::from(secs) * 1_000_000_000 + nanos as i128
    }

    /// `self - earlier` in seconds, era-safe (RFC 5905 §6): right whenever the two are within
    /// 68 years of each other.
    pub fn secs_since(self, earlier: NtpTimestamp) -> f64 {
        self.0.wrapping_sub(earlier.0) as i64 as f64 / FRAC_PER_SEC
    }
}

/// A 32-bit NTP short (16.16 seconds), as in root delay and root dispersion.
pub fn short_to_secs(v: u32) -> f64 {
    f64::from(v) / 65_536.0
}

/// Seconds as an NTP short, saturating at its range (0 to 65536 s).
pub fn secs_to_short(secs: f64) -> u32 {
    if secs.is_nan() || secs <= 0.0 {
        0
    } else {
        (secs * 65_536.0).round().min(f64::from(u32::MAX)) as u32
    }
}

/// One NTP header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packet {
    /// Leap indicator, 0 to 3.
    pub leap: u8,
    /// Version, 0 to 7.
    pub version: u8,
    /// Mode, 0 to 7.
    pub mode: u8,
    pub stratum: u8,
    /// log2 seconds.
    pub poll: i8,
    /// log2 seconds.
    pub precision: i8,
    /// 16.16 seconds.
    pub root_delay: u32,
    /// 16.16 seconds.
    pub root_dispersion: u32,
    pub reference_id: [u8; 4],
    pub reference: NtpTimestamp,
    pub origin: NtpTimestamp,
    pub receive: NtpTimestamp,
    pub transmit: NtpTimestamp,
}

/// Why bytes are not an acceptable reply to our request. Every one of them means "ignore this
/// datagram and keep waiting": a spoofed or stale datagram must not end the exchange early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("short packet ({0} bytes)")]
    TooShort(usize),
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("not a server reply (mode {0})")]
    NotServer(u8),
    /// The origin timestamp is not the transmit timestamp we sent: a spoofed reply, or a late
    /// reply to an earlier request.
    #[error("origin mismatch")]
    OriginMismatch,
    #[error("zero receive or transmit timestamp")]
    ZeroTimestamp,
}

impl Packet {
    /// Decodes the first [`PACKET_LEN`] bytes; anything after them (extension fields, a MAC) is
    /// ignored.
    ///
    /// # Errors
    /// [`ReplyError::TooShort`] when there are fewer than 48 bytes.
    pub fn decode(b: &[u8]) -> Result<Packet, ReplyError> {
        if b.len() < PACKET_LEN {
            return Err(ReplyError::TooShort(b.len()));
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let ts_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            NtpTimestamp(u64::from_be_bytes(a))
        };
        Ok(Packet {
            leap: b[0] >> 6,
            version: (b[0] >> 3) & 7,
            mode: b[0] & 7,
            stratum: b[1],
            poll: b[2] as i8,
            precision: b[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            reference_id: [b[12], b[13], b[14], b[15]],
            reference: ts_at(16),
            origin: ts_at(24),
            receive: ts_at(32),
            transmit: ts_at(40),
        })
    }

    /// The 48 bytes on the wire.
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = (self.leap & 3) << 6 | (self.version & 7) << 3 | (self.mode & 7);
        b[1] = self.stratum;
        b[2] = self.poll as u8;
        b[3] = self.precision as u8;
        b[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        b[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        b[12..16].copy_from_slice(&self.reference_id);
        b[16..24].copy_from_slice(&self.reference.0.to_be_bytes());
        b[24..32].copy_from_slice(&self.origin.0.to_be_bytes());
        b[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        b[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        b
    }

    /// The kiss code of a kiss-o'-death packet (stratum 0 with an ASCII reference id, RFC 5905
    /// §7.4: `RATE`, `DENY`, `RSTR`, `INIT`, ...), else `None`.
    pub fn kiss_code(&self) -> Option<String> {
        if self.stratum != 0 {
            return None;
        }
        let code = ascii_id(&self.reference_id)?;
        Some(code)
    }

    /// What this reply says about the server's clock.
    pub fn verdict(&self) -> Verdict {
        if let Some(code) = self.kiss_code() {
            return Verdict::KissOfDeath(code);
        }
        if self.leap == LEAP_UNSYNCHRONISED {
            return Verdict::Unsynchronised("leap 3".to_string());
        }
        if self.stratum == 0 || self.stratum >= STRATUM_UNSYNCHRONISED {
            return Verdict::Unsynchronised(format!("stratum {}", self.stratum));
        }
        Verdict::Synced
    }
}

/// What a valid reply says about the server's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Leap 0 to 2 and stratum 1 to 15: its time can be used.
    Synced,
    /// Leap 3, or stratum 0 (without a kiss code) or 16 and above; says which.
    Unsynchronised(String),
    /// Kiss-o'-death with its code: the server refuses to serve us (`DENY`, `RSTR`) or asks us
    /// to slow down (`RATE`). Its timestamps mean nothing.
    KissOfDeath(String),
}

/// The reference id as text: the ASCII code for stratum 0 and 1 (`GPS`, `PPS`, a kiss code),
/// the IPv4 address of the upstream server otherwise (for an IPv6 upstream, that is the first
/// four bytes of the MD5 of its address, shown the same way as `ntpq` and `chronyc` do).
/// A stratum-0/1 id that is not printable ASCII is shown in hex (`0x00000000`).
pub fn render_reference_id(stratum: u8, id: [u8; 4]) -> String {
    if stratum <= 1 {
        match ascii_id(&id) {
            Some(s) => s,
            None => format!("0x{:08x}", u32::from_be_bytes(id)),
        }
    } else {
        Ipv4Addr::from(id).to_string()
    }
}

/// The id as ASCII when it reads as a code: 1 to 4 printable characters (no spaces inside),
/// padded with NULs or spaces.
fn ascii_id(id: &[u8; 4]) -> Option<String> {
    let end = id.iter().position(|&c| c == 0 || c == b' ').unwrap_or(4);
    if end == 0 || id[end..].iter().any(|&c| c != 0 && c != b' ') {
        return None;
    }
    let code = &id[..end];
    if code.iter().all(|c| c.is_ascii_graphic()) {
        Some(String::from_utf8_lossy(code).into_owned())
    } else {
        None
    }
}

/// A client request (version 4, mode 3) whose transmit timestamp is `transmit`, the nonce the
/// reply must echo. Everything else is zero (nothing about our clock goes on the wire), except
/// poll: 4, 2^4 = 16 s, the agent's default period and RFC 5905's MINPOLL.
pub fn client_request(transmit: NtpTimestamp) -> Packet {
    Packet {
        version: VERSION,
        mode: MODE_CLIENT,
        poll: 4,
        transmit,
        ..Packet::default()
    }
}

/// A fresh nonce for [`client_request`]: 64 random bits, never zero (a zero transmit
/// timestamp is invalid on the wire).
pub fn random_transmit() -> NtpTimestamp {
    loop {
        let v: u64 = rand::random();
        if v != 0 {
            return NtpTimestamp(v);
        }
    }
}

/// Checks that `bytes` are the server's reply to the request we sent with transmit timestamp
/// `sent`: at least 48 bytes, version 1 to 4, mode 4, origin equal to `sent`, and non-zero
/// receive and transmit timestamps. The origin is checked before anything the reply claims,
/// kiss-o'-death included, so a spoofed KoD is ignored too.
///
/// # Errors
/// [`ReplyError`]: the datagram must be ignored (keep waiting for the right one).
pub fn check_reply(bytes: &[u8], sent: NtpTimestamp) -> Result<Packet, ReplyError> {
    let p = Packet::decode(bytes)?;
    if !(1..=4).contains(&p.version) {
        return Err(ReplyError::Version(p.version));
    }
    if p.mode != MODE_SERVER {
        return Err(ReplyError::NotServer(p.mode));
    }
    if p.origin != sent {
        return Err(ReplyError::OriginMismatch);
    }
    // A KoD may carry no timestamps worth the name, but its receive/transmit are still set by
    // real servers; only a synced-looking reply needs them to compute anything.
    if p.kiss_code().is_none() && (p.receive.0 == 0 || p.transmit.0 == 0) {
        return Err(ReplyError::ZeroTimestamp);
    }
    Ok(p)
}

/// Clock offset and round-trip delay, in seconds, from the four timestamps (RFC 5905 §8):
/// `t1` our send time, `t2` the server's receive time, `t3` its send time, `t4` our receive
/// time.
///
/// offset = ((t2 - t1) + (t3 - t4)) / 2 (positive: the server is ahead of us),
/// delay = (t4 - t1) - (t3 - t2).
pub fn offset_delay(
    t1: NtpTimestamp,
    t2: NtpTimestamp,
    t3: NtpTimestamp,
    t4: NtpTimestamp,
) -> (f64, f64) {
    let offset = (t2.secs_since(t1) + t3.secs_since(t4)) / 2.0;
    let delay = t4.secs_since(t1) - t3.secs_since(t2);
    (offset, delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // An exchange with chronyd 4.3 (`chronyd -x`, `local stratum 8`) on loopback: a request
    // with poll 6 and precision 0x20, then chronyd's reply as captured.
    const CHRONY_REQUEST: &str = "23000620 00000000 00000000 00000000 0000000000000000 \
        0000000000000000 0000000000000000 b73e9b5a80f76621";
    const CHRONY_REPLY: &str = "240806e6 00000000 00000000 7f7f0101 eeb1edc3ec1a1a50 \
        b73e9b5a80f76621 eeb1edc5e9cac445 eeb1edc5e9cea7d6";

    #[test]
    fn chrony_reply_decodes() {
        let req = hex(CHRONY_REQUEST);
        let sent = Packet::decode(&req).unwrap().transmit;
        let p = check_reply(&hex(CHRONY_REPLY), sent).unwrap();
        assert_eq!((p.leap, p.version, p.mode), (0, 4, 4));
        assert_eq!(p.stratum, 8);
        assert_eq!(p.poll, 6);
        assert_eq!(p.precision, -26);
        assert_eq!((p.root_delay, p.root_dispersion), (0, 0));
        assert_eq!(
            render_reference_id(p.stratum, p.reference_id),
            "127.127.1.1"
        );
        assert_eq!(p.verdict(), Verdict::Synced);
        // 0xeeb1edc5 s after 1900 is 2026-11-25T23:29:09Z.
        let unix = p.receive.to_unix_nanos(1_700_000_000) / 1_000_000_000;
        assert_eq!(unix, 0xeeb1_edc5_i64 as i128 - 2_208_988_800);
        assert_eq!(unix, 1_795_649_349);
        // Re-encoding gives the same bytes.
        assert_eq!(p.encode().to_vec(), hex(CHRONY_REPLY));
    }

    #[test]
    fn request_is_version_4_client_with_the_nonce() {
        let nonce = NtpTimestamp(0xb73e_9b5a_80f7_6621);
        let b = client_request(nonce).encode();
        let want = "23000400 00000000 00000000 00000000 0000000000000000 \
            0000000000000000 0000000000000000 b73e9b5a80f76621";
        assert_eq!(b.to_vec(), hex(want));
        assert_ne!(random_transmit(), random_transmit());
    }

    fn server_reply(sent: NtpTimestamp) -> Packet {
        Packet {
            leap: 0,
            version: 4,
            mode: MODE_SERVER,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: secs_to_short(0.015),
            root_dispersion: secs_to_short(0.0305),
            reference_id: [192, 0, 2, 1],
            reference: NtpTimestamp(1 << 32),
            origin: sent,
            receive: NtpTimestamp(2 << 32),
            transmit: NtpTimestamp(3 << 32),
        }
    }

    #[test]
    fn origin_must_match() {
        let sent = NtpTimestamp(0x1234_5678_9abc_def0);
        let good = server_reply(sent).encode();
        assert!(check_reply(&good, sent).is_ok());
        assert_eq!(
            check_reply(&good, NtpTimestamp(sent.0 + 1)),
            Err(ReplyError::OriginMismatch)
        );
        // A spoofed KoD is an origin mismatch, not a KoD.
        let mut kod = server_reply(NtpTimestamp(7));
        kod.stratum = 0;
        kod.reference_id = *b"DENY";
        assert_eq!(
            check_reply(&kod.encode(), sent),
            Err(ReplyError::OriginMismatch)
        );
    }

    #[test]
    fn malformed_replies_are_rejected() {
        let sent = NtpTimestamp(42);
        let good = server_reply(sent);
        assert_eq!(check_reply(&[0u8; 47], sent), Err(ReplyError::TooShort(47)));
        let mut p = good;
        p.mode = MODE_CLIENT;
        assert_eq!(
            check_reply(&p.encode(), sent),
            Err(ReplyError::NotServer(3))
        );
        let mut p = good;
        p.version = 5;
        assert_eq!(check_reply(&p.encode(), sent), Err(ReplyError::Version(5)));
        let mut p = good;
        p.transmit = NtpTimestamp(0);
        assert_eq!(
            check_reply(&p.encode(), sent),
            Err(ReplyError::ZeroTimestamp)
        );
        // Extension fields after the header are ignored.
        let mut long = good.encode().to_vec();
        long.extend_from_slice(&[0u8; 20]);
        assert!(check_reply(&long, sent).is_ok());
        // Version 3 servers are fine.
        let mut p = good;
        p.version = 3;
        assert!(check_reply(&p.encode(), sent).is_ok());
    }

    #[test]
    fn verdicts() {
        let sent = NtpTimestamp(42);
        let mut p = server_reply(sent);
        assert_eq!(p.verdict(), Verdict::Synced);
        p.leap = 3;
        assert_eq!(p.verdict(), Verdict::Unsynchronised("leap 3".into()));
        p.leap = 1; // leap second insertion announced: still synced
        assert_eq!(p.verdict(), Verdict::Synced);
        p.stratum = 16;
        assert_eq!(p.verdict(), Verdict::Unsynchronised("stratum 16".into()));
        // chronyd when unsynchronised: leap 3, stratum 0, reference id 0.
        p.leap = 3;
        p.stratum = 0;
        p.reference_id = [0; 4];
        assert_eq!(p.kiss_code(), None);
        assert_eq!(p.verdict(), Verdict::Unsynchronised("leap 3".into()));
        p.leap = 0;
        assert_eq!(p.verdict(), Verdict::Unsynchronised("stratum 0".into()));
        for code in ["RATE", "DENY", "RSTR", "INIT"] {
            let mut k = server_reply(sent);
            k.leap = 3;
            k.stratum = 0;
            k.reference_id.copy_from_slice(code.as_bytes());
            assert_eq!(k.verdict(), Verdict::KissOfDeath(code.into()));
            // A KoD with zero timestamps is still a valid KoD.
            k.receive = NtpTimestamp(0);
            k.transmit = NtpTimestamp(0);
            assert_eq!(
                check_reply(&k.encode(), sent).unwrap().verdict(),
                Verdict::KissOfDeath(code.into())
            );
        }
        let mut k = server_reply(sent);
        k.stratum = 0;
        k.reference_id = *b"XY\0\0";
        assert_eq!(k.verdict(), Verdict::KissOfDeath("XY".into()));
    }

    #[test]
    fn reference_ids() {
        assert_eq!(render_reference_id(1, *b"GPS\0"), "GPS");
        assert_eq!(render_reference_id(1, *b"PPS "), "PPS");
        assert_eq!(render_reference_id(1, *b"LOCL"), "LOCL");
        assert_eq!(render_reference_id(1, [1, 2, 3, 4]), "0x01020304");
        assert_eq!(render_reference_id(1, [0; 4]), "0x00000000");
        assert_eq!(render_reference_id(0, *b"RATE"), "RATE");
        assert_eq!(render_reference_id(2, [192, 0, 2, 1]), "192.0.2.1");
        assert_eq!(render_reference_id(15, *b"GPS\0"), "71.80.83.0");
        // A NUL inside the code is not a code.
        assert_eq!(render_reference_id(1, *b"G\0S\0"), "0x47005300");
    }

    #[test]
    fn offset_and_delay_follow_rfc_5905() {
        // Server 250 ms ahead, 10 ms each way, 1 ms inside the server.
        let t1 = NtpTimestamp::from_unix_nanos(1_700_000_000_000_000_000);
        let t2 = NtpTimestamp::from_unix_nanos(1_700_000_000_260_000_000);
        let t3 = NtpTimestamp::from_unix_nanos(1_700_000_000_261_000_000);
        let t4 = NtpTimestamp::from_unix_nanos(1_700_000_000_021_000_000);
        let (offset, delay) = offset_delay(t1, t2, t3, t4);
        assert!((offset - 0.250).abs() < 1e-9, "{offset}");
        assert!((delay - 0.020).abs() < 1e-9, "{delay}");
        // Server behind.
        let (offset, _) = offset_delay(t2, t1, t1, t2);
        assert!((offset + 0.260).abs() < 1e-9, "{offset}");
    }

    #[test]
    fn offsets_across_the_era_boundary() {
        // Era 1 begins 2036-02-07T06:28:16Z = Unix 2_085_978_496.
        let boundary: i128 = 2_085_978_496 * 1_000_000_000;
        let t1 = NtpTimestamp::from_unix_nanos(boundary - 100_000_000);
        let t2 = NtpTimestamp::from_unix_nanos(boundary + 150_000_000);
        let t3 = t2;
        let t4 = NtpTimestamp::from_unix_nanos(boundary - 100_000_000);
        assert!(t2.0 < t1.0, "t2 wrapped into era 1");
        let (offset, delay) = offset_delay(t1, t2, t3, t4);
        assert!((offset - 0.250).abs() < 1e-9, "{offset}");
        assert!(delay.abs() < 1e-9, "{delay}");
    }

    #[test]
    fn unix_conversion_and_eras() {
        // The Unix epoch is NTP second 2_208_988_800 of era 0.
        assert_eq!(NtpTimestamp::from_unix_nanos(0).seconds(), 2_208_988_800);
        assert_eq!(
            NtpTimestamp::from_system_time(UNIX_EPOCH).0,
            2_208_988_800 << 32
        );
        // Half a second is 2^31 fraction units.
        assert_eq!(
            NtpTimestamp::from_unix_nanos(500_000_000).fraction(),
            1 << 31
        );
        // Before 1970.
        let t = NtpTimestamp::from_unix_nanos(-1_000_000_000);
        assert_eq!(t.seconds(), 2_208_988_799);
        assert_eq!(t.to_unix_nanos(0), -1_000_000_000);
        // Round trips in era 0 and era 1, with pivots near them.
        for &ns in &[
            1_700_000_000_123_456_789_i128,
            2_085_978_495_999_999_999,
            2_085_978_496_000_000_000,
            2_200_000_000_000_000_001,
        ] {
            let t = NtpTimestamp::from_unix_nanos(ns);
            let back = t.to_unix_nanos((ns / 1_000_000_000) as i64 - 1_000_000_000);
            assert!((back - ns).abs() <= 1, "{ns} -> {back}");
            let back = t.to_unix_nanos((ns / 1_000_000_000) as i64 + 1_000_000_000);
            assert!((back - ns).abs() <= 1, "{ns} -> {back}");
        }
        // Era 1: second 0 of era 1 is 2036-02-07T06:28:16Z, not 1900.
        assert_eq!(
            NtpTimestamp(0).to_unix_nanos(2_000_000_000),
            2_085_978_496 * 1_000_000_000
        );
        assert_eq!(
            NtpTimestamp(0).to_unix_nanos(-2_000_000_000),
            -2_208_988_800 * 1_000_000_000
        );
        // The last nanosecond of a second stays in that second.
        let t = NtpTimestamp::from_unix_nanos(999_999_999_999);
        assert_eq!(t.seconds(), 2_208_988_800 + 999);
        assert!((t.to_unix_nanos(0) - 999_999_999_999).abs() <= 1);
    }

    #[test]
    fn shorts() {
        assert_eq!(short_to_secs(0x0001_8000), 1.5);
        assert_eq!(secs_to_short(1.5), 0x0001_8000);
        assert_eq!(secs_to_short(-1.0), 0);
        assert_eq!(secs_to_short(1e9), u32::MAX);
    }

    #[test]
    fn decode_never_panics_on_any_length() {
        for len in 0..100 {
            let b = vec![0xffu8; len];
            let _ = check_reply(&b, NtpTimestamp(0));
        }
    }
}
