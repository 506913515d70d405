//! Pure parsers of the `/proc` files the policy scanner reads of one process (`stat`,
//! `status`, `statm`) and of `/proc/loadavg`: text in, values out, tested on real samples.
//! [`super::scan`] does the reading.

/// `PF_KTHREAD` in the flags of `stat` (field 9): the task is a kernel thread, which no policy
/// applies to (include/linux/sched.h). Not the parent: a usermode helper the kernel starts
/// (`modprobe`, a `core_pattern` pipe, `request-key`) is a child of kthreadd too, and a process
/// like any other once it runs.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of /proc/PID/stat the scanner uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// `PF_KTHREAD` is set in the flags (field 9).
    pub kernel_thread: bool,
    /// Threads in the process (field 20).
    pub threads: u32,
    pub starttime: u64,
    /// Start and end of the code, start of the stack (fields 26 to 28; `1 1 0` without ptrace
    /// access to the process, zeros for one without memory).
    pub layout: [u64; 3],
}

/// Parses /proc/PID/stat. The comm is between the first `(` and the last `)`, since it may
/// itself contain parentheses and spaces.
pub fn parse_stat(bytes: &[u8]) -> Option<Stat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(&bytes[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    // rest starts at field 3 (state): ppid is field 4, flags field 9, num_threads field 20,
    // starttime 22.
    let mut fields = rest.split_ascii_whitespace();
    let ppid = fields.nth(1)?.parse().ok()?;
    let flags: u64 = fields.nth(4)?.parse().ok()?;
    let threads = fields.nth(10)?.parse().ok()?;
    let starttime = fields.nth(1)?.parse().ok()?;
    let mut layout = [0; 3];
    // Fields 23 to 25 (vsize, rss, rsslim) skipped. Absent on old kernels' short lines: zero.
    let mut layout_fields = fields.skip(3);
    for v in &mut layout {
        *v = layout_fields
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
    }
    Some(Stat {
        comm,
        ppid,
        kernel_thread: flags & PF_KTHREAD != 0,
        threads,
        starttime,
        layout,
    })
}

/// The threads in the system and the last pid created: the fourth field's denominator and the
/// fifth field of `/proc/loadavg` (`0.11 0.61 0.90 1/234 12345`).
pub fn parse_loadavg_activity(bytes: &[u8]) -> Option<(u64, u64)> {
    let mut fields = std::str::from_utf8(bytes).ok()?.split_ascii_whitespace();
    let threads = fields.nth(3)?.split_once('/')?.1.parse().ok()?;
    let last_pid = fields.next()?.parse().ok()?;
    Some((threads, last_pid))
}

/// The real uid from /proc/PID/status (`Uid:` then real, effective, saved and fs uids).
pub fn parse_status_uid(bytes: &[u8]) -> Option<u32> {
    parse_status_field(bytes, "Uid:")
}

/// The first number after `key` (`Tgid:`, `Uid:`) in /proc/PID/status.
pub fn parse_status_field(bytes: &[u8], key: &str) -> Option<u32> {
    let text = std::str::from_utf8(bytes).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident pages: the second field of /proc/PID/statm.
pub fn parse_statm_resident(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes)
        .ok()?
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_in_comm() {
        let line = b"4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 54 0 1234567 1000 300 18446744073709551615\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: "we ird) (x)".into(),
                ppid: 1,
                kernel_thread: false,
                threads: 54,
                starttime: 1_234_567,
                layout: [0; 3],
            })
        );
        assert_eq!(parse_stat(b"12 (x) S"), None);
    }

    /// On the real /proc: fields 26 to 28 are this process's code and stack (the stack's start
    /// inside the `[stack]` mapping); a line without them (no ptrace access shows `1 1 0`, an
    /// old short line nothing) parses with what it has.
    #[test]
    fn stat_layout_is_code_and_stack() {
        let stat = parse_stat(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
        let [code, end_code, stack] = stat.layout;
        assert!(0 < code && code < end_code, "{:?}", stat.layout);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps.lines().find(|l| l.ends_with("[stack]")).unwrap();
        let (lo, hi) = line.split_once(' ').unwrap().0.split_once('-').unwrap();
        let range = u64::from_str_radix(lo, 16).unwrap()..u64::from_str_radix(hi, 16).unwrap();
        assert!(range.contains(&stack), "{stack:x} outside {line}");
        let hidden = b"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0 1 1 0 0 0\n";
        assert_eq!(parse_stat(hidden).unwrap().layout, [1, 1, 0]);
    }

    #[test]
    fn loadavg_threads_and_last_pid() {
        assert_eq!(
            parse_loadavg_activity(b"0.11 0.61 0.90 1/234 12345\n"),
            Some((234, 12345))
        );
        assert_eq!(parse_loadavg_activity(b"0.11 0.61 0.90 1 12345\n"), None);
    }

    /// On the real /proc: kthreadd and its kernel threads carry PF_KTHREAD, this process not.
    #[test]
    fn the_kernel_thread_flag_on_the_real_proc() {
        let me = parse_stat(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
        assert!(!me.kernel_thread);
        // In a pid namespace of its own, pid 2 may be anything or nothing.
        let kthreadd = std::fs::read("/proc/2/stat").ok();
        let kthreadd = kthreadd
            .and_then(|b| parse_stat(&b))
            .filter(|s| s.comm == "kthreadd");
        if let Some(kthreadd) = kthreadd {
            assert!(kthreadd.kernel_thread);
            let mut kernel = 0;
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let stat = std::fs::read(entry.path().join("stat")).ok();
                if let Some(stat) = stat.and_then(|b| parse_stat(&b)) {
                    // Every kernel thread is a child of kthreadd.
                    if stat.kernel_thread && stat.comm != "kthreadd" {
                        assert_eq!(stat.ppid, 2, "{}", stat.comm);
                        kernel += 1;
                    }
                }
            }
            assert!(kernel > 0, "kthreadd has kernel threads");
        }
    }

    #[test]
    fn status_and_statm() {
        let status = b"Name:\tsshd\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t1\nUid:\t105\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_status_uid(status), Some(105));
        assert_eq!(
            parse_statm_resident(b"3000 812 500 100 0 400 0\n"),
            Some(812)
        );
    }
}
