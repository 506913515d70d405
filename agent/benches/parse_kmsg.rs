//! `fleet-agent parse-kmsg` throughput over a large syslog file.
//!
//! Builds ~300 MB of `/var/log/messages`-style text in memory: ordinary kernel and daemon
//! lines, with the OOM reports of `tests/fixtures/oom` (each turned into syslog form)
//! interleaved every few thousand lines. Then runs `parse_kmsg_cli` over it on one thread,
//! writing the JSON to a sink, and prints MB/s for `--format syslog` and `--format auto`.
//!
//! ```sh
//! cargo bench -p fleet-agent --bench parse_kmsg            # FLEET_BENCH_MB=300 by default
//! ```

use std::io;
use std::path::Path;
use std::time::Instant;

use fleet_agent::sources::kmsg::{parse_kmsg_cli, split_line, InputFormat};

/// Ordinary lines of a busy host's syslog, kernel and not; `{n}` becomes a counter.
const NOISE: &[&str] = &[
    "kernel: [{s}] IPv4: martian source 10.0.{n}.1 from 10.0.0.254, on dev eth0",
    "kernel: [{s}] e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "kernel: [{s}] audit: type=1400 audit({n}.123:{n}): apparmor=\"DENIED\" operation=\"open\" profile=\"snap.lxd\" name=\"/proc/{n}/mounts\"",
    "kernel: [{s}] EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro",
    "kernel: [{s}] TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.",
    "kernel: [{s}] usb 1-1: new high-speed USB device number {n} using xhci_hcd",
    "kernel: [{s}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=203.0.113.{n} DST=198.51.100.7 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID={n} DF PROTO=TCP SPT={n} DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
    "kernel: [{s}] nf_conntrack: nf_conntrack: table full, dropping packet",
    "kernel: [{s}] docker0: port 1(veth{n}) entered forwarding state",
    "kernel: [{s}] perf: interrupt took too long (2504 > 2500), lowering kernel.perf_event_max_sample_rate to 79750",
    "kernel: [{s}] java[{n}]: segfault at 0 ip 00007f3c2a1b2c3d sp 00007ffd4e5f6a70 error 4 in libjvm.so[7f3c29a00000+1000000]",
    "kernel: [{s}] INFO: task kworker/u16:{n} blocked for more than 120 seconds.",
    "sshd[{n}]: Accepted publickey for deploy from 192.0.2.{n} port 51234 ssh2: ED25519 SHA256:abcdefghijklmnop",
    "systemd[1]: Started Session {n} of user deploy.",
    "CRON[{n}]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
    "dockerd[{n}]: time=\"2026-11-25T22:00:01.123456789Z\" level=info msg=\"ignoring event\" module=libcontainerd namespace=moby",
    "systemd-logind[{n}]: Removed session {n}.",
    "rsyslogd: imuxsock: Acquired UNIX socket '/run/systemd/journal/syslog' (fd 3) from systemd.  [v8.2112.0]",
];

/// The fixture reports as syslog lines.
fn reports() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oom");
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let format = if name.ends_with(".kmsg") {
            InputFormat::Kmsg
        } else if name.ends_with(".log") {
            InputFormat::Auto
        } else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let mut report = String::new();
        for l in text.lines() {
            if let Some(line) = split_line(format, l) {
                match line.monotonic_us {
                    Some(us) => report.push_str(&format!(
                        "Nov 25 22:00:01 web-17 kernel: [{:5}.{:06}] {}\n",
                        us / 1_000_000,
                        us % 1_000_000,
                        line.message
                    )),
                    None => report.push_str(&format!(
                        "Nov 25 22:00:01 web-17 kernel: {}\n",
                        line.message
                    )),
                }
            }
        }
        out.push(report);
    }
    out
}

fn build(target: usize) -> (Vec<u8>, usize) {
    let reports = reports();
    let mut data = Vec::with_capacity(target + (1 << 20));
    let mut n: u64 = 0;
    let mut inserted = 0;
    while data.len() < target {
        n += 1;
        if n % 4000 == 0 {
            data.extend_from_slice(reports[inserted % reports.len()].as_bytes());
            inserted += 1;
            continue;
        }
        let pat = NOISE[(n as usize * 7) % NOISE.len()];
        let secs = format!("{:5}.{:06}", 1000 + n / 1000, (n * 7919) % 1_000_000);
        let line = pat
            .replace("{s}", &secs)
            .replace("{n}", &(n % 65_536).to_string());
        data.extend_from_slice(b"Nov 25 22:00:01 web-17 ");
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
    }
    (data, inserted)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let mb: usize = std::env::var("FLEET_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let t = Instant::now();
    let (data, reports) = build(mb << 20);
    let size = data.len() as f64 / 1e6;
    println!(
        "parse_kmsg: {size:.0} MB of syslog text, {reports} OOM reports among {} lines (built in {:.1}s)",
        data.iter().filter(|&&b| b == b'\n').count(),
        t.elapsed().as_secs_f64()
    );
    for (name, format) in [("syslog", InputFormat::Syslog), ("auto", InputFormat::Auto)] {
        let mut best = f64::MAX;
        let mut events = 0;
        for _ in 0..3 {
            let t = Instant::now();
            events = parse_kmsg_cli(format, &data[..], io::sink()).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "parse_kmsg --format {name:6}: {:7.1} MB/s (best of 3: {best:.2}s, {events} events, one thread)",
            size / best
        );
    }
}
