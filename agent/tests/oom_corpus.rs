//! The OOM parser against real kernel reports (and synthetic edge cases made from them):
//! every `tests/fixtures/oom/*.expected.json` is one test here.
//!
//! For each fixture the log is run through `parse_kmsg_cli` (the `fleet-agent parse-kmsg`
//! output, which is the contract) in its declared form and in `auto`, and, for kmsg files,
//! record by record through `parse_kmsg_record` as the agent's reader feeds it. Each expected
//! kill must match field by field (`tasks_count` is the number of task rows); the victim and
//! trigger-pid fields an expected kill leaves out must be absent (never a wrong victim).

#[path = "support/kmsg_text.rs"]
mod kmsg_text;

use std::path::{Path, PathBuf};

use fleet_agent::sources::kmsg::{
    parse_kmsg_cli, parse_kmsg_record, parse_text, InputFormat, OomAssembler,
};
use serde_json::{Map, Value};

/// Fields that must be absent when the expected kill does not list them.
const STRICT: &[&str] = &[
    "victim_pid",
    "victim_comm",
    "victim_uid",
    "total_vm_kb",
    "anon_rss_kb",
    "file_rss_kb",
    "shmem_rss_kb",
    "pgtables_kb",
    "oom_score_adj",
    "score",
    "trigger_pid",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oom")
}

fn format_of(expected: &Value) -> InputFormat {
    match expected["format"].as_str().unwrap_or("auto") {
        "kmsg" => InputFormat::Kmsg,
        "dmesg" | "console" => InputFormat::Dmesg,
        "syslog" | "journal" => InputFormat::Syslog,
        _ => InputFormat::Auto,
    }
}

fn cli(format: InputFormat, text: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let n = parse_kmsg_cli(format, text, &mut out).expect("in-memory I/O");
    let lines: Vec<Value> = std::str::from_utf8(&out)
        .expect("JSON is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(n as usize, lines.len(), "returned count = lines written");
    lines
}

/// /dev/kmsg as the device returns it: one record per read, continuation lines included.
fn kmsg_records(text: &str) -> Vec<Value> {
    let records = kmsg_text::records(text);
    let mut asm = OomAssembler::new();
    let mut events = Vec::new();
    for r in &records {
        let rec = format!("{r}\n");
        if let Some(l) = parse_kmsg_record(rec.as_bytes()) {
            events.extend(asm.push(l));
        }
    }
    events.extend(asm.finish());
    events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

fn check_kill(name: &str, i: usize, want: &Map<String, Value>, got: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for (key, w) in want {
        if key == "tasks_count" {
            let n = got
                .get("tasks")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if Some(n as u64) != w.as_u64() {
                errs.push(format!("{name} kill {i}: tasks_count {n}, want {w}"));
            }
            continue;
        }
        let g = got.get(key);
        let ok = match (w, g) {
            (Value::Bool(false), None) => true,
            (Value::Object(wm), Some(Value::Object(gm))) => {
                wm.iter().all(|(k, v)| gm.get(k) == Some(v))
            }
            (Value::Number(wn), Some(Value::Number(gn))) if wn.is_f64() || gn.is_f64() => {
                (wn.as_f64().unwrap() - gn.as_f64().unwrap()).abs() < 1e-6
            }
            (w, Some(g)) => w == g,
            _ => false,
        };
        if !ok {
            errs.push(format!("{name} kill {i}: {key} = {g:?}, want {w}"));
        }
    }
    for key in STRICT {
        if !want.contains_key(*key) {
            if let Some(g) = got.get(*key) {
                errs.push(format!(
                    "{name} kill {i}: {key} = {g} but the report does not say it"
                ));
            }
        }
    }
    // Every event says its kind; only a kill has a victim, from a kill line of this event or a
    // selection line or summary no kill line followed.
    let kind = got.get("kind").and_then(Value::as_str);
    if !matches!(kind, Some("kill" | "panic" | "no_kill")) {
        errs.push(format!("{name} kill {i}: kind = {kind:?}"));
    }
    if got.get("victim_pid").is_some() != (kind == Some("kill")) {
        errs.push(format!(
            "{name} kill {i}: a kill names its victim, nothing else does"
        ));
    }
    if let Some(pid) = got.get("victim_pid") {
        let raw = got["raw"].as_array().unwrap();
        let kill = format!("illed process {pid}");
        let selection = format!("ill process {pid} (");
        let summary = format!(",pid={pid}");
        if !raw.iter().any(|l| {
            let l = l.as_str().unwrap();
            l.contains(&kill)
                || l.contains(&selection)
                || l.split(&summary)
                    .skip(1)
                    .any(|rest| rest.is_empty() || rest.starts_with(','))
        }) {
            errs.push(format!(
                "{name} kill {i}: victim {pid} not in the event's raw lines"
            ));
        }
    }
    errs
}

fn check(file: &str) {
    let expected_path = dir().join(file);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
    let log = expected["file"].as_str().unwrap();
    let text = std::fs::read(dir().join(log)).unwrap();
    let kills = expected["kills"].as_array().unwrap();
    let format = format_of(&expected);
    let mut runs = vec![
        ("declared", cli(format, &text)),
        ("auto", cli(InputFormat::Auto, &text)),
    ];
    if format == InputFormat::Kmsg {
        runs.push(("records", kmsg_records(std::str::from_utf8(&text).unwrap())));
    }
    // parse_text is the same parser without the line reader.
    let via_text: Vec<Value> = parse_text(format, std::str::from_utf8(&text).unwrap())
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(
        via_text, runs[0].1,
        "{log}: parse_text and parse_kmsg_cli differ"
    );
    let mut errs = Vec::new();
    for (how, got) in &runs {
        if got.len() != kills.len() {
            errs.push(format!(
                "{log} ({how}): {} events, want {}",
                got.len(),
                kills.len()
            ));
            continue;
        }
        for (i, (w, g)) in kills.iter().zip(got).enumerate() {
            errs.extend(check_kill(
                &format!("{log} ({how})"),
                i,
                w.as_object().unwrap(),
                g,
            ));
        }
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

macro_rules! fixtures {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($file);
            }
        )*

        #[test]
        fn every_fixture_has_a_test() {
            let listed = [$($file),*];
            let mut missing = Vec::new();
            for entry in std::fs::read_dir(dir()).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".expected.json") && !listed.contains(&name.as_str()) {
                    missing.push(name);
                }
            }
            assert!(missing.is_empty(), "fixtures without a test: {missing:?}");
        }
    };
}

fixtures! {
    c001_ubuntu313_mysqld_syslog => "001-ubuntu313-mysqld-syslog.expected.json",
    c008_rhel6_alios_redis_uid_syslog => "008-rhel6-alios-redis-uid-syslog.expected.json",
    c013_centos7_memcg_repeated_kills_syslog => "013-centos7-1160-memcg-ltp-repeated-kills-syslog.expected.json",
    c016_eks_memcg_negative_adj_dmesg => "016-eks-efs-memcg-negative-adj-dmesg.expected.json",
    c022_qemu611_global_dmesg => "022-qemu611-global-rssanon-cpu-uid-dmesg.expected.json",
    c029_rhel8_varnish_syslog => "029-rhel8-553-varnish-global-syslog.expected.json",
    c030_linux2610_console => "030-linux2610-rnasubopt-ancient-console.expected.json",
    c035_aks515_memcg_group_kmsg => "035-DERIVED-kmsg-from-002-aks515-memcg.expected.json",
    r040_rhel6_26332_syslog => "040-rhel6-26332-642-java-vim-syslog.expected.json",
    r041_debian6_child_sacrifice_syslog => "041-debian6-26332-5-apache-child-sacrifice-syslog.expected.json",
    r042_centos7_310_interleaved_syslog => "042-centos7-310-862-palo-syslog-interleaved.expected.json",
    r043_centos7_310_dmesg => "043-centos7-310-1160-mysqld-dmesg.expected.json",
    r044_centos7_journalctl_cut => "044-centos7-310-journalctl-k-cut-lines.expected.json",
    r045_ubuntu1604_44_docker_memcg_dmesg => "045-ubuntu1604-44-docker-memcg-dmesg.expected.json",
    r046_lkml_518_mempolicy_reaper_dmesg => "046-lkml-518-mempolicy-reaper-dmesg.expected.json",
    r047_orbstack_69_arm64_dmesg_t => "047-orbstack-698-arm64-dmesg-T.expected.json",
    r048_linux617_french_dmesg_t => "048-linux617-fr-locale-dmesg-T-grep.expected.json",
    r049_6x_cgroupv2_journal => "049-6x-cgroupv2-memcg-journalctl-f.expected.json",
    r050_k8s_kmsg_summary_only => "050-k8s-kmsg-summary-record-only.expected.json",
    r051_k8s_oom_group_skip_exiting => "051-k8s-oomgroup-skip-exiting-dmesg-T.expected.json",
    r052_arm64_54_compulsory_panic => "052-arm64-54-panic-on-oom-compulsory-dmesg.expected.json",
    r053_talos_host_prefix => "053-talos-66-kata-host-prefix-dmesg.expected.json",
    r054_npd_event_quoting_a_kill => "054-npd-event-json-quoting-kill.expected.json",
    r055_kubectl_quoting_a_selection => "055-npd-kubectl-describe-node-quoting-selection.expected.json",
    r056_grep_selection_lines_only => "056-grep-selection-lines-only-dmesg.expected.json",
    r057_photon_vmware_guest_log_prefix => "057-photon3-419-vmware-guest-log-prefix.expected.json",
    s101_interleaved_foreign_banner => "101-SYNTHETIC-interleaved-foreign-banner-dmesg.expected.json",
    s102_truncated_then_next => "102-SYNTHETIC-truncated-then-next-dmesg.expected.json",
    s103_rate_limited => "103-SYNTHETIC-rate-limited-syslog.expected.json",
    s104_kmsg_escapes_dictionary => "104-SYNTHETIC-kmsg-escaped-newlines-dictionary.expected.json",
    s105_kmsg_ring_overwritten_cut => "105-SYNTHETIC-kmsg-ring-overwritten-and-cut-record.expected.json",
    s106_panic_on_oom => "106-SYNTHETIC-panic-on-oom-dmesg.expected.json",
    s107_old_kill_forms => "107-SYNTHETIC-old-kill-forms-dmesg.expected.json",
}
