use std::collections::{BTreeMap, HashMap};

use super::*;

/// A process of the host's mount namespace running the host's `/usr/bin/COMM`.
fn proc(pid: u32, ppid: u32, comm: &str) -> ProcessInfo {
    ProcessInfo {
        pid,
        ppid,
        comm: comm.into(),
        exe: Some(format!("/usr/bin/{comm}")),
        exe_at_path: true,
        cmdline: format!("/usr/bin/{comm}"),
        ..ProcessInfo::default()
    }
}

fn policy(text: &str) -> Policy {
    parse_policy(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str, origin: &str) -> String {
    parse_policy(text, origin).unwrap_err().to_string()
}

#[test]
fn example_in_deploy_parses() {
    let p = parse_policy(
        include_str!("../../deploy/policies/protect-sshd.yaml"),
        "protect-sshd.yaml",
    )
    .unwrap();
    assert_eq!(p.name, "protect-sshd");
    assert_eq!(p.target.cluster.as_deref(), Some("prod"));
    assert_eq!(p.matcher.exe.as_deref(), Some("/usr/sbin/sshd"));
    assert!(!p.matcher.children);
    assert_eq!(p.oom_score_adj, -1000);
    let labels = BTreeMap::new();
    assert!(p.target.matches("id1", "web1", "prod", &labels));
    assert!(!p.target.matches("id1", "web1", "staging", &labels));
    // The listener as OpenSSH 9.2 (Debian 12) titles it, and before it does; not the sessions,
    // which run the same executable.
    let sshd = |pid: u32, cmdline: &str| ProcessInfo {
        pid,
        ppid: 1,
        comm: "sshd".into(),
        exe: Some("/usr/sbin/sshd".into()),
        exe_at_path: true,
        cmdline: cmdline.into(),
        ..ProcessInfo::default()
    };
    let all = [
        sshd(
            812,
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
        ),
        sshd(813, "/usr/sbin/sshd -D"),
        sshd(900, "sshd: alice [priv]"),
        sshd(901, "sshd: alice@pts/0"),
    ];
    let matched: Vec<u32> = p.select(&all).into_iter().map(|i| all[i].pid).collect();
    assert_eq!(matched, vec![812, 813]);
    assert_eq!(check_policy(&p), None, "anchored by exe:");
}

#[test]
fn yaml_and_toml_give_the_same_policy() {
    let yaml = "name: web\ntarget:\n  cluster: prod\n  labels: {role: web}\n  hosts: [\"web*\"]\nmatch:\n  comm: nginx\n  user: www-data\n  children: true\noom_score_adj: -500\n";
    let toml = "# comment\nname = \"web\"\noom_score_adj = -500\n[target]\ncluster = \"prod\"\nlabels = { role = \"web\" }\nhosts = [\"web*\"]\n[match]\ncomm = \"nginx\"\nuser = \"www-data\"\nchildren = true\n";
    assert_eq!(Format::detect(yaml, "-"), Format::Yaml);
    assert_eq!(Format::detect(toml, "-"), Format::Toml);
    assert_eq!(Format::detect(toml, "x.yml"), Format::Yaml);
    let a = parse_policy(yaml, "stdin").unwrap();
    let b = parse_policy(toml, "stdin").unwrap();
    assert_eq!(a, b);
    assert_eq!(
        b.matcher.user,
        Some(User::Name {
            name: "www-data".into(),
            uid: None
        })
    );
    let c = parse_policy_as(toml, "x", Format::Toml).unwrap();
    assert_eq!(a, c);
}

#[test]
fn policy_round_trips_through_json() {
    let p = policy("name: a\ntarget: {}\nmatch: {cmdline: 'sleep \\d+', user: 0}\noom_adj: 15\n");
    assert_eq!(p.oom_score_adj, 1000);
    let json = serde_json::to_string(&p).unwrap();
    let back: Policy = serde_json::from_str(&json).unwrap();
    assert_eq!(p, back);
    assert_eq!(back.oom_score_adj, 1000);
    assert!(back.matcher.cmdline.unwrap().is_match("sleep 60"));
    assert_eq!(back.matcher.user, Some(User::Uid(0)));
}

/// A pattern keeps the full syntax and Unicode semantics of the `regex` crate although the crate
/// is built without its `perf` engines (policy/Cargo.toml): classes, Unicode case folding, `\w`
/// and `\p{..}` beyond ASCII, anchors, alternation and bounded repeats.
#[test]
fn cmdline_patterns_keep_unicode_semantics_without_perf_engines() {
    let re = |pat: &str| {
        let doc = format!("name: a\ntarget: {{}}\nmatch: {{cmdline: '{pat}'}}\noom_score_adj: 1\n");
        policy(&doc).matcher.cmdline.expect("a cmdline pattern")
    };
    assert!(re("(?i)^/USR/SBIN/SSHD( |$)").is_match("/usr/sbin/sshd -D"));
    assert!(!re("(?i)^/USR/SBIN/SSHD( |$)").is_match("/usr/sbin/sshd-keygen"));
    assert!(re("(?i)straße").is_match("/opt/STRASSE/bin/x --city Straße"));
    assert!(re(r"^\w+$").is_match("größe"));
    assert!(re(r"\p{Greek}").is_match("python3 αβγ.py"));
    assert!(re(r"^java .*-Xmx\d{1,4}[mg]\b").is_match("java -server -Xmx512m -jar app.jar"));
    assert!(!re(r"^java .*-Xmx\d{1,4}[mg]\b").is_match("java -Xmx12345m"));
    assert!(re("postgres: (checkpointer|walwriter)$").is_match("postgres: walwriter"));
}

#[test]
fn oom_adj_converts_as_the_kernel_does() {
    assert_eq!(oom_adj_to_score_adj(-17), -1000);
    assert_eq!(oom_adj_to_score_adj(-16), -941);
    assert_eq!(oom_adj_to_score_adj(-1), -58);
    assert_eq!(oom_adj_to_score_adj(0), 0);
    assert_eq!(oom_adj_to_score_adj(1), 58);
    assert_eq!(oom_adj_to_score_adj(14), 823);
    assert_eq!(oom_adj_to_score_adj(15), 1000);
}

#[test]
fn errors_name_the_field() {
    let base = "name: a\ntarget: {}\n";
    let cases: &[(&str, &str)] = &[
        (
            "name: a\ntarget: {}\nmatch: {exe: /x}\noom_score_adj: 1\nfoo: 1\n",
            "unknown field `foo`",
        ),
        (
            "name: a\ntarget: {cluster: p, rack: 1}\nmatch: {exe: /x}\noom_score_adj: 1\n",
            "unknown field `rack`",
        ),
        (
            "name: a\ntarget: {}\nmatch: {exe: /x, pid: 1}\noom_score_adj: 1\n",
            "unknown field `pid`",
        ),
        (
            "name: a\ntarget: {}\nmatch: {exe: /x}\noom_score_adj: -1001\n",
            "`oom_score_adj`: -1001 is out of range",
        ),
        (
            "name: a\ntarget: {}\nmatch: {exe: /x}\noom_adj: -18\n",
            "`oom_adj`: -18 is out of range",
        ),
        (
            "name: a\ntarget: {}\nmatch: {exe: /x}\noom_adj: 16\n",
            "`oom_adj`: 16 is out of range",
        ),
        (
            "name: a\ntarget: {}\nmatch: {exe: /x}\noom_adj: 1\noom_score_adj: 1\n",
            "not both",
        ),
        (
            "name: a\ntarget: {}\nmatch: {exe: /x}\n",
            "`oom_score_adj`: missing",
        ),
        (
            "name: a\ntarget: {}\nmatch: {children: true}\noom_score_adj: 1\n",
            "`match`: give at least one",
        ),
        (
            "name: a\ntarget: {}\nmatch: {cmdline: 'sshd ('}\noom_score_adj: 1\n",
            "`match.cmdline`: not a valid regular expression",
        ),
        (
            "name: a\ntarget: {}\nmatch: {exe: sshd}\noom_score_adj: 1\n",
            "`match.exe`",
        ),
        (
            "name: a\ntarget: {}\nmatch: {unit: /system.slice/ssh.service}\noom_score_adj: 1\n",
            "`match.unit`",
        ),
        (
            "name: a b\ntarget: {}\nmatch: {exe: /x}\noom_score_adj: 1\n",
            "`name`",
        ),
        (
            "name: a\nmatch: {exe: /x}\noom_score_adj: 1\n",
            "missing field `target`",
        ),
    ];
    for (text, want) in cases {
        let got = error(text, "p.yaml");
        assert!(got.starts_with("p.yaml: "), "{got}");
        assert!(got.contains(want), "{text:?}: {got:?} lacks {want:?}");
    }
    let got = error(
        "name = \"a\"\noom_score_adj = 1\nbogus = 2\n[target]\n[match]\nexe = \"/x\"\n",
        "p.toml",
    );
    assert!(got.contains("TOML") && got.contains("bogus"), "{got}");
    let got = error(
        &format!("{base}match: {{exe: /x}}\noom_score_adj: x\n"),
        "p",
    );
    assert!(got.contains("oom_score_adj"), "{got}");
}

#[test]
fn globs() {
    assert!(glob_match("web*", "web1"));
    assert!(glob_match("web*", "web"));
    assert!(!glob_match("web*", "db1"));
    assert!(glob_match("web?", "web1"));
    assert!(!glob_match("web?", "web12"));
    assert!(glob_match("*.example.com", "a.b.example.com"));
    assert!(glob_match("*a*b*c", "xxaxxbxxbxc"));
    assert!(!glob_match("*a*b*c", "xxaxxbxxbx"));
    assert!(glob_match("*", ""));
    assert!(glob_match("", ""));
    assert!(!glob_match("", "a"));
}

#[test]
fn targets() {
    let p = policy("name: a\ntarget: {cluster: prod, labels: {role: web, dc: x}, hosts: ['web*', 'id-7']}\nmatch: {exe: /x}\noom_score_adj: 1\n");
    let mut labels: HashMap<String, String> = HashMap::new();
    labels.insert("role".into(), "web".into());
    labels.insert("dc".into(), "x".into());
    labels.insert("extra".into(), "y".into());
    assert!(p.target.matches("id-1", "web1", "prod", &labels));
    assert!(p.target.matches("id-7", "db1", "prod", &labels), "host id");
    assert!(!p.target.matches("id-1", "db1", "prod", &labels));
    assert!(!p.target.matches("id-1", "web1", "staging", &labels));
    labels.insert("role".into(), "db".into());
    assert!(!p.target.matches("id-1", "web1", "prod", &labels));
    let everywhere = policy("name: a\ntarget: {}\nmatch: {exe: /x}\noom_score_adj: 1\n");
    assert!(everywhere
        .target
        .matches("i", "h", "c", &BTreeMap::<String, String>::new()));
}

#[test]
fn process_criteria() {
    let mut sshd = proc(812, 1, "sshd");
    sshd.exe = Some("/usr/sbin/sshd".into());
    sshd.cmdline = "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups".into();
    sshd.cgroup = "12:memory:/system.slice/ssh.service\n0::/system.slice/ssh.service\n".into();
    let all = [sshd.clone()];
    let m = |criteria: &str| {
        policy(&format!(
            "name: a\ntarget: {{}}\nmatch: {{{criteria}}}\noom_score_adj: 1\n"
        ))
        .matches(&sshd, &all)
    };
    assert!(m("exe: /usr/sbin/sshd"));
    assert!(!m("exe: /usr/sbin/ssh"));
    assert!(m("comm: sshd"));
    assert!(!m("comm: ssh"));
    assert!(m("cmdline: 'sshd: .*\\[listener\\]'"));
    assert!(!m("cmdline: '^/usr/sbin/sshd'"));
    assert!(m("user: 0"));
    assert!(m("user: '0'"));
    assert!(!m("user: 33"));
    assert!(!m("user: root"), "unresolved name matches nothing");
    assert!(m("cgroup: /system.slice"));
    assert!(m("cgroup: /system.slice/"));
    assert!(m("cgroup: /system.slice/ssh.service"));
    assert!(!m("cgroup: /system.slic"));
    assert!(m("cgroup: '/system.slice/*.service'"));
    assert!(!m("cgroup: '/user.slice/*'"));
    assert!(m("unit: ssh.service"));
    assert!(m("unit: ssh"));
    assert!(!m("unit: sshd"));
    assert!(!m("unit: system.slice"), "a slice is not a unit");
    assert!(m("exe: /usr/sbin/sshd, mount_namespaces: any"));
    assert!(m("exe: /usr/sbin/sshd, comm: sshd, unit: ssh"));
    assert!(
        !m("exe: /usr/sbin/sshd, comm: nginx"),
        "all criteria must hold"
    );

    let mut long = proc(9, 1, "kube-controller");
    long.comm = "kube-controller".into(); // truncated by the kernel
    let p =
        policy("name: a\ntarget: {}\nmatch: {comm: kube-controller-manager}\noom_score_adj: 1\n");
    assert!(p.matches(&long, &[]));

    let mut p = policy("name: a\ntarget: {}\nmatch: {user: sshd}\noom_score_adj: 1\n");
    let passwd = "root:x:0:0:root:/root:/bin/bash\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n";
    assert_eq!(uid_of(passwd, "sshd"), Some(105));
    assert_eq!(uid_of(passwd, "nobody"), None);
    p.resolve_users(|n| uid_of(passwd, n));
    let mut q = proc(5, 1, "sshd");
    q.uid = 105;
    assert!(p.matches(&q, &[]));
}

/// `exe:` is the running image, not the text of its link: the user+mount namespace impostor
/// (its own binary bind-mounted over /usr/sbin/sshd, so its exe, comm and cmdline all read as
/// sshd) does not match; a service in a mount namespace of its own matches only when the policy
/// opts in, and then only when its image is the host's file.
#[test]
fn exe_is_matched_by_identity() {
    let sshd = ProcessInfo {
        exe_id: Some(FileId {
            dev: 65024,
            ino: 10,
        }),
        ..proc(812, 1, "sshd")
    };
    let sshd = ProcessInfo {
        exe: Some("/usr/sbin/sshd".into()),
        cmdline: "/usr/sbin/sshd -D".into(),
        ..sshd
    };
    let impostor = ProcessInfo {
        pid: 4000,
        exe_id: Some(FileId {
            dev: 65024,
            ino: 99,
        }),
        exe_at_path: false,
        foreign_mount_ns: true,
        uid: 65534,
        ..sshd.clone()
    };
    // The same binary, run by a service with a private /tmp (its own mount namespace).
    let private = ProcessInfo {
        pid: 5000,
        foreign_mount_ns: true,
        ..sshd.clone()
    };
    // An sshd whose binary was replaced on disk since it started.
    let upgraded = ProcessInfo {
        pid: 6000,
        exe: Some("/usr/sbin/sshd (deleted)".into()),
        exe_at_path: false,
        ..sshd.clone()
    };
    let all = [sshd, impostor, private, upgraded];
    let pids = |doc: &str| -> Vec<u32> {
        let p = policy(&format!(
            "name: a\ntarget: {{}}\nmatch: {{{doc}}}\noom_score_adj: -1000\n"
        ));
        p.select(&all).into_iter().map(|i| all[i].pid).collect()
    };
    // By text the impostor and the upgraded sshd would match: comm, cmdline and exe read sshd.
    assert_eq!(
        pids("comm: sshd, cmdline: '^/usr/sbin/sshd'"),
        [812, 4000, 5000, 6000]
    );
    assert_eq!(pids("exe: /usr/sbin/sshd"), [812]);
    assert_eq!(
        pids("exe: /usr/sbin/sshd, mount_namespaces: any"),
        [812, 5000]
    );
    assert_eq!(pids("exe: /usr/sbin/sshd, mount_namespaces: host"), [812]);
    // The agent keeps a process it holds whose image is the one it matched.
    let m =
        policy("name: a\ntarget: {}\nmatch: {exe: /usr/sbin/sshd, comm: sshd}\noom_score_adj: 1\n");
    assert!(!m.matcher.matches_process(&all[3]));
    assert!(m.matcher.still_matches(&all[3]));
    assert!(
        !m.matcher.still_matches(&all[2]),
        "the namespace still counts"
    );
    let nginx = ProcessInfo {
        comm: "nginx".into(),
        ..all[3].clone()
    };
    assert!(
        !m.matcher.still_matches(&nginx),
        "the other criteria still count"
    );
    // Unreadable exe: no match.
    let unreadable = ProcessInfo {
        exe: None,
        exe_at_path: false,
        ..all[0].clone()
    };
    assert!(!m.matcher.matches_process(&unreadable));
    let err = error(
        "name: a\ntarget: {}\nmatch: {comm: x, mount_namespaces: any}\noom_score_adj: 1\n",
        "p.yaml",
    );
    assert!(
        err.contains("`match.mount_namespaces`: applies to exe: only"),
        "{err}"
    );
    let err = error(
        "name: a\ntarget: {}\nmatch: {exe: /x, mount_namespaces: all}\noom_score_adj: 1\n",
        "p.yaml",
    );
    assert!(
        err.contains("mount_namespaces") && err.contains("any"),
        "{err}"
    );
}

/// `unit:` is the system manager's own cgroup of the unit, from the unified hierarchy or else
/// the v1 `name=systemd` one; a path that merely contains the name is not it.
#[test]
fn unit_is_the_system_managers_cgroup() {
    let in_cgroup = |pid: u32, cgroup: &str| ProcessInfo {
        cgroup: cgroup.into(),
        ..proc(pid, 1, "sshd")
    };
    let all = [
        in_cgroup(1, "0::/system.slice/ssh.service\n"),
        in_cgroup(2, "9:name=systemd:/system.slice/ssh.service\n0::/\n"),
        in_cgroup(3, "9:name=systemd:/fleet-test-1/ssh.service\n0::/\n"),
        in_cgroup(
            4,
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service\n",
        ),
        in_cgroup(5, "0::/system.slice/docker-1a.scope/ssh.service\n"),
        in_cgroup(6, "0::/system.slice/ssh.service/delegated\n"),
        // Another controller's hierarchy names nothing about the unit.
        in_cgroup(7, "4:memory:/system.slice/ssh.service\n0::/\n"),
    ];
    let p = policy("name: a\ntarget: {}\nmatch: {unit: ssh}\noom_score_adj: -1000\n");
    let pids: Vec<u32> = p.select(&all).into_iter().map(|i| all[i].pid).collect();
    assert_eq!(pids, [1, 2]);
}

/// A value below 0 on a match that rests only on claims is refused unless forced, with words
/// that name the risk; an anchor (exe, unit, a cgroup that names part of the tree) or a value of
/// 0 or more is not.
#[test]
fn weak_identity_is_refused_below_zero() {
    let refusal = |m: &str, v: i32| {
        check_policy(&policy(&format!(
            "name: a\ntarget: {{}}\nmatch: {{{m}}}\noom_score_adj: {v}\n"
        )))
    };
    let r = refusal("cmdline: '^java ', user: 1000", -1).expect("refused");
    assert_eq!(r.kind, RefusalKind::WeakIdentity);
    assert_eq!(r.kind.as_str(), "weak_identity");
    assert_eq!(r.host, "");
    assert_eq!(
        r.reason,
        "would set -1 on processes matched only by cmdline and user, which any process can \
         claim: any local user could start a process that the OOM killer then spares at the \
         expense of the rest of the host; add exe:, unit: or cgroup: to say which program"
    );
    let r = refusal("comm: sshd", -1000).unwrap();
    assert!(r.reason.contains("matched only by comm,"), "{}", r.reason);
    let r = refusal("comm: sshd, cgroup: '*'", -1000).unwrap();
    assert!(
        r.reason
            .contains("comm and a cgroup pattern that matches every cgroup"),
        "{}",
        r.reason
    );
    assert!(refusal("comm: sshd, cgroup: /", -1000).is_some());
    assert!(refusal("comm: sshd", 0).is_none());
    assert!(refusal("comm: sshd", 500).is_none());
    assert!(refusal("comm: sshd, exe: /usr/sbin/sshd", -1000).is_none());
    assert!(refusal("comm: sshd, unit: ssh", -1000).is_none());
    assert!(refusal("user: 0, cgroup: /system.slice", -500).is_none());
    assert!(refusal("cgroup: '/system.slice/*.service'", -500).is_none());
}

#[test]
fn children_follow_the_process_tree() {
    // 1 init → 100 supervisor → 200 worker → 300 grandchild; 400 elsewhere; 500 orphan.
    let all = vec![
        proc(1, 0, "init"),
        proc(100, 1, "supervisor"),
        proc(200, 100, "worker"),
        proc(300, 200, "helper"),
        proc(400, 1, "other"),
        proc(500, 999, "orphan"),
    ];
    let with = policy(
        "name: a\ntarget: {}\nmatch: {comm: supervisor, children: true}\noom_score_adj: 1\n",
    );
    let without = policy("name: a\ntarget: {}\nmatch: {comm: supervisor}\noom_score_adj: 1\n");
    let pids = |p: &Policy| -> Vec<u32> { p.select(&all).iter().map(|&i| all[i].pid).collect() };
    assert_eq!(pids(&with), vec![100, 200, 300]);
    assert_eq!(pids(&without), vec![100]);
    for p in &all {
        assert_eq!(with.matches(p, &all), pids(&with).contains(&p.pid));
    }
    // A cycle in an inconsistent snapshot ends.
    let cyclic = vec![proc(7, 8, "a"), proc(8, 7, "b")];
    assert!(with.select(&cyclic).is_empty());
    assert!(!with.matches(&cyclic[0], &cyclic));
}

#[test]
fn safety_refuses_too_many_and_the_largest() {
    let mut all: Vec<ProcessInfo> = (1..=12).map(|i| proc(1000 + i, 1, "worker")).collect();
    let mut java = proc(4242, 1, "java");
    java.rss_kb = 12_900_000; // 12.3 GiB
    all.push(java);
    for p in all.iter_mut().take(12) {
        p.rss_kb = 10_000;
    }
    let workers = policy("name: w\ntarget: {}\nmatch: {comm: worker}\noom_score_adj: -1000\n");
    let refusals = check_safety_on(&workers, "web1", &all);
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].kind, RefusalKind::TooManyDisabled);
    assert_eq!(
        refusals[0].reason,
        "would disable the OOM killer for 12 processes on web1 (limit 5)"
    );
    let java_policy = policy("name: j\ntarget: {}\nmatch: {comm: java}\noom_adj: -17\n");
    let refusals = check_safety(&java_policy, &all);
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].kind, RefusalKind::LargestMemoryUser);
    assert_eq!(
        refusals[0].to_string(),
        "would protect the largest memory user on this host (java, pid 4242, 12.3 GiB): an OOM could then only end in a kernel panic or a hung host"
    );
    // Exactly the limit, and values other than -1000, pass.
    let five: Vec<ProcessInfo> = all.iter().skip(7).cloned().collect();
    assert!(check_safety(&workers, &five).is_empty());
    let lower = policy("name: w\ntarget: {}\nmatch: {comm: worker}\noom_score_adj: -999\n");
    assert!(check_safety(&lower, &all).is_empty());
    let java_lower = policy("name: j\ntarget: {}\nmatch: {comm: java}\noom_score_adj: -500\n");
    assert!(check_safety(&java_lower, &all).is_empty());
    assert_eq!(format_kib(900), "900 KiB");
    assert_eq!(format_kib(512 * 1024), "512.0 MiB");
}

#[test]
fn plan_lists_only_changes() {
    let mut all = vec![
        proc(30, 1, "sshd"),
        proc(10, 1, "sshd"),
        proc(20, 1, "cron"),
    ];
    all[1].oom_score_adj = -1000; // already protected
    all[0].oom_score_adj = 200;
    let p = policy("name: s\ntarget: {}\nmatch: {comm: sshd}\noom_score_adj: -1000\n");
    assert_eq!(
        plan(&p, &all),
        vec![Change {
            pid: 30,
            comm: "sshd".into(),
            from: 200,
            to: -1000
        }]
    );
    all[0].oom_score_adj = -1000;
    assert!(plan(&p, &all).is_empty());
}

#[test]
fn target_and_match_in_words() {
    let p = parse_policy(
        "name: x\ntarget: {cluster: prod, labels: {role: web}, hosts: [\"web*\", db1]}\nmatch: {exe: /usr/sbin/sshd, user: root, children: true}\noom_score_adj: -500\n",
        "x.yaml",
    )
    .unwrap();
    assert_eq!(p.target.describe(), "cluster=prod role=web hosts=web*,db1");
    assert_eq!(
        p.matcher.describe(),
        "exe=/usr/sbin/sshd user=root +children"
    );
    let any = policy("name: z\ntarget: {}\nmatch: {exe: /usr/sbin/sshd, mount_namespaces: any}\noom_score_adj: 1\n");
    assert_eq!(
        any.matcher.describe(),
        "exe=/usr/sbin/sshd mount_namespaces=any"
    );
    let q = parse_policy(
        "name: y\ntarget: {}\nmatch: {cmdline: 'java .*-jar'}\noom_score_adj: 500\n",
        "y.yaml",
    )
    .unwrap();
    assert_eq!(q.target.describe(), "every host");
    assert_eq!(q.matcher.describe(), "cmdline=java .*-jar");
}

/// A process whose executable the agent may not read (no CAP_SYS_PTRACE) cannot meet `exe:`;
/// `unreadable_exe` names it when every other criterion holds, so the agent can report it.
#[test]
fn an_unreadable_exe_is_told_apart_from_no_match() {
    let hidden = ProcessInfo {
        exe_denied: true,
        cmdline: "/usr/sbin/sshd -D".into(),
        ..proc(812, 1, "sshd")
    };
    let by_exe =
        policy("name: a\ntarget: {}\nmatch: {exe: /usr/sbin/sshd, comm: sshd}\noom_score_adj: 1\n");
    assert!(!by_exe.matches(&hidden, &[]));
    assert!(by_exe.matcher.unreadable_exe(&hidden));
    // Another criterion that fails: not a match, whatever the exe would have said.
    let other =
        policy("name: a\ntarget: {}\nmatch: {exe: /usr/sbin/sshd, comm: cron}\noom_score_adj: 1\n");
    assert!(!other.matcher.unreadable_exe(&hidden));
    // No `exe:` rule: the exe does not matter.
    let by_comm = policy("name: a\ntarget: {}\nmatch: {comm: sshd}\noom_score_adj: 1\n");
    assert!(by_comm.matches(&hidden, &[]));
    assert!(!by_comm.matcher.unreadable_exe(&hidden));
}

/// Issue 12: two 2.6 MB documents made every targeted agent's `PolicySync` exceed the 4 MiB
/// message limit. A document over the cap is refused, naming the limit, before it is parsed.
#[test]
fn a_document_over_the_size_cap_is_refused_naming_the_limit() {
    let head = "name: big\ntarget: {}\nmatch: {exe: /usr/sbin/sshd}\noom_score_adj: -500\n";
    // A comment pads the document: valid YAML of any size.
    let pad = |to: usize| format!("{head}#{}\n", "x".repeat(to - head.len() - 2));
    let at_cap = pad(crate::MAX_DOCUMENT_BYTES);
    assert_eq!(at_cap.len(), crate::MAX_DOCUMENT_BYTES);
    assert_eq!(policy(&at_cap).name, "big");
    let over = pad(crate::MAX_DOCUMENT_BYTES + 1);
    assert_eq!(
        error(&over, "big.yaml"),
        "big.yaml: the policy document is 65537 bytes; a policy document is at most 65536 bytes (64 KiB)"
    );
    let huge = pad(2_600_000);
    assert!(matches!(
        parse_policy_as(&huge, "big.toml", Format::Toml),
        Err(PolicyError::TooLarge {
            bytes: 2_600_000,
            ..
        })
    ));
}
