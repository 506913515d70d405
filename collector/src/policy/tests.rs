//! The policy book against a real store in a temporary directory.

use super::flaky::Flaky;
use super::*;
use crate::storage::StoreOptions;
use fleet_proto::v1::PolicySync;
use fleet_proto::v1::{HostIdentity, PolicyHostStatus, PolicyRemoval, PolicyReport, ProcessEntry};

/// The names a session sent its agent.
fn sent(names: &[&str]) -> std::collections::HashSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn open(dir: &std::path::Path) -> (Arc<Store>, PolicyBook) {
    let store = Arc::new(Store::open(dir, StoreOptions::default()).unwrap());
    let book = PolicyBook::open(store.clone()).unwrap();
    (store, book)
}

fn host(store: &Store, id: &str, cluster: &str) -> HostRecord {
    let identity = HostIdentity {
        host_id: id.into(),
        hostname: id.into(),
        cluster: cluster.into(),
        ..HostIdentity::default()
    };
    store.upsert_host(&identity, 1, true).unwrap()
}

/// A process of the host's mount namespace running the host's file at `exe`.
fn entry(pid: u32, comm: &str, exe: &str, adj: i32, rss_kb: u64) -> ProcessEntry {
    ProcessEntry {
        pid,
        ppid: 1,
        comm: comm.into(),
        exe: exe.into(),
        cmdline: exe.into(),
        oom_score_adj: adj,
        rss_kb,
        exe_dev: 65024,
        exe_ino: 1000 + u64::from(pid),
        exe_at_path: true,
        starttime: 500,
        ..ProcessEntry::default()
    }
}

fn apply(
    book: &PolicyBook,
    doc: &str,
    hosts: &[HostRecord],
    dry: bool,
    force: bool,
) -> PolicyChange {
    let req = ApplyPolicyRequest {
        document: doc.into(),
        origin: "p.yaml".into(),
        dry_run: dry,
        force,
        ..ApplyPolicyRequest::default()
    };
    book.apply(&req, "alice@laptop (unauthenticated)", hosts, 1_000)
        .unwrap()
}

const SSHD: &str = "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\noom_score_adj: -1000\n";
const SSHD_500: &str = "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\noom_score_adj: -500\n";

#[test]
fn apply_dry_run_refusal_rollback_delete_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (store, book) = open(dir.path());
    let web1 = host(&store, "web1", "prod");
    let db1 = host(&store, "db1", "staging");
    let hosts = vec![web1.clone(), db1.clone()];
    book.set_processes(
        web1.num,
        &ProcessList {
            time_ms: 5,
            processes: vec![
                entry(812, "sshd", "/usr/sbin/sshd", 0, 8_000),
                entry(900, "java", "/usr/bin/java", 0, 4_000_000),
            ],
            truncated: false,
        },
    );

    // Dry run: the plan for the targeted host only, nothing stored or pushed.
    let rx = book.subscribe();
    let dry = apply(&book, SSHD, &hosts, true, false);
    assert!(dry.dry_run && dry.policy.is_none() && dry.refusals.is_empty());
    assert_eq!(dry.hosts.len(), 1);
    assert_eq!(dry.hosts[0].host_id, "web1");
    assert_eq!(dry.hosts[0].processes_time_ms, 5);
    let c = &dry.hosts[0].changes;
    assert_eq!((c.len(), c[0].pid, c[0].from, c[0].to), (1, 812, 0, -1000));
    assert!(book.list("").is_empty());
    assert!(!rx.has_changed().unwrap());
    assert!(book.desired_for(&web1).is_empty());

    // Refused: -1000 on the largest memory user; nothing stored. (Matched by exe: on comm
    // alone it would also be refused as weak_identity.)
    let java = "name: protect-java\ntarget: {cluster: prod}\nmatch: {exe: /usr/bin/java}\noom_score_adj: -1000\n";
    let refused = apply(&book, java, &hosts, false, false);
    assert!(refused.policy.is_none() && !refused.dry_run);
    assert_eq!(refused.refusals.len(), 1);
    assert_eq!(refused.refusals[0].kind, "largest_memory_user");
    assert!(
        refused.refusals[0].reason.contains("java"),
        "{}",
        refused.refusals[0].reason
    );
    assert!(matches!(
        book.history("protect-java"),
        Err(PolicyBookError::NotFound(_))
    ));
    // Forced, it is stored and marked so.
    let forced = apply(&book, java, &hosts, false, true);
    assert!(forced.policy.as_ref().unwrap().forced);

    // Apply: version 1, pushed to web1 only.
    let v1 = apply(&book, SSHD, &hosts, false, false).policy.unwrap();
    assert_eq!((v1.version, v1.action.as_str()), (1, ACTION_APPLY));
    assert_eq!(v1.actor, "alice@laptop (unauthenticated)");
    assert_eq!(v1.target, "cluster=prod");
    let names = |h: &HostRecord| -> Vec<String> {
        book.desired_for(h).into_iter().map(|s| s.name).collect()
    };
    assert_eq!(names(&web1), ["protect-java", "protect-sshd"]);
    assert!(book.desired_for(&db1).is_empty());
    // The same document again stores nothing.
    assert_eq!(
        apply(&book, SSHD, &hosts, false, false)
            .policy
            .unwrap()
            .version,
        1
    );
    // --cluster replaces the target: now db1's.
    let req = ApplyPolicyRequest {
        document: SSHD.into(),
        cluster: "staging".into(),
        ..ApplyPolicyRequest::default()
    };
    let v2 = book
        .apply(&req, "bob", &hosts, 2_000)
        .unwrap()
        .policy
        .unwrap();
    assert_eq!((v2.version, v2.cluster.as_str()), (2, "staging"));
    assert_eq!(names(&db1), ["protect-sshd"]);
    assert_eq!(names(&web1), ["protect-java"]);
    let v3 = apply(&book, SSHD_500, &hosts, false, false).policy.unwrap();
    assert_eq!((v3.version, v3.oom_score_adj), (3, -500));

    // Status: web1 reports version 3; db1 still enforces version 2 (not targeted now).
    let report = |version: u64| PolicyReport {
        time_ms: 10,
        policies: vec![PolicyHostStatus {
            name: "protect-sshd".into(),
            version,
            matched: 1,
            set: 1,
            ..PolicyHostStatus::default()
        }],
        removed: vec![],
    };
    let sshd = sent(&["protect-sshd"]);
    assert!(book.report(&web1, &report(3), &sshd).unwrap().is_empty());
    assert!(book.report(&db1, &report(2), &sshd).unwrap().is_empty());
    let st = book.status("protect-sshd", &hosts).unwrap();
    let states: Vec<(&str, &str)> = st
        .hosts
        .iter()
        .map(|h| (h.host_id.as_str(), h.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [("web1", STATE_ENFORCED), ("db1", STATE_NOT_TARGETED)]
    );

    // Rollback steps back one apply at a time: 3 → 2 → 1, then nothing earlier.
    let r4 = book
        .rollback("protect-sshd", "carol", &hosts, 3_000)
        .unwrap()
        .policy
        .unwrap();
    assert_eq!(
        (r4.version, r4.restores, r4.action.as_str()),
        (4, 2, ACTION_ROLLBACK)
    );
    assert_eq!(r4.document, SSHD);
    assert_eq!(r4.cluster, "staging");
    let r5 = book
        .rollback("protect-sshd", "carol", &hosts, 3_001)
        .unwrap()
        .policy
        .unwrap();
    assert_eq!((r5.version, r5.restores, r5.cluster.as_str()), (5, 1, ""));
    assert_eq!(names(&web1), ["protect-java", "protect-sshd"]);
    assert_eq!(book.desired_for(&web1)[1].version, 5);
    let e = book
        .rollback("protect-sshd", "carol", &hosts, 3_002)
        .unwrap_err();
    assert!(matches!(e, PolicyBookError::Precondition(_)), "{e}");
    // web1 enforces version 3 still: outdated until it reports 5.
    let st = book.status("protect-sshd", &hosts).unwrap();
    assert_eq!(st.hosts[0].state, STATE_OUTDATED);

    // Delete, then the host reports the removal.
    let d6 = book
        .delete("protect-sshd", "dave", 4_000)
        .unwrap()
        .policy
        .unwrap();
    assert_eq!((d6.version, d6.action.as_str()), (6, ACTION_DELETE));
    assert_eq!(names(&web1), ["protect-java"]);
    assert!(matches!(
        book.delete("protect-sshd", "dave", 4_001),
        Err(PolicyBookError::Precondition(_))
    ));
    assert_eq!(
        book.status("protect-sshd", &hosts).unwrap().hosts[0].state,
        STATE_PENDING
    );
    book.report(
        &web1,
        &PolicyReport {
            time_ms: 11,
            policies: vec![],
            removed: vec![PolicyRemoval {
                name: "protect-sshd".into(),
                version: 5,
                restored: 1,
                ..PolicyRemoval::default()
            }],
        },
        // A removal of a policy it reported on before, even when this session sent nothing.
        &sent(&[]),
    )
    .unwrap();
    let st = book.status("protect-sshd", &hosts).unwrap();
    assert_eq!(st.hosts[0].state, STATE_REMOVED);
    assert_eq!(st.hosts[0].removal.as_ref().unwrap().restored, 1);
    assert_eq!(book.list("").len(), 1, "deleted policies are not listed");

    // Rollback after a delete brings back what was in force before it.
    let r7 = book
        .rollback("protect-sshd", "erin", &hosts, 5_000)
        .unwrap()
        .policy
        .unwrap();
    assert_eq!((r7.version, r7.restores), (7, 1));

    // Everything survives a restart of the collector.
    drop(book);
    let again = PolicyBook::open(store.clone()).unwrap();
    let h = again.history("protect-sshd").unwrap();
    let actions: Vec<(u64, &str, &str)> = h
        .iter()
        .map(|v| (v.version, v.action.as_str(), v.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (1, "apply", "alice@laptop (unauthenticated)"),
            (2, "apply", "bob"),
            (3, "apply", "alice@laptop (unauthenticated)"),
            (4, "rollback", "carol"),
            (5, "rollback", "carol"),
            (6, "delete", "dave"),
            (7, "rollback", "erin"),
        ]
    );
    assert_eq!(again.desired_for(&web1).len(), 2);
    let st = again.status("protect-sshd", &hosts).unwrap();
    assert_eq!(st.hosts[0].removal.as_ref().unwrap().restored, 1);
}

/// The dry run matches `exe:` by the identity the agent sent, as the agent will: the user
/// and mount namespace impostor whose exe, comm and cmdline read sshd is not in the plan.
/// A value below 0 on claims alone is refused once for the policy (no host named), hosts or
/// not; forced, it is stored and the refusal comes back with it.
#[test]
fn dry_runs_match_by_identity_and_claims_alone_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, book) = open(dir.path());
    let web1 = host(&store, "web1", "prod");
    let hosts = vec![web1.clone()];
    let impostor = ProcessEntry {
        exe_ino: 77,
        exe_at_path: false,
        foreign_mount_ns: true,
        uid: 65534,
        ..entry(4000, "sshd", "/usr/sbin/sshd", 0, 1_000)
    };
    book.set_processes(
        web1.num,
        &ProcessList {
            time_ms: 5,
            processes: vec![
                entry(812, "sshd", "/usr/sbin/sshd", 0, 8_000),
                impostor.clone(),
                entry(900, "java", "/usr/bin/java", 0, 4_000_000),
            ],
            truncated: false,
        },
    );
    let dry = apply(&book, SSHD_500, &hosts, true, false);
    let pids: Vec<u32> = dry.hosts[0].changes.iter().map(|c| c.pid).collect();
    assert_eq!(pids, [812]);
    assert!(dry.refusals.is_empty());

    let weak = "name: weak\ntarget: {}\nmatch: {comm: sshd}\noom_score_adj: -500\n";
    for hosts in [&hosts[..], &[]] {
        let refused = apply(&book, weak, hosts, false, false);
        assert!(refused.policy.is_none());
        assert_eq!(refused.refusals.len(), 1, "{refused:?}");
        let r = &refused.refusals[0];
        assert_eq!((r.kind.as_str(), r.host_id.as_str()), ("weak_identity", ""));
        assert!(r.reason.contains("matched only by comm"), "{}", r.reason);
    }
    // The plan shows what enforcement would do: both sshd-named processes.
    let dry = apply(&book, weak, &hosts, true, false);
    assert_eq!(dry.hosts[0].changes.len(), 2);
    assert!(book.history("weak").is_err(), "nothing stored");
    let forced = apply(&book, weak, &hosts, false, true);
    assert!(forced.policy.unwrap().forced);
    assert_eq!(forced.refusals[0].kind, "weak_identity");

    // The conversion: no path, no image at it; a device and inode of 0 are none.
    let odd = process_info(&ProcessEntry {
        exe: String::new(),
        exe_at_path: true,
        exe_dev: 0,
        exe_ino: 0,
        ..impostor
    });
    assert!(!odd.exe_at_path && odd.exe.is_none() && odd.exe_id.is_none());
    assert!(odd.foreign_mount_ns);
    let sshd = process_info(&entry(812, "sshd", "/usr/sbin/sshd", 0, 1));
    assert_eq!(
        sshd.exe_id,
        Some(FileId {
            dev: 65024,
            ino: 1812
        })
    );
    assert!(sshd.exe_at_path && !sshd.foreign_mount_ns);
    assert_eq!(sshd.starttime, 500);
}

#[test]
fn bad_documents_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, book) = open(dir.path());
    let req = ApplyPolicyRequest {
        document: "name: x\ntarget: {}\nmatch: {exe: /bin/x}\noom_score_adj: -2000\n".into(),
        origin: "x.yaml".into(),
        ..ApplyPolicyRequest::default()
    };
    let e = book.apply(&req, "a", &[], 1).unwrap_err().to_string();
    assert!(e.contains("x.yaml") && e.contains("oom_score_adj"), "{e}");
    assert!(matches!(
        book.status("nope", &[]),
        Err(PolicyBookError::NotFound(_))
    ));
}

/// A document of about `bytes` bytes for policy `name` (padded with a comment).
fn padded(name: &str, bytes: usize) -> String {
    let head =
        format!("name: {name}\ntarget: {{cluster: prod}}\nmatch: {{exe: /usr/sbin/sshd}}\noom_score_adj: -500\n");
    format!("{head}#{}\n", "x".repeat(bytes - head.len() - 2))
}

/// Issue 12: two 2.6 MB policies made every targeted agent's `PolicySync` exceed the 4 MiB
/// message limit. A document over 64 KiB is refused naming the limit; so is a change that
/// would make the policies in force exceed `MAX_POLICY_SET_BYTES` together (dry run and
/// rollback too); every host's set then fits in one message.
#[test]
fn documents_and_the_policy_set_are_capped_at_apply_time() {
    let dir = tempfile::tempdir().unwrap();
    let (store, book) = open(dir.path());
    let web1 = host(&store, "web1", "prod");
    let hosts = vec![web1.clone()];
    let req = |doc: String, dry_run: bool| ApplyPolicyRequest {
        document: doc,
        origin: "p.yaml".into(),
        dry_run,
        ..ApplyPolicyRequest::default()
    };
    let e = book
        .apply(&req(padded("huge", 2_600_000), false), "a", &hosts, 1)
        .unwrap_err();
    assert!(matches!(e, PolicyBookError::Document(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "p.yaml: the policy document is 2600000 bytes; a policy document is at most 65536 bytes (64 KiB)"
    );
    assert!(book.list("").is_empty());

    // 60 KiB documents, each under the cap: the set fills up.
    let size = 60 << 10;
    let fit = MAX_POLICY_SET_BYTES / (size + 16);
    for i in 0..fit {
        let change = book
            .apply(
                &req(padded(&format!("p{i:03}"), size), false),
                "a",
                &hosts,
                1,
            )
            .unwrap();
        assert!(change.policy.is_some());
    }
    let over = padded("one-too-many", size);
    for dry_run in [true, false] {
        let e = book
            .apply(&req(over.clone(), dry_run), "a", &hosts, 2)
            .unwrap_err();
        assert!(matches!(e, PolicyBookError::Precondition(_)), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("\"one-too-many\"") && m.contains(&MAX_POLICY_SET_BYTES.to_string()),
            "{m}"
        );
    }
    assert!(book.history("one-too-many").is_err(), "nothing stored");
    // Shrinking one makes room for another; rolling the shrunk one back would not fit.
    let small = padded("p000", 1000);
    let v2 = book.apply(&req(small, false), "a", &hosts, 3).unwrap();
    assert_eq!(v2.policy.unwrap().version, 2);
    book.apply(&req(over, false), "a", &hosts, 4).unwrap();
    let e = book.rollback("p000", "a", &hosts, 5).unwrap_err();
    assert!(matches!(e, PolicyBookError::Precondition(_)), "{e}");
    assert_eq!(book.history("p000").unwrap().len(), 2, "nothing stored");
    let set = PolicySync {
        policies: book.desired_for(&web1),
    };
    assert_eq!(set.policies.len(), fit + 1);
    assert!(set.encoded_len() <= MAX_POLICY_SET_BYTES);
}

/// A store written by an older collector, without the caps: a document over 64 KiB no longer
/// parses and is not pushed, and policies that do not fit in the set together are left out.
#[test]
fn stored_policies_over_the_caps_are_not_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, book) = open(dir.path());
    let web1 = host(&store, "web1", "prod");
    drop(book);
    let stored = |name: &str, doc: String| {
        let v = PolicyVersion {
            name: name.into(),
            version: 1,
            action: ACTION_APPLY.into(),
            document: doc,
            ..PolicyVersion::default()
        };
        let key = keys::policy_version_key(name, 1).unwrap();
        store
            .policy_write(&[(key, values::encode_policy_version(&v))])
            .unwrap();
    };
    stored("huge", padded("huge", 2_600_000));
    for i in 0..40 {
        let name = format!("p{i:02}");
        stored(&name, padded(&name, 60 << 10));
    }
    let book = PolicyBook::open(store.clone()).unwrap();
    let names: Vec<String> = book
        .desired_for(&web1)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let fit = MAX_POLICY_SET_BYTES / ((60 << 10) + 16);
    assert_eq!(names.len(), fit, "{names:?}");
    assert_eq!(names[0], "p00", "kept by name");
    assert!(!names.contains(&"huge".to_string()));
}

/// Issue 12: reports with invented names grew memory and the store without bound, and a
/// report was applied in memory before its write, which was never retried when it failed.
#[test]
fn reports_are_taken_only_about_what_was_sent_and_written_before_they_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let flaky = Flaky::new(store.clone());
    let book = PolicyBook::open(flaky.clone()).unwrap();
    let web1 = host(&store, "web1", "prod");
    let hosts = vec![web1.clone()];
    apply(&book, SSHD, &hosts, false, false);
    let status = |name: &str, version: u64| PolicyHostStatus {
        name: name.into(),
        version,
        matched: 1,
        set: 1,
        ..PolicyHostStatus::default()
    };
    let removal = |name: &str| PolicyRemoval {
        name: name.into(),
        version: 1,
        ..PolicyRemoval::default()
    };
    let invented: Vec<PolicyHostStatus> = (0..1000).map(|i| status(&format!("x{i}"), 1)).collect();
    let report = PolicyReport {
        time_ms: 10,
        policies: [vec![status("protect-sshd", 1)], invented].concat(),
        removed: vec![removal("never-had")],
    };
    let dropped = book
        .report(&web1, &report, &sent(&["protect-sshd"]))
        .unwrap();
    assert_eq!(dropped.len(), 1001);
    assert_eq!(dropped[1000], "never-had");
    assert_eq!(book.reports_dropped(), 1001);
    let records = store.policy_records().unwrap();
    assert_eq!(
        records.len(),
        2,
        "one version and one status: {}",
        records.len()
    );
    assert_eq!(
        book.status("protect-sshd", &hosts).unwrap().hosts[0].state,
        STATE_ENFORCED
    );
    // A session that sent nothing (yet): a status is not taken.
    let v2 = PolicyReport {
        time_ms: 11,
        policies: vec![status("protect-sshd", 1)],
        removed: vec![],
    };
    assert_eq!(
        book.report(&web1, &v2, &sent(&[])).unwrap(),
        ["protect-sshd"]
    );

    // The write fails: the report does not count yet, and stays pending.
    apply(&book, SSHD_500, &hosts, false, false);
    flaky.fail(true);
    let v2 = PolicyReport {
        time_ms: 12,
        policies: vec![status("protect-sshd", 2)],
        removed: vec![],
    };
    let e = book.report(&web1, &v2, &sent(&["protect-sshd"]));
    assert!(e.is_err());
    assert!(book.has_unsaved(web1.num));
    assert_eq!(
        book.status("protect-sshd", &hosts).unwrap().hosts[0].state,
        STATE_OUTDATED,
        "not shown before it is stored"
    );
    assert!(book.save_reports(web1.num).is_err(), "still failing");
    // The store is back: the retry writes it.
    flaky.fail(false);
    assert_eq!(book.save_reports(web1.num).unwrap(), 1);
    assert!(!book.has_unsaved(web1.num));
    assert_eq!(
        book.status("protect-sshd", &hosts).unwrap().hosts[0].state,
        STATE_ENFORCED
    );
    assert_eq!(book.save_reports(web1.num).unwrap(), 0, "nothing left");
    // And it is on disk.
    drop(book);
    let again = PolicyBook::open(store).unwrap();
    assert_eq!(
        again.status("protect-sshd", &hosts).unwrap().hosts[0].state,
        STATE_ENFORCED
    );
}
