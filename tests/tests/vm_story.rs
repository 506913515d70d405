//! The story of issue 13 on real hosts, told once, step by step, on two fresh Debian 12 VMs
//! (`web1`, `web2`, cluster `prod`, 1 vCPU each, booted side by side) and a collector on this
//! machine. Each step prints its time; the end prints them all.
//!
//! 1. `ansible-playbook -i INVENTORY deploy/ansible/site.yml --check` on the fresh VMs does not
//!    fail; the real run over SSH installs the agent from nothing on both (its user, certificate,
//!    config and hardened unit, started by the VM's systemd: `systemctl is-active`, run as
//!    `fleet-agent` with exactly the capabilities the unit declares); a second run changes
//!    nothing. `systemd-analyze security` exposure of the agent's unit (running) and of the
//!    collector's unit (`--offline`, deploy/systemd/fleet-collector.service) is printed.
//! 2. `fleetctl hosts` lists both over mutual TLS; `fleetctl sar -u --cluster prod` and `sar -r`
//!    have rows of both (fleetctl sar shows one activity per call).
//! 3. protect-sshd (deploy/policies/protect-sshd.yaml). OpenSSH sets its own listener to
//!    -1000 at start; here sshd is restarted without CAP_SYS_RESOURCE in its bounding set (a
//!    drop-in), so that write fails and the listener reads 0 (checked) until the policy acts.
//!    `fleetctl policy apply --cluster prod` sets both listeners to -1000 and leaves login
//!    sessions' sshd alone; a restarted sshd gets -1000 within a second of its start (timed in
//!    the guest); a version 2 (-500) is applied, then `fleetctl policy rollback` restores -1000.
//! 4. A real cgroup v2 OOM kill in web1 (`systemd-run -p MemoryMax=64M -p MemorySwapMax=0`, a
//!    python3 hog): `fleetctl oom --cluster prod` shows it with the unit's cgroup path, `oom show`
//!    has the evidence, and the protected sshd lives: same listener, and a new login works.
//!
//! The collector runs here, started by the test with the PKI's certificates (this machine has no
//! systemd to run its unit); the CA is made first (`fleetctl certs init --san 10.0.2.100`, the
//! guests' way to it through the forward), so the playbook runs only its `agents` play.
//!
//! Run alone: `scripts/vm test --test vm_story -- --nocapture` (as root).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use fleet_tests::ansible::{recap, run_playbook};
use fleet_tests::fleetctl::fleetctl_tls;
use fleet_tests::paths::workspace_path;
use fleet_tests::vm::{TestBed, Vm, VmConfig, GUEST_FWD_ADDR};
use fleet_tests::{bin, caps, wait_for, Collector, Pki};

const HOSTS: [&str; 2] = ["web1", "web2"];

/// Each step's name and time, printed as it ends and all together at the end.
#[derive(Default)]
struct Steps(Vec<(String, Duration)>);

impl Steps {
    fn run<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        eprintln!("== {name}");
        let t0 = Instant::now();
        let r = f();
        let took = t0.elapsed();
        eprintln!("== {name}: {took:.1?}");
        self.0.push((name.to_string(), took));
        r
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        for (name, took) in &self.0 {
            eprintln!("step {name}: {took:.1?}");
        }
    }
}

/// The controller's side: the PKI, the collector, the inventory and the Ansible run.
struct Controller {
    dir: PathBuf,
    pki: Pki,
    collector: Collector,
    ansible_playbook: PathBuf,
}

impl Controller {
    fn start(dir: &Path) -> Controller {
        let ansible_playbook = caps::require(caps::ansible_playbook());
        let pki = Pki::init_with(&dir.join("pki"), &["--san", GUEST_FWD_ADDR]);
        pki.issue("viewer", "alice", &[]);
        pki.issue("operator", "olga", &[]);
        let tls: Vec<String> = [
            &pki.tls_args("collector")[..],
            &["--tls-ca".into(), pki.ca()],
        ]
        .concat();
        let args: Vec<&str> = tls.iter().map(String::as_str).collect();
        let collector = Collector::spawn(&dir.join("data"), "127.0.0.1:0", &args);
        // The controller's binaries: a snapshot of this build.
        let bin_dir = dir.join("bin");
        std::fs::create_dir(&bin_dir).unwrap();
        for name in ["fleet-agent", "fleet-collector", "fleetctl"] {
            std::fs::copy(bin(name), bin_dir.join(name)).unwrap();
        }
        let vars = serde_json::json!({
            "fleet_binaries_dir": bin_dir,
            "fleet_pki_dir": pki.dir,
            "fleet_collector_host": GUEST_FWD_ADDR,
            "fleet_collector_port": 7443,
            "fleet_interval": "1s",
        });
        std::fs::write(dir.join("vars.json"), vars.to_string()).unwrap();
        Controller {
            dir: dir.to_path_buf(),
            pki,
            collector,
            ansible_playbook,
        }
    }

    fn port(&self) -> u16 {
        self.collector
            .addr
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn inventory(&self, vms: &[&Vm]) {
        let lines: String = vms
            .iter()
            .map(|vm| {
                format!(
                    "{} {} ansible_python_interpreter=/usr/bin/python3\n",
                    vm.name(),
                    vm.ansible_vars()
                )
            })
            .collect();
        std::fs::write(
            self.dir.join("inventory.ini"),
            format!(
                "[prod]\n{lines}\n[prod:vars]\nfleet_cluster=prod\n\n\
                 [agents:children]\nprod\n\n[collector]\n"
            ),
        )
        .unwrap();
    }

    /// `ansible-playbook -i inventory.ini site.yml EXTRA`: its recap per host and its time.
    ///
    /// # Panics
    /// If it fails, with its output.
    fn playbook(&self, extra: &[&str]) -> (Vec<BTreeMap<String, u64>>, Duration) {
        let started = Instant::now();
        let site = workspace_path("deploy/ansible/site.yml");
        let mut args: Vec<&OsStr> = ["-i", "inventory.ini", "-e", "@vars.json", "--forks", "2"]
            .map(OsStr::new)
            .to_vec();
        args.push(site.as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        let stdout = run_playbook(&self.ansible_playbook, &self.dir, &args);
        let counts = HOSTS.iter().map(|h| recap(&stdout, h)).collect();
        (counts, started.elapsed())
    }

    /// fleetctl over mutual TLS as `user` (a certificate of the PKI).
    fn fleetctl(&self, user: &str, args: &[&str]) -> Output {
        let url = format!("https://{}", self.collector.addr);
        fleetctl_tls(&url, &self.pki.ca(), Some((&self.pki, user)), args)
    }

    #[track_caller]
    fn ok(&self, user: &str, args: &[&str]) -> String {
        let out = self.fleetctl(user, args);
        assert!(
            out.status.success(),
            "fleetctl {args:?} as {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `fleetctl -o json ARGS` as `user`, or None if it fails or prints no JSON (for polling).
    fn json(&self, user: &str, args: &[&str]) -> Option<Value> {
        let out = self.fleetctl(user, &[&["-o", "json"][..], args].concat());
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}

/// The host ids of a JSON array of rows.
fn host_ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["host_id"].as_str().map(str::to_string))
        .collect()
}

/// The pid of the guest's sshd listener (ssh.service's main process).
fn listener(vm: &Vm) -> u32 {
    vm.sh("systemctl show -p MainPID --value ssh")
        .parse()
        .unwrap()
}

fn adj(vm: &Vm, pid: u32) -> i32 {
    vm.sh(&format!("cat /proc/{pid}/oom_score_adj"))
        .parse()
        .unwrap()
}

/// Waits (in the guest, up to `secs`) until `pid` reads `want`; returns how long after the call
/// the guest saw it.
#[track_caller]
fn wait_adj(vm: &Vm, pid: u32, want: i32, secs: u32) -> Duration {
    let t0 = Instant::now();
    let script = format!(
        "for i in $(seq {}); do [ \"$(cat /proc/{pid}/oom_score_adj)\" = '{want}' ] && exit 0; \
         sleep 0.05; done; cat /proc/{pid}/oom_score_adj; exit 1",
        secs * 20
    );
    let out = vm.ssh(&script);
    assert!(
        out.status.success(),
        "{}: sshd {pid} did not read {want} within {secs} s (reads {})",
        vm.name(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    t0.elapsed()
}

/// The oom_score_adj of every login session's sshd in the guest (`sshd: root...`).
fn session_adjs(vm: &Vm) -> Vec<i32> {
    vm.sh("for p in $(pgrep -f '^sshd: root'); do cat /proc/$p/oom_score_adj; done")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// A login session that stays open (`sleep 300` over ssh) until it is killed.
struct Session(Child);

impl Session {
    fn open(vm: &Vm) -> Session {
        Session(
            vm.ssh_command()
                .arg("exec sleep 300")
                .stdout(Stdio::null())
                .spawn()
                .expect("run ssh"),
        )
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_story_on_two_real_hosts() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let ctl = Controller::start(tmp.path());
    let mut steps = Steps::default();

    let bed = TestBed::prepare();
    let vms: Vec<Vm> = steps.run("boot web1 and web2", || {
        let mut vms: Vec<Vm> = HOSTS
            .iter()
            .map(|h| bed.start(VmConfig::new(h).vcpus(1).forward(7443, ctl.port())))
            .collect();
        for vm in &mut vms {
            let t = vm.wait_for_ssh();
            eprintln!("{}: boot to ssh {t:.1?}", vm.name());
        }
        vms
    });
    ctl.inventory(&vms.iter().collect::<Vec<_>>());

    steps.run("1a playbook --check on fresh VMs", || {
        let (counts, took) = ctl.playbook(&["--check"]);
        eprintln!("--check: {took:.1?}, {counts:?}");
        for c in &counts {
            assert_eq!(c["failed"], 0, "{c:?}");
        }
        for vm in &vms {
            // Check mode changes nothing: no agent yet.
            assert_ne!(vm.sh("systemctl is-active fleet-agent || true"), "active");
        }
    });

    steps.run("1b playbook, first run", || {
        let (counts, took) = ctl.playbook(&[]);
        eprintln!("first run: {took:.1?}, {counts:?}");
        for c in &counts {
            assert!(c["changed"] > 0 && c["failed"] == 0, "{c:?}");
        }
    });

    steps.run("1c the agents under systemd", || {
        for vm in &vms {
            // The real systemd runs the agent under its unit, as its own user, with the
            // capabilities the unit declares.
            assert_eq!(vm.sh("systemctl is-active fleet-agent"), "active");
            assert_eq!(
                vm.sh("systemctl show -p User --value fleet-agent"),
                "fleet-agent"
            );
            let caps_eff = vm.sh(
                "grep CapEff /proc/$(systemctl show -p MainPID --value fleet-agent)/status \
                 | cut -f2",
            );
            let eff = u64::from_str_radix(&caps_eff, 16).unwrap();
            // CAP_DAC_OVERRIDE 1, CAP_SYS_PTRACE 19, CAP_SYS_RESOURCE 24, CAP_SYSLOG 34.
            assert_eq!(
                eff,
                (1 << 1) | (1 << 19) | (1 << 24) | (1 << 34),
                "{}: {caps_eff}",
                vm.name()
            );
        }
        let web1 = &vms[0];
        let exposure = web1.sh("systemd-analyze security fleet-agent.service | tail -1");
        eprintln!("web1: systemd-analyze security fleet-agent.service: {exposure}");
        assert!(exposure.contains("Overall exposure level"), "{exposure}");
        // The collector runs on this machine; its unit is analysed offline in the guest.
        let unit =
            std::fs::read_to_string(workspace_path("deploy/systemd/fleet-collector.service"))
                .unwrap();
        let out = web1.ssh(&format!(
            "cat > /root/fleet-collector.service <<'EOF'\n{unit}EOF\n\
             systemd-analyze security --offline=true /root/fleet-collector.service | tail -1"
        ));
        eprintln!(
            "web1: systemd-analyze security --offline=true fleet-collector.service: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    });

    steps.run("1d both agents' data at the collector", || {
        wait_for(
            "web1 and web2 at the collector",
            Duration::from_secs(120),
            || {
                let ids = host_ids(&ctl.json("alice", &["hosts"])?);
                (ids.len() == 2).then_some(())
            },
        );
    });

    steps.run("1e playbook, second run", || {
        let (counts, took) = ctl.playbook(&[]);
        eprintln!("second run: {took:.1?}, {counts:?}");
        for c in &counts {
            assert_eq!((c["changed"], c["failed"]), (0, 0), "{c:?}");
        }
    });

    steps.run("2 hosts and sar over mutual TLS", || {
        let hosts = ctl.json("alice", &["hosts"]).expect("fleetctl hosts");
        assert_eq!(host_ids(&hosts), BTreeSet::from(HOSTS.map(String::from)));
        for h in hosts.as_array().unwrap() {
            assert_eq!(h["connected"], true, "{h}");
        }
        let table = ctl.ok("alice", &["hosts"]);
        assert!(table.contains("web1") && table.contains("web2"), "{table}");
        // fleetctl sar shows one activity per call (`-u -r` is refused by its arguments): -u,
        // then -r.
        for (flag, column) in [("-u", "%user"), ("-r", "%memused")] {
            let sar = wait_for(
                &format!("sar {flag} rows of both"),
                Duration::from_secs(30),
                || {
                    let v = ctl.json(
                        "alice",
                        &["sar", flag, "--cluster", "prod", "--since", "10m"],
                    )?;
                    (host_ids(&v).len() == 2).then_some(v)
                },
            );
            let rows = sar.as_array().unwrap();
            for h in HOSTS {
                assert!(
                    rows.iter()
                        .any(|r| r["host_id"] == h && r[column].is_number()),
                    "no {column} of {h} in {sar}"
                );
            }
        }
    });

    steps.run("3 protect-sshd", || {
        let policy = workspace_path("deploy/policies/protect-sshd.yaml");
        let policy = policy.to_str().unwrap();
        // OpenSSH sets its own listener to -1000 at start. Restarted without CAP_SYS_RESOURCE
        // in its bounding set (a drop-in, kept for the rest of the story), its write fails: the
        // listener stays at 0 (checked 2 s after the restart, no policy yet), so every -1000 it
        // reads from here on is the policy's doing.
        let mut before = Vec::new();
        for vm in &vms {
            vm.sh("mkdir -p /etc/systemd/system/ssh.service.d && \
                 printf '[Service]\\nCapabilityBoundingSet=~CAP_SYS_RESOURCE\\n' \
                   > /etc/systemd/system/ssh.service.d/no-oom-adjust.conf && \
                 systemctl daemon-reload && systemctl restart ssh && sleep 2");
            let pid = listener(vm);
            assert_eq!(adj(vm, pid), 0, "{}: sshd set itself", vm.name());
            before.push(pid);
        }
        let t = Instant::now();
        ctl.ok(
            "olga",
            &["policy", "apply", "-f", policy, "--cluster", "prod"],
        );
        for (vm, pid) in vms.iter().zip(&before) {
            wait_adj(vm, *pid, -1000, 10);
            eprintln!(
                "{}: listener {pid} at -1000 {:.1?} after `fleetctl policy apply` started",
                vm.name(),
                t.elapsed()
            );
        }
        // A login session's sshd is not the listener: it keeps its own value, also after the
        // agent's next passes.
        let sessions: Vec<Session> = vms.iter().map(Session::open).collect();
        std::thread::sleep(Duration::from_secs(3));
        for vm in &vms {
            let adjs = session_adjs(vm);
            eprintln!("{}: login sessions' sshd oom_score_adj {adjs:?}", vm.name());
            assert!(adjs.len() >= 2, "{}: {adjs:?}", vm.name());
            assert!(adjs.iter().all(|a| *a != -1000), "{}: {adjs:?}", vm.name());
        }
        drop(sessions);

        // A restarted sshd gets -1000 from the agent, timed from the listener's start (its
        // start time in /proc/PID/stat against /proc/uptime, 10 ms ticks) to the first read of
        // -1000 (polled every 10 ms in the guest).
        for vm in &vms {
            let out = vm.sh(
                "systemctl restart ssh && p=$(systemctl show -p MainPID --value ssh) && \
                 for i in $(seq 200); do \
                   [ \"$(cat /proc/$p/oom_score_adj)\" = -1000 ] && break; sleep 0.01; done; \
                 echo $p $(cat /proc/$p/oom_score_adj) $(cut -d' ' -f1 /proc/uptime) \
                   $(cut -d' ' -f22 /proc/$p/stat) $(getconf CLK_TCK)",
            );
            let f: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(f.len(), 5, "{out}");
            assert_eq!(f[1], "-1000", "{}: restarted sshd {out}", vm.name());
            let now: f64 = f[2].parse().unwrap();
            let started = f[3].parse::<f64>().unwrap() / f[4].parse::<f64>().unwrap();
            let ms = ((now - started) * 1000.0).round();
            eprintln!(
                "{}: restarted sshd {} at -1000 {ms} ms after it started",
                vm.name(),
                f[0]
            );
            assert!(ms < 1000.0, "{}: -1000 after {ms} ms", vm.name());
        }

        // Version 2 (-500), then rollback to version 1: -1000 again.
        let v2 = std::fs::read_to_string(policy)
            .unwrap()
            .replace("oom_score_adj: -1000", "oom_score_adj: -500");
        let v2_file = tmp.path().join("protect-sshd-2.yaml");
        std::fs::write(&v2_file, v2).unwrap();
        ctl.ok(
            "olga",
            &["policy", "apply", "-f", v2_file.to_str().unwrap()],
        );
        for vm in &vms {
            wait_adj(vm, listener(vm), -500, 10);
        }
        let t = Instant::now();
        ctl.ok("olga", &["policy", "rollback", "protect-sshd"]);
        for vm in &vms {
            wait_adj(vm, listener(vm), -1000, 10);
            eprintln!("{}: rolled back to -1000 in {:.1?}", vm.name(), t.elapsed());
        }
    });

    steps.run("4 a cgroup v2 OOM kill in web1", || {
        let web1 = &vms[0];
        let sshd = listener(web1);
        // A bounded hog: 4 MiB at a time up to 2 GiB, in a unit limited to 64 MiB, no swap.
        let out = web1.ssh(
            "systemd-run --unit=fleet-hog --wait -p MemoryMax=64M -p MemorySwapMax=0 \
             /usr/bin/python3 -c 'b = []\nfor i in range(512): b.append(bytearray(4 << 20))'",
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "the hog must be killed: {said}");
        assert!(said.contains("oom-kill"), "{said}");
        let t = Instant::now();
        let kill = wait_for("the kill in fleetctl oom", Duration::from_secs(60), || {
            let v = ctl.json("alice", &["oom", "--cluster", "prod", "--since", "1h"])?;
            v.as_array()?
                .iter()
                .find(|k| k["host_id"] == "web1" && k["victim_comm"] == "python3")
                .cloned()
        });
        eprintln!(
            "web1: the kill in `fleetctl oom` {:.1?} after the hog ended: {kill}",
            t.elapsed()
        );
        assert_eq!(kill["kind"], "kill", "{kill}");
        assert_eq!(kill["global_oom"], false, "{kill}");
        let memcg = kill["task_memcg"]
            .as_str()
            .or(kill["oom_memcg"].as_str())
            .unwrap_or("");
        assert_eq!(memcg, "/system.slice/fleet-hog.service", "{kill}");
        let id = kill["id"].as_str().unwrap();
        let detail = ctl
            .json("alice", &["oom", "show", id])
            .expect("fleetctl oom show");
        assert_eq!(detail["kill"]["kind"], "kill", "{detail}");
        assert!(
            detail["kill"]["tasks"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
            "{detail}"
        );
        assert!(!detail["memory"].as_array().unwrap().is_empty(), "{detail}");
        // The protected sshd lives on: the same listener, still -1000, and a new login works.
        assert_eq!(web1.sh("systemctl is-active ssh"), "active");
        assert_eq!(listener(web1), sshd);
        assert_eq!(adj(web1, sshd), -1000);
        assert_eq!(web1.sh("echo logged in"), "logged in");
    });

    drop(steps);
    eprintln!("test total {:.1?}", t0.elapsed());
}
