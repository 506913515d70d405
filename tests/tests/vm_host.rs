//! The test bed's host (issue 13), booted for real: one Debian 12 VM under qemu (KVM where it
//! works, TCG here), checked for what the story on real hosts relies on: systemd is PID 1 and the
//! system is up (running, or degraded with the failed units named), cgroup v2, root holds
//! CAP_SYS_RESOURCE (a process's `oom_score_adj` can be set to -1000), sshd and chronyd run, the
//! 9p share of the binaries is readable and the agent binary runs from it, the guest reaches a
//! loopback server of this test through the forward (qemu `guestfwd`), and nothing else: not
//! another listening loopback port of this machine, not another port of the forward address, not
//! an outside address. It prints the boot and total times. A second test boots two VMs on a link
//! of their own and has each reach the other.
//!
//! Run alone: `cargo test -p fleet-tests --test vm_host -- --nocapture` (as root; the first run on
//! a machine builds the image, a few minutes). `boot_times` (ignored) measures boot to ssh with 2
//! vCPUs and with 1.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fleet_tests::vm::{Lan, TestBed, VmConfig, GUEST_FWD_ADDR};

/// A TCP server on 127.0.0.1 standing in for the collector: it greets each connection with a
/// line, records the line it gets back, and counts connections. Bounded: it stops when dropped,
/// and after 15 minutes in any case.
struct LoopbackServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    fn start(greeting: &'static str) -> LoopbackServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, l, s) = (accepted.clone(), lines.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(15 * 60);
            while !s.load(Ordering::Relaxed) && Instant::now() < end {
                match listener.accept() {
                    Ok((conn, _)) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        if let Some(line) = greet(conn, greeting) {
                            l.lock().unwrap().push(line);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        LoopbackServer {
            port,
            accepted,
            lines,
            stop,
            thread: Some(thread),
        }
    }
}

fn greet(mut conn: TcpStream, greeting: &str) -> Option<String> {
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    conn.write_all(format!("{greeting}\n").as_bytes()).ok()?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A bash snippet that opens a TCP connection from the guest, giving up after 10 s; exit 0 only
/// if it connected.
fn guest_connect(addr: &str, port: u16) -> String {
    format!("timeout 10 bash -c 'exec 3<>/dev/tcp/{addr}/{port}'")
}

#[test]
fn a_vm_is_a_real_debian_host_reaching_only_what_the_test_forwards() {
    let t0 = Instant::now();
    let bed = TestBed::prepare();
    eprintln!(
        "image {} ready in {:.1?} (cold build: {:?} s), accelerator {}",
        bed.image.dir.display(),
        bed.image.ensured_in,
        bed.image.build_seconds(),
        bed.accel.name()
    );
    let collector = LoopbackServer::start("fleet-guestfwd-ok");
    // A server of this machine the VM is not given: it must never see a connection.
    let other = LoopbackServer::start("must-not-be-reached");
    let share = bed.binaries_share(&["fleet-agent"]);
    std::fs::write(share.join("marker"), "shared from the host\n").unwrap();

    let vm = bed.boot(
        VmConfig::new("web1")
            .vcpus(2)
            .forward(7443, collector.port)
            .share(&share),
    );
    let boot = vm.boot_time.unwrap();
    eprintln!(
        "web1: boot to ssh {boot:.1?} ({}, 2 vCPUs)",
        bed.accel.name()
    );

    // systemd is PID 1 and the system came up.
    assert_eq!(vm.sh("cat /proc/1/comm"), "systemd");
    // Its exit status is not 0 when degraded: read what it says. --wait: until start-up ends.
    let out = vm.ssh("timeout 120 systemctl is-system-running --wait");
    let state = String::from_utf8_lossy(&out.stdout);
    let state = state.trim();
    let failed = vm.sh("systemctl --failed --plain --no-legend");
    eprintln!("web1: systemctl is-system-running: {state}; failed units: {failed:?}");
    assert!(
        state == "running" || state == "degraded",
        "system state {state:?}; failed units:\n{failed}"
    );
    assert_eq!(vm.sh("hostname"), "web1");

    // cgroup v2, with the memory controller the OOM story needs.
    assert_eq!(vm.sh("stat -fc %T /sys/fs/cgroup"), "cgroup2fs");
    assert!(vm
        .sh("cat /sys/fs/cgroup/cgroup.controllers")
        .split_whitespace()
        .any(|c| c == "memory"));

    // Root holds CAP_SYS_RESOURCE: another process's oom_score_adj goes to -1000.
    let adj = vm.sh(
        "sleep 120 & pid=$!; echo -1000 > /proc/$pid/oom_score_adj; \
         cat /proc/$pid/oom_score_adj; kill $pid",
    );
    assert_eq!(adj, "-1000");

    // sshd and chronyd run under their units.
    assert_eq!(vm.sh("systemctl is-active ssh chrony"), "active\nactive");
    for daemon in ["sshd", "chronyd"] {
        vm.sh(&format!("pgrep -x {daemon}"));
    }

    // The 9p share: readable, and the agent built here runs from it.
    assert_eq!(vm.sh("cat /mnt/fleet/marker"), "shared from the host");
    let version = vm.sh("/mnt/fleet/fleet-agent --version");
    assert!(version.starts_with("fleet-agent "), "{version}");

    // The forward reaches this test's loopback server, both ways.
    let reply = vm.sh(&format!(
        "exec 3<>/dev/tcp/{GUEST_FWD_ADDR}/7443; read -r line <&3; echo \"$line\"; \
         echo \"hello from $(hostname)\" >&3"
    ));
    assert_eq!(reply, "fleet-guestfwd-ok");
    fleet_tests::wait_for(
        "the server to get the guest's line",
        Duration::from_secs(20),
        || {
            collector
                .lines
                .lock()
                .unwrap()
                .contains(&"hello from web1".to_string())
                .then_some(())
        },
    );

    // Nothing else: this machine's other loopback server (through qemu's host address), another
    // port of the forward address, and an outside address (TEST-NET-1, RFC 5737: documentation
    // only, routed nowhere, in case the isolation ever broke) all fail.
    for (addr, port) in [
        ("10.0.2.2", other.port),
        ("10.0.2.2", collector.port),
        (GUEST_FWD_ADDR, 7444),
        ("192.0.2.1", 80),
    ] {
        let out = vm.ssh(&guest_connect(addr, port));
        assert!(
            !out.status.success(),
            "the guest reached {addr}:{port}, which it must not"
        );
        assert_ne!(out.status.code(), Some(255), "ssh itself failed");
    }
    assert_eq!(other.accepted.load(Ordering::Relaxed), 0);
    assert_eq!(collector.accepted.load(Ordering::Relaxed), 1);

    let mut vm = vm;
    let off = vm.poweroff(Duration::from_secs(120));
    eprintln!(
        "web1: poweroff {off:.1?}; test total {:.1?} (boot to ssh {boot:.1?})",
        t0.elapsed()
    );
}

/// Two VMs on a link of their own (a qemu socket network over loopback UDP): each reaches the
/// other's sshd at its LAN address. They boot side by side with one vCPU each (2 cores here).
#[test]
fn two_vms_reach_each_other_over_their_link() {
    let t0 = Instant::now();
    let bed = TestBed::prepare();
    let [a, b] = Lan::pair();
    let mut web1 = bed.start(VmConfig::new("web1").vcpus(1).lan(a));
    let mut web2 = bed.start(VmConfig::new("web2").vcpus(1).lan(b));
    let (t1, t2) = (web1.wait_for_ssh(), web2.wait_for_ssh());
    eprintln!("web1, web2 (1 vCPU each, side by side): boot to ssh {t1:.1?}, {t2:.1?}");
    for (vm, link, peer) in [(&web1, a, b), (&web2, b, a)] {
        let addrs = vm.sh("ip -br -4 addr");
        assert!(
            addrs.contains(&format!("{}/24", link.address())),
            "{}: {addrs}",
            vm.name()
        );
        let banner = vm.sh(&format!(
            "timeout 20 bash -c 'exec 3<>/dev/tcp/{}/22; head -c 8 <&3'",
            peer.address()
        ));
        assert_eq!(banner, "SSH-2.0-", "{} to {}", vm.name(), peer.address());
    }
    web1.poweroff(Duration::from_secs(120));
    web2.poweroff(Duration::from_secs(120));
    eprintln!("two VMs: test total {:.1?}", t0.elapsed());
}

/// Boot to ssh with 2 vCPUs, then with 1 (one VM at a time): the figures of README
/// "Test bed (VMs)".
#[test]
#[ignore = "a measurement: two more boots (minutes under TCG)"]
fn boot_times() {
    let bed = TestBed::prepare();
    for vcpus in [2, 1] {
        let mut vm = bed.boot(VmConfig::new(&format!("boot{vcpus}")).vcpus(vcpus));
        let analyze = vm.sh("systemd-analyze | head -1");
        eprintln!(
            "{} vCPU(s), {}: boot to ssh {:.1?}; {analyze}",
            vcpus,
            bed.accel.name(),
            vm.boot_time.unwrap()
        );
        vm.poweroff(Duration::from_secs(120));
    }
}
