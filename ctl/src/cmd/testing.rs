//! Fixtures shared by the commands' tests: parsing a command line, the answers several commands
//! print (hosts, sar rows, ranked processes, OOM kills) and JSON key checks.

use fleet_proto::v1::{
    HostIdentity, HostInfo, OomEvent, OomKill, OomKind, OomProcess, PolicyVersion, SarRow,
};

use crate::cli::Cli;
use crate::cmd::Command;

/// 2026-11-25T22:10:03Z
pub const T0: i64 = 1_795_644_603_000;

/// `fleetctl ARGS...` parsed.
pub fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    use clap::Parser;
    Cli::try_parse_from(std::iter::once("fleetctl").chain(args.iter().copied()))
}

/// `fleetctl ARGS...` parsed, panicking on a usage error.
pub fn parse_ok(args: &[&str]) -> Cli {
    parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The command of `fleetctl NAME ARGS...`, panicking on a usage error.
pub fn command(name: &str, args: &[&str]) -> Command {
    parse_ok(&[&[name], args].concat()).command
}

/// [`T0`] as a time: the tests' now.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(T0).unwrap()
}

pub fn host(id: &str, name: &str, cluster: &str, labels: &[(&str, &str)]) -> HostInfo {
    HostInfo {
        identity: Some(HostIdentity {
            host_id: id.into(),
            hostname: name.into(),
            cluster: cluster.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kernel: "6.1.0-18-amd64".into(),
            agent_version: "0.1.0".into(),
        }),
        connected: true,
        first_seen_ms: T0 - 3_600_000,
        last_seen_ms: T0,
        dropped_samples: 0,
        last_seq: 7,
    }
}

pub fn row(host: &str, name: &str, time_ms: i64, instance: &str, values: &[f64]) -> SarRow {
    SarRow {
        host_id: host.into(),
        hostname: name.into(),
        time_ms,
        interval_ms: 10_000,
        instance: instance.into(),
        values: values.to_vec(),
    }
}

pub fn process(
    pid: i64,
    comm: &str,
    cmdline: &str,
    score: i64,
    adj: i64,
    rss_kb: u64,
) -> OomProcess {
    OomProcess {
        pid,
        comm: comm.into(),
        cmdline: cmdline.into(),
        uid: 1000,
        oom_score: score,
        oom_score_adj: adj,
        rss_kb,
    }
}

pub fn keys(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// Keys in the order the text shows them (serde_json's map may sort them).
pub fn keys_in_text_order<'a>(text: &str, keys: &[&'a str]) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = keys
        .iter()
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), *k))
        .collect();
    found.sort_unstable();
    found.into_iter().map(|(_, k)| k).collect()
}

/// What `fleet-agent parse-kmsg` prints for the 6.11 global OOM of the corpus
/// (022-qemu611-global-rssanon-cpu-uid-dmesg), with two lines of its raw text.
pub const DETAIL_611: &str = r#"{"victim_pid":116,"victim_comm":"stress-ng-vm","victim_uid":0,
    "total_vm_kb":10515768,"anon_rss_kb":7980628,"file_rss_kb":564,"shmem_rss_kb":0,
    "pgtables_kb":15676,"oom_score_adj":1000,"constraint":"CONSTRAINT_NONE","global_oom":true,
    "task_memcg":"/","trigger_comm":"stress-ng-vm","trigger_pid":116,"gfp_mask":"0x440dc0",
    "order":0,"tasks":[
    {"pid":111,"uid":0,"tgid":111,"total_vm":431,"rss":289,"rss_anon":32,"rss_file":257,"rss_shmem":0,"pgtables_bytes":49152,"swapents":0,"oom_score_adj":0,"name":"sh"},
    {"pid":114,"uid":0,"tgid":114,"total_vm":7500,"rss":4676,"rss_anon":96,"rss_file":452,"rss_shmem":4128,"pgtables_bytes":90112,"swapents":0,"oom_score_adj":-1000,"name":"stress-ng"},
    {"pid":115,"uid":0,"tgid":115,"total_vm":7501,"rss":270,"rss_anon":84,"rss_file":186,"rss_shmem":0,"pgtables_bytes":61440,"swapents":0,"oom_score_adj":-1000,"name":"stress-ng-vm"},
    {"pid":116,"uid":0,"tgid":116,"total_vm":2628942,"rss":1995298,"rss_anon":1995157,"rss_file":141,"rss_shmem":0,"pgtables_bytes":16052224,"swapents":0,"oom_score_adj":1000,"name":"stress-ng-vm"}],
    "raw":["stress-ng-vm invoked oom-killer: gfp_mask=0x440dc0(GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=1000",
    "Out of memory: Killed process 116 (stress-ng-vm) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, UID:0 pgtables:15676kB oom_score_adj:1000"],
    "monotonic_s":30.745839,"time":"[   30.745839]","reaped":true,"cgroup_v":2}"#;

pub fn kill_611() -> OomKill {
    OomKill {
        id: "1-19abc2e5d18-0".into(),
        host_id: "a1".into(),
        hostname: "web-1".into(),
        cluster: "prod".into(),
        event: Some(OomEvent {
            time_ms: T0 + 250,
            victim_pid: Some(116),
            victim_comm: Some("stress-ng-vm".into()),
            anon_rss_kb: Some(7_980_628),
            global_oom: Some(true),
            task_memcg: Some("/".into()),
            trigger_comm: Some("stress-ng-vm".into()),
            trigger_pid: Some(116),
            reaped: true,
            source: "kmsg".into(),
            detail_json: DETAIL_611.into(),
            ..OomEvent::default()
        }),
    }
}

pub fn kill_memcg() -> OomKill {
    let detail = r#"{"victim_pid":140339,"victim_comm":"python3","victim_uid":0,"total_vm_kb":120832,
        "anon_rss_kb":15596,"file_rss_kb":8924,"shmem_rss_kb":0,"pgtables_kb":276,
        "oom_score_adj":-997,"global_oom":false,"constraint":"CONSTRAINT_MEMCG",
        "oom_memcg":"/kubepods/burstable/pod1","task_memcg":"/kubepods/burstable/pod1/c1",
        "trigger_comm":"python3","tasks":[],"raw":["x"],"partial":true,
        "mem_info":{"memcg_usage_kb":65536,"memcg_limit_kb":65536}}"#;
    OomKill {
        id: "2-19abc2e0000-1".into(),
        host_id: "b2".into(),
        hostname: "db-1".into(),
        cluster: "prod".into(),
        event: Some(OomEvent {
            time_ms: T0 - 60_000,
            partial: true,
            source: "kmsg".into(),
            detail_json: detail.into(),
            ..OomEvent::default()
        }),
    }
}

pub fn kill_vmstat() -> OomKill {
    OomKill {
        id: "1-19abc2d0000-2".into(),
        host_id: "a1".into(),
        hostname: "web-1".into(),
        cluster: "prod".into(),
        event: Some(OomEvent {
            time_ms: T0 - 3_600_000,
            partial: true,
            source: "vmstat".into(),
            detail_json: r#"{"source":"vmstat","oom_kill":3,"note":"counted by /proc/vmstat oom_kill but not found in the kernel log"}"#.into(),
            ..OomEvent::default()
        }),
    }
}

pub fn kills() -> Vec<OomKill> {
    vec![kill_611(), kill_memcg(), kill_vmstat()]
}

/// A memory.oom.group member already exiting (`OOM victim N (x) is already exiting. Skip
/// killing the task`): an OOM event that killed nothing.
pub fn skipped_exiting() -> OomKill {
    let detail = r#"{"kind":"no_kill","selected_pid":3804877,"selected_comm":"stress",
        "constraint":"CONSTRAINT_MEMCG","global_oom":false,"oom_memcg":"/kubepods.slice/pod1",
        "task_memcg":"/kubepods.slice/pod1/c1","partial":true,
        "raw":["Memory cgroup out of memory: OOM victim 3804877 (stress) is already exiting. Skip killing the task"]}"#;
    OomKill {
        id: "1-19abc2e5d18-3".into(),
        host_id: "a1".into(),
        hostname: "web-1".into(),
        cluster: "prod".into(),
        event: Some(OomEvent {
            time_ms: T0 + 200,
            partial: true,
            source: "kmsg".into(),
            kind: OomKind::NoKill.into(),
            detail_json: detail.into(),
            ..OomEvent::default()
        }),
    }
}

/// A report that ended in `Kernel panic - not syncing: Out of memory: compulsory panic_on_oom
/// is enabled`, as an older agent sent it: the kind on the wire, none in its detail.
pub fn oom_panic() -> OomKill {
    OomKill {
        id: "2-19abc2e0000-4".into(),
        host_id: "b2".into(),
        hostname: "db-1".into(),
        cluster: "prod".into(),
        event: Some(OomEvent {
            time_ms: T0 - 120_000,
            trigger_comm: Some("oncealloc2".into()),
            trigger_pid: Some(1440),
            panic: true,
            source: "kmsg".into(),
            kind: OomKind::Panic.into(),
            detail_json:
                r#"{"trigger_comm":"oncealloc2","trigger_pid":1440,"panic":true,"raw":[]}"#.into(),
            ..OomEvent::default()
        }),
    }
}

/// [`kills`] with the two events that killed nothing among them.
pub fn kills_and_others() -> Vec<OomKill> {
    let mut all = kills();
    all.push(skipped_exiting());
    all.push(oom_panic());
    all
}

pub fn version(name: &str, version: u64, action: &str) -> PolicyVersion {
    PolicyVersion {
        name: name.into(),
        version,
        action: action.into(),
        document: if action == "delete" {
            String::new()
        } else {
            format!("name: {name}\n")
        },
        actor: "alice@ops-1".into(),
        time_ms: T0,
        oom_score_adj: -1000,
        target: "cluster=prod".into(),
        r#match: "exe=/usr/sbin/sshd".into(),
        // Not forced, no restored version; and whatever a newer proto adds.
        ..PolicyVersion::default()
    }
}
