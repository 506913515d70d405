//! Parsing, evaluation of each kind on hand-built views, and the alert state machine.

use std::sync::Arc;
use std::time::Duration;

use fleet_proto::v1::{Activity, ClockStatus, NtpServerStatus};

use crate::*;

const T0: i64 = 1_700_000_000_000;

fn parse(text: &str) -> RuleSet {
    parse_rules(text, "rules.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The problems of a file that must not parse, one `Display` line each.
fn problems(text: &str) -> Vec<String> {
    match parse_rules(text, "rules.toml") {
        Ok(_) => panic!("parsed:\n{text}"),
        Err(e) => {
            assert!(!e.problems.is_empty());
            e.to_string().lines().map(str::to_owned).collect()
        }
    }
}

fn one_problem(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[test]
fn the_contract_example_parses() {
    let rules = parse(
        r#"
[[rule]]
name = "prod-clock-skew"
kind = "clock_skew"
cluster = "prod"          # optional; every cluster when absent
threshold_ms = 100
for = "5s"
"#,
    );
    assert_eq!(rules.len(), 1);
    assert_eq!(rules.origin(), "rules.toml");
    let r = rules.get("prod-clock-skew").unwrap();
    assert_eq!(r.kind(), RuleKind::ClockSkew);
    assert_eq!(r.cluster.as_deref(), Some("prod"));
    assert_eq!(r.hold_for, Duration::from_secs(5));
    assert_eq!(
        r.condition,
        Condition::ClockSkew {
            threshold_ms: 100.0
        }
    );
    assert!(r.applies_to("prod") && !r.applies_to("staging"));
}

#[test]
fn every_kind_parses_with_its_fields() {
    let rules = parse(
        r#"
[[rule]]
name = "offset"
kind = "ntp_offset"
threshold_ms = 0.5
keep_firing_for = "30s"
summary = "{hosts} off by {value} ms ({summary})"
[rule.labels]
severity = "page"
team = "infra"

[[rule]]
name = "unsynced"
kind = "ntp_unsynced"

[[rule]]
name = "stratum"
kind = "ntp_stratum"
max_stratum = 10

[[rule]]
name = "silent"
kind = "host_silent"
for = "2m"

[[rule]]
name = "oom"
kind = "oom_kill_burst"
count = 3
window = "5m"
cluster = "prod"

[[rule]]
name = "mem"
kind = "sar"
column = "%memused"
op = ">="
value = 95

[[rule]]
name = "disk-tps"
kind = "sar"
column = "tps"
activity = "disk"
op = "<"
value = 1.5
for = "1h 30m"
"#,
    );
    assert_eq!(rules.len(), 7);
    assert_eq!(rules.sar_activities(), [Activity::Memory, Activity::Disk]);
    let offset = rules.get("offset").unwrap();
    assert_eq!(offset.hold_for, Duration::ZERO);
    assert_eq!(offset.keep_firing_for, Duration::from_secs(30));
    assert_eq!(offset.labels["severity"], "page");
    assert_eq!(offset.labels.len(), 2);
    assert!(offset.summary.is_some());
    assert_eq!(
        rules.get("stratum").unwrap().condition,
        Condition::NtpStratum { max_stratum: 10 }
    );
    let silent = rules.get("silent").unwrap();
    assert_eq!(silent.hold_for, Duration::from_secs(120));
    assert_eq!(
        silent.pending_for(),
        Duration::ZERO,
        "host_silent fires as soon as it holds"
    );
    assert_eq!(
        rules.get("oom").unwrap().condition,
        Condition::OomKillBurst {
            count: 3,
            window: Duration::from_secs(300)
        }
    );
    let Condition::Sar(mem) = &rules.get("mem").unwrap().condition else {
        panic!()
    };
    assert_eq!(mem.activity, Activity::Memory);
    assert_eq!(mem.column_index, 3);
    assert_eq!(mem.op, CmpOp::Ge);
    let Condition::Sar(tps) = &rules.get("disk-tps").unwrap().condition else {
        panic!()
    };
    assert_eq!((tps.activity, tps.column_index), (Activity::Disk, 0));
    assert_eq!(
        rules.get("disk-tps").unwrap().hold_for,
        Duration::from_secs(5400)
    );
    // File order is kept.
    let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["offset", "unsynced", "stratum", "silent", "oom", "mem", "disk-tps"]
    );
}

#[test]
fn the_default_rules_file_parses() {
    let rules = parse_rules(
        include_str!("../../deploy/rules/default.toml"),
        "deploy/rules/default.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<RuleKind> = rules.rules().iter().map(Rule::kind).collect();
    for k in RuleKind::ALL {
        assert!(kinds.contains(&k), "the default file has no {k} rule");
    }
    let skew = rules.get("clock-skew").unwrap();
    assert_eq!(
        skew.condition,
        Condition::ClockSkew {
            threshold_ms: 100.0
        }
    );
    assert_eq!(skew.hold_for, Duration::from_secs(60));
    assert!(skew.cluster.is_none());
    assert_eq!(
        rules.get("host-silent").unwrap().hold_for,
        Duration::from_secs(120)
    );
    let Condition::Sar(swap) = &rules.get("swapping-out").unwrap().condition else {
        panic!()
    };
    assert_eq!(
        (swap.column.as_str(), swap.op, swap.value),
        ("pswpout/s", CmpOp::Gt, 1000.0)
    );
}

#[test]
fn an_empty_file_has_no_rules() {
    assert!(parse("").is_empty());
    assert!(parse("# nothing yet\n").is_empty());
}

#[test]
fn errors_name_the_file_the_rule_and_the_field() {
    let base = "[[rule]]\nname = \"prod-clock-skew\"\nkind = \"clock_skew\"\n";
    assert_eq!(
        one_problem(&format!("{base}threshold_ms = -5\n")),
        "rules.toml: rule \"prod-clock-skew\": threshold_ms: must be a positive number, not -5"
    );
    assert_eq!(
        one_problem(&format!("{base}threshold_ms = \"100\"\n")),
        "rules.toml: rule \"prod-clock-skew\": threshold_ms: must be a positive number, not the string \"100\""
    );
    assert_eq!(
        one_problem(base),
        "rules.toml: rule \"prod-clock-skew\": threshold_ms: missing; must be a positive number"
    );
    assert!(one_problem(&format!("{base}threshold_ms = 100\nfor = \"5 parsecs\"\n")).starts_with(
        "rules.toml: rule \"prod-clock-skew\": for: \"5 parsecs\" is not a duration like \"30s\", \"5m\" or \"1h\" (unknown time unit \"parsecs\""
    ));
    assert!(
        one_problem(&format!("{base}threshold_ms = 100\nfor = 5\n")).starts_with(
            "rules.toml: rule \"prod-clock-skew\": for: must be a duration string like \"30s\""
        )
    );
    assert!(
        one_problem(&format!("{base}threshold_ms = 100\ncluster = \"\"\n"))
            .starts_with("rules.toml: rule \"prod-clock-skew\": cluster: must not be empty")
    );
}

#[test]
fn unnamed_rules_are_named_by_position() {
    let p = problems(
        "[[rule]]\nname = \"ok\"\nkind = \"ntp_unsynced\"\n\n[[rule]]\nkind = \"clock_skew\"\nthreshold_ms = 0\n",
    );
    assert_eq!(
        p,
        [
            "rules.toml: rule #2: name: missing; every rule needs a unique name",
            "rules.toml: rule #2: threshold_ms: must be a positive number, not 0",
        ]
    );
    assert_eq!(
        one_problem("[[rule]]\nname = \" x\"\nkind = \"ntp_unsynced\"\n"),
        "rules.toml: rule #1: name: \" x\" starts or ends with white space"
    );
    assert_eq!(
        one_problem("[[rule]]\nname = 7\nkind = \"ntp_unsynced\"\n"),
        "rules.toml: rule #1: name: must be a string, not the integer 7"
    );
}

#[test]
fn kinds_are_checked() {
    let p = one_problem("[[rule]]\nname = \"a\"\nkind = \"clockskew\"\n");
    assert_eq!(
        p,
        "rules.toml: rule \"a\": kind: unknown kind \"clockskew\"; valid kinds: clock_skew, ntp_offset, ntp_unsynced, ntp_stratum, host_silent, oom_kill_burst, sar"
    );
    assert_eq!(
        one_problem("[[rule]]\nname = \"a\"\n"),
        "rules.toml: rule \"a\": kind: missing; one of: clock_skew, ntp_offset, ntp_unsynced, ntp_stratum, host_silent, oom_kill_burst, sar"
    );
}

#[test]
fn unknown_and_misplaced_fields_are_rejected() {
    assert_eq!(
        one_problem("[[rule]]\nname = \"a\"\nkind = \"ntp_unsynced\"\nthreshold = 3\n"),
        "rules.toml: rule \"a\": threshold: unknown field; kind ntp_unsynced takes name, kind, cluster, for, keep_firing_for, labels, summary and none besides the common ones"
    );
    assert_eq!(
        one_problem("[[rule]]\nname = \"a\"\nkind = \"ntp_stratum\"\nmax_stratum = 3\nthreshold_ms = 5\n"),
        "rules.toml: rule \"a\": threshold_ms: not a field of kind ntp_stratum (it belongs to clock_skew, ntp_offset); kind ntp_stratum takes max_stratum"
    );
    assert_eq!(
        one_problem("severity = 1\n[[rule]]\nname = \"a\"\nkind = \"ntp_unsynced\"\n"),
        "rules.toml: severity: unknown top-level key; a rules file holds only [[rule]] tables"
    );
    assert_eq!(
        one_problem("rule = 5\n"),
        "rules.toml: rule: must be an array of tables ([[rule]]), not the integer 5"
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let text = "[[rule]]\nname = \"a\"\nkind = \"ntp_unsynced\"\n[[rule]]\nname = \"b\"\nkind = \"ntp_unsynced\"\n[[rule]]\nname = \"a\"\nkind = \"host_silent\"\nfor = \"1m\"\n";
    assert_eq!(
        one_problem(text),
        "rules.toml: rule \"a\": name: duplicate name; rule #1 has it too"
    );
}

#[test]
fn kind_specific_fields_are_validated() {
    let rule = |kind_and_fields: &str| format!("[[rule]]\nname = \"r\"\n{kind_and_fields}");
    assert_eq!(
        one_problem(&rule("kind = \"ntp_stratum\"\nmax_stratum = 16\n")),
        "rules.toml: rule \"r\": max_stratum: must be an integer from 1 to 15, not 16"
    );
    assert_eq!(
        one_problem(&rule("kind = \"host_silent\"\n")),
        "rules.toml: rule \"r\": for: missing; host_silent needs how long a host may send nothing, e.g. for = \"2m\""
    );
    assert!(one_problem(&rule("kind = \"host_silent\"\nfor = \"0s\"\n"))
        .starts_with("rules.toml: rule \"r\": for: must be longer than 0s"));
    assert_eq!(
        problems(&rule("kind = \"oom_kill_burst\"\n")),
        [
            "rules.toml: rule \"r\": count: missing; must be an integer of at least 1",
            "rules.toml: rule \"r\": window: missing; a duration like \"30s\", \"5m\" or \"1h\"",
        ]
    );
    assert_eq!(
        one_problem(&rule(
            "kind = \"oom_kill_burst\"\ncount = 0\nwindow = \"5m\"\n"
        )),
        "rules.toml: rule \"r\": count: must be an integer of at least 1, not 0"
    );
    assert_eq!(
        problems(&rule("kind = \"sar\"\n")),
        [
            "rules.toml: rule \"r\": op: missing; one of: > >= < <= == !=",
            "rules.toml: rule \"r\": value: missing; must be a number",
            "rules.toml: rule \"r\": column: missing; a sysstat column name such as \"%memused\" or \"pswpout/s\"",
        ]
    );
    assert_eq!(
        one_problem(&rule(
            "kind = \"sar\"\ncolumn = \"%memused\"\nop = \"=>\"\nvalue = 1\n"
        )),
        "rules.toml: rule \"r\": op: unknown operator \"=>\"; one of: > >= < <= == !="
    );
    assert_eq!(
        one_problem(&rule("kind = \"sar\"\ncolumn = \"%memusd\"\nop = \">\"\nvalue = 1\n")),
        "rules.toml: rule \"r\": column: unknown sar column \"%memusd\" (did you mean \"%memused\"?)"
    );
    assert_eq!(
        one_problem(&rule("kind = \"sar\"\ncolumn = \"tps\"\nop = \">\"\nvalue = 1\n")),
        "rules.toml: rule \"r\": column: \"tps\" is a column of several activities (io and disk); add activity = \"io\" or activity = \"disk\""
    );
    assert!(one_problem(&rule(
        "kind = \"sar\"\ncolumn = \"tps\"\nactivity = \"memory\"\nop = \">\"\nvalue = 1\n"
    ))
    .starts_with("rules.toml: rule \"r\": column: \"tps\" is not a column of activity memory (its columns: kbmemfree,"));
    assert!(one_problem(&rule(
        "kind = \"sar\"\ncolumn = \"tps\"\nactivity = \"disks\"\nop = \">\"\nvalue = 1\n"
    ))
    .starts_with(
        "rules.toml: rule \"r\": activity: unknown activity \"disks\"; one of: cpu, memory,"
    ));
    assert_eq!(
        one_problem(&rule(
            "kind = \"sar\"\ncolumn = \"%memused\"\nop = \">\"\nvalue = \"95\"\n"
        )),
        "rules.toml: rule \"r\": value: must be a number, not the string \"95\""
    );
}

#[test]
fn labels_and_summary_are_validated() {
    let rule = "[[rule]]\nname = \"r\"\nkind = \"ntp_unsynced\"\n";
    assert_eq!(
        one_problem(&format!("{rule}[rule.labels]\ncluster = \"x\"\n")),
        "rules.toml: rule \"r\": labels.cluster: reserved: every alert sets alertname, rule, kind, cluster, hosts itself"
    );
    assert!(
        one_problem(&format!("{rule}[rule.labels]\n\"bad-name\" = \"x\"\n"))
            .starts_with("rules.toml: rule \"r\": labels.bad-name: a label name is")
    );
    assert_eq!(
        one_problem(&format!("{rule}[rule.labels]\nseverity = 2\n")),
        "rules.toml: rule \"r\": labels.severity: must be a string, not the integer 2"
    );
    assert!(one_problem(&format!("{rule}summary = \"{{host}} is down\"\n"))
        .starts_with("rules.toml: rule \"r\": summary: unknown placeholder {host}; the placeholders are {rule}, {cluster}, {hosts}, {value}, {summary}"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
[[rule]]
name = "a"
kind = "clock_skew"
threshold_ms = 0
for = "soon"

[[rule]]
kind = "nope"

[[rule]]
name = "c"
kind = "sar"
column = "%memused"
op = ">"
value = 95
"#;
    let p = problems(text);
    assert_eq!(
        p,
        [
            "rules.toml: rule \"a\": for: \"soon\" is not a duration like \"30s\", \"5m\" or \"1h\" (expected number at 0)",
            "rules.toml: rule \"a\": threshold_ms: must be a positive number, not 0",
            "rules.toml: rule #2: name: missing; every rule needs a unique name",
            "rules.toml: rule #2: kind: unknown kind \"nope\"; valid kinds: clock_skew, ntp_offset, ntp_unsynced, ntp_stratum, host_silent, oom_kill_burst, sar",
        ]
    );
}

#[test]
fn toml_syntax_errors_have_a_line_and_column() {
    let p = one_problem("[[rule]]\nname = \"a\"\nkind = clock_skew\n");
    assert!(
        p.starts_with("rules.toml: not valid TOML: line 3, column 8: "),
        "{p}"
    );
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn source(server: &str, offset_ms: f64, stratum: u32, delay_ms: f64) -> NtpServerStatus {
    NtpServerStatus {
        server: server.into(),
        reachable: true,
        offset_ms,
        delay_ms,
        stratum,
        synced: true,
        ..Default::default()
    }
}

fn down(server: &str, error: &str) -> NtpServerStatus {
    NtpServerStatus {
        server: server.into(),
        error: error.into(),
        ..Default::default()
    }
}

fn host(name: &str, cluster: &str) -> HostView {
    HostView {
        host_id: format!("id-{name}"),
        hostname: name.into(),
        cluster: cluster.into(),
        connected: true,
        last_seen_ms: T0,
        ..Default::default()
    }
}

fn with_offset(name: &str, cluster: &str, offset_ms: f64) -> HostView {
    HostView {
        ntp: Some(Arc::new(ClockStatus {
            servers: vec![source("10.0.0.1:123", offset_ms, 2, 1.0)],
            kernel: None,
        })),
        ..host(name, cluster)
    }
}

fn view(hosts: Vec<HostView>) -> FleetView {
    FleetView { now_ms: T0, hosts }
}

fn host_key(rule: &str, host: &str) -> AlertKey {
    AlertKey {
        rule: rule.into(),
        scope: Scope::Host(format!("id-{host}")),
    }
}

fn cluster_key(rule: &str, cluster: &str) -> AlertKey {
    AlertKey {
        rule: rule.into(),
        scope: Scope::Cluster(cluster.into()),
    }
}

#[test]
fn the_best_source_is_synced_then_lowest_stratum_then_lowest_delay() {
    let clock = ClockStatus {
        servers: vec![
            NtpServerStatus {
                synced: false,
                ..source("unsynced:123", 1.0, 1, 0.1)
            },
            source("s3:123", 30.0, 3, 0.1),
            source("s2-slow:123", 20.0, 2, 9.0),
            source("s2-fast:123", 10.0, 2, 1.0),
        ],
        kernel: None,
    };
    assert_eq!(best_source(&clock).unwrap().server, "s2-fast:123");
    let h = HostView {
        ntp: Some(Arc::new(clock)),
        ..host("a", "c")
    };
    assert_eq!(host_offset_ms(&h), Some(10.0));
    assert_eq!(host_offset_ms(&host("b", "c")), None);
}

#[test]
fn clock_skew_compares_the_hosts_of_each_cluster() {
    let rules = parse("[[rule]]\nname = \"skew\"\nkind = \"clock_skew\"\nthreshold_ms = 100\n");
    let v = view(vec![
        with_offset("web1", "prod", 0.4),
        with_offset("web2", "prod", -0.2),
        with_offset("web3", "prod", 250.0),
        // Another cluster, within the threshold.
        with_offset("db1", "staging", 0.0),
        with_offset("db2", "staging", 90.0),
        // A disconnected host's last offset is stale: not counted.
        HostView {
            connected: false,
            ..with_offset("old", "staging", 5000.0)
        },
        // No measurement: not counted.
        host("db3", "staging"),
    ]);
    let f = evaluate(&rules, &v);
    assert_eq!(f.len(), 1, "{f:#?}");
    let f = &f[0];
    assert_eq!(f.key, cluster_key("skew", "prod"));
    assert_eq!(f.kind, RuleKind::ClockSkew);
    assert_eq!(f.cluster, "prod");
    assert_eq!(f.hosts, ["web3"]);
    assert!((f.value - 250.2).abs() < 1e-9);
    assert_eq!(
        f.summary,
        "clock skew of 250 ms between hosts in cluster prod (web3 +250 ms, web2 -0.2 ms); threshold 100 ms: check the NTP sources of web3"
    );

    // Scoped to a cluster.
    let scoped = parse(
        "[[rule]]\nname = \"skew\"\nkind = \"clock_skew\"\nthreshold_ms = 50\ncluster = \"staging\"\n",
    );
    let f = evaluate(&scoped, &v);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].key, cluster_key("skew", "staging"));
    // Two hosts: no median to tell who is wrong, both are named.
    assert_eq!(f[0].hosts, ["db1", "db2"]);
    assert!(
        f[0].summary
            .ends_with("check the NTP sources of db1 and db2"),
        "{}",
        f[0].summary
    );

    // A lone host has no skew.
    assert!(evaluate(&rules, &view(vec![with_offset("solo", "x", 900.0)])).is_empty());
}

#[test]
fn ntp_offset_looks_at_each_host() {
    let rules = parse("[[rule]]\nname = \"off\"\nkind = \"ntp_offset\"\nthreshold_ms = 250\n");
    let v = view(vec![
        with_offset("a", "prod", 249.0),
        with_offset("b", "prod", -312.4),
        with_offset("c", "prod", 251.0),
    ]);
    let f = evaluate(&rules, &v);
    let keys: Vec<_> = f.iter().map(|f| f.key.clone()).collect();
    assert_eq!(keys, [host_key("off", "b"), host_key("off", "c")]);
    assert_eq!(f[0].value, -312.4);
    assert_eq!(f[0].hosts, ["b"]);
    assert_eq!(
        f[0].summary,
        "b is 312 ms ahead of its NTP source 10.0.0.1:123 (offset -312 ms, stratum 2); threshold 250 ms: check the time daemon (chrony, ntpd or timesyncd) on b and its sources"
    );
    assert!(f[1]
        .summary
        .starts_with("c is 251 ms behind its NTP source"));
}

#[test]
fn ntp_unsynced_needs_one_synchronised_source() {
    let rules = parse("[[rule]]\nname = \"uns\"\nkind = \"ntp_unsynced\"\n");
    let unsynced = HostView {
        ntp: Some(Arc::new(ClockStatus {
            servers: vec![
                down("10.0.0.1:123", "timeout"),
                NtpServerStatus {
                    reachable: true,
                    leap: 3,
                    stratum: 16,
                    ..down("10.0.0.2:123", "")
                },
            ],
            kernel: None,
        })),
        ..host("a", "prod")
    };
    let none = HostView {
        ntp: Some(Arc::new(ClockStatus::default())),
        ..host("b", "prod")
    };
    let v = view(vec![
        unsynced,
        none,
        with_offset("ok", "prod", 1.0),
        host("no-measurement-yet", "prod"),
    ]);
    let f = evaluate(&rules, &v);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(f[0].key, host_key("uns", "a"));
    assert_eq!(
        f[0].summary,
        "a has no synchronised NTP source (10.0.0.1:123: timeout; 10.0.0.2:123: unsynchronised (leap 3)): check that its servers are reachable from it and synchronised themselves"
    );
    assert_eq!(f[0].value, 2.0);
    assert_eq!(f[1].key, host_key("uns", "b"));
    assert!(f[1]
        .summary
        .starts_with("b has no NTP source: configure chrony"));
}

#[test]
fn ntp_stratum_looks_at_the_best_source() {
    let rules = parse("[[rule]]\nname = \"str\"\nkind = \"ntp_stratum\"\nmax_stratum = 10\n");
    let far = HostView {
        ntp: Some(Arc::new(ClockStatus {
            servers: vec![source("far:123", 1.0, 12, 1.0), down("near:123", "timeout")],
            kernel: None,
        })),
        ..host("far", "prod")
    };
    let mixed = HostView {
        ntp: Some(Arc::new(ClockStatus {
            servers: vec![
                source("far:123", 1.0, 12, 1.0),
                source("near:123", 1.0, 3, 5.0),
            ],
            kernel: None,
        })),
        ..host("mixed", "prod")
    };
    let f = evaluate(&rules, &view(vec![far, mixed]));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].key, host_key("str", "far"));
    assert_eq!(f[0].value, 12.0);
    assert!(
        f[0].summary.contains("far:123, is at stratum 12, above 10"),
        "{}",
        f[0].summary
    );
}

#[test]
fn host_silent_holds_once_the_silence_reaches_for() {
    let rules = parse("[[rule]]\nname = \"silent\"\nkind = \"host_silent\"\nfor = \"2m\"\n");
    let v = FleetView {
        now_ms: T0 + 120_000,
        hosts: vec![
            host("just", "prod"),
            HostView {
                last_seen_ms: T0 + 1,
                ..host("almost", "prod")
            },
            HostView {
                connected: false,
                last_seen_ms: T0 - 72_000,
                ..host("gone", "prod")
            },
        ],
    };
    let f = evaluate(&rules, &v);
    let keys: Vec<_> = f.iter().map(|f| f.key.clone()).collect();
    assert_eq!(
        keys,
        [host_key("silent", "just"), host_key("silent", "gone")]
    );
    assert_eq!(f[1].value, 192.0);
    assert_eq!(
        f[1].summary,
        "no data from gone (cluster prod) for 3m 12s, its agent is disconnected; threshold 2m: check that fleet-agent runs on gone and can reach the collector"
    );
    assert!(f[0]
        .summary
        .contains("its stream is open but carries nothing"));
}

#[test]
fn oom_kill_burst_counts_a_cluster_over_the_window() {
    let rules =
        parse("[[rule]]\nname = \"oom\"\nkind = \"oom_kill_burst\"\ncount = 3\nwindow = \"5m\"\n");
    let kills = |name: &str, cluster: &str, ago_s: &[i64]| HostView {
        oom_kill_times_ms: ago_s.iter().map(|s| T0 - s * 1000).collect(),
        ..host(name, cluster)
    };
    let v = view(vec![
        kills("web1", "prod", &[10, 20]),
        // One kill in the window, one just out of it (exactly `window` ago).
        kills("web2", "prod", &[299, 300]),
        // A disconnected host's kills still count.
        HostView {
            connected: false,
            ..kills("web3", "prod", &[5])
        },
        kills("db1", "staging", &[1, 2]),
    ]);
    let f = evaluate(&rules, &v);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].key, cluster_key("oom", "prod"));
    assert_eq!(f[0].value, 4.0);
    assert_eq!(f[0].hosts, ["web1", "web2", "web3"]);
    assert_eq!(
        f[0].summary,
        "4 OOM kills in cluster prod within the last 5m (web1 ×2, web2 ×1, web3 ×1); threshold 3: see `fleetctl oom --cluster prod` for the victims and `fleetctl top-oom` for who is next"
    );
}

#[test]
fn sar_compares_every_instance_of_the_activity() {
    let rules = parse(
        r#"
[[rule]]
name = "mem"
kind = "sar"
column = "%memused"
op = ">"
value = 95

[[rule]]
name = "util"
kind = "sar"
column = "%util"
op = ">="
value = 90

[[rule]]
name = "idle"
kind = "sar"
column = "%idle"
op = "<"
value = 5
"#,
    );
    let mut mem = vec![0.0; 11];
    mem[3] = 97.25;
    let disk = |util: f64| {
        let mut v = vec![0.0; 8];
        v[7] = util;
        v
    };
    let cpu = |idle: f64| vec![0.0, 0.0, 0.0, 0.0, 0.0, idle];
    let busy = HostView {
        sar: vec![
            (Activity::Memory, "-".into(), mem),
            (Activity::Disk, "sda".into(), disk(91.0)),
            (Activity::Disk, "sdb".into(), disk(99.5)),
            (Activity::Disk, "sdc".into(), disk(f64::NAN)),
            (Activity::Cpu, "all".into(), cpu(50.0)),
            (Activity::Cpu, "0".into(), cpu(4.0)),
            (Activity::Cpu, "1".into(), cpu(1.0)),
        ],
        ..host("busy", "prod")
    };
    let calm = HostView {
        sar: vec![(Activity::Memory, "-".into(), vec![0.0; 11])],
        ..host("calm", "prod")
    };
    let stale = HostView {
        connected: false,
        ..busy.clone()
    };
    let f = evaluate(&rules, &view(vec![busy, calm, stale]));
    assert_eq!(f.len(), 3, "{f:#?}");
    assert_eq!(f[0].key, host_key("mem", "busy"));
    assert_eq!(f[0].value, 97.25);
    assert_eq!(
        f[0].summary,
        "%memused is 97.25 on busy (memory); rule: %memused > 95: see `fleetctl sar` for busy"
    );
    assert_eq!(f[1].value, 99.5, "the worst disk");
    assert!(f[1].summary.contains("(disk sdb)"), "{}", f[1].summary);
    assert_eq!(f[2].value, 1.0, "the lowest idle");
    assert!(f[2].summary.contains("(cpu 1)"), "{}", f[2].summary);
}

#[test]
fn a_summary_template_replaces_the_built_in_one() {
    let rules = parse(
        "[[rule]]\nname = \"off\"\nkind = \"ntp_offset\"\nthreshold_ms = 10\nsummary = \"[{rule}] {hosts} in {cluster}: {value} ms {{!}} ({summary})\"\n",
    );
    let f = evaluate(&rules, &view(vec![with_offset("a", "prod", 12.5)]));
    assert!(
        f[0].summary
            .starts_with("[off] a in prod: 12.5 ms {!} (a is 12 ms behind"),
        "{}",
        f[0].summary
    );
}

// ---------------------------------------------------------------------------------------------
// The state machine

fn finding(rule: &str, host: &str, value: f64) -> Finding {
    Finding {
        key: host_key(rule, host),
        kind: RuleKind::NtpOffset,
        cluster: "prod".into(),
        hosts: vec![host.into()],
        value,
        summary: format!("{host} is off by {value}"),
    }
}

fn offset_rule(name: &str, for_: &str) -> String {
    format!(
        "[[rule]]\nname = \"{name}\"\nkind = \"ntp_offset\"\nthreshold_ms = 1\nfor = \"{for_}\"\n"
    )
}

fn states(t: &[Transition]) -> Vec<(String, AlertState, AlertState)> {
    t.iter()
        .map(|t| (t.alert.key.to_string(), t.from, t.to))
        .collect()
}

fn tr(
    rule: &str,
    host: &str,
    from: AlertState,
    to: AlertState,
) -> (String, AlertState, AlertState) {
    (host_key(rule, host).to_string(), from, to)
}

use AlertState::{Firing, Inactive, Pending, Resolved};

#[test]
fn pending_fires_after_for_and_resolves() {
    let rules = parse(&offset_rule("off", "5s"));
    let mut book = AlertBook::new();
    let s = |book: &mut AlertBook, held: bool, t: i64| {
        let f = if held {
            vec![finding("off", "a", t as f64)]
        } else {
            vec![]
        };
        states(&book.step(&rules, f, T0 + t * 1000))
    };
    assert_eq!(s(&mut book, true, 0), [tr("off", "a", Inactive, Pending)]);
    for t in 1..5 {
        assert!(s(&mut book, true, t).is_empty(), "still pending at {t} s");
    }
    let a = book.get(&host_key("off", "a")).unwrap();
    assert_eq!((a.state, a.since_ms, a.active_since_ms), (Pending, T0, T0));
    assert_eq!(a.value, 4.0, "details refresh while pending");
    assert_eq!(s(&mut book, true, 5), [tr("off", "a", Pending, Firing)]);
    let a = book.get(&host_key("off", "a")).unwrap();
    assert_eq!(
        (a.since_ms, a.active_since_ms, a.fired_at_ms),
        (T0 + 5000, T0, Some(T0 + 5000))
    );
    assert!(s(&mut book, true, 6).is_empty());
    assert_eq!(s(&mut book, false, 7), [tr("off", "a", Firing, Resolved)]);
    let a = book.get(&host_key("off", "a")).unwrap();
    assert_eq!((a.state, a.since_ms), (Resolved, T0 + 7000));
    let p = a.to_proto();
    assert!(s(&mut book, false, 8).is_empty());

    // The proto form.
    assert_eq!(
        (p.rule.as_str(), p.kind.as_str(), p.state.as_str()),
        ("off", "ntp_offset", "resolved")
    );
    assert_eq!(
        (p.since_ms, p.active_since_ms, p.hosts.clone()),
        (T0 + 7000, T0, vec!["a".to_string()])
    );
}

#[test]
fn for_zero_fires_at_once_and_a_dropped_pending_alert_is_never_firing() {
    let rules = parse(&format!(
        "{}{}",
        offset_rule("now", "0s"),
        offset_rule("slow", "1m")
    ));
    let mut book = AlertBook::new();
    let t = book.step(
        &rules,
        vec![finding("now", "a", 1.0), finding("slow", "a", 1.0)],
        T0,
    );
    assert_eq!(
        states(&t),
        [
            tr("now", "a", Inactive, Firing),
            tr("slow", "a", Inactive, Pending)
        ]
    );
    assert_eq!(t[0].alert.fired_at_ms, Some(T0));
    let t = book.step(&rules, vec![], T0 + 1000);
    assert_eq!(
        states(&t),
        [
            tr("now", "a", Firing, Resolved),
            tr("slow", "a", Pending, Inactive)
        ]
    );
    assert_eq!(book.len(), 1, "the dropped pending alert is gone");
}

#[test]
fn flapping_starts_a_new_pending_period_each_time() {
    let rules = parse(&offset_rule("off", "3s"));
    let mut book = AlertBook::new();
    // Holds on even seconds only: never three seconds in a row, so it never fires.
    for t in 0..10 {
        let f = if t % 2 == 0 {
            vec![finding("off", "a", 1.0)]
        } else {
            vec![]
        };
        let got = states(&book.step(&rules, f, T0 + t * 1000));
        let want = if t % 2 == 0 {
            tr("off", "a", Inactive, Pending)
        } else {
            tr("off", "a", Pending, Inactive)
        };
        assert_eq!(got, [want], "at {t} s");
    }
    // Held long enough, it fires; a one-step gap resolves it; holding again is a new episode.
    for t in 10..=13 {
        book.step(&rules, vec![finding("off", "a", 1.0)], T0 + t * 1000);
    }
    assert_eq!(book.get(&host_key("off", "a")).unwrap().state, Firing);
    assert_eq!(
        states(&book.step(&rules, vec![], T0 + 14_000)),
        [tr("off", "a", Firing, Resolved)]
    );
    let t = book.step(&rules, vec![finding("off", "a", 1.0)], T0 + 15_000);
    assert_eq!(states(&t), [tr("off", "a", Resolved, Pending)]);
    assert_eq!(t[0].alert.active_since_ms, T0 + 15_000);
}

#[test]
fn keep_firing_for_rides_out_short_gaps() {
    let rules = parse(&format!(
        "{}keep_firing_for = \"3s\"\n",
        offset_rule("off", "0s")
    ));
    let mut book = AlertBook::new();
    book.step(&rules, vec![finding("off", "a", 1.0)], T0);
    for t in 1..=2 {
        assert!(book.step(&rules, vec![], T0 + t * 1000).is_empty());
    }
    assert!(book
        .step(&rules, vec![finding("off", "a", 1.0)], T0 + 3000)
        .is_empty());
    for t in 4..=5 {
        assert!(book.step(&rules, vec![], T0 + t * 1000).is_empty());
    }
    assert_eq!(
        states(&book.step(&rules, vec![], T0 + 6000)),
        [tr("off", "a", Firing, Resolved)]
    );
}

#[test]
fn alerts_of_a_removed_rule_end_on_reload() {
    let both = parse(&format!(
        "{}{}",
        offset_rule("keep", "0s"),
        offset_rule("gone", "0s")
    ));
    let mut book = AlertBook::new();
    book.step(
        &both,
        vec![
            finding("keep", "a", 1.0),
            finding("gone", "a", 1.0),
            finding("gone", "b", 1.0),
        ],
        T0,
    );
    // Reloaded without "gone", and with a label on "keep".
    let reloaded = parse(&format!(
        "{}[rule.labels]\nseverity = \"page\"\n",
        offset_rule("keep", "0s")
    ));
    // Even while holding: a finding of an unknown rule is ignored.
    let t = book.step(
        &reloaded,
        vec![finding("keep", "a", 1.0), finding("gone", "a", 1.0)],
        T0 + 1000,
    );
    assert_eq!(
        states(&t),
        [
            tr("gone", "a", Firing, Resolved),
            tr("gone", "b", Firing, Resolved)
        ]
    );
    let keep = book.get(&host_key("keep", "a")).unwrap();
    assert_eq!(keep.state, Firing);
    assert_eq!(
        keep.labels["severity"], "page",
        "labels follow the reloaded rule"
    );
}

#[test]
fn resolved_alerts_are_forgotten_after_a_day() {
    let rules = parse(&offset_rule("off", "0s"));
    let mut book = AlertBook::new();
    book.step(&rules, vec![finding("off", "a", 1.0)], T0);
    book.step(&rules, vec![], T0 + 1000);
    let rev = book.revision();
    book.step(&rules, vec![], T0 + 1000 + RESOLVED_RETENTION_MS - 1);
    assert_eq!(book.len(), 1);
    assert_eq!(book.revision(), rev, "nothing changed");
    book.step(&rules, vec![], T0 + 1000 + RESOLVED_RETENTION_MS);
    assert!(book.is_empty());
    assert!(book.revision() > rev, "forgetting is a change to persist");
}

#[test]
fn the_hold_after_a_restart_keeps_missing_alerts_active() {
    let rules = parse(&format!(
        "{}{}",
        offset_rule("off", "0s"),
        offset_rule("p", "1m")
    ));
    let mut book = AlertBook::new();
    book.step(
        &rules,
        vec![finding("off", "a", 1.0), finding("p", "a", 1.0)],
        T0,
    );
    let mut restored = AlertBook::decode(&book.encode()).unwrap();
    restored.hold_until(T0 + 60_000);
    assert!(restored.step(&rules, vec![], T0 + 30_000).is_empty());
    // New findings still fire during the hold.
    let t = restored.step(&rules, vec![finding("off", "b", 1.0)], T0 + 31_000);
    assert_eq!(states(&t), [tr("off", "b", Inactive, Firing)]);
    let t = restored.step(&rules, vec![finding("off", "b", 1.0)], T0 + 60_000);
    assert_eq!(
        states(&t),
        [
            tr("off", "a", Firing, Resolved),
            tr("p", "a", Pending, Inactive)
        ]
    );
}

#[test]
fn the_book_survives_encode_and_decode() {
    let rules = parse(&format!(
        "{}{}",
        offset_rule("off", "0s"),
        offset_rule("p", "10s")
    ));
    let mut book = AlertBook::new();
    book.step(
        &rules,
        vec![
            finding("off", "a", 1.5),
            finding("off", "b", 2.0),
            finding("p", "a", 3.0),
        ],
        T0,
    );
    book.step(
        &rules,
        vec![finding("off", "a", 1.5), finding("p", "a", 3.0)],
        T0 + 1000,
    );
    let bytes = book.encode();
    let mut back = AlertBook::decode(&bytes).unwrap();
    assert_eq!(back.alerts(), book.alerts());
    assert_eq!(back.alerts().len(), 3);
    assert_eq!(back.get(&host_key("off", "b")).unwrap().state, Resolved);
    // The pending alert keeps its start: it fires 10 s after it, not 10 s after the restart.
    let t = back.step(
        &rules,
        vec![finding("off", "a", 1.5), finding("p", "a", 3.0)],
        T0 + 10_000,
    );
    assert_eq!(states(&t), [tr("p", "a", Pending, Firing)]);

    assert!(matches!(
        AlertBook::decode(b"not json"),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        AlertBook::decode(br#"{"version":99,"alerts":[]}"#),
        Err(DecodeError::Version(99))
    ));
}

#[test]
fn states_parse_from_their_names() {
    for s in [Inactive, Pending, Firing, Resolved] {
        assert_eq!(s.as_str().parse::<AlertState>(), Ok(s));
    }
    assert!("fired".parse::<AlertState>().is_err());
}

#[test]
fn evaluate_then_step_end_to_end() {
    let rules = parse("[[rule]]\nname = \"skew\"\nkind = \"clock_skew\"\nthreshold_ms = 100\nfor = \"2s\"\n[rule.labels]\nseverity = \"page\"\n");
    let mut book = AlertBook::new();
    let mut hosts = vec![
        with_offset("web1", "prod", 0.4),
        with_offset("web2", "prod", 0.1),
        with_offset("web3", "prod", 250.0),
    ];
    let mut all = Vec::new();
    for t in 0..4 {
        if t == 3 {
            hosts[2] = with_offset("web3", "prod", 0.2);
        }
        let v = FleetView {
            now_ms: T0 + t * 1000,
            hosts: hosts.clone(),
        };
        all.extend(book.step(&rules, evaluate(&rules, &v), v.now_ms));
    }
    let key = cluster_key("skew", "prod").to_string();
    assert_eq!(
        states(&all),
        [
            (key.clone(), Inactive, Pending),
            (key.clone(), Pending, Firing),
            (key, Firing, Resolved)
        ]
    );
    let p = all[1].alert.to_proto();
    assert_eq!(p.hosts, ["web3"]);
    assert_eq!(p.cluster, "prod");
    assert_eq!(p.labels["severity"], "page");
    assert!(
        p.summary.starts_with("clock skew of 250 ms"),
        "{}",
        p.summary
    );
}
