//! Process identity for OOM policies, each attack tried for real against the real collector,
//! agent and fleetctl, then shown refused:
//!
//! - an unprivileged user (`setpriv` to nobody) in a user and mount namespace of their own
//!   (`unshare -Urm`) bind-mounts a binary of theirs over `/usr/sbin/sshd` and runs it as sshd:
//!   from the host its exe, comm and command line read as sshd. The shipped
//!   `deploy/policies/protect-sshd.yaml` protects the real sshd on loopback and not the impostor.
//! - a process in a cgroup whose path merely contains `ssh.service` (under no slice, or under a
//!   user manager) is not the system manager's `ssh.service`; a deeper cgroup inside a unit is
//!   not the unit either; the unit's own cgroup under `system.slice` is.
//! - a value below 0 on claims alone (cmdline): fleetctl refuses it before sending, the collector
//!   refuses it when asked directly, and with `--force` the output names the risk.
//!
//! This machine has no CAP_SYS_RESOURCE, so the policies set positive values (a value below 0
//! would be refused by the kernel); -1000 on real hosts is a later issue's. The values are what
//! the agent writes; matching is the same whatever the value.

mod policy_common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_policy::{parse_policy, PolicyDoc};
use fleet_proto::v1::policies_client::PoliciesClient;
use fleet_proto::v1::{ApplyPolicyRequest, PolicyName};
use fleet_tests::procs::{comm, oom_score_adj as adj, with_oom_score_adj};
use fleet_tests::sshd::start_sshd;
use fleet_tests::wait::poll;
use fleet_tests::{caps, fleetctl, fleetctl_json, start_agent, wait_for, Collector, Reaped};
use policy_common::{ok, write_policy as write};
use serde_json::Value;

/// The value every test process starts with.
const BEFORE: i32 = 600;

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// The pids a dry run of `file` would change on the only host, once the agent's process list
/// is there.
fn planned(url: &str, file: &Path, extra: &[&str]) -> Vec<u64> {
    let mut args = vec!["policy", "apply", "-f", file.to_str().unwrap(), "--dry-run"];
    args.extend_from_slice(extra);
    let plan = wait_for("the agent's process list", Duration::from_secs(15), || {
        let v = fleetctl_json(url, &args);
        (!v["hosts"][0]["processes_time"].is_null()).then_some(v)
    });
    let mut pids: Vec<u64> = plan["hosts"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    pids
}

/// `fleetctl policy status NAME` once the host reports version `version`: (matched, set).
fn counts(url: &str, name: &str, version: u64) -> (u64, u64) {
    wait_for(
        &format!("{name} version {version} reported"),
        Duration::from_secs(10),
        || {
            let v = fleetctl_json(url, &["policy", "status", name]);
            let s = &v["hosts"][0]["status"];
            (v["hosts"][0]["state"] == "enforced" && s["version"] == version)
                .then(|| (s["matched"].as_u64().unwrap(), s["set"].as_u64().unwrap()))
        },
    )
}

fn wait_adj(pid: u32, value: i32, what: &str) {
    wait_for(what, Duration::from_secs(5), || {
        (adj(pid) == value).then_some(())
    });
}

/// What `/proc/PID/LINK` reads.
fn link(pid: u32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/{name}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The shipped `deploy/policies/protect-sshd.yaml` with two keys changed: the command line
/// narrowed to this test's sshd configs under `dir` (so the test's agent touches no other sshd
/// of this machine; a command line only narrows), and the value (see the module doc).
fn shipped_protect_sshd(dir: &Path, value: i32) -> PathBuf {
    let shipped = include_str!("../../deploy/policies/protect-sshd.yaml");
    let policy = parse_policy(shipped, "protect-sshd.yaml").unwrap();
    assert_eq!(policy.matcher.exe.as_deref(), Some("/usr/sbin/sshd"));
    let mut doc: PolicyDoc = policy.doc().clone();
    doc.matcher.cmdline = Some(format!("{}/sshd_config_", dir.display()));
    doc.oom_score_adj = Some(value);
    // JSON is YAML: the policy parser reads it as the operator's document.
    write(
        dir,
        "protect-sshd.yaml",
        &serde_json::to_string_pretty(&doc).unwrap(),
    )
}

/// Starts, as nobody, in a user and mount namespace of its own, `fake` bind-mounted over
/// /usr/sbin/sshd and run as `/usr/sbin/sshd` with an sshd-like argv[0] naming a config under
/// `dir`; returns once it runs as that.
fn impostor(fake: &Path, dir: &Path, tag: &str) -> Reaped {
    let argv0 = format!(
        "/usr/sbin/sshd -D -e -f {}/sshd_config_{tag}",
        dir.display()
    );
    let script = format!(
        "mount --bind {} /usr/sbin/sshd && exec -a '{argv0}' /usr/sbin/sshd 300",
        fake.display()
    );
    let child = Reaped(
        with_oom_score_adj(
            Command::new("setpriv")
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .args(["unshare", "-Urm", "bash", "-c", &script])
                .stderr(Stdio::null()),
            BEFORE,
        )
        .spawn()
        .expect("setpriv (util-linux)"),
    );
    let pid = child.pid();
    wait_for(
        "the impostor to run as sshd",
        Duration::from_secs(10),
        || (comm(pid) == "sshd" && link(pid, "exe") == "/usr/sbin/sshd").then_some(()),
    );
    child
}

/// Unprivileged user and mount namespaces, as the impostor needs.
fn user_namespaces() -> Result<(), String> {
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args(["unshare", "-Urm", "true"])
        .output()
        .map_err(|e| format!("setpriv (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "an unprivileged user cannot make user and mount namespaces here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn a_mount_namespace_impostor_is_not_protected() {
    caps::require(caps::root());
    caps::require(user_namespaces());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // nobody must reach the impostor's binary (and the shell its script names).
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fake = dir.join("not-sshd");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    const VALUE: i32 = 100;
    let file = shipped_protect_sshd(dir, VALUE);
    let cluster = format!("ident-{}", unique());

    let real = start_sshd(dir, "real", BEFORE);
    let fake_sshd = impostor(&fake, dir, "impostor");
    let (pid, real_pid) = (fake_sshd.pid(), real.pid());

    // First, the attack works as described: from the host the impostor's exe, comm and command
    // line read as sshd, and by that text the policy's match would take it.
    let policy = parse_policy(&std::fs::read_to_string(&file).unwrap(), "p").unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert_eq!(link(pid, "exe"), "/usr/sbin/sshd");
    assert_eq!(comm(pid), "sshd");
    assert!(
        policy.matcher.cmdline.as_ref().unwrap().is_match(&cmdline),
        "{cmdline}"
    );
    assert!(cmdline.starts_with("/usr/sbin/sshd -D"), "{cmdline}");
    assert_eq!(
        policy.matcher.exe.as_deref(),
        Some(link(pid, "exe").as_str())
    );
    // ... while it is not what it says: nobody's, in another mount namespace, another file.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nUid:\t65534\t"), "{status}");
    assert_ne!(link(pid, "ns/mnt"), link(std::process::id(), "ns/mnt"));
    use std::os::unix::fs::MetadataExt;
    let image = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    let host_sshd = std::fs::metadata("/usr/sbin/sshd").unwrap();
    assert_ne!(
        (image.dev(), image.ino()),
        (host_sshd.dev(), host_sshd.ino())
    );

    let collector = Collector::start(&dir.join("db"), "127.0.0.1:0", &[]);
    let url = collector.url();
    let _agent = start_agent(&url, &dir.join("agent"), "ident-sshd-host", &cluster, &[]);

    // The dry run (the collector, from the agent's process list) names the real sshd only.
    assert_eq!(
        planned(&url, &file, &["--cluster", &cluster]),
        [u64::from(real_pid)]
    );

    ok(
        &fleetctl(
            &url,
            &[
                "policy",
                "apply",
                "-f",
                file.to_str().unwrap(),
                "--cluster",
                &cluster,
            ],
        ),
        "policy apply",
    );
    wait_adj(real_pid, VALUE, "the real sshd protected");
    assert_eq!(counts(&url, "protect-sshd", 1), (1, 1));
    assert_eq!(adj(pid), BEFORE, "the impostor is not protected");

    // Started after the policy (the agent's tick for new processes): an impostor, then a real
    // sshd. Once the later real one has its value, the agent has seen the impostor.
    let late_fake = impostor(&fake, dir, "late-impostor");
    let late_real = start_sshd(dir, "late", BEFORE);
    wait_adj(late_real.pid(), VALUE, "the late real sshd protected");
    assert_eq!(
        adj(late_fake.pid()),
        BEFORE,
        "the late impostor is not protected"
    );
    assert_eq!(adj(pid), BEFORE);
    // The policy holds the two real sshds and neither impostor. (Not a count of matches: the
    // readiness probe's connection makes a short-lived sshd child that matches too, and may be
    // counted before the agent sees it exit.)
    let v = fleetctl_json(&url, &["policy", "status", "protect-sshd"]);
    let status = &v["hosts"][0]["status"];
    let held: Vec<u64> = status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["oom_score_adj"] == VALUE)
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    for want in [real_pid, late_real.pid()] {
        assert!(held.contains(&u64::from(want)), "{want} not held: {v}");
    }
    for impostor in [pid, late_fake.pid()] {
        let named = |list: &str| {
            status[list]
                .as_array()
                .is_some_and(|l| l.iter().any(|p| p["pid"] == impostor))
        };
        assert!(
            !named("processes") && !named("failed"),
            "impostor {impostor} in {v}"
        );
    }
}

/// A cgroup in the v1 `name=systemd` hierarchy this test makes, and the processes in it; the
/// processes are ended and the cgroups removed (deepest first) on drop.
struct Cgroups {
    root: PathBuf,
    made: Vec<PathBuf>,
    children: Vec<Reaped>,
}

impl Cgroups {
    fn new() -> Cgroups {
        let root = PathBuf::from("/sys/fs/cgroup/systemd");
        if !root.join("cgroup.procs").exists() {
            caps::require::<()>(Err(format!(
                "no cgroup v1 name=systemd hierarchy at {}",
                root.display()
            )));
        }
        Cgroups {
            root,
            made: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Makes `path` (relative to the hierarchy's root), each missing component recorded for
    /// removal, and starts `sleep` there with argv[0] `marker`; returns its pid.
    fn spawn_in(&mut self, path: &str, marker: &str) -> u32 {
        let mut dir = self.root.clone();
        for component in path.split('/') {
            dir.push(component);
            if std::fs::create_dir(&dir).is_ok() {
                self.made.push(dir.clone());
            }
        }
        let procs = std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
            .unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg0(marker).arg("300").stdout(Stdio::null());
        with_oom_score_adj(&mut cmd, BEFORE);
        // SAFETY: between fork and exec only async-signal-safe calls (open, write, close) on
        // memory prepared before the fork. Writing 0 to cgroup.procs moves the writer itself.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if n < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = Reaped(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("start sleep in {path}: {e}")),
        );
        let pid = child.pid();
        wait_for("sleep's argv", Duration::from_secs(5), || {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .filter(|c| c.starts_with(marker.as_bytes()))
        });
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(
            cgroup.contains(&format!("name=systemd:/{path}\n")),
            "{cgroup}"
        );
        self.children.push(child);
        pid
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.children.clear();
        for dir in self.made.iter().rev() {
            // The kernel refuses while the cgroup still has (dying) processes.
            let _ = poll(Duration::from_secs(5), Duration::from_millis(20), || {
                std::fs::remove_dir(dir).ok()
            });
        }
    }
}

#[test]
fn unit_is_the_system_managers_own_cgroup() {
    caps::require(caps::root());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = format!("fleet-test-{}", unique());
    let marker = format!("fleet-unit-{}", unique());
    let mut cg = Cgroups::new();
    // Paths that merely contain ssh.service: under no slice, and under a user manager.
    let loose = cg.spawn_in(&format!("{n}/ssh.service"), &marker);
    let user = cg.spawn_in(&format!("{n}.slice/user@1000.service/ssh.service"), &marker);
    // The system manager's unit, and a delegated cgroup inside it.
    let unit = format!("{n}.service");
    let own = cg.spawn_in(&format!("system.slice/{unit}"), &marker);
    let deeper = cg.spawn_in(&format!("system.slice/{unit}/payload"), &marker);

    let collector = Collector::start(&dir.join("db"), "127.0.0.1:0", &[]);
    let url = collector.url();
    let _agent = start_agent(&url, &dir.join("agent"), "ident-unit-host", "prod", &[]);
    let doc = |name: &str, unit: &str, value: i32| {
        write(
            dir,
            &format!("{name}.yaml"),
            &format!(
                "name: {name}\ntarget: {{}}\nmatch: {{unit: {unit}, cmdline: '^{marker} '}}\noom_score_adj: {value}\n"
            ),
        )
    };
    let ssh = doc("unit-ssh", "ssh.service", 250);
    let mine = doc("unit-mine", &unit, 260);

    // The collector's dry run and the agent agree.
    assert_eq!(planned(&url, &ssh, &[]), Vec::<u64>::new());
    assert_eq!(planned(&url, &mine, &[]), [u64::from(own)]);
    for file in [&ssh, &mine] {
        ok(
            &fleetctl(&url, &["policy", "apply", "-f", file.to_str().unwrap()]),
            "policy apply",
        );
    }
    wait_adj(own, 260, "the unit's process");
    assert_eq!(counts(&url, "unit-mine", 1), (1, 1));
    assert_eq!(counts(&url, "unit-ssh", 1), (0, 0));
    for (pid, what) in [
        (loose, "no slice"),
        (user, "user manager"),
        (deeper, "delegated"),
    ] {
        assert_eq!(adj(pid), BEFORE, "{what}: not the unit");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn claims_alone_below_zero_are_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let marker = format!("fleet-weak-{}", unique());
    let sleeper = Reaped(
        with_oom_score_adj(Command::new("sleep").arg0(&marker).arg("300"), BEFORE)
            .spawn()
            .unwrap(),
    );
    let text =
        format!("name: weak\ntarget: {{}}\nmatch: {{cmdline: '^{marker} '}}\noom_score_adj: -5\n");
    let file = write(dir, "weak.yaml", &text);
    let file = file.to_str().unwrap();
    let collector = Collector::start(&dir.join("db"), "127.0.0.1:0", &[]);
    let url = collector.url();
    let _agent = start_agent(&url, &dir.join("agent"), "ident-weak-host", "prod", &[]);
    let refusal_words = "matched only by cmdline, which any process can claim";

    // fleetctl refuses it before contacting anything: a collector that is not there.
    let out = fleetctl("http://127.0.0.1:1", &["policy", "apply", "-f", file]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("weak_identity") && stdout.contains(refusal_words),
        "{stdout}"
    );
    assert!(stdout.contains("use --force to apply anyway"), "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The collector refuses it too when asked directly, and stores nothing.
    let change = rt().block_on(async {
        let mut c = PoliciesClient::connect(url.clone()).await.unwrap();
        let change = c
            .apply_policy(ApplyPolicyRequest {
                document: text.clone(),
                origin: "weak.yaml".into(),
                ..ApplyPolicyRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        let status = c
            .get_policy_status(PolicyName {
                name: "weak".into(),
            })
            .await;
        assert_eq!(status.unwrap_err().code(), tonic::Code::NotFound);
        change
    });
    assert!(change.policy.is_none());
    assert_eq!(change.refusals.len(), 1, "{change:?}");
    assert_eq!(change.refusals[0].kind, "weak_identity");
    assert_eq!(change.refusals[0].host_id, "");
    assert!(change.refusals[0].reason.contains(refusal_words));

    // Forced: stored, and the output names the risk it was applied over.
    let out = ok(
        &fleetctl(&url, &["policy", "apply", "-f", file, "--force"]),
        "--force",
    );
    assert!(out.contains("(forced)"), "{out}");
    assert!(
        out.contains("applied over these refusals (--force):") && out.contains(refusal_words),
        "{out}"
    );
    let out = fleetctl(
        &url,
        &["-o", "json", "policy", "apply", "-f", file, "--force"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["refusals"][0]["kind"], "weak_identity", "{v}");
    // The agent takes the process (set where it may lower the value, else the kernel's refusal).
    let st = wait_for(
        "the forced policy reported",
        Duration::from_secs(10),
        || {
            let v = fleetctl_json(&url, &["policy", "status", "weak"]);
            let s = v["hosts"][0]["status"].clone();
            (s["matched"] == 1).then_some(s)
        },
    );
    let set = st["set"] == 1;
    let denied =
        st["failed"][0]["reason"] == "permission denied" && st["failed"][0]["pid"] == sleeper.pid();
    assert!(set || denied, "{st}");
}
