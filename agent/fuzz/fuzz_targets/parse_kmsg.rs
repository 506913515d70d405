//! Arbitrary bytes through every input form of the OOM parser and through the /dev/kmsg
//! record parser. The parser must never panic, and a victim it reports must be a kill's and come
//! from a kill (or selection) line of the same event.
#![no_main]

use fleet_agent::sources::kmsg::{
    parse_kmsg_cli, parse_kmsg_record, EventKind, InputFormat, OomAssembler, OomEvent,
};
use libfuzzer_sys::fuzz_target;

fn check(e: &OomEvent) {
    assert_eq!(e.victim_pid.is_some(), e.kind == EventKind::Kill, "{e:?}");
    if let Some(pid) = e.victim_pid {
        // A kill line, or a selection line or summary that no kill line followed.
        let kill = format!("illed process {pid}");
        let selection = format!("ill process {pid} (");
        let summary = format!(",pid={pid}");
        assert!(
            e.raw
                .iter()
                .any(|l| l.contains(&kill) || l.contains(&selection) || l.split(&summary).skip(1).any(|rest| rest.is_empty() || rest.starts_with(','))),
            "victim {pid} not in raw: {:?}",
            e.raw
        );
    }
}

fuzz_target!(|data: &[u8]| {
    for format in [
        InputFormat::Auto,
        InputFormat::Kmsg,
        InputFormat::Dmesg,
        InputFormat::Syslog,
    ] {
        let mut out = Vec::new();
        parse_kmsg_cli(format, data, &mut out).expect("in-memory I/O cannot fail");
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value =
                serde_json::from_slice(line).expect("each output line is JSON");
            assert!(v.is_object(), "each output line is a JSON object");
        }
    }
    // One record per NUL-separated chunk, as reads of /dev/kmsg would return them.
    let mut asm = OomAssembler::new();
    for rec in data.split(|&b| b == 0) {
        if let Some(line) = parse_kmsg_record(rec) {
            for e in asm.push(line) {
                check(&e);
            }
        }
    }
    for e in asm.finish() {
        check(&e);
    }
});
