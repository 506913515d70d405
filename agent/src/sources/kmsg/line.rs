//! One kernel log line in, its kernel message out: the prefixes of the three input forms.
//!
//! - `/dev/kmsg` records (`Documentation/ABI/testing/dev-kmsg`): `prio,seq,usec,flags[,..];msg`,
//!   then continuation lines that start with a space and carry `KEY=VALUE` dictionary entries.
//!   The message escapes non-printable bytes as `\xNN` (so an embedded newline is `\x0a`):
//!
//!   ```text
//!   4,3000,139201253,-;bash invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=1000
//!    SUBSYSTEM=memory
//!   ```
//!
//!   Only facility 0 (the kernel) is taken: `prio >> 3` is the facility, and records written
//!   by user space (systemd, `echo > /dev/kmsg`) have another one.
//! - `dmesg` text: `[   30.745678] msg` (seconds since boot), `dmesg -T`
//!   (`[Tue Nov 25 22:00:01 2026] msg`, in any locale: `[dim. 19 avril 18:03:30 2026]`),
//!   `dmesg -d` (`[  30.745678 <    0.000012>] msg`), `dmesg -r` (`<4>[   30.745678] msg`),
//!   `dmesg -x` (`kern  :warn  : [   30.745678] msg`), `dmesg --time-format iso`
//!   (`2026-11-25T22:00:01,123456+00:00 msg`), an optional caller id after the time
//!   (`[   30.7] [  T116] msg`), or no prefix at all (`dmesg -t`, console captures).
//! - syslog and journal text: `Nov 25 22:00:01 host kernel: [15847900.740029] msg`
//!   (`/var/log/messages`, `kern.log`; the `[seconds]` is there when printk time was on),
//!   RFC 3339 timestamps as rsyslog writes them (`2026-11-25T22:00:01.123456+00:00 host
//!   kernel: msg`), RFC 5424 (`<4>1 2026-11-25T22:00:01.123Z host kernel - - - msg`), and
//!   `journalctl -k` in its short formats (`short`, `short-precise`, `short-iso`,
//!   `short-iso-precise`, `short-full`, `short-unix`, `short-monotonic`), month names in any
//!   locale (`jun 20 03:23:46 myhost kernel: msg`). Lines from other programs
//!   (`host sshd[12]: ...`) are not kernel lines and give `None`.
//!
//! [`InputFormat::Auto`] decides per line, in that order: a kmsg record, a kmsg continuation
//! line, a syslog/journal line (kernel or not), else dmesg (which takes any line).
//!
//! What a prefix carries is kept as the input says it: the monotonic time in microseconds
//! (kmsg `usec`, dmesg and syslog `[seconds]`) and the wall time as the text it was written in
//! (`Nov 25 22:00:01`, `Tue Nov 25 22:00:01 2026`, `2026-11-25T22:00:01.123456+00:00`): it is
//! not parsed into an instant, because syslog's has no year and none has a reliable zone.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Which form the input is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Decide per line.
    #[default]
    Auto,
    /// `/dev/kmsg` records.
    Kmsg,
    /// `dmesg` output, or bare kernel messages.
    Dmesg,
    /// syslog files and `journalctl` text.
    Syslog,
}

/// An input form name that is not one of `auto|kmsg|dmesg|syslog`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown input format {0:?}: expected auto, kmsg, dmesg or syslog")]
pub struct ParseFormatError(pub String);

impl FromStr for InputFormat {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "kmsg" => Ok(Self::Kmsg),
            "dmesg" => Ok(Self::Dmesg),
            "syslog" | "journal" => Ok(Self::Syslog),
            _ => Err(ParseFormatError(s.to_string())),
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Kmsg => "kmsg",
            Self::Dmesg => "dmesg",
            Self::Syslog => "syslog",
        })
    }
}

/// One kernel message with what its prefix said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The /dev/kmsg sequence number.
    pub seq: Option<u64>,
    /// Microseconds since boot (kmsg `usec`, or a `[seconds]` time).
    pub monotonic_us: Option<u64>,
    /// The wall time as the input wrote it (syslog, journal, `dmesg -T`).
    pub wall_time: Option<String>,
    /// The kernel's text, without the prefix; a leading space (a continuation of a
    /// multi-line printk) is kept.
    pub message: &'a str,
}

impl<'a> LogLine<'a> {
    /// A line with no prefix facts.
    pub fn bare(message: &'a str) -> Self {
        Self {
            seq: None,
            monotonic_us: None,
            wall_time: None,
            message,
        }
    }
}

/// Strips the prefix of one line in `format`. `None` for a line that is not a kernel message
/// of that form: a kmsg continuation line, a record from user space, a syslog line of another
/// program, or (for `Kmsg` and `Syslog`) a line not in that form at all.
pub fn split_line(format: InputFormat, line: &str) -> Option<LogLine<'_>> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    match format {
        InputFormat::Kmsg => split_kmsg(line),
        InputFormat::Dmesg => split_wrapped(line),
        InputFormat::Syslog => match split_syslog(line) {
            SyslogSplit::Kernel(l) => Some(l),
            SyslogSplit::Other | SyslogSplit::NotSyslog => None,
        },
        InputFormat::Auto => {
            let b = line.as_bytes();
            if b.first().is_some_and(u8::is_ascii_digit) && looks_like_kmsg(b) {
                return split_kmsg(line);
            }
            if is_kmsg_continuation(b) {
                return None;
            }
            if split_vmware(line).is_some() {
                return split_wrapped(line);
            }
            match split_syslog(line) {
                SyslogSplit::Kernel(l) => Some(l),
                SyslogSplit::Other => None,
                SyslogSplit::NotSyslog => split_dmesg(line),
            }
        }
    }
}

/// One record as one `read()` of `/dev/kmsg` returns it (continuation lines included). `None`
/// for a malformed record (no `;`, a cut prefix) or one written by user space.
pub fn parse_kmsg_record(record: &[u8]) -> Option<LogLine<'_>> {
    let first = match memchr::memchr(b'\n', record) {
        Some(i) => &record[..i],
        None => record,
    };
    let text = match std::str::from_utf8(first) {
        Ok(s) => s,
        // The kernel escapes every byte that is not printable ASCII, so this only happens to a
        // damaged record: keep what is valid.
        Err(e) => std::str::from_utf8(&first[..e.valid_up_to()]).ok()?,
    };
    split_kmsg(text)
}

/// The sequence number of a /dev/kmsg record of any facility (for a reader's cursor).
pub fn kmsg_record_seq(record: &[u8]) -> Option<u64> {
    let semi = memchr::memchr(b';', record)?;
    let mut fields = record[..semi].split(|&c| c == b',');
    fields.next()?;
    parse_u64(fields.next()?)
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// The seconds since midnight of a wall time as the input wrote it (its first `HH:MM:SS`, or a
/// `short-unix` number of seconds): enough to tell whether two lines of a log are seconds apart.
pub fn wall_seconds_of_day(wall: &str) -> Option<u32> {
    let b = wall.as_bytes();
    if let Some(i) = (0..b.len().saturating_sub(7)).find(|&i| is_clock(&b[i..])) {
        let two = |j: usize| u32::from(b[i + j] - b'0') * 10 + u32::from(b[i + j + 1] - b'0');
        return Some(two(0) * 3600 + two(3) * 60 + two(6));
    }
    parse_seconds(wall).map(|us| ((us / 1_000_000) % 86_400) as u32)
}

/// `digits,digits,digits,` at the start: the shape of a kmsg prefix.
fn looks_like_kmsg(b: &[u8]) -> bool {
    let mut i = 0;
    for _ in 0..3 {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i >= b.len() || b[i] != b',' {
            return false;
        }
        i += 1;
    }
    true
}

/// A kmsg dictionary line: one space, then `KEY=` with an upper-case key.
fn is_kmsg_continuation(b: &[u8]) -> bool {
    if b.len() < 3 || b[0] != b' ' || !b[1].is_ascii_uppercase() {
        return false;
    }
    for &c in &b[2..] {
        if c == b'=' {
            return true;
        }
        if !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_') {
            return false;
        }
    }
    false
}

fn split_kmsg(line: &str) -> Option<LogLine<'_>> {
    let b = line.as_bytes();
    if !looks_like_kmsg(b) {
        return None;
    }
    let semi = memchr::memchr(b';', b)?;
    let mut fields = b[..semi].split(|&c| c == b',');
    let prio = parse_u64(fields.next()?)?;
    let seq = parse_u64(fields.next()?)?;
    let usec = parse_u64(fields.next()?)?;
    if prio >> 3 != 0 {
        return None;
    }
    Some(LogLine {
        seq: Some(seq),
        monotonic_us: Some(usec),
        wall_time: None,
        message: &line[semi + 1..],
    })
}

/// `  123.456789` (optionally followed by ` <delta>`): microseconds.
fn parse_seconds(s: &str) -> Option<u64> {
    let s = s.trim_start();
    let s = match s.find(" <") {
        Some(i) => &s[..i],
        None => s,
    };
    let s = s.trim_end();
    let (secs, frac) = s.split_once('.')?;
    let secs = parse_u64(secs.as_bytes())?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut us: u64 = 0;
    for i in 0..6 {
        us = us * 10 + frac.as_bytes().get(i).map_or(0, |c| u64::from(c - b'0'));
    }
    secs.checked_mul(1_000_000)?.checked_add(us)
}

/// `HH:MM:SS` at the start of `s`.
fn is_clock(s: &[u8]) -> bool {
    s.len() >= 8
        && s[0].is_ascii_digit()
        && s[1].is_ascii_digit()
        && s[2] == b':'
        && s[3].is_ascii_digit()
        && s[4].is_ascii_digit()
        && s[5] == b':'
        && s[6].is_ascii_digit()
        && s[7].is_ascii_digit()
}

/// `YYYY-MM-DD` at the start of `s`.
fn is_date(s: &[u8]) -> bool {
    s.len() >= 10
        && s[..4].iter().all(u8::is_ascii_digit)
        && s[4] == b'-'
        && s[5].is_ascii_digit()
        && s[6].is_ascii_digit()
        && s[7] == b'-'
        && s[8].is_ascii_digit()
        && s[9].is_ascii_digit()
}

/// The `dmesg -T` bracket: a clock and a year, in any locale's words.
fn is_wall_bracket(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 12 || b.len() > 64 || b.contains(&b'[') {
        return false;
    }
    let has_clock = (0..b.len().saturating_sub(7)).any(|i| is_clock(&b[i..]));
    let tail = s.trim_end();
    let year = tail.len() >= 4
        && tail.as_bytes()[tail.len() - 4..]
            .iter()
            .all(u8::is_ascii_digit);
    has_clock && year
}

/// Skips a printk caller id (`[T116]`, `[  T116]`, `[C1]`) and one space after it.
fn strip_caller_id(s: &str) -> &str {
    let Some(rest) = s.strip_prefix('[') else {
        return s;
    };
    let Some(end) = rest.find(']') else {
        return s;
    };
    let inner = rest[..end].trim_start();
    let ok = inner.len() >= 2
        && (inner.starts_with('T') || inner.starts_with('C'))
        && inner[1..].bytes().all(|c| c.is_ascii_digit());
    if !ok {
        return s;
    }
    let after = &rest[end + 1..];
    after.strip_prefix(' ').unwrap_or(after)
}

/// A `[seconds]` printk time at the start of `s` (as in syslog after `kernel:`), with the
/// caller id after it; returns the microseconds and the message.
fn strip_printk_time(s: &str) -> (Option<u64>, &str) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            if let Some(us) = parse_seconds(&rest[..end]) {
                let after = &rest[end + 1..];
                let after = after.strip_prefix(' ').unwrap_or(after);
                return (Some(us), strip_caller_id(after));
            }
        }
    }
    (None, s)
}

/// The facility names of `dmesg -x` and talosctl, and whether one is the kernel's.
const FACILITIES: [&str; 20] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
/// The level names of `dmesg -x` (`warn`) and talosctl (`warning`).
const LEVELS: [&str; 10] = [
    "emerg", "alert", "crit", "err", "error", "warn", "warning", "notice", "info", "debug",
];

/// A `facility:level:` prefix, as `dmesg -x` (`kern  :warn  : `) and talosctl (`kern: warning: `,
/// `kern:    info: `) write it: whether the facility is the kernel's, and the rest.
fn strip_facility(s: &str) -> Option<(bool, &str)> {
    let colon = s.find(':')?;
    let facility = s[..colon].trim_end_matches(' ');
    if !FACILITIES.contains(&facility) {
        return None;
    }
    let rest = s[colon + 1..].trim_start_matches(' ');
    let colon = rest.find(':')?;
    if !LEVELS.contains(&rest[..colon].trim_end_matches(' ')) {
        return None;
    }
    let rest = &rest[colon + 1..];
    Some((facility == "kern", rest.strip_prefix(' ').unwrap_or(rest)))
}

/// `YYYY-MM-DDTHH:MM:SS` at the start of `s`.
fn is_iso(s: &str) -> bool {
    let b = s.as_bytes();
    is_date(b) && b.len() >= 19 && b[10] == b'T' && is_clock(&b[11..])
}

/// A line of VMware's `vmware.log`: its time and the guest kernel's text (`Guest: <4>[ts] msg`),
/// or `Err` for a line of the VMX itself. Both layouts:
/// `2023-12-04T10:49:30.122Z In(05) vcpu-5 - Guest: <4>[39290745.072205] msg` (ESXi 7+) and
/// `2020-06-17T09:24:58.187Z| vcpu-0| I125: Guest: msg` (earlier).
fn split_vmware(line: &str) -> Option<Result<(&str, &str), ()>> {
    if !is_iso(line) {
        return None;
    }
    let (ts, rest) = token(line)?;
    let message = if let Some(ts) = ts.strip_suffix('|') {
        let (thread, rest) = token(rest)?;
        let (level, rest) = token(rest)?;
        let lv = level.as_bytes();
        let level_ok = lv.len() >= 3
            && lv[0].is_ascii_uppercase()
            && level.ends_with(':')
            && lv[1..lv.len() - 1].iter().all(u8::is_ascii_digit);
        if !thread.ends_with('|') || !level_ok {
            return None;
        }
        (ts, rest)
    } else {
        let (level, rest) = token(rest)?;
        let lv = level.as_bytes();
        let level_ok = lv.len() == 6
            && lv[0].is_ascii_uppercase()
            && lv[1].is_ascii_lowercase()
            && lv[2] == b'('
            && lv[3].is_ascii_digit()
            && lv[4].is_ascii_digit()
            && lv[5] == b')';
        if !level_ok {
            return None;
        }
        let (_thread, rest) = token(rest)?;
        let (_op_id, rest) = token(rest)?;
        (ts, rest)
    };
    Some(
        message
            .1
            .strip_prefix("Guest: ")
            .map(|m| (message.0, m))
            .ok_or(()),
    )
}

/// Splits a dmesg line; `None` for a record that says it is not the kernel's (a facility other
/// than `kern` in `dmesg -r`'s `<N>` or `dmesg -x`'s and talosctl's words).
fn split_dmesg(line: &str) -> Option<LogLine<'_>> {
    let mut s = line;
    // dmesg -r / console: <level>, or <facility * 8 + level>
    if let Some(rest) = s.strip_prefix('<') {
        if let Some(end) = rest.find('>') {
            if end > 0 && end <= 3 && rest[..end].bytes().all(|c| c.is_ascii_digit()) {
                if rest[..end].parse::<u32>().ok()? >> 3 != 0 {
                    return None;
                }
                s = &rest[end + 1..];
            }
        }
    }
    // dmesg -x ("kern  :warn  : "), talosctl ("kern: warning: ", after "HOST: " with several
    // nodes).
    let facility = strip_facility(s).or_else(|| {
        let (host, rest) = s.split_once(' ')?;
        host.ends_with(':').then_some(())?;
        strip_facility(rest)
    });
    let mut bracket_colon = false;
    if let Some((kern, rest)) = facility {
        if !kern {
            return None;
        }
        s = rest;
        bracket_colon = true;
    }
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let inner = &rest[..end];
            let mut after = &rest[end + 1..];
            if bracket_colon {
                after = after.strip_prefix(':').unwrap_or(after);
            }
            let after = after.strip_prefix(' ').unwrap_or(after);
            if let Some(us) = parse_seconds(inner) {
                return Some(LogLine {
                    seq: None,
                    monotonic_us: Some(us),
                    wall_time: None,
                    message: strip_caller_id(after),
                });
            }
            if is_wall_bracket(inner) || is_iso(inner) {
                return Some(LogLine {
                    seq: None,
                    monotonic_us: None,
                    wall_time: Some(inner.trim().to_string()),
                    message: strip_caller_id(after),
                });
            }
        }
    }
    // dmesg --time-format iso: "2026-11-25T22:00:01,123456+00:00 msg"
    if is_iso(s) {
        if let Some(sp) = s.find(' ') {
            return Some(LogLine {
                seq: None,
                monotonic_us: None,
                wall_time: Some(s[..sp].to_string()),
                message: &s[sp + 1..],
            });
        }
    }
    Some(LogLine::bare(s))
}

/// A dmesg line, or a vendor's wrapper around one: the wrapper's time is kept where the kernel
/// line has none.
fn split_wrapped(line: &str) -> Option<LogLine<'_>> {
    match split_vmware(line) {
        Some(Ok((ts, inner))) => {
            let mut l = split_dmesg(inner)?;
            l.wall_time.get_or_insert_with(|| ts.to_string());
            Some(l)
        }
        Some(Err(())) => None,
        None => split_dmesg(line),
    }
}

enum SyslogSplit<'a> {
    Kernel(LogLine<'a>),
    /// A syslog line of another program.
    Other,
    NotSyslog,
}

/// Splits `s` at its first space: the token and the rest after the run of spaces.
fn token(s: &str) -> Option<(&str, &str)> {
    let sp = s.find(' ')?;
    Some((&s[..sp], s[sp..].trim_start_matches(' ')))
}

/// The timestamp of a syslog/journal line: `(wall time, monotonic, rest)`.
fn syslog_time(s: &str) -> Option<(Option<&str>, Option<u64>, &str)> {
    let b = s.as_bytes();
    let first = *b.first()?;
    if first == b'[' {
        // journalctl -o short-monotonic: "[  123.456789] host kernel: msg"
        let end = s.find(']')?;
        let us = parse_seconds(&s[1..end])?;
        return Some((None, Some(us), s[end + 1..].trim_start_matches(' ')));
    }
    if is_date(b) {
        // RFC 3339 (rsyslog, journalctl short-iso*): one token.
        if b.len() > 19 && (b[10] == b'T' || b[10] == b' ') && is_clock(&b[11..]) {
            if b[10] == b'T' {
                let (ts, rest) = token(s)?;
                return Some((Some(ts), None, rest));
            }
            // "2026-11-25 22:00:01 host kernel: msg" (date, clock[.frac], optional zone word?)
            let (_, rest) = token(s)?;
            let (clock, rest) = token(rest)?;
            let len = 11 + clock.len();
            return Some((Some(&s[..len]), None, rest));
        }
        return None;
    }
    if first.is_ascii_digit() {
        // journalctl -o short-unix: "1732572001.123456 host kernel: msg"
        let (ts, rest) = token(s)?;
        if ts.len() >= 9 && parse_seconds(ts).is_some() {
            return Some((Some(ts), None, rest));
        }
        return None;
    }
    // "Nov 25 22:00:01[.frac] ", any locale's month word ("jun", "janv."), or journalctl
    // short-full "Tue 2026-11-25 22:00:01 UTC ".
    let (w1, rest) = token(s)?;
    if w1.is_empty() || w1.len() > 12 || w1.bytes().any(|c| c.is_ascii_digit() || c == b':') {
        return None;
    }
    let (w2, rest2) = token(rest)?;
    if is_date(w2.as_bytes()) {
        let (clock, rest3) = token(rest2)?;
        if !is_clock(clock.as_bytes()) {
            return None;
        }
        let (zone, rest4) = token(rest3)?;
        let ok_zone =
            !zone.is_empty() && zone.len() <= 6 && zone.bytes().all(|c| c.is_ascii_alphabetic());
        let (end, rest) = if ok_zone {
            (s.len() - rest4.len(), rest4)
        } else {
            (s.len() - rest3.len(), rest3)
        };
        return Some((Some(s[..end].trim_end()), None, rest));
    }
    if w2.is_empty() || w2.len() > 2 || !w2.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (clock, rest3) = token(rest2)?;
    if !is_clock(clock.as_bytes()) {
        return None;
    }
    let end = s.len() - rest3.len();
    Some((Some(s[..end].trim_end()), None, rest3))
}

fn split_syslog(line: &str) -> SyslogSplit<'_> {
    let mut s = line;
    let mut rfc5424 = false;
    if let Some(rest) = s.strip_prefix('<') {
        if let Some(end) = rest.find('>') {
            if end > 0 && end <= 3 && rest[..end].bytes().all(|c| c.is_ascii_digit()) {
                s = &rest[end + 1..];
                if let Some(r) = s.strip_prefix("1 ") {
                    s = r;
                    rfc5424 = true;
                }
            }
        }
    }
    let Some((wall, mono, rest)) = syslog_time(s) else {
        return SyslogSplit::NotSyslog;
    };
    let Some((host, rest)) = token(rest) else {
        return SyslogSplit::NotSyslog;
    };
    let (tag, msg) = if host == "kernel:" {
        // No host field.
        ("kernel:", rest)
    } else {
        match rest.find(' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (rest, ""),
        }
    };
    let msg = if rfc5424 {
        if tag != "kernel" {
            return SyslogSplit::Other;
        }
        // PROCID MSGID STRUCTURED-DATA, each "-" or a token; SD may be "[...]".
        let mut m = msg;
        for _ in 0..2 {
            match token(m) {
                Some((_, r)) => m = r,
                None => return SyslogSplit::Other,
            }
        }
        if let Some(r) = m.strip_prefix("- ") {
            r
        } else if m.starts_with('[') {
            match m.find("] ") {
                Some(i) => &m[i + 2..],
                None => "",
            }
        } else {
            m.strip_prefix('-').unwrap_or(m)
        }
    } else {
        let is_kernel = tag == "kernel:"
            || (tag.starts_with("kernel[") && tag.ends_with("]:"))
            || tag == "kernel";
        if !is_kernel {
            // "[  1.5] usb 1-1: ..." is a dmesg line, not a short-monotonic journal line of
            // another program: only a `kernel:` tag makes the bracket form syslog.
            if wall.is_none() {
                return SyslogSplit::NotSyslog;
            }
            return if tag.ends_with(':') {
                SyslogSplit::Other
            } else {
                SyslogSplit::NotSyslog
            };
        }
        if tag == "kernel" {
            // "host kernel msg": not a syslog tag after all.
            return SyslogSplit::NotSyslog;
        }
        msg
    };
    let (printk_us, msg) = strip_printk_time(msg);
    SyslogSplit::Kernel(LogLine {
        seq: None,
        monotonic_us: printk_us.or(mono),
        wall_time: wall.map(str::to_string),
        message: msg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(format: InputFormat, line: &str) -> Option<String> {
        split_line(format, line).map(|l| l.message.to_string())
    }

    #[test]
    fn kmsg_records() {
        let l = split_line(
            InputFormat::Kmsg,
            "4,3000,139201253,-;bash invoked oom-killer: x",
        )
        .unwrap();
        assert_eq!(l.seq, Some(3000));
        assert_eq!(l.monotonic_us, Some(139_201_253));
        assert_eq!(l.message, "bash invoked oom-killer: x");
        // Extra prefix fields (caller id in newer kernels) are skipped.
        let l = split_line(InputFormat::Kmsg, "6,5,7,-,caller=T1;hello").unwrap();
        assert_eq!(l.message, "hello");
        // User space writes with another facility.
        assert!(split_line(InputFormat::Kmsg, "14,6,7,-;Killed process 1 (init)").is_none());
        assert!(split_line(InputFormat::Kmsg, " SUBSYSTEM=memory").is_none());
        assert!(split_line(InputFormat::Kmsg, "4,3000,1392").is_none());
        let rec = b"6,3032,139201360,-;memory: usage 1kB, limit 1kB, failcnt 1\n SUBSYSTEM=x\n";
        let l = parse_kmsg_record(rec).unwrap();
        assert_eq!(l.message, "memory: usage 1kB, limit 1kB, failcnt 1");
        assert_eq!(kmsg_record_seq(b"30,17,5,-;systemd[1]: hi"), Some(17));
        assert!(parse_kmsg_record(b"6,30").is_none());
        assert!(parse_kmsg_record(b"").is_none());
    }

    #[test]
    fn vendor_prefixes_are_stripped_like_timestamps() {
        // VMware guest log, ESXi 7+ layout: the guest's kernel text after `Guest: `.
        for format in [InputFormat::Dmesg, InputFormat::Auto] {
            let l = split_line(
                format,
                "2023-12-04T10:49:30.122Z In(05) vcpu-5 - Guest: <4>[39290745.072205] java invoked oom-killer: gfp_mask=0x6200ca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
            )
            .unwrap();
            assert_eq!(l.monotonic_us, Some(39_290_745_072_205));
            assert!(
                l.message.starts_with("java invoked oom-killer"),
                "{format:?}"
            );
            assert_eq!(l.wall_time.as_deref(), Some("2023-12-04T10:49:30.122Z"));
        }
        // The earlier layout (VMware's documentation quotes `vcpu-0| I125: Guest: <0>[...]`).
        let l = split_line(
            InputFormat::Auto,
            "2016-08-30T16:02:43.217-07:00| vcpu-0| I125: Guest: <4>[    1.125782] Out of memory: Killed process 5 (x)",
        )
        .unwrap();
        assert_eq!(l.message, "Out of memory: Killed process 5 (x)");
        // A line of the VMX itself is no kernel line.
        assert!(split_line(
            InputFormat::Dmesg,
            "2023-12-04T10:49:30.122Z In(05) vmx - Out of memory: Killed process 5 (x)"
        )
        .is_none());
        // talosctl dmesg, with several nodes (HOST: first) and with one.
        let l = split_line(
            InputFormat::Auto,
            "172.16.1.110: kern: warning: [2024-07-16T19:11:36.10466434Z]: vcpu5 invoked oom-killer: x",
        )
        .unwrap();
        assert_eq!(l.message, "vcpu5 invoked oom-killer: x");
        assert_eq!(
            l.wall_time.as_deref(),
            Some("2024-07-16T19:11:36.10466434Z")
        );
        assert_eq!(
            msg(
                InputFormat::Dmesg,
                "kern:    info: [2025-05-18T15:40:20.654325542Z]: memory: usage 40964kB, limit 40960kB, failcnt 172"
            )
            .as_deref(),
            Some("memory: usage 40964kB, limit 40960kB, failcnt 172")
        );
        // Another facility's record is not the kernel's, whatever it quotes.
        assert!(msg(
            InputFormat::Dmesg,
            "user: warning: [2026-01-12T20:27:31.913975631Z]: Out of memory: Killed process 5 (x)"
        )
        .is_none());
        assert!(msg(
            InputFormat::Dmesg,
            "daemon:info  : Out of memory: Killed process 5 (x)"
        )
        .is_none());
        assert!(msg(
            InputFormat::Dmesg,
            "<30>Out of memory: Killed process 5 (x)"
        )
        .is_none());
        assert_eq!(
            msg(InputFormat::Dmesg, "<4>Out of memory: Killed process 5 (x)").as_deref(),
            Some("Out of memory: Killed process 5 (x)")
        );
    }

    #[test]
    fn dmesg_prefixes() {
        let l = split_line(InputFormat::Dmesg, "[   30.745678] stress-ng-vm invoked").unwrap();
        assert_eq!(l.monotonic_us, Some(30_745_678));
        assert_eq!(l.message, "stress-ng-vm invoked");
        let l = split_line(InputFormat::Dmesg, "[   30.745770]  active_file:0").unwrap();
        assert_eq!(l.message, " active_file:0");
        let l = split_line(
            InputFormat::Dmesg,
            "[Tue Nov 25 22:00:01 2026] Out of memory",
        )
        .unwrap();
        assert_eq!(l.wall_time.as_deref(), Some("Tue Nov 25 22:00:01 2026"));
        assert_eq!(l.message, "Out of memory");
        let l = split_line(
            InputFormat::Dmesg,
            "[dim. 19 avril 18:03:30 2026] oom-kill:x",
        )
        .unwrap();
        assert_eq!(l.wall_time.as_deref(), Some("dim. 19 avril 18:03:30 2026"));
        let l = split_line(
            InputFormat::Dmesg,
            "<4>[  1.500000 <    0.000012>] [  T116] hi",
        )
        .unwrap();
        assert_eq!(l.monotonic_us, Some(1_500_000));
        assert_eq!(l.message, "hi");
        let l = split_line(InputFormat::Dmesg, "kern  :warn  : [   30.7] hi").unwrap();
        assert_eq!((l.monotonic_us, l.message), (Some(30_700_000), "hi"));
        let l = split_line(InputFormat::Dmesg, "2026-11-25T22:00:01,123456+00:00 hi").unwrap();
        assert_eq!(
            l.wall_time.as_deref(),
            Some("2026-11-25T22:00:01,123456+00:00")
        );
        // No prefix: a task-table row or stack frame stays whole.
        assert_eq!(
            msg(InputFormat::Dmesg, "[  343]     0   343 x").unwrap(),
            "[  343]     0   343 x"
        );
        assert_eq!(
            msg(InputFormat::Dmesg, " [<c0103dfd>] dump_stack").unwrap(),
            " [<c0103dfd>] dump_stack"
        );
    }

    #[test]
    fn syslog_prefixes() {
        let l = split_line(
            InputFormat::Syslog,
            "Jun 29 09:17:43 zlb kernel: [15847900.740029] mysqld invoked oom-killer: x",
        )
        .unwrap();
        assert_eq!(l.wall_time.as_deref(), Some("Jun 29 09:17:43"));
        assert_eq!(l.monotonic_us, Some(15_847_900_740_029));
        assert_eq!(l.message, "mysqld invoked oom-killer: x");
        let l = split_line(
            InputFormat::Syslog,
            "Nov  5 01:00:04 h kernel: Killed process 1",
        )
        .unwrap();
        assert_eq!(l.wall_time.as_deref(), Some("Nov  5 01:00:04"));
        assert_eq!(l.message, "Killed process 1");
        let l = split_line(
            InputFormat::Syslog,
            "Jun 29 09:17:44 zlb kernel: [1.5]  active_file:37",
        )
        .unwrap();
        assert_eq!(l.message, " active_file:37");
        assert!(split_line(
            InputFormat::Syslog,
            "Jul 28 05:06:30 h systemd-logind: Removed session"
        )
        .is_none());
        assert!(split_line(
            InputFormat::Auto,
            "May 20 16:38:46 node03 sudo[10166]: pam_unix(x)"
        )
        .is_none());
        let l = split_line(
            InputFormat::Syslog,
            "2026-11-25T22:00:01.123456+00:00 h kernel: hi",
        )
        .unwrap();
        assert_eq!(
            l.wall_time.as_deref(),
            Some("2026-11-25T22:00:01.123456+00:00")
        );
        let l = split_line(
            InputFormat::Syslog,
            "<4>1 2026-11-25T22:00:01.1Z h kernel - - - hi",
        )
        .unwrap();
        assert_eq!(l.message, "hi");
        let l = split_line(
            InputFormat::Syslog,
            "Tue 2026-11-25 22:00:01 UTC h kernel: hi",
        )
        .unwrap();
        assert_eq!(l.wall_time.as_deref(), Some("Tue 2026-11-25 22:00:01 UTC"));
        assert_eq!(l.message, "hi");
        let l = split_line(InputFormat::Syslog, "1732572001.123456 h kernel: hi").unwrap();
        assert_eq!(l.wall_time.as_deref(), Some("1732572001.123456"));
        let l = split_line(InputFormat::Syslog, "[  123.456789] h kernel: hi").unwrap();
        assert_eq!((l.monotonic_us, l.message), (Some(123_456_789), "hi"));
        let l = split_line(InputFormat::Syslog, "jun 20 03:23:46 myhost kernel: hi").unwrap();
        assert_eq!(l.message, "hi");
        assert!(split_line(InputFormat::Syslog, "[  1.5] Out of memory").is_none());
    }

    #[test]
    fn auto_per_line() {
        assert_eq!(msg(InputFormat::Auto, "6,1,2,-;hi").unwrap(), "hi");
        assert!(split_line(InputFormat::Auto, " DEVICE=+memory:x").is_none());
        assert_eq!(
            msg(InputFormat::Auto, "Nov 25 22:00:01 h kernel: hi").unwrap(),
            "hi"
        );
        assert_eq!(msg(InputFormat::Auto, "[ 1.0] hi").unwrap(), "hi");
        assert_eq!(
            msg(InputFormat::Auto, "130972 pages RAM").unwrap(),
            "130972 pages RAM"
        );
        assert_eq!(
            msg(InputFormat::Auto, " active_file:0").unwrap(),
            " active_file:0"
        );
        assert_eq!(
            "Syslog".parse::<InputFormat>().unwrap(),
            InputFormat::Syslog
        );
        assert!("xml".parse::<InputFormat>().is_err());
    }
}
