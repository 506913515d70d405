//! `fleetctl policy ...` against an in-process fake `Policies` service on 127.0.0.1:0
//! (plaintext): the requests fleetctl sends (with the `fleet-actor` metadata of a change) and how
//! it prints canned answers. The real collector's side lives in collector/ and tests/.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::cli;
use fleet_proto::v1::policies_server::{Policies, PoliciesServer};
use fleet_proto::v1::{
    ApplyPolicyRequest, HostPlan, HostPolicyStatus, ListPoliciesRequest, PlannedChange,
    PolicyChange, PolicyFailure, PolicyHistoryList, PolicyHostStatus, PolicyList, PolicyName,
    PolicyProcess, PolicyRefusal, PolicyRemoval, PolicyStatusReport, PolicyVersion,
};
use fleetctl::execute;
use serde_json::Value;
use tonic::{Request, Response, Status};

/// 2026-11-25T22:10:03Z
const T0: i64 = 1_795_644_603_000;

/// The one policy the fake knows.
const NAME: &str = "protect-sshd";

/// A policy the safety checks pass.
const GOOD: &str = "# keep sshd\n\
                    name: protect-sshd\n\
                    target: {cluster: prod}\n\
                    match: {exe: /usr/sbin/sshd}\n\
                    oom_score_adj: -1000\n";

/// A policy the fake's safety checks refuse without --force. (Anchored by exe:, so fleetctl's
/// own check, which refuses a value below 0 on claims alone, lets it through to the fake.)
const RISKY: &str = "name: protect-db\n\
                     target: {cluster: prod}\n\
                     match: {exe: /usr/lib/postgresql/15/bin/postgres, comm: postgres}\n\
                     oom_score_adj: -1000\n";

/// A request as the fake saw it, with the actor metadata (`None` when absent).
type Seen<T> = Mutex<Vec<(T, Option<String>)>>;

#[derive(Default)]
struct Fake {
    applies: Seen<ApplyPolicyRequest>,
    lists: Seen<ListPoliciesRequest>,
    statuses: Seen<PolicyName>,
    histories: Seen<PolicyName>,
    rollbacks: Seen<PolicyName>,
    deletes: Seen<PolicyName>,
}

impl Fake {
    /// How many requests of any kind it has seen.
    fn requests(&self) -> usize {
        self.applies.lock().unwrap().len()
            + self.lists.lock().unwrap().len()
            + self.statuses.lock().unwrap().len()
            + self.histories.lock().unwrap().len()
            + self.rollbacks.lock().unwrap().len()
            + self.deletes.lock().unwrap().len()
    }
}

fn record<T: Clone>(seen: &Seen<T>, request: &Request<T>) -> T {
    let actor = request
        .metadata()
        .get("fleet-actor")
        .map(|v| v.to_str().unwrap().to_owned());
    let message = request.get_ref().clone();
    seen.lock().unwrap().push((message.clone(), actor));
    message
}

/// The collector's actor convention without a client certificate.
fn actor_of<T>(request: &Request<T>) -> String {
    let name = request
        .metadata()
        .get("fleet-actor")
        .map_or("anonymous", |v| v.to_str().unwrap());
    format!("{name} (unauthenticated)")
}

fn version(version: u64, action: &str, actor: &str) -> PolicyVersion {
    PolicyVersion {
        name: NAME.into(),
        version,
        action: action.into(),
        document: if action == "delete" {
            String::new()
        } else {
            GOOD.into()
        },
        actor: actor.into(),
        time_ms: T0,
        oom_score_adj: -1000,
        target: "cluster=prod".into(),
        r#match: "exe=/usr/sbin/sshd".into(),
        ..PolicyVersion::default()
    }
}

fn plans() -> Vec<HostPlan> {
    vec![
        HostPlan {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            cluster: "prod".into(),
            connected: true,
            processes_time_ms: T0 - 30_000,
            changes: vec![PlannedChange {
                pid: 812,
                comm: "sshd".into(),
                from: 0,
                to: -1000,
            }],
        },
        HostPlan {
            host_id: "b2".into(),
            hostname: "web-2".into(),
            cluster: "prod".into(),
            connected: false,
            processes_time_ms: 0,
            changes: Vec::new(),
        },
    ]
}

fn refusals() -> Vec<PolicyRefusal> {
    vec![PolicyRefusal {
        host_id: "a1".into(),
        hostname: "web-1".into(),
        kind: "largest_memory_user".into(),
        reason: "postgres (pid 900) uses the most memory on web-1 (12.0 GiB); protecting it \
                 leaves the OOM killer nothing big to free"
            .into(),
    }]
}

fn not_found(name: &str) -> Status {
    Status::not_found(format!("policy {name:?} not found"))
}

struct FakeSvc(Arc<Fake>);

#[tonic::async_trait]
impl Policies for FakeSvc {
    async fn apply_policy(
        &self,
        request: Request<ApplyPolicyRequest>,
    ) -> Result<Response<PolicyChange>, Status> {
        let req = record(&self.0.applies, &request);
        let risky = req.document.contains("postgres");
        let change = if req.dry_run {
            PolicyChange {
                policy: None,
                dry_run: true,
                hosts: plans(),
                refusals: if risky { refusals() } else { Vec::new() },
                unchanged: false,
            }
        } else if risky && !req.force {
            PolicyChange {
                policy: None,
                dry_run: false,
                hosts: Vec::new(),
                refusals: refusals(),
                unchanged: false,
            }
        } else {
            let mut stored = version(4, "apply", &actor_of(&request));
            stored.forced = req.force && risky;
            PolicyChange {
                policy: Some(stored),
                dry_run: false,
                hosts: plans(),
                refusals: if risky { refusals() } else { Vec::new() },
                unchanged: false,
            }
        };
        Ok(Response::new(change))
    }

    async fn list_policies(
        &self,
        request: Request<ListPoliciesRequest>,
    ) -> Result<Response<PolicyList>, Status> {
        let req = record(&self.0.lists, &request);
        let policies = if req.cluster.is_empty() || req.cluster == "prod" {
            vec![version(3, "apply", "alice@ops-1 (unauthenticated)")]
        } else {
            Vec::new()
        };
        Ok(Response::new(PolicyList { policies }))
    }

    async fn get_policy_status(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyStatusReport>, Status> {
        let req = record(&self.0.statuses, &request);
        if req.name != NAME {
            return Err(not_found(&req.name));
        }
        let enforced = HostPolicyStatus {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            cluster: "prod".into(),
            connected: true,
            state: "enforced".into(),
            reported_ms: T0,
            status: Some(PolicyHostStatus {
                name: NAME.into(),
                version: 3,
                matched: 2,
                set: 1,
                failed: vec![PolicyFailure {
                    pid: 901,
                    reason: "permission denied".into(),
                }],
                processes: vec![PolicyProcess {
                    pid: 812,
                    comm: "sshd".into(),
                    oom_score_adj: -1000,
                    original: 0,
                }],
            }),
            removal: None,
        };
        let removed = HostPolicyStatus {
            host_id: "c3".into(),
            hostname: "db-1".into(),
            cluster: "prod".into(),
            connected: false,
            state: "removed".into(),
            reported_ms: T0 - 60_000,
            status: None,
            removal: Some(PolicyRemoval {
                name: NAME.into(),
                version: 2,
                restored: 3,
                handed_over: 1,
                failed: Vec::new(),
            }),
        };
        Ok(Response::new(PolicyStatusReport {
            policy: Some(version(3, "apply", "alice@ops-1 (unauthenticated)")),
            hosts: vec![enforced, removed],
        }))
    }

    async fn policy_history(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyHistoryList>, Status> {
        let req = record(&self.0.histories, &request);
        if req.name != NAME {
            return Err(not_found(&req.name));
        }
        let mut forced = version(2, "apply", "bob@ops-2 (unauthenticated)");
        forced.forced = true;
        forced.oom_score_adj = -900;
        let mut rollback = version(3, "rollback", "CN=carol");
        rollback.restores = 1;
        Ok(Response::new(PolicyHistoryList {
            versions: vec![
                version(1, "apply", "alice@ops-1 (unauthenticated)"),
                forced,
                rollback,
            ],
        }))
    }

    async fn rollback_policy(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyChange>, Status> {
        let req = record(&self.0.rollbacks, &request);
        if req.name != NAME {
            return Err(not_found(&req.name));
        }
        let mut stored = version(5, "rollback", &actor_of(&request));
        stored.restores = 2;
        Ok(Response::new(PolicyChange {
            policy: Some(stored),
            hosts: plans(),
            ..PolicyChange::default()
        }))
    }

    async fn delete_policy(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyChange>, Status> {
        let req = record(&self.0.deletes, &request);
        if req.name != NAME {
            return Err(not_found(&req.name));
        }
        Ok(Response::new(PolicyChange {
            policy: Some(version(6, "delete", &actor_of(&request))),
            ..PolicyChange::default()
        }))
    }
}

async fn start() -> (SocketAddr, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let service = PoliciesServer::new(FakeSvc(fake.clone()));
    let addr = common::serve(tonic::transport::Server::builder().add_service(service)).await;
    (addr, fake)
}

fn policy_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn fleetctl(addr: SocketAddr, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetctl"));
    cmd.args(["--insecure", "--collector", &format!("http://{addr}")])
        .args(args)
        .env_remove("FLEET_COLLECTOR")
        .env("USER", "alice")
        .env_remove("LOGNAME");
    cmd
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

// Multi-threaded: the blocking wait on the child must not starve the fake server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_sends_the_document_as_written_with_the_actor() {
    let (addr, fake) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(dir.path(), "protect-sshd.yaml", GOOD);
    let file = path.to_str().unwrap();

    let out = fleetctl(
        addr,
        &["policy", "apply", "-f", file, "--cluster", "staging"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let actor = format!("alice@{}", this_host());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "policy protect-sshd version 4 applied by {actor} (unauthenticated)\n\
             \n\
             HOST    PID   COMM                    FROM      TO\n\
             web-1   812   sshd                       0   -1000\n\
             web-2   -     (no process list yet)\n\
             \n\
             not connected (they get the change when they reconnect): web-2\n"
        )
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    let applies = fake.applies.lock().unwrap();
    assert_eq!(applies.len(), 1);
    let (request, seen_actor) = &applies[0];
    assert_eq!(
        request,
        &ApplyPolicyRequest {
            document: GOOD.into(),
            origin: file.into(),
            cluster: "staging".into(),
            dry_run: false,
            force: false,
        }
    );
    assert_eq!(seen_actor.as_deref(), Some(actor.as_str()));
}

#[tokio::test]
async fn apply_json_is_the_change() {
    let (addr, fake) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(dir.path(), "p.yaml", GOOD);
    let out = execute(cli(
        addr,
        &[
            "policy",
            "apply",
            "-f",
            path.to_str().unwrap(),
            "-o",
            "json",
        ],
    ))
    .await
    .unwrap();
    assert!(!out.failed);
    assert_eq!(out.notice, None);
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value["outcome"], "stored");
    assert_eq!(value["dry_run"], false);
    assert_eq!(value["policy"]["name"], NAME);
    assert_eq!(value["policy"]["version"], 4);
    assert_eq!(value["policy"]["action"], "apply");
    assert_eq!(value["policy"]["time"], "2026-11-25T22:10:03.000Z");
    assert_eq!(value["policy"]["document"], GOOD);
    assert_eq!(value["hosts"][0]["hostname"], "web-1");
    assert_eq!(value["hosts"][0]["changes"][0]["pid"], 812);
    assert_eq!(value["hosts"][0]["changes"][0]["from"], 0);
    assert_eq!(value["hosts"][0]["changes"][0]["to"], -1000);
    assert_eq!(value["hosts"][1]["processes_time"], Value::Null);
    assert_eq!(value["refusals"], serde_json::json!([]));
    // Called in-process, the actor comes from this process's environment.
    let applies = fake.applies.lock().unwrap();
    let actor = applies[0].1.as_deref().unwrap();
    assert!(actor.ends_with(&format!("@{}", this_host())), "{actor}");
}

#[tokio::test]
async fn dry_run_shows_the_plan_and_what_would_be_refused() {
    let (addr, fake) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(dir.path(), "protect-db.yaml", RISKY);
    let file = path.to_str().unwrap();
    let out = execute(cli(addr, &["policy", "apply", "--dry-run", "-f", file]))
        .await
        .unwrap();
    // What a dry run finds is information: it does not fail.
    assert!(!out.failed);
    assert_eq!(out.notice, None);
    assert_eq!(
        out.stdout,
        "dry run: nothing changed\n\
         \n\
         HOST    PID   COMM                    FROM      TO\n\
         web-1   812   sshd                       0   -1000\n\
         web-2   -     (no process list yet)\n\
         \n\
         not connected (they get the change when they reconnect): web-2\n\
         \n\
         apply would refuse this without --force:\n\
         HOST    KIND                  REASON\n\
         web-1   largest_memory_user   postgres (pid 900) uses the most memory on web-1 (12.0 GiB); \
         protecting it leaves the OOM killer nothing big to free\n"
    );
    let (request, _) = fake.applies.lock().unwrap()[0].clone();
    assert!(request.dry_run && !request.force);
    assert_eq!(request.cluster, "");

    let out = execute(cli(
        addr,
        &["policy", "apply", "--dry-run", "-f", file, "-o", "csv"],
    ))
    .await
    .unwrap();
    // The headline goes to stderr, so that stdout is only the CSV.
    assert_eq!(out.notice.as_deref(), Some("dry run: nothing changed"));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "row,host_id,hostname,cluster,connected,processes_time,pid,comm,from,to,refusal,reason"
    );
    assert_eq!(
        lines[1],
        "change,a1,web-1,prod,true,2026-11-25T22:09:33.000Z,812,sshd,0,-1000,,"
    );
    assert_eq!(lines[2], "no_process_list,b2,web-2,prod,false,,,,,,,");
    assert!(
        lines[3].starts_with("refusal,a1,web-1,,,,,,,,largest_memory_user,postgres (pid 900) "),
        "{}",
        lines[3]
    );
    assert_eq!(lines.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_prints_why_and_exits_1() {
    let (addr, fake) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(dir.path(), "protect-db.yaml", RISKY);
    let file = path.to_str().unwrap();

    let out = fleetctl(addr, &["policy", "apply", "-f", file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(
            "refused by the safety checks:\n\
             HOST    KIND                  REASON\n\
             web-1   largest_memory_user   postgres (pid 900) uses the most memory on web-1"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("\n\nrefused: nothing was changed; use --force to apply anyway\n"),
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    // JSON says it in `outcome`, and stderr says it too.
    let out = fleetctl(addr, &["policy", "apply", "-f", file, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["outcome"], "refused");
    assert_eq!(value["policy"], Value::Null);
    assert_eq!(value["refusals"][0]["kind"], "largest_memory_user");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "fleetctl: refused: nothing was changed; use --force to apply anyway\n"
    );

    // --force: stored over the refusals, which the table still shows.
    let out = execute(cli(addr, &["policy", "apply", "-f", file, "--force"]))
        .await
        .unwrap();
    assert!(!out.failed);
    assert!(
        out.stdout
            .starts_with("policy protect-sshd version 4 applied by "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with(" (unauthenticated) (forced)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\napplied over these refusals (--force):\nHOST "),
        "{}",
        out.stdout
    );
    let applies = fake.applies.lock().unwrap();
    assert_eq!(applies.len(), 3);
    assert!(applies[2].0.force);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_document_is_reported_before_anything_is_contacted() {
    let (addr, fake) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(
        dir.path(),
        "bad.yaml",
        "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\n\
         oom_score_adj: -1001\n",
    );
    let file = path.to_str().unwrap();

    let err = execute(cli(addr, &["policy", "apply", "-f", file]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{file}: `oom_score_adj`: -1001 is out of range -1000..=1000")
    );

    let out = fleetctl(addr, &["policy", "apply", "-f", file, "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("fleetctl: {file}: `oom_score_adj`: -1001 is out of range -1000..=1000\n")
    );

    // An unknown key is named too (by the YAML parser).
    let typo = policy_file(
        dir.path(),
        "typo.yaml",
        "name: p\ntarget: {}\nmatch: {exe: /usr/sbin/sshd}\noom_score_ajd: -1000\n",
    );
    let err = execute(cli(
        addr,
        &["policy", "apply", "-f", typo.to_str().unwrap()],
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("oom_score_ajd"), "{err:#}");

    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    let err = execute(cli(addr, &["policy", "apply", "-f", missing]))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").starts_with(&format!("cannot read policy file {missing}: ")),
        "{err:#}"
    );

    assert_eq!(fake.requests(), 0, "the collector was contacted");
}

/// Issue 12: a document over the size cap is refused by fleetctl itself, naming the limit,
/// before anything is contacted (dry run or not); the collector refuses it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_document_is_refused_before_anything_is_contacted() {
    let (addr, fake) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}# {}\n", "x".repeat(2_600_000));
    let path = policy_file(dir.path(), "big.yaml", &text);
    let file = path.to_str().unwrap();
    let expected = format!(
        "{file}: the policy document is {} bytes; a policy document is at most 65536 bytes (64 KiB)",
        text.len()
    );
    let err = execute(cli(addr, &["policy", "apply", "-f", file]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), expected);
    let out = fleetctl(addr, &["policy", "apply", "-f", file, "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("fleetctl: {expected}\n")
    );
    assert_eq!(fake.requests(), 0, "the collector was contacted");
}

/// A value below 0 on claims alone is refused by fleetctl itself, before anything is
/// contacted, in the words the collector uses; a dry run and `--force` go to the collector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_identity_is_refused_before_anything_is_contacted() {
    let (addr, fake) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(
        dir.path(),
        "weak.yaml",
        "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {comm: sshd}\noom_adj: -17\n",
    );
    let file = path.to_str().unwrap();
    let out = fleetctl(addr, &["policy", "apply", "-f", file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(
            "refused by the safety checks:\n\
             HOST       KIND            REASON\n\
             (policy)   weak_identity   would set -1000 on processes matched only by comm, \
             which any process can claim"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("use --force to apply anyway\n"),
        "{stdout}"
    );
    assert_eq!(fake.requests(), 0, "the collector was contacted");

    let out = fleetctl(addr, &["policy", "apply", "-f", file, "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = fleetctl(addr, &["policy", "apply", "-f", file, "--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let applies = fake.applies.lock().unwrap();
    assert_eq!(applies.len(), 2);
    assert!(applies[0].0.dry_run && applies[1].0.force);
}

#[tokio::test]
async fn list_table_and_json() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["policy", "list"])).await.unwrap();
    assert_eq!(
        out.stdout,
        "NAME           VERSION   OOM_SCORE_ADJ   TARGET         MATCH                \
         CHANGED_BY                      CHANGED\n\
         protect-sshd         3           -1000   cluster=prod   exe=/usr/sbin/sshd   \
         alice@ops-1 (unauthenticated)   2026-11-25T22:10:03Z\n"
    );
    assert_eq!(out.notice, None);

    let out = execute(cli(
        addr,
        &["policy", "list", "--cluster", "prod", "-o", "json"],
    ))
    .await
    .unwrap();
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    let policy = &value[0];
    assert_eq!(policy["name"], NAME);
    assert_eq!(policy["version"], 3);
    assert_eq!(policy["oom_score_adj"], -1000);
    assert_eq!(policy["target"], "cluster=prod");
    assert_eq!(policy["match"], "exe=/usr/sbin/sshd");
    assert_eq!(policy["actor"], "alice@ops-1 (unauthenticated)");
    assert_eq!(policy["time"], "2026-11-25T22:10:03.000Z");
    assert_eq!(policy["forced"], false);
    assert_eq!(policy["restores"], Value::Null);

    let out = execute(cli(addr, &["policy", "list", "--cluster", "dev"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.notice.as_deref(),
        Some("no policies target cluster dev")
    );

    let lists = fake.lists.lock().unwrap();
    let clusters: Vec<&str> = lists.iter().map(|(r, _)| r.cluster.as_str()).collect();
    assert_eq!(clusters, ["", "prod", "dev"]);
    // Reading sends no actor.
    assert!(lists.iter().all(|(_, actor)| actor.is_none()));
}

#[tokio::test]
async fn status_table_and_json() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["policy", "status", NAME]))
        .await
        .unwrap();
    assert!(!out.failed);
    let text = out.stdout;
    assert!(
        text.starts_with(
            "policy protect-sshd version 3: apply by alice@ops-1 (unauthenticated) at \
             2026-11-25T22:10:03Z\n\
             oom_score_adj -1000; target: cluster=prod; match: exe=/usr/sbin/sshd\n\
             \n\
             HOST    CLUSTER   STATE      VERSION   MATCHED   SET   FAILED   REPORTED\n\
             db-1    prod      removed          2         -     -        0   2026-11-25T22:09:03Z (",
        ),
        "{text}"
    );
    assert!(
        text.contains("\nweb-1   prod      enforced         3         2     1        1   2026-11-25T22:10:03Z ("),
        "{text}"
    );
    assert!(
        text.contains(
            "\nfailures:\n\
             HOST    PID   REASON\n\
             web-1   901   permission denied\n\
             \n\
             processes:\n\
             HOST    PID   COMM   OOM_SCORE_ADJ   ORIGINAL\n\
             web-1   812   sshd           -1000          0\n\
             \n\
             removed:\n\
             HOST   VERSION   RESTORED   HANDED_OVER   FAILED\n\
             db-1         2          3             1        0\n"
        ),
        "{text}"
    );

    let out = execute(cli(addr, &["policy", "status", NAME, "-o", "json"]))
        .await
        .unwrap();
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value["policy"]["version"], 3);
    let db = &value["hosts"][0];
    assert_eq!(db["hostname"], "db-1");
    assert_eq!(db["state"], "removed");
    assert_eq!(db["connected"], false);
    assert_eq!(db["status"], Value::Null);
    assert_eq!(db["removal"]["restored"], 3);
    assert_eq!(db["removal"]["handed_over"], 1);
    let web = &value["hosts"][1];
    assert_eq!(web["state"], "enforced");
    assert_eq!(web["reported"], "2026-11-25T22:10:03.000Z");
    assert_eq!(web["status"]["version"], 3);
    assert_eq!(web["status"]["matched"], 2);
    assert_eq!(web["status"]["set"], 1);
    assert_eq!(web["status"]["failed"][0]["pid"], 901);
    assert_eq!(web["status"]["processes"][0]["oom_score_adj"], -1000);
    assert_eq!(web["removal"], Value::Null);

    let names: Vec<String> = fake
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(r, _)| r.name.clone())
        .collect();
    assert_eq!(names, [NAME, NAME]);
}

#[tokio::test]
async fn history_table_and_json() {
    let (addr, _fake) = start().await;
    let out = execute(cli(addr, &["policy", "history", NAME]))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "VERSION   ACTION       ADJ   ACTOR                           TIME                   FORCED   RESTORES\n\
         \x20     1   apply      -1000   alice@ops-1 (unauthenticated)   2026-11-25T22:10:03Z   no              -\n\
         \x20     2   apply       -900   bob@ops-2 (unauthenticated)     2026-11-25T22:10:03Z   yes             -\n\
         \x20     3   rollback   -1000   CN=carol                        2026-11-25T22:10:03Z   no              1\n"
    );
    let out = execute(cli(addr, &["policy", "history", NAME, "-o", "json"]))
        .await
        .unwrap();
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    let versions = value.as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[1]["forced"], true);
    assert_eq!(versions[1]["oom_score_adj"], -900);
    assert_eq!(versions[2]["action"], "rollback");
    assert_eq!(versions[2]["restores"], 1);
    assert_eq!(versions[2]["actor"], "CN=carol");
}

#[tokio::test]
async fn rollback_and_delete_say_the_new_version() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["policy", "rollback", NAME]))
        .await
        .unwrap();
    assert!(!out.failed);
    assert!(
        out.stdout.starts_with(
            "policy protect-sshd rolled back to version 2 as version 5\n\
             \n\
             HOST    PID   COMM"
        ),
        "{}",
        out.stdout
    );
    let out = execute(cli(addr, &["policy", "rollback", NAME, "-o", "json"]))
        .await
        .unwrap();
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value["outcome"], "stored");
    assert_eq!(value["policy"]["action"], "rollback");
    assert_eq!(value["policy"]["version"], 5);
    assert_eq!(value["policy"]["restores"], 2);

    let out = execute(cli(addr, &["policy", "delete", NAME]))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "policy protect-sshd deleted (version 6); agents restore the original values\n\
         \n\
         no host is targeted\n"
    );
    let out = execute(cli(addr, &["policy", "delete", NAME, "-o", "json"]))
        .await
        .unwrap();
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value["policy"]["action"], "delete");
    assert_eq!(value["policy"]["version"], 6);
    assert_eq!(value["policy"]["oom_score_adj"], Value::Null);
    assert_eq!(value["policy"]["document"], "");

    // Both name the policy and carry the actor.
    for seen in [&fake.rollbacks, &fake.deletes] {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        for (request, actor) in seen.iter() {
            assert_eq!(request.name, NAME);
            let actor = actor.as_deref().expect("fleet-actor metadata");
            assert!(actor.ends_with(&format!("@{}", this_host())), "{actor}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_policy_reads_well() {
    let (addr, _fake) = start().await;
    for command in ["status", "history", "rollback", "delete"] {
        let err = execute(cli(addr, &["policy", command, "nope"]))
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "no policy named nope", "{command}");
    }
    let out = fleetctl(addr, &["policy", "status", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "fleetctl: no policy named nope\n"
    );
    assert!(out.stdout.is_empty());
}
