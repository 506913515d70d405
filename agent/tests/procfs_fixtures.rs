//! The sar computations against fixture trees.
//!
//! `fixtures/proc-1` and `fixtures/proc-2` are this project's dev VM's real `/proc` files (kernel
//! 6.18, 2 CPUs), copied 2.75 s apart while a CPU spinner, a 200 MiB allocation, 20 MiB of
//! loopback traffic and 64 MiB of direct disk writes and reads ran (see `fixtures/README.md`).
//! The expected values are what sysstat 12.6.1's own `sadc` + `sar` print for the same files
//! (sadc run in a mount namespace with the fixture files in place of `/proc`), which the
//! comments check by hand for a few columns. sar prints two decimals, hence the 0.005 tolerance.
//!
//! The synthetic cases (guest time, a CPU going offline and back, counters wrapping, devices
//! and interfaces appearing and disappearing) build small trees from the real ones with a few
//! files replaced; their expected values are sar's too, except where Fleet deliberately differs,
//! which the test says.

use std::path::{Path, PathBuf};

use fleet_agent::sources::procfs::{self, Reading, SampleOut, Sampler, SourceError};
use fleet_proto::schema;
use fleet_proto::v1::Activity;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(dir: &Path, sys: &Path) -> Reading {
    Reading::read(dir, sys).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
}

/// The values of the record of `activity` for `instance`.
fn values<'a>(out: &'a SampleOut, activity: Activity, instance: &str) -> &'a [f64] {
    out.records
        .iter()
        .find(|r| r.activity == activity as i32 && r.instance == instance)
        .map(|r| r.values.as_slice())
        .unwrap_or_else(|| panic!("no {activity:?} record for {instance:?}"))
}

fn instances(out: &SampleOut, activity: Activity) -> Vec<&str> {
    out.records
        .iter()
        .filter(|r| r.activity == activity as i32)
        .map(|r| r.instance.as_str())
        .collect()
}

/// `got` rounds to `want` as sar prints it (two decimals).
#[track_caller]
fn assert_sar(activity: Activity, instance: &str, got: &[f64], want: &[f64]) {
    let cols = schema::schema(activity).expect("schema").columns;
    assert_eq!(
        got.len(),
        cols.len(),
        "{activity:?} {instance}: column count"
    );
    assert_eq!(
        want.len(),
        cols.len(),
        "{activity:?} {instance}: expectation length"
    );
    for ((c, g), w) in cols.iter().zip(got).zip(want) {
        assert!(
            (g - w).abs() <= 0.005 + 1e-9 * w.abs(),
            "{activity:?} {instance} {c}: got {g}, sar prints {w:.2}"
        );
    }
}

#[track_caller]
fn check(out: &SampleOut, activity: Activity, instance: &str, want: &[f64]) {
    assert_sar(activity, instance, values(out, activity, instance), want);
}

#[test]
fn real_fixtures_match_sar() {
    let f = fixtures();
    let sys = f.join("sys");
    let r1 = read(&f.join("proc-1"), &sys);
    let r2 = read(&f.join("proc-2"), &sys);
    let out = procfs::compute(&r1, &r2);

    // uptime 8833.34 -> 8836.09: itv = 275 hundredths.
    assert_eq!(out.interval_ms, 2750);

    // Every record has its schema's length, and activities come in wire-enum order.
    for r in &out.records {
        let s = schema::schema_of_i32(r.activity).expect("known activity");
        assert_eq!(r.values.len(), s.columns.len(), "{}", s.name);
        assert!(
            r.values.iter().all(|v| v.is_finite()),
            "{} {}",
            s.name,
            r.instance
        );
    }
    let order: Vec<i32> = out.records.iter().map(|r| r.activity).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted);

    // CPU 0: user +268, system +8 over 276 jiffies -> 97.10 / 2.90.
    // CPU 1: user +203, system +69, softirq +1, iowait +1, idle +1 over 275 -> 73.82, 25.45
    // (system includes softirq), 0.36, 0.36. "all" is their sum over 551 jiffies.
    assert_eq!(instances(&out, Activity::Cpu), ["all", "0", "1"]);
    check(
        &out,
        Activity::Cpu,
        "all",
        &[85.48, 0.00, 14.16, 0.18, 0.00, 0.18],
    );
    check(
        &out,
        Activity::Cpu,
        "0",
        &[97.10, 0.00, 2.90, 0.00, 0.00, 0.00],
    );
    check(
        &out,
        Activity::Cpu,
        "1",
        &[73.82, 0.00, 25.45, 0.36, 0.00, 0.36],
    );

    // kbmemused = MemTotal - (MemFree + Buffers + Cached + Slab).
    check(
        &out,
        Activity::Memory,
        "-",
        &[
            22224656.0, 23850304.0, 532284.0, 2.16, 3568.0, 1787316.0, 178376.0, 0.72, 724864.0,
            1386764.0, 99124.0,
        ],
    );
    check(&out, Activity::Swap, "-", &[0.0; 5]);
    check(&out, Activity::Swapping, "-", &[0.0; 2]);
    // pgpgin +65540 over 2.75 s = 23832.73/s.
    check(
        &out,
        Activity::Paging,
        "-",
        &[
            23832.73, 23834.18, 33381.82, 0.00, 50003.64, 0.00, 0.00, 0.00, 0.00,
        ],
    );
    // vda only (loop*, zram0 are virtual): 152 I/Os, 131080 sectors read.
    check(
        &out,
        Activity::Io,
        "-",
        &[55.27, 46.91, 6.91, 1.45, 47665.45, 47668.36, 47665.45],
    );
    // Devices without I/O (loop*, zram0) are not shown. areq-sz = 393248 sectors / 152 / 2,
    // await = (90 + 310 + 8) ms / 152, %util = 72 ms over 2750 ms.
    assert_eq!(instances(&out, Activity::Disk), ["vda"]);
    check(
        &out,
        Activity::Disk,
        "vda",
        &[
            55.27, 23832.73, 23834.18, 23832.73, 1293.58, 0.15, 2.68, 2.62,
        ],
    );
    // runq-sz is loadavg's 4 running minus sadc itself.
    check(
        &out,
        Activity::Load,
        "-",
        &[3.0, 109.0, 1.46, 0.67, 0.47, 0.0],
    );

    assert_eq!(
        instances(&out, Activity::NetDev),
        ["lo", "ifb0", "ifb1", "eth0"]
    );
    check(
        &out,
        Activity::NetDev,
        "lo",
        &[306.18, 306.18, 7462.83, 7462.83, 0.0, 0.0, 0.0, 0.0],
    );
    check(&out, Activity::NetDev, "eth0", &[0.0; 8]);
    for i in ["lo", "ifb0", "ifb1", "eth0"] {
        check(&out, Activity::NetEdev, i, &[0.0; 9]);
    }
    // %scpu = (36035666 - 34153016) us / (100 * 275).
    check(&out, Activity::PsiCpu, "-", &[27.67, 10.61, 3.49, 68.46]);
    check(
        &out,
        Activity::PsiIo,
        "-",
        &[0.29, 0.22, 0.15, 1.30, 0.00, 0.12, 0.12, 0.07],
    );
    check(&out, Activity::PsiMem, "-", &[0.0; 8]);
}

/// A copy of `base` with some files replaced.
fn tree(base: &Path, files: &[(&str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    copy_dir(base, t.path());
    for (name, text) in files {
        let p = t.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write fixture");
    }
    t
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

#[test]
fn guest_time_is_in_user_as_sar_u_shows_it() {
    // sar -P ALL on these two /proc/stat files prints:
    //   all  43.67 4.37 5.68 2.18 0.44 43.67
    //   0    52.63 4.39 5.26 1.75 0.88 35.09
    //   1    34.78 4.35 6.09 2.61 0.00 52.17
    // CPU 0: user +60 (of which guest +40) over 114 jiffies: %user 52.63 includes guest; only
    // `sar -u ALL` splits it out (%usr 17.54, %guest 35.09). %system = sys + irq + soft.
    let f = fixtures();
    let a = tree(
        &f.join("proc-1"),
        &[
            ("uptime", "1000.00 1500.00\n"),
            (
                "stat",
                "cpu  1000 100 300 10000 50 10 20 5 400 40\n\
                 cpu0 500 50 150 5000 25 5 10 2 200 20\n\
                 cpu1 500 50 150 5000 25 5 10 3 200 20\nprocs_blocked 1\n",
            ),
        ],
    );
    let b = tree(
        &f.join("proc-1"),
        &[
            ("uptime", "1001.00 1501.00\n"),
            (
                "stat",
                "cpu  1100 110 310 10100 55 12 21 6 480 48\n\
                 cpu0 560 55 155 5040 27 6 10 3 240 24\n\
                 cpu1 540 55 155 5060 28 6 11 3 240 24\nprocs_blocked 1\n",
            ),
        ],
    );
    let sys = f.join("sys");
    let out = procfs::compute(&read(a.path(), &sys), &read(b.path(), &sys));
    check(
        &out,
        Activity::Cpu,
        "all",
        &[43.67, 4.37, 5.68, 2.18, 0.44, 43.67],
    );
    check(
        &out,
        Activity::Cpu,
        "0",
        &[52.63, 4.39, 5.26, 1.75, 0.88, 35.09],
    );
    check(
        &out,
        Activity::Cpu,
        "1",
        &[34.78, 4.35, 6.09, 2.61, 0.00, 52.17],
    );
    assert_eq!(values(&out, Activity::Load, "-")[5], 1.0, "blocked");
}

#[test]
fn cpu_offline_then_back() {
    // Three readings: both CPUs; CPU 1 offline (no cpu1 line); CPU 1 back with idle and iowait
    // restarted from zero by the kernel. sar -P ALL prints for the two intervals:
    //   all 50.00 0.00 10.00 0.00 0.00 40.00    (CPU 1 not shown, counted as unchanged)
    //   0   50.00 0.00 10.00 0.00 0.00 40.00
    //   all 33.33 0.00  7.14 2.38 0.00 57.14
    //   0   45.45 0.00  9.09 0.00 0.00 45.45
    //   1   20.00 0.00  5.00 5.00 0.00 70.00    (from its last values before going offline,
    //                                            with previous idle/iowait taken as 0)
    let f = fixtures();
    let stat = |up: &str, s: &str| tree(&f.join("proc-1"), &[("uptime", up), ("stat", s)]);
    let a = stat(
        "1000.00 1500.00\n",
        "cpu  300 0 60 1600 40 0 0 0 0 0\ncpu0 150 0 30 800 20 0 0 0 0 0\n\
         cpu1 150 0 30 800 20 0 0 0 0 0\n",
    );
    let b = stat(
        "1001.00 1501.00\n",
        "cpu  350 0 70 1640 40 0 0 0 0 0\ncpu0 200 0 40 840 20 0 0 0 0 0\n",
    );
    let c = stat(
        "1002.00 1502.00\n",
        "cpu  420 0 85 1760 45 0 0 0 0 0\ncpu0 250 0 50 890 20 0 0 0 0 0\n\
         cpu1 170 0 35 70 5 0 0 0 0 0\n",
    );

    // Through the Sampler, whose files stay open: rewrite them in place between samples.
    let live = tree(a.path(), &[]);
    let sys = f.join("sys");
    let mut s = Sampler::new(live.path(), &sys).expect("sampler");
    let put = |from: &Path| {
        for name in ["uptime", "stat"] {
            std::fs::write(
                live.path().join(name),
                std::fs::read(from.join(name)).expect("read"),
            )
            .expect("rewrite");
        }
    };
    put(b.path());
    let out = s.sample().expect("sample 1");
    assert_eq!(instances(&out, Activity::Cpu), ["all", "0"]);
    check(
        &out,
        Activity::Cpu,
        "all",
        &[50.0, 0.0, 10.0, 0.0, 0.0, 40.0],
    );
    check(&out, Activity::Cpu, "0", &[50.0, 0.0, 10.0, 0.0, 0.0, 40.0]);
    put(c.path());
    let out = s.sample().expect("sample 2");
    assert_eq!(instances(&out, Activity::Cpu), ["all", "0", "1"]);
    check(
        &out,
        Activity::Cpu,
        "all",
        &[33.33, 0.0, 7.14, 2.38, 0.0, 57.14],
    );
    check(
        &out,
        Activity::Cpu,
        "0",
        &[45.45, 0.0, 9.09, 0.0, 0.0, 45.45],
    );
    check(&out, Activity::Cpu, "1", &[20.0, 0.0, 5.0, 5.0, 0.0, 70.0]);

    // A CPU already offline at the baseline has no reference when it comes online: it is
    // neither shown nor counted in "all" for that interval (sysstat's "jump-from-zero"
    // protection), and shown from the next one.
    put(b.path());
    let mut s = Sampler::new(live.path(), &sys).expect("sampler");
    put(c.path());
    let out = s.sample().expect("b to c");
    assert_eq!(instances(&out, Activity::Cpu), ["all", "0"]);
    check(
        &out,
        Activity::Cpu,
        "all",
        &[45.45, 0.0, 9.09, 0.0, 0.0, 45.45],
    );
    let d = stat(
        "1003.00 1503.00\n",
        "cpu  500 0 100 1040 25 0 0 0 0 0\ncpu0 300 0 60 940 20 0 0 0 0 0\n\
         cpu1 200 0 40 100 5 0 0 0 0 0\n",
    );
    put(d.path());
    let out = s.sample().expect("c to d");
    assert_eq!(instances(&out, Activity::Cpu), ["all", "0", "1"]);
    // CPU 1: user +30, system +5, idle +30 over 65 jiffies.
    check(
        &out,
        Activity::Cpu,
        "1",
        &[46.15, 0.0, 7.69, 0.0, 0.0, 46.15],
    );
    // all: user 80, system 15, idle 80 over 175.
    check(
        &out,
        Activity::Cpu,
        "all",
        &[45.71, 0.0, 8.57, 0.0, 0.0, 45.71],
    );
}

const NET_HEADER: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

#[test]
fn devices_come_and_go_and_counters_wrap() {
    // Two readings 2 s apart. Disks: vdb disappears, vdd appears, vdc's 32-bit tick counters
    // wrap. Interfaces: eth0's rx_bytes wraps at 2^32, eth1 disappears, eth2 appears, eth3 is
    // re-registered (all counters back near 0), eth4's rx_bytes wraps at 2^64.
    let f = fixtures();
    let sys = tempfile::tempdir().expect("tempdir");
    for d in ["vda", "vdb", "vdc", "vdd"] {
        std::fs::create_dir_all(sys.path().join("block").join(d).join("device")).expect("mkdir");
    }
    std::fs::create_dir_all(sys.path().join("block/loop1")).expect("mkdir");
    let a = tree(
        &f.join("proc-1"),
        &[
            ("uptime", "1000.00 1500.00\n"),
            (
                "diskstats",
                " 254       0 vda 1000 0 8000 500 100 0 800 50 0 400 550 0 0 0 0 0 0\n \
                 254      16 vdb 2000 0 16000 1000 200 0 1600 100 0 800 1100 0 0 0 0 0 0\n \
                 254      32 vdc 1000 0 8000 4294967000 100 0 800 50 0 4294967200 550 0 0 0 0 0 0\n \
                 254      33 vdc1 1000 0 8000 5 100 0 800 5 0 10 10 0 0 0 0 0 0\n   \
                 7       1 loop1 10 0 80 5 0 0 0 0 0 5 5 0 0 0 0 0 0\n",
            ),
            (
                "net/dev",
                &format!(
                    "{NET_HEADER}    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  \
eth0: 4294966296    1000    0    0    0     0          0         0   5000      50    0    0    0     0       0          0\n  \
eth1: 7000      70    0    0    0     0          0         0   7000      70    0    0    0     0       0          0\n  \
eth3: 900000     900    5    0    0     0          0         0   900000     900    0    0    0     0       0          0\n  \
eth4: 18446744073709550616     100    0    0    0     0          0         0   100      1    0    0    0     0       0          0\n"
                ),
            ),
        ],
    );
    let b = tree(
        &f.join("proc-1"),
        &[
            ("uptime", "1002.00 1502.00\n"),
            (
                "diskstats",
                " 254       0 vda 1100 0 8800 600 110 0 880 60 0 500 660 0 0 0 0 0 0\n \
                 254      32 vdc 1100 0 8800 500 110 0 880 60 0 300 660 0 0 0 0 0 0\n \
                 254      33 vdc1 1100 0 8800 6 110 0 880 6 0 11 11 0 0 0 0 0 0\n \
                 254      48 vdd 50 0 400 20 0 0 0 0 0 20 20 0 0 0 0 0 0\n   \
                 7       1 loop1 20 0 160 10 0 0 0 0 0 10 10 0 0 0 0 0 0\n",
            ),
            (
                "net/dev",
                &format!(
                    "{NET_HEADER}    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  \
eth0: 1000    1010    0    0    0     0          0         0   5200      52    0    0    0     0       0          0\n  \
eth2: 500       5    0    0    0     0          0         0   600       6    0    0    0     0       0          0\n  \
eth3: 3000      30    1    0    0     0          0         0   2000      20    0    0    0     0       0          0\n  \
eth4: 1000     120    0    0    0     0          0         0   300      3    0    0    0     0       0          0\n"
                ),
            ),
        ],
    );
    let out = procfs::compute(&read(a.path(), sys.path()), &read(b.path(), sys.path()));
    assert_eq!(out.interval_ms, 2000);

    // sar -d -p prints (vdc and vdd appear as dev254-32/48 there only because that machine's
    // /sys/dev/block has no such devices):
    //   vda  55.00 200.00 20.00 0.00 4.00 0.06 1.00  5.00
    //   vdc  55.00 200.00 20.00 0.00 4.00 0.06 7.33 19.80  (ticks wrapped: (796 + 10) / 110)
    //   vdd  25.00 100.00  0.00 0.00 4.00 0.01 0.40  1.00  (new: counted from zero)
    //   loop1 5.00  20.00  0.00 0.00 4.00 0.00 0.50  0.25
    // vdb is gone: no record. vdc1 is a partition: not shown.
    assert_eq!(
        instances(&out, Activity::Disk),
        ["vda", "vdc", "vdd", "loop1"]
    );
    check(
        &out,
        Activity::Disk,
        "vda",
        &[55.0, 200.0, 20.0, 0.0, 4.0, 0.06, 1.0, 5.0],
    );
    check(
        &out,
        Activity::Disk,
        "vdc",
        &[55.0, 200.0, 20.0, 0.0, 4.0, 0.06, 7.33, 19.8],
    );
    check(
        &out,
        Activity::Disk,
        "vdd",
        &[25.0, 100.0, 0.0, 0.0, 4.0, 0.01, 0.4, 1.0],
    );
    check(
        &out,
        Activity::Disk,
        "loop1",
        &[5.0, 20.0, 0.0, 0.0, 4.0, 0.0, 0.5, 0.25],
    );

    // sar -b prints 0.00 in every column here (the sums over all disks went down because vdb
    // left). Fleet sums per-device deltas over the real disks still present: vda + vdc + vdd
    // (loop1 is virtual, vdc1 a partition): reads 100 + 100 + 50, writes 10 + 10.
    check(
        &out,
        Activity::Io,
        "-",
        &[135.0, 125.0, 10.0, 0.0, 1000.0, 80.0, 0.0],
    );

    // sar -n DEV prints:
    //   lo    0.00   0.00 0.00 0.00 ...
    //   eth0 505.00 26.00 0.49 2.54    <- sysstat takes the 32-bit wrap for a re-registration
    //                                     and counts eth0's whole history (1010 packets) as 2 s
    //   eth2   2.50  3.00 0.24 0.29    (new)
    //   eth3  15.00 10.00 1.46 0.98    (re-registered: counted from zero)
    //   eth4  10.00  1.00 0.98 0.10    (64-bit wrap, recognised by sysstat)
    // Fleet differs on eth0 only: the wrap adds 2000 bytes, packets went from 1000 to 1010.
    assert_eq!(
        instances(&out, Activity::NetDev),
        ["lo", "eth0", "eth2", "eth3", "eth4"]
    );
    check(&out, Activity::NetDev, "lo", &[0.0; 8]);
    check(
        &out,
        Activity::NetDev,
        "eth0",
        &[5.0, 1.0, 0.98, 0.10, 0.0, 0.0, 0.0, 0.0],
    );
    check(
        &out,
        Activity::NetDev,
        "eth2",
        &[2.5, 3.0, 0.24, 0.29, 0.0, 0.0, 0.0, 0.0],
    );
    check(
        &out,
        Activity::NetDev,
        "eth3",
        &[15.0, 10.0, 1.46, 0.98, 0.0, 0.0, 0.0, 0.0],
    );
    check(
        &out,
        Activity::NetDev,
        "eth4",
        &[10.0, 1.0, 0.98, 0.10, 0.0, 0.0, 0.0, 0.0],
    );

    // sar -n EDEV prints rxerr/s 9223372036854775808.00 for eth3 (its rx_errors went from 5
    // to 1, a counter sysstat leaves out of its re-registration check). Fleet counts eth3 from
    // zero: 1 error in 2 s.
    check(
        &out,
        Activity::NetEdev,
        "eth3",
        &[0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    assert!(out
        .records
        .iter()
        .flat_map(|r| &r.values)
        .all(|v| v.is_finite() && *v >= 0.0 && *v < 1e12));
}

#[test]
fn link_speed_gives_ifutil() {
    // eth0 at 1000 Mb/s full duplex (fixtures/sys): 25 MB/s received in 2 s is 20% of the link.
    let f = fixtures();
    let line = |rx: u64| format!("{NET_HEADER}  eth0: {rx} 1000 0 0 0 0 0 0 100 10 0 0 0 0 0 0\n");
    let a = tree(
        &f.join("proc-1"),
        &[("uptime", "10.00 0\n"), ("net/dev", &line(1_000))],
    );
    let b = tree(
        &f.join("proc-1"),
        &[("uptime", "12.00 0\n"), ("net/dev", &line(50_001_000))],
    );
    let sys = f.join("sys");
    let out = procfs::compute(&read(a.path(), &sys), &read(b.path(), &sys));
    let v = values(&out, Activity::NetDev, "eth0");
    assert!(
        (v[2] - 25_000_000.0 / 1024.0).abs() < 1e-6,
        "rxkB/s {}",
        v[2]
    );
    assert!((v[7] - 20.0).abs() < 1e-9, "%ifutil {}", v[7]);
}

#[test]
fn paging_efficiency_and_swap_space() {
    // sar -B on these vmstat files (2 s apart) prints
    //   0.00 0.00 0.00 0.00 0.00 1000.00 250.00 1000.00 80.00
    // pgsteal sums every pgsteal_* line (kswapd 1000 + anon 400 + file 600 = 2000), pgscand
    // includes pgscan_direct_throttle (500), %vmeff = 2000 / 2500.
    let f = fixtures();
    let vm = |steal: u64, anon: u64, file: u64, scan: u64, throttle: u64| {
        format!(
            "pgpgin 10\npgpgout 10\npswpin 100\npswpout 200\npgfree 5\npgfault 7\npgmajfault 1\n\
             pgsteal_kswapd {steal}\npgsteal_direct 0\npgscan_kswapd {scan}\npgscan_direct 0\n\
             pgscan_direct_throttle {throttle}\npgscan_anon 0\npgscan_file {scan}\n\
             pgsteal_anon {anon}\npgsteal_file {file}\n"
        )
    };
    let mem = "MemTotal: 1000000 kB\nMemFree: 100000 kB\nMemAvailable: 300000 kB\n\
               Buffers: 50000 kB\nCached: 200000 kB\nSwapCached: 25000 kB\nActive: 1 kB\n\
               Inactive: 2 kB\nSwapTotal: 500000 kB\nSwapFree: 400000 kB\nDirty: 3 kB\n\
               Committed_AS: 750000 kB\nSlab: 150000 kB\n";
    let a = tree(
        &f.join("proc-1"),
        &[
            ("uptime", "10.00 0\n"),
            ("vmstat", &vm(0, 0, 0, 0, 0)),
            ("meminfo", mem),
        ],
    );
    let b = tree(
        &f.join("proc-1"),
        &[
            ("uptime", "12.00 0\n"),
            ("vmstat", &vm(1000, 400, 600, 2000, 500)),
            ("meminfo", mem),
        ],
    );
    let sys = f.join("sys");
    let out = procfs::compute(&read(a.path(), &sys), &read(b.path(), &sys));
    check(
        &out,
        Activity::Paging,
        "-",
        &[0.0, 0.0, 0.0, 0.0, 0.0, 1000.0, 250.0, 1000.0, 80.0],
    );
    check(&out, Activity::Swapping, "-", &[0.0, 0.0]);
    // kbmemused = 1000000 - (100000 + 50000 + 200000 + 150000) = 500000 (50.00%);
    // %commit = 750000 / (1000000 + 500000) = 50.00%.
    check(
        &out,
        Activity::Memory,
        "-",
        &[
            100000.0, 300000.0, 500000.0, 50.0, 50000.0, 200000.0, 750000.0, 50.0, 1.0, 2.0, 3.0,
        ],
    );
    // 100000 kB of 500000 used (20%), 25000 of it cached (25%).
    check(
        &out,
        Activity::Swap,
        "-",
        &[400000.0, 100000.0, 20.0, 25000.0, 25.0],
    );
}

#[test]
fn optional_files_and_errors() {
    let f = fixtures();
    let sys = f.join("sys");

    // No /proc/pressure, no diskstats, no net/dev: those activities are left out.
    let t = tree(&f.join("proc-1"), &[]);
    std::fs::remove_dir_all(t.path().join("pressure")).expect("rm");
    std::fs::remove_file(t.path().join("diskstats")).expect("rm");
    std::fs::remove_dir_all(t.path().join("net")).expect("rm");
    let mut s = Sampler::new(t.path(), &sys).expect("optional files may be missing");
    let out = s.sample().expect("sample");
    for a in [
        Activity::Io,
        Activity::Disk,
        Activity::NetDev,
        Activity::NetEdev,
        Activity::PsiCpu,
        Activity::PsiIo,
        Activity::PsiMem,
    ] {
        assert!(instances(&out, a).is_empty(), "{a:?}");
    }
    assert_eq!(instances(&out, Activity::Memory), ["-"]);

    // A missing mandatory file is an error naming it.
    for name in ["stat", "meminfo", "vmstat", "loadavg", "uptime"] {
        let t = tree(&f.join("proc-1"), &[]);
        std::fs::remove_file(t.path().join(name)).expect("rm");
        match Sampler::new(t.path(), &sys) {
            Err(SourceError::Open { path, .. }) => assert!(path.ends_with(name), "{path:?}"),
            other => panic!("{name}: expected Open error, got {other:?}"),
        }
    }

    // Garbage where sar needs something is a Parse error naming the file, never a panic;
    // garbage elsewhere is skipped.
    let t = tree(&f.join("proc-1"), &[("meminfo", "no memory here\n")]);
    match Sampler::new(t.path(), &sys) {
        Err(e @ SourceError::Parse { .. }) => assert!(e.to_string().contains("meminfo"), "{e}"),
        other => panic!("expected Parse error, got {other:?}"),
    }
    let junk = "\u{0}\u{1}garbage:::\n-1 -2 x\n\u{fffd}: 1 2 3\n";
    let t = tree(
        &f.join("proc-1"),
        &[
            ("diskstats", junk),
            ("net/dev", junk),
            ("vmstat", junk),
            ("pressure/cpu", junk),
            ("pressure/io", junk),
        ],
    );
    let mut s = Sampler::new(t.path(), &sys).expect("garbage in optional content is skipped");
    let out = s.sample().expect("sample");
    assert!(instances(&out, Activity::Disk).is_empty());
    assert!(instances(&out, Activity::PsiCpu).is_empty());
    assert_eq!(instances(&out, Activity::Paging), ["-"]);
}

#[test]
fn sampler_rereads_open_files() {
    // The Sampler opens the files once; rewriting them in place between calls must be seen,
    // and gives the same result as computing from the two trees directly.
    let f = fixtures();
    let sys = f.join("sys");
    let live = tree(&f.join("proc-1"), &[]);
    let mut s = Sampler::new(live.path(), &sys).expect("sampler");
    copy_dir(&f.join("proc-2"), live.path());
    let got = s.sample().expect("sample");
    let want = procfs::compute(
        &read(&f.join("proc-1"), &sys),
        &read(&f.join("proc-2"), &sys),
    );
    assert_eq!(got, want);
    // And again with nothing changed: an interval of 0 is taken as 1 (no NaN, all rates 0).
    let again = s.sample().expect("sample");
    assert_eq!(again.interval_ms, 10);
    assert!(again
        .records
        .iter()
        .flat_map(|r| &r.values)
        .all(|v| v.is_finite()));
    assert!(values(&again, Activity::Paging, "-")
        .iter()
        .all(|v| *v == 0.0));
}
