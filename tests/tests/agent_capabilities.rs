//! The agent's capabilities, tried for real: what deploy/systemd/fleet-agent.service says of each
//! policy capability, checked with the real agent as an unprivileged user (nobody) holding only
//! the capabilities under test, ambient and bounding (`setpriv`, as the unit's
//! AmbientCapabilities and CapabilityBoundingSet do), enforcing a policy on a root-owned process:
//!
//! - none (a host with `fleet_agent_enforce_policies: false`): the write to another user's
//!   process is refused, and the agent logs it and reports it ("permission denied");
//! - CAP_SYS_PTRACE alone, or with CAP_FOWNER: matched by `exe:`, write refused, reported;
//! - CAP_DAC_OVERRIDE alone: the process's exe cannot be read, so an `exe:` rule leaves it alone,
//!   and the policy reports that it could not check it (not a silent "nothing matched");
//! - CAP_DAC_OVERRIDE and CAP_SYS_PTRACE (the unit's policy set without CAP_SYS_RESOURCE):
//!   matched by `exe:` and set.
//!
//! CAP_SYS_RESOURCE (values below oom_score_adj_min, such as -1000) is missing on this machine
//! (containers drop it): the policies here set a positive value (100), which needs no
//! CAP_SYS_RESOURCE; the -1000 paths are for real hosts.
//!
//! Needs root (to change users) and `setpriv` (util-linux); skipped with the reason otherwise.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fleet_tests::procs::{oom_score_adj as adj, sleeper};
use fleet_tests::*;

/// The unprivileged user the agents run as.
const NOBODY: u32 = 65534;
/// What every policy here sets.
const VALUE: i32 = 100;

/// What a case's policy does to its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Set to [`VALUE`].
    Set,
    /// Matched, the write refused: reported as failed, "permission denied".
    Refused,
    /// Not matched (its exe is unreadable): left as it was, and reported as such.
    Untouched,
}

struct Case {
    name: &'static str,
    /// For setpriv: `+dac_override,+sys_ptrace`, or "" for none.
    caps: &'static str,
    /// The policy matches `exe:` (and the process's marker), or the marker alone.
    by_exe: bool,
    outcome: Outcome,
}

const CASES: [Case; 5] = [
    Case {
        name: "none",
        caps: "",
        by_exe: false,
        outcome: Outcome::Refused,
    },
    Case {
        name: "ptrace",
        caps: "+sys_ptrace",
        by_exe: true,
        outcome: Outcome::Refused,
    },
    Case {
        name: "fowner-ptrace",
        caps: "+fowner,+sys_ptrace",
        by_exe: true,
        outcome: Outcome::Refused,
    },
    Case {
        name: "dac",
        caps: "+dac_override",
        by_exe: true,
        outcome: Outcome::Untouched,
    },
    Case {
        name: "dac-ptrace",
        caps: "+dac_override,+sys_ptrace",
        by_exe: true,
        outcome: Outcome::Set,
    },
];

/// `setpriv` arguments that run a program as nobody with exactly `caps` (inheritable, ambient,
/// bounding) and no new privileges.
fn as_nobody(caps: &str) -> Vec<String> {
    let set = format!("-all{}", if caps.is_empty() { "" } else { "," }) + caps;
    vec![
        "setpriv".into(),
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
        format!("--inh-caps={set}"),
        format!("--ambient-caps={set}"),
        format!("--bounding-set={set}"),
        "--no-new-privs".into(),
        "--".into(),
    ]
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

#[test]
fn each_policy_capability_is_needed_and_the_units_set_is_enough() {
    let test = "each_policy_capability_is_needed_and_the_units_set_is_enough";
    skip_unless!(test, caps::root());
    skip_unless!(test, caps::program("setpriv", "util-linux"));
    let sleep_exe =
        std::fs::canonicalize(skip_unless!(test, caps::program("sleep", "coreutils"))).unwrap();
    let agent = bin("fleet-agent");
    let wrapper = as_nobody("");
    let probe = Command::new(&wrapper[0])
        .args(&wrapper[1..])
        .arg(&agent)
        .arg("--help")
        .output()
        .unwrap();
    skip_unless!(
        test,
        probe.status.success().then_some(()).ok_or_else(|| format!(
            "{} does not run as nobody: {}",
            agent.display(),
            String::from_utf8_lossy(&probe.stderr)
        ))
    );

    let tmp = tempfile::tempdir().unwrap();
    // The agents (nobody) reach their state directories through it.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();

    let mut running = Vec::new();
    for case in &CASES {
        let marker = format!("fleet-caps-{}-{}", case.name, std::process::id());
        let process = sleeper(&marker, 0); // root's, as the test runs as root
        let state = tmp.path().join(case.name);
        std::fs::create_dir(&state).unwrap();
        chown_nobody(&state);
        let wrapper = as_nobody(case.caps);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let host_id = format!("caps-{}", case.name);
        let how = AgentAs {
            hostname: host_id.as_ref(),
            wrapper: &wrapper,
        };
        let agent = spawn_agent_as(
            how,
            &url,
            &state,
            &host_id,
            &host_id,
            &["--insecure", "--no-kmsg"],
        );
        let exe = if case.by_exe {
            format!("  exe: {}\n", sleep_exe.display())
        } else {
            String::new()
        };
        let policy = format!(
            "name: {host_id}\ntarget: {{cluster: {host_id}}}\nmatch:\n{exe}  cmdline: '^{marker} '\n\
             oom_score_adj: {VALUE}\n"
        );
        let file = tmp.path().join(format!("{host_id}.yaml"));
        std::fs::write(&file, policy).unwrap();
        running.push((case, process, agent, host_id, file));
    }
    for (_, _, _, host_id, _) in &running {
        wait_for_batches(&url, host_id, 1);
    }
    for (_, _, _, _, file) in &running {
        let out = fleetctl(&url, &["policy", "apply", "-f", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    for (case, process, agent, host_id, _) in &mut running {
        let pid = process.pid();
        // The host's report of the policy's current version.
        let status = wait_for(
            &format!("{host_id}'s report"),
            Duration::from_secs(20),
            || {
                assert!(agent.running(), "{}", agent.log_text());
                let v = try_fleetctl_json(&url, &["policy", "status", host_id])?;
                let host = v["hosts"].as_array()?.first()?.clone();
                (host["state"] == "enforced").then_some(host["status"].clone())
            },
        );
        eprintln!(
            "{} ({}): {status}",
            case.name,
            if case.caps.is_empty() {
                "no capability"
            } else {
                case.caps
            }
        );
        let failed: Vec<(u64, &str)> = status["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["pid"].as_u64().unwrap(), f["reason"].as_str().unwrap()))
            .collect();
        match case.outcome {
            Outcome::Set => {
                assert_eq!(adj(pid), VALUE, "{}", case.name);
                assert_eq!(
                    (status["matched"].as_u64(), status["set"].as_u64()),
                    (Some(1), Some(1))
                );
                assert!(failed.is_empty(), "{failed:?}");
            }
            Outcome::Refused => {
                assert_eq!(adj(pid), 0, "{}", case.name);
                assert_eq!(
                    failed,
                    [(u64::from(pid), "permission denied")],
                    "{}",
                    case.name
                );
                let log = agent.log_text();
                assert!(
                    log.contains("cannot set oom_score_adj") && log.contains("permission denied"),
                    "{}: the agent's log says nothing of the refusal:\n{log}",
                    case.name
                );
            }
            Outcome::Untouched => {
                assert_eq!(adj(pid), 0, "{}", case.name);
                assert_eq!(
                    (status["matched"].as_u64(), status["set"].as_u64()),
                    (Some(0), Some(0)),
                    "{}",
                    case.name
                );
                assert_eq!(failed.len(), 1, "{}: {failed:?}", case.name);
                assert_eq!(failed[0].0, u64::from(pid), "{}", case.name);
                assert!(
                    failed[0].1.contains("its executable cannot be read")
                        && failed[0].1.contains("CAP_SYS_PTRACE"),
                    "{}: {failed:?}",
                    case.name
                );
            }
        }
    }
    // Each agent really ran as nobody with only its capabilities.
    for (case, _, agent, _, _) in &running {
        let st = std::fs::read_to_string(format!("/proc/{}/status", agent.child.id())).unwrap();
        let field = |name: &str| {
            st.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .trim()
                .to_owned()
        };
        assert!(field("Uid:").starts_with(&NOBODY.to_string()), "{st}");
        let want = case.caps.matches('+').count();
        let eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
        assert_eq!(
            eff.count_ones() as usize,
            want,
            "{}: CapEff {eff:x}",
            case.name
        );
    }
}
