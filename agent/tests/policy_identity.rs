//! Process identity in the enforcer: `exe:` by the device and inode of the running image in the
//! host's mount namespace (PID 1's when the agent can read it, else its own), on fixture proc
//! trees for both references and for foreign namespaces; on real processes, a binary replaced
//! on disk (the value set stays, across a restart of the agent too, and a new process of the new
//! file matches); the safety net for a value below 0 on claims alone; and a write refused when
//! the process runs another image than the one matched.
//!
//! Values stay above 0 on real processes: this machine has no CAP_SYS_RESOURCE (a later issue
//! covers -1000 on real hosts).

mod children;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use children::{adj, run_as, sleeper};

use std::os::unix::fs::MetadataExt;

use fleet_agent::policy::{
    Enforcer, Expect, PolicyRunner, ProcDir, ProcScanner, Reference, WriteError, EXE_CHANGED,
    PERMISSION_DENIED,
};
use fleet_policy::parse_policy;

fn policy(text: &str) -> fleet_policy::Policy {
    parse_policy(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn fixture_adj(root: &Path, pid: u32) -> i32 {
    std::fs::read_to_string(root.join(pid.to_string()).join("oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A fixture proc tree: processes whose `exe` links to a file of the test (its device and inode
/// are the image's) and whose `ns/mnt` links to a file standing for their mount namespace.
struct Tree {
    _tmp: tempfile::TempDir,
    /// The proc root.
    proc: PathBuf,
    /// Files standing for mount namespaces.
    ns_host: PathBuf,
    ns_agent: PathBuf,
    ns_other: PathBuf,
    /// The image the processes run, at a path of the agent's own view.
    image: PathBuf,
    /// PID 1's root: the host's view of the same path holds another file until linked.
    host_root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let proc = base.join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        let ns = |name: &str| {
            let p = base.join(name);
            std::fs::write(&p, name).unwrap();
            p
        };
        let (ns_host, ns_agent, ns_other) = (ns("ns-host"), ns("ns-agent"), ns("ns-other"));
        let image = base.join("bin/sshd");
        std::fs::create_dir_all(image.parent().unwrap()).unwrap();
        std::fs::write(&image, "the image that runs").unwrap();
        // The host's file at the same path is another one (say the agent runs in a mount
        // namespace where that path shows something else).
        let host_root = base.join("hostroot");
        let host_image = host_root.join(image.strip_prefix("/").unwrap());
        std::fs::create_dir_all(host_image.parent().unwrap()).unwrap();
        std::fs::write(&host_image, "the host's file").unwrap();
        // PID 1 and the agent itself.
        std::fs::create_dir_all(proc.join("1/ns")).unwrap();
        symlink(&ns_host, proc.join("1/ns/mnt")).unwrap();
        symlink(&host_root, proc.join("1/root")).unwrap();
        std::fs::create_dir_all(proc.join("self/ns")).unwrap();
        symlink(&ns_agent, proc.join("self/ns/mnt")).unwrap();
        Tree {
            _tmp: tmp,
            proc,
            ns_host,
            ns_agent,
            ns_other,
            image,
            host_root,
        }
    }

    fn process(&self, pid: u32, ns: &Path) {
        let dir = self.proc.join(pid.to_string());
        std::fs::create_dir_all(dir.join("ns")).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!("{pid} (sshd) S 1 {pid} {pid} 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 {} 1000 10 18446744073709551615\n", 1000 + pid),
        )
        .unwrap();
        std::fs::write(
            dir.join("cmdline"),
            format!("{}\0-D\0", self.image.display()),
        )
        .unwrap();
        std::fs::write(dir.join("status"), "Name:\tsshd\nUid:\t0\t0\t0\t0\n").unwrap();
        std::fs::write(dir.join("cgroup"), "0::/system.slice/ssh.service\n").unwrap();
        std::fs::write(dir.join("statm"), "100 50 0 0 0 0 0\n").unwrap();
        std::fs::write(dir.join("oom_score_adj"), "0\n").unwrap();
        symlink(&self.image, dir.join("exe")).unwrap();
        symlink(ns, dir.join("ns/mnt")).unwrap();
    }

    /// Makes the host's file at the image's path the image itself.
    fn link_host_file(&self) {
        let host_image = self.host_root.join(self.image.strip_prefix("/").unwrap());
        std::fs::remove_file(&host_image).unwrap();
        std::fs::hard_link(&self.image, &host_image).unwrap();
    }

    /// PID 1's namespace becomes unreadable (as for an agent without CAP_SYS_PTRACE).
    fn hide_pid1(&self) {
        std::fs::remove_file(self.proc.join("1/ns/mnt")).unwrap();
    }

    fn exe_policy(&self, extra: &str) -> fleet_policy::Policy {
        policy(&format!(
            "name: p\ntarget: {{}}\nmatch: {{exe: '{}'{extra}}}\noom_score_adj: 300\n",
            self.image.display()
        ))
    }

    fn matched(&self, extra: &str) -> Vec<u32> {
        let state = tempfile::tempdir().unwrap();
        let mut enforcer = Enforcer::open(&self.proc, Path::new("/etc"), state.path()).unwrap();
        enforcer.apply(self.exe_policy(extra), 1).unwrap();
        let mut pids: Vec<u32> = enforcer.matched("p").iter().map(|k| k.pid).collect();
        pids.sort_unstable();
        pids
    }
}

/// With PID 1 readable, the host is PID 1's mount namespace and paths resolve under its root:
/// a process of that namespace matches only when its image is the file there; a process of
/// another namespace only with `mount_namespaces: any`, and only by that same identity.
#[test]
fn exe_is_resolved_in_pid1s_namespace() {
    let tree = Tree::new();
    tree.process(812, &tree.ns_host);
    tree.process(813, &tree.ns_other);
    tree.process(814, &tree.ns_agent);
    let scanner = ProcScanner::new(&tree.proc);
    assert_eq!(scanner.host().reference(), Reference::Pid1);

    // The host's file at that path is another file: nothing runs it.
    assert_eq!(tree.matched(""), Vec::<u32>::new());
    assert_eq!(tree.matched(", mount_namespaces: any"), Vec::<u32>::new());
    tree.link_host_file();
    assert_eq!(tree.matched(""), [812], "only the host's namespace");
    assert_eq!(tree.matched(", mount_namespaces: any"), [812, 813, 814]);

    // The process list says the same, for the collector's dry run.
    let state = tempfile::tempdir().unwrap();
    let mut runner = PolicyRunner::open(&tree.proc, Path::new("/etc"), state.path()).unwrap();
    let list = runner.process_list(true).unwrap();
    let entry = |pid: u32| list.processes.iter().find(|e| e.pid == pid).unwrap();
    let image = std::fs::metadata(&tree.image).unwrap();
    for pid in [812, 813, 814] {
        let e = entry(pid);
        assert_eq!((e.exe_dev, e.exe_ino), (image.dev(), image.ino()));
        assert!(e.exe_at_path, "{e:?}");
        assert_eq!(e.starttime, 1000 + u64::from(pid));
        assert_eq!(e.foreign_mount_ns, pid != 812, "{e:?}");
    }
}

/// Where PID 1's namespace cannot be read, the agent's own is the reference and paths are taken
/// as they are; a process of any other namespace (PID 1's included) is foreign.
#[test]
fn exe_falls_back_to_the_agents_own_namespace() {
    let tree = Tree::new();
    tree.process(812, &tree.ns_host);
    tree.process(814, &tree.ns_agent);
    tree.hide_pid1();
    let scanner = ProcScanner::new(&tree.proc);
    assert_eq!(scanner.host().reference(), Reference::Own);
    assert!(scanner.host().why_not_pid1().unwrap().contains("1/ns/mnt"));
    // The path as it is names the image itself (the host root's other file is not looked at).
    assert_eq!(tree.matched(""), [814]);
    assert_eq!(tree.matched(", mount_namespaces: any"), [812, 814]);
}

/// A policy's value is written only to the image that matched, checked through the process's
/// opened directory: a process that exec'd another program since it was matched, or a pid that
/// names another process now, is not written. And a process that exec'd out of the match is let
/// go at the next apply, with its original value back.
#[test]
fn a_changed_image_or_process_is_not_written() {
    let tree = Tree::new();
    tree.process(812, &tree.ns_agent);
    tree.hide_pid1();
    let state = tempfile::tempdir().unwrap();
    let mut enforcer = Enforcer::open(&tree.proc, Path::new("/etc"), state.path()).unwrap();
    enforcer.apply(tree.exe_policy(""), 1).unwrap();
    assert_eq!(fixture_adj(&tree.proc, 812), 300);
    let dir = ProcDir::open(&tree.proc, 812).unwrap();
    let matched = Expect {
        starttime: 1812,
        image: Some(fleet_policy::FileId {
            dev: std::fs::metadata(&tree.image).unwrap().dev(),
            ino: std::fs::metadata(&tree.image).unwrap().ino(),
        }),
    };
    dir.write_oom_score_adj(301, matched).unwrap();
    assert_eq!(fixture_adj(&tree.proc, 812), 301);

    // It execs another program: the image the write expects is not there.
    let other = tree.image.with_file_name("other");
    std::fs::write(&other, "another program").unwrap();
    std::fs::remove_file(tree.proc.join("812/exe")).unwrap();
    symlink(&other, tree.proc.join("812/exe")).unwrap();
    assert!(matches!(
        dir.write_oom_score_adj(302, matched),
        Err(WriteError::ImageChanged)
    ));
    // Another start time: another process.
    let reused = Expect {
        starttime: 9999,
        image: None,
    };
    assert!(matches!(
        dir.write_oom_score_adj(303, reused),
        Err(WriteError::Gone)
    ));
    assert_eq!(fixture_adj(&tree.proc, 812), 301, "neither was written");

    let status = enforcer.apply(tree.exe_policy(""), 2).unwrap();
    assert_eq!(status.matched, 0);
    assert_eq!(fixture_adj(&tree.proc, 812), 0, "its original value back");
    assert_ne!(EXE_CHANGED, PERMISSION_DENIED);
}

/// A real process whose binary is replaced on disk (an upgrade) keeps the value the policy set:
/// it is held by the image that matched, through full rescans, a re-apply of the same `exe:`
/// and a restart of the agent; a process started from the new file matches it; a version naming
/// another file lets the old process go.
#[test]
fn a_replaced_binary_keeps_its_value_and_a_restart_matches_again() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("fleet-sleep");
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let marker = format!("fleet-identity-{}", std::process::id());
    let start = || run_as(exe.as_os_str(), &marker);
    let doc = |path: &Path, v: i32| {
        policy(&format!(
            "name: up\ntarget: {{}}\nmatch: {{exe: '{}'}}\noom_score_adj: {v}\n",
            path.display()
        ))
    };
    let state = tempfile::tempdir().unwrap();
    let open = || {
        let mut e = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
        e.scanner()
            .set_full_rescan(std::time::Duration::from_millis(1));
        e
    };
    let old = start();
    let mut enforcer = open();
    let status = enforcer.apply(doc(&exe, 310), 1).unwrap();
    assert_eq!((status.matched, status.set), (1, 1));
    assert_eq!(adj(old.pid()), 310);

    // The upgrade: a new file renamed over the old one.
    let new_file = tmp.path().join("fleet-sleep.new");
    std::fs::copy("/bin/sleep", &new_file).unwrap();
    std::fs::rename(&new_file, &exe).unwrap();
    let link = std::fs::read_link(format!("/proc/{}/exe", old.pid())).unwrap();
    assert!(link.to_string_lossy().ends_with(" (deleted)"), "{link:?}");

    // Someone resets the value; every tick is a full rescan here: it is set again, held.
    std::fs::write(format!("/proc/{}/oom_score_adj", old.pid()), "0").unwrap();
    enforcer.tick().unwrap();
    assert_eq!(adj(old.pid()), 310, "still held by its image");
    assert_eq!(enforcer.status()[0].matched, 1);

    // A process of the new file matches it.
    let fresh = start();
    enforcer.tick().unwrap();
    assert_eq!(adj(fresh.pid()), 310);

    // The same exe: again (a new value), and a restart of the agent: still held.
    enforcer.apply(doc(&exe, 320), 2).unwrap();
    assert_eq!((adj(old.pid()), adj(fresh.pid())), (320, 320));
    drop(enforcer);
    let mut enforcer = open();
    enforcer.tick().unwrap();
    assert_eq!(enforcer.status()[0].matched, 2, "{:?}", enforcer.status());
    enforcer.apply(doc(&exe, 330), 3).unwrap();
    assert_eq!((adj(old.pid()), adj(fresh.pid())), (330, 330));

    // A version naming another file lets both go, back to their original values.
    let status = enforcer
        .apply(doc(Path::new("/usr/sbin/fleet-none"), 330), 4)
        .unwrap();
    assert_eq!(status.matched, 0);
    let own = adj(std::process::id());
    assert_eq!(
        (adj(old.pid()), adj(fresh.pid())),
        (own, own),
        "inherited from the test"
    );
}

/// The agent's safety net: a value below 0 on a match that rests on claims alone takes no
/// process unless forced; forced, it takes them (set, or refused by the kernel without
/// CAP_SYS_RESOURCE).
#[test]
fn safety_net_refuses_claims_alone_below_zero() {
    let marker = format!("fleet-identity-weak-{}", std::process::id());
    let child = sleeper(&marker);
    let weak = || {
        policy(&format!(
            "name: weak\ntarget: {{}}\nmatch: {{cmdline: '^{marker} '}}\noom_score_adj: -5\n"
        ))
    };
    let state = tempfile::tempdir().unwrap();
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    let status = enforcer.apply(weak(), 1).unwrap();
    assert_eq!(status.matched, 0);
    assert_eq!(status.failed.len(), 1, "{status:?}");
    let why = &status.failed[0].1;
    assert!(
        why.contains("matched only by cmdline, which any process can claim")
            && why.contains("--force"),
        "{why}"
    );
    let status = enforcer.apply_with(weak(), 2, true).unwrap();
    assert_eq!(status.matched, 1);
    let set = status.set == 1;
    let denied = status.failed == vec![(child.pid(), PERMISSION_DENIED.to_string())];
    assert!(set || denied, "{status:?}");
    enforcer.remove("weak").unwrap();
}
