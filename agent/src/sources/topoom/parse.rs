//! Pure parsers for the per-process files top-oom reads. Each takes the file's bytes as read and
//! returns `None` on anything it does not recognise: the scanner then skips that process instead
//! of guessing.
//!
//! Real examples (kernel 6.18, a `sleep 30` whose `oom_score_adj` was set to 1000):
//!
//! ```text
//! /proc/4242/oom_score       "1332\n"
//! /proc/4242/oom_score_adj   "1000\n"
//! /proc/4242/statm           "1403 420 378 4 0 92 0\n"     (pages: size resident shared text lib data dt)
//! /proc/4242/comm            "sleep\n"
//! /proc/4242/cmdline         "sleep\x0030\x00"               (NUL after every argument)
//! /proc/4242/status          "Name:\tsleep\n…Uid:\t0\t0\t0\t0\n…"  (real, effective, saved, fs)
//! ```
//!
//! A kernel thread (or a zombie) has no address space: its `statm` is `"0 0 0 0 0 0 0\n"` and its
//! `cmdline` is empty; [`Statm::has_mm`] is how the scanner tells.

use crate::sources::procfs::parse::{fields, lines, u64_field};

/// The two `statm` fields top-oom needs, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statm {
    /// Total program size (`VmSize`); 0 for a task without an address space.
    pub size: u64,
    /// Resident pages (`VmRSS`: anon + file + shmem), what `ps` shows as RSS.
    pub resident: u64,
}

impl Statm {
    /// Whether the task has an address space. Kernel threads and zombies do not; they cannot be
    /// chosen by the OOM killer (the kernel prints `oom_score` 0 for them).
    pub fn has_mm(&self) -> bool {
        self.size != 0
    }
}

/// The content of a one-number file, without the trailing newline or blanks.
fn single_field(buf: &[u8]) -> Option<&[u8]> {
    let mut it = fields(buf);
    let f = it.next()?;
    match it.next() {
        None => Some(f),
        Some(_) => None,
    }
}

/// `/proc/PID/oom_score`: `"666\n"`, a non-negative number; the OOM killer picks the highest.
pub fn oom_score(buf: &[u8]) -> Option<i64> {
    i64::try_from(u64_field(single_field(buf)?)?).ok()
}

/// `/proc/PID/oom_score_adj`: `"-1000\n"` to `"1000\n"`. Values outside that range are garbage.
pub fn oom_score_adj(buf: &[u8]) -> Option<i64> {
    let f = single_field(buf)?;
    let (neg, digits) = match f.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, f),
    };
    let v = i64::try_from(u64_field(digits)?).ok()?;
    let v = if neg { -v } else { v };
    (-1000..=1000).contains(&v).then_some(v)
}

/// `/proc/PID/statm`: seven page counts; the first two are needed, the rest is ignored.
pub fn statm(buf: &[u8]) -> Option<Statm> {
    let mut it = fields(buf);
    let size = u64_field(it.next()?)?;
    let resident = u64_field(it.next()?)?;
    Some(Statm { size, resident })
}

/// The real uid: the first of the four numbers on the `Uid:` line of `/proc/PID/status`.
pub fn status_real_uid(buf: &[u8]) -> Option<u32> {
    let rest = lines(buf).find_map(|l| l.strip_prefix(b"Uid:"))?;
    u32::try_from(u64_field(fields(rest).next()?)?).ok()
}

/// `/proc/PID/comm` into `dst`: the name without its newline, made printable (see
/// [`push_printable`]). At most `cap` bytes.
pub fn comm_into(dst: &mut String, buf: &[u8], cap: usize) {
    dst.clear();
    let name = buf.strip_suffix(b"\n").unwrap_or(buf);
    push_printable(dst, name, cap);
}

/// `/proc/PID/cmdline` into `dst` as `ps -o args` shows it: the NUL-separated arguments joined
/// with single spaces, made printable, cut to at most `cap` bytes on a character boundary.
/// Trailing NULs (the terminator, and the padding left by programs that rewrite their title
/// in place) are dropped. `dst` is left empty when there is nothing to show; the scanner then
/// shows `[comm]`, as `ps` does.
pub fn cmdline_into(dst: &mut String, buf: &[u8], cap: usize) {
    dst.clear();
    let end = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    push_printable(dst, &buf[..end], cap);
    // An argument that ends in blanks, cut at the cap, must not leave a trailing space.
    let trimmed = dst.trim_end_matches(' ').len();
    dst.truncate(trimmed);
}

/// Appends `src` to `dst` while `dst` stays within `cap` bytes, the way `ps` prints names and
/// arguments: NUL becomes a space (the argument separator), other control characters (tab,
/// newline, escape sequences) become `?`, and bytes that are not UTF-8 become U+FFFD. A
/// character that would cross `cap` is left out with everything after it, so the result is
/// always valid UTF-8 and never longer than `cap`.
pub fn push_printable(dst: &mut String, src: &[u8], cap: usize) {
    // One allocation for the usual case (each input byte gives at least one output byte).
    dst.reserve(src.len().min(cap.saturating_sub(dst.len())));
    for chunk in src.utf8_chunks() {
        for c in chunk.valid().chars() {
            let c = match c {
                '\0' => ' ',
                c if c.is_control() => '?',
                c => c,
            };
            if dst.len() + c.len_utf8() > cap {
                return;
            }
            dst.push(c);
        }
        if !chunk.invalid().is_empty() {
            if dst.len() + char::REPLACEMENT_CHARACTER.len_utf8() > cap {
                return;
            }
            dst.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(oom_score(b"666\n"), Some(666));
        assert_eq!(oom_score(b"0"), Some(0));
        assert_eq!(oom_score(b"  12 \n"), Some(12));
        assert_eq!(oom_score(b""), None);
        assert_eq!(oom_score(b"\n"), None);
        assert_eq!(oom_score(b"-1\n"), None);
        assert_eq!(oom_score(b"12 13\n"), None);
        assert_eq!(oom_score(b"1x\n"), None);
        assert_eq!(oom_score(b"99999999999999999999999\n"), None);
        assert_eq!(oom_score(b"18446744073709551615\n"), None, "beyond i64");

        assert_eq!(oom_score_adj(b"0\n"), Some(0));
        assert_eq!(oom_score_adj(b"-1000\n"), Some(-1000));
        assert_eq!(oom_score_adj(b"1000\n"), Some(1000));
        assert_eq!(oom_score_adj(b"+5\n"), Some(5));
        assert_eq!(oom_score_adj(b"1001\n"), None);
        assert_eq!(oom_score_adj(b"-\n"), None);
        assert_eq!(oom_score_adj(b"--1\n"), None);
        assert_eq!(oom_score_adj(b"\xff\n"), None);
    }

    #[test]
    fn statm_fields() {
        assert_eq!(
            statm(b"1403 420 378 4 0 92 0\n"),
            Some(Statm {
                size: 1403,
                resident: 420
            })
        );
        let kthread = statm(b"0 0 0 0 0 0 0\n").unwrap();
        assert!(!kthread.has_mm());
        assert_eq!(statm(b"1403\n"), None);
        assert_eq!(statm(b"a b c\n"), None);
        assert_eq!(statm(b""), None);
    }

    #[test]
    fn status_uid() {
        let status = b"Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
            Ngid:\t0\nPid:\t4242\nPPid:\t1\nTracerPid:\t0\nUid:\t1000\t0\t0\t0\n\
            Gid:\t100\t100\t100\t100\nVmRSS:\t    1680 kB\n";
        assert_eq!(status_real_uid(status), Some(1000));
        assert_eq!(
            status_real_uid(b"Uid:\t65534\t65534\t65534\t65534\n"),
            Some(65534)
        );
        assert_eq!(status_real_uid(b"Name:\tx\nGid:\t0\t0\t0\t0\n"), None);
        assert_eq!(status_real_uid(b"Uid:\n"), None);
        assert_eq!(status_real_uid(b"Uid:\t-1\t0\n"), None);
        assert_eq!(status_real_uid(b"Uid:\t4294967296\t0\n"), None);
        assert_eq!(status_real_uid(b"\xff\xfe\x00Uid:"), None);
    }

    #[test]
    fn comm() {
        let mut s = String::new();
        comm_into(&mut s, b"sleep\n", 64);
        assert_eq!(s, "sleep");
        comm_into(&mut s, b"kworker/0:1-events\n", 64);
        assert_eq!(s, "kworker/0:1-events");
        comm_into(&mut s, b"a\tb\x1b[31m\n", 64);
        assert_eq!(s, "a?b?[31m");
        comm_into(&mut s, b"caf\xc3\xa9\xff\n", 64);
        assert_eq!(s, "caf\u{e9}\u{fffd}");
        comm_into(&mut s, b"", 64);
        assert_eq!(s, "");
    }

    #[test]
    fn cmdline_joined_and_capped() {
        let mut s = String::new();
        cmdline_into(&mut s, b"sleep\x0030\x00", 256);
        assert_eq!(s, "sleep 30");
        cmdline_into(&mut s, b"/usr/bin/python3\x00-c\x00print(1)\x00", 256);
        assert_eq!(s, "/usr/bin/python3 -c print(1)");
        // setproctitle padding and a missing final NUL.
        cmdline_into(&mut s, b"nginx: worker process\x00\x00\x00\x00", 256);
        assert_eq!(s, "nginx: worker process");
        cmdline_into(&mut s, b"no-terminator", 256);
        assert_eq!(s, "no-terminator");
        // An empty argument in the middle shows as two spaces, like ps.
        cmdline_into(&mut s, b"a\x00\x00b\x00", 256);
        assert_eq!(s, "a  b");
        // Nothing to show.
        cmdline_into(&mut s, b"", 256);
        assert_eq!(s, "");
        cmdline_into(&mut s, b"\x00\x00", 256);
        assert_eq!(s, "");
        // Newlines inside an argument.
        cmdline_into(&mut s, b"sh\x00-c\x00echo a\necho b\x00", 256);
        assert_eq!(s, "sh -c echo a?echo b");

        // The cap, on ASCII.
        let long: Vec<u8> = std::iter::repeat_n(b'x', 1000).collect();
        cmdline_into(&mut s, &long, 256);
        assert_eq!(s.len(), 256);
        // The cap never splits a character: 85 three-byte characters are 255 bytes; the 86th
        // would cross 256.
        let euro = "\u{20ac}".repeat(100);
        cmdline_into(&mut s, euro.as_bytes(), 256);
        assert_eq!(s.len(), 255);
        assert_eq!(s, "\u{20ac}".repeat(85));
        // A cut that lands on a separator leaves no trailing space.
        let mut v = vec![b'y'; 255];
        v.extend_from_slice(b"\x00z\x00");
        cmdline_into(&mut s, &v, 256);
        assert_eq!(s, "y".repeat(255));
        // Invalid UTF-8 is replaced, never rejected.
        cmdline_into(&mut s, b"\xff\xfe\x00arg\x00", 256);
        assert_eq!(s, "\u{fffd}\u{fffd} arg");
    }

    #[test]
    fn garbage_never_panics() {
        // Every prefix of a few real and garbled contents, through every parser.
        let inputs: [&[u8]; 6] = [
            b"1403 420 378 4 0 92 0\n",
            b"Uid:\t1000\t0\t0\t0\n",
            b"\xf0\x9f\x92\xa9\x00\xff\x00\x01\x02",
            b"-1000\n",
            b"\n\n\n\t\t  \x00",
            b"\xe2\x82",
        ];
        let mut s = String::new();
        for input in inputs {
            for end in 0..=input.len() {
                let b = &input[..end];
                let _ = (oom_score(b), oom_score_adj(b), statm(b), status_real_uid(b));
                for cap in [0, 1, 2, 3, 4, 256] {
                    cmdline_into(&mut s, b, cap);
                    assert!(s.len() <= cap);
                    comm_into(&mut s, b, cap);
                    assert!(s.len() <= cap);
                }
            }
        }
    }
}
