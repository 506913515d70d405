//! Story step 1 of issue 13, on a real host: `ansible-playbook deploy/ansible/site.yml` over real
//! SSH against a fresh Debian 12 VM (`web1`, cluster `prod`) installs the agent from nothing
//! (its user, certificate, config and hardened unit, started by the VM's systemd), the agent
//! streams to a real collector on this machine over mutual TLS (through the VM's one forward,
//! `10.0.2.100:7443`, for which the collector's certificate is made), and a second run changes
//! nothing.
//!
//! The collector runs here, started by the test with the PKI's certificates (this machine has no
//! systemd to run its unit); the CA is made first (`fleetctl certs init --san 10.0.2.100`), as an
//! operator would, so the playbook has only the `agents` play to run.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet_tests::ansible::recap;
use fleet_tests::fleetctl::fleetctl_tls;
use fleet_tests::paths::workspace_path;
use fleet_tests::vm::{TestBed, VmConfig, GUEST_FWD_ADDR};
use fleet_tests::{bin, caps, wait_for, Collector, Pki};

#[test]
fn the_playbook_deploys_the_agent_to_a_real_host_over_ssh() {
    let t0 = Instant::now();
    let ansible_playbook = caps::require(caps::ansible_playbook());
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init_with(&tmp.path().join("pki"), &["--san", GUEST_FWD_ADDR]);
    pki.issue("viewer", "alice", &[]);
    let collector = Collector::spawn(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &[
            &pki.tls_args("collector")[..],
            &["--tls-ca".to_string(), pki.ca()][..],
        ]
        .concat()
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let port: u16 = collector.addr.rsplit(':').next().unwrap().parse().unwrap();

    let bed = TestBed::prepare();
    let vm = bed.boot(VmConfig::new("web1").forward(7443, port));
    eprintln!("web1: boot to ssh {:.1?}", vm.boot_time.unwrap());

    // The controller's binaries: a snapshot of this build.
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    for name in ["fleet-agent", "fleet-collector", "fleetctl"] {
        std::fs::copy(bin(name), bin_dir.join(name)).unwrap();
    }
    std::fs::write(
        tmp.path().join("inventory.ini"),
        format!(
            "[prod]\nweb1 {} ansible_python_interpreter=/usr/bin/python3\n\n\
             [prod:vars]\nfleet_cluster=prod\n\n[agents:children]\nprod\n\n[collector]\n",
            vm.ansible_vars()
        ),
    )
    .unwrap();
    let vars = serde_json::json!({
        "fleet_binaries_dir": bin_dir,
        "fleet_pki_dir": pki.dir,
        "fleet_collector_host": GUEST_FWD_ADDR,
        "fleet_collector_port": 7443,
        "fleet_interval": "1s",
    });
    std::fs::write(tmp.path().join("vars.json"), vars.to_string()).unwrap();
    // An empty config: neither /etc/ansible/ansible.cfg nor ~/.ansible.cfg applies.
    std::fs::write(tmp.path().join("ansible.cfg"), "").unwrap();
    let playbook = |extra: &[&str]| -> (Output, Duration) {
        let started = Instant::now();
        let out = Command::new(&ansible_playbook)
            .current_dir(tmp.path())
            .args(["-i", "inventory.ini", "-e", "@vars.json"])
            .arg(workspace_path("deploy/ansible/site.yml"))
            .args(extra)
            .env("ANSIBLE_CONFIG", tmp.path().join("ansible.cfg"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env("ANSIBLE_LOCAL_TEMP", tmp.path().join("ansible-tmp"))
            .stdin(Stdio::null())
            .output()
            .expect("run ansible-playbook");
        assert!(
            out.status.success(),
            "ansible-playbook {extra:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, started.elapsed())
    };

    let (out, first) = playbook(&[]);
    let counts = recap(&String::from_utf8_lossy(&out.stdout), "web1");
    eprintln!("first run: {first:.1?}, {counts:?}");
    assert!(counts["changed"] > 0 && counts["failed"] == 0, "{counts:?}");

    // The real systemd runs the agent under its unit, as its own user, with the capabilities
    // the unit declares.
    assert_eq!(vm.sh("systemctl is-active fleet-agent"), "active");
    assert_eq!(
        vm.sh("systemctl show -p User --value fleet-agent"),
        "fleet-agent"
    );
    let caps_eff = vm
        .sh("grep CapEff /proc/$(systemctl show -p MainPID --value fleet-agent)/status | cut -f2");
    let eff = u64::from_str_radix(&caps_eff, 16).unwrap();
    // CAP_DAC_OVERRIDE 1, CAP_SYS_PTRACE 19, CAP_SYS_RESOURCE 24, CAP_SYSLOG 34: nothing else.
    assert_eq!(
        eff,
        (1 << 1) | (1 << 19) | (1 << 24) | (1 << 34),
        "{caps_eff}"
    );

    // Its data reaches the collector here over mutual TLS, through the forward.
    let url = format!("https://{}", collector.addr);
    wait_for("web1 at the collector", Duration::from_secs(120), || {
        let out = fleetctl_tls(&url, &pki.ca(), Some((&pki, "alice")), &["hosts"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("web1")
            .then_some(())
    });

    let (out, second) = playbook(&[]);
    let counts = recap(&String::from_utf8_lossy(&out.stdout), "web1");
    eprintln!("second run: {second:.1?}, {counts:?}");
    assert_eq!((counts["changed"], counts["failed"]), (0, 0), "{counts:?}");
    eprintln!("test total {:.1?}", t0.elapsed());
}
