//! The `Policies` gRPC service (`fleetctl policy ...`) over [`PolicyBook`], and what an agent
//! session does with policies: push the host's set ([`spawn_pusher`], which notes what it sent
//! in [`Sent`]), take its reports ([`spawn_report_saver`]: only about what it was sent, written
//! before they count, retried with backoff while the store refuses) and its process lists.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_proto::backoff::Backoff;
use fleet_proto::clock::now_ms;
use fleet_proto::limits::MAX_MESSAGE_BYTES;
use fleet_proto::v1::{
    collector_message, policies_server::Policies, ApplyPolicyRequest, CollectorMessage,
    ListPoliciesRequest, PolicyChange, PolicyHistoryList, PolicyList, PolicyName, PolicyReport,
    PolicyStatusReport, PolicySync, ProcessList,
};
use prost::Message;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use tracing::{error, info, warn};

use super::{blocking, storage_status, Shared};
use crate::auth::{Auth, Need};
use crate::policy::{PolicyBook, PolicyBookError};
use crate::storage::HostRecord;

/// The request metadata fleetctl puts its user's name in (`USER@HOSTNAME`).
pub const ACTOR_METADATA: &str = fleet_proto::metadata::ACTOR;
pub use fleet_proto::limits::MAX_PROCESSES;

/// The one place policy errors become gRPC statuses.
fn book_status(e: PolicyBookError) -> Status {
    match e {
        PolicyBookError::Document(e) => Status::invalid_argument(e.to_string()),
        PolicyBookError::NotFound(_) => Status::not_found(e.to_string()),
        PolicyBookError::Precondition(m) => Status::failed_precondition(m),
        PolicyBookError::Storage(e) => storage_status(e),
    }
}

/// The name the client claims (fleetctl's `USER@HOSTNAME`), cleaned; the actor of a change
/// when no client certificate names the caller.
fn claimed<T>(req: &Request<T>) -> Option<String> {
    req.metadata()
        .get(ACTOR_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(128)
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
}

fn name_of(req: &PolicyName) -> Result<String, Status> {
    if req.name.is_empty() {
        return Err(Status::invalid_argument("a policy name is required"));
    }
    Ok(req.name.clone())
}

pub(super) struct PoliciesSvc(pub(super) Shared);

impl PoliciesSvc {
    fn book(&self) -> Arc<PolicyBook> {
        self.0.policies.clone()
    }

    /// Checks that the caller may change policies, and says who it is for the history.
    fn operator<T>(&self, req: &Request<T>, rpc: &str) -> Result<String, Status> {
        let role = self.0.auth.check(req, Need::Operate, rpc)?;
        Ok(Auth::actor(role.as_ref(), claimed(req).as_deref()))
    }

    /// Runs a book operation off the async threads (changes are synced RocksDB writes) with the
    /// host registry at hand.
    async fn with_hosts<T: Send + 'static>(
        &self,
        f: impl FnOnce(&PolicyBook, &[HostRecord]) -> Result<T, PolicyBookError> + Send + 'static,
    ) -> Result<T, Status> {
        let book = self.book();
        let store = self.0.store.clone();
        tokio::task::spawn_blocking(move || f(&book, &store.hosts()))
            .await
            .map_err(|e| Status::internal(format!("policy task failed: {e}")))?
            .map_err(book_status)
    }
}

#[tonic::async_trait]
impl Policies for PoliciesSvc {
    async fn apply_policy(
        &self,
        request: Request<ApplyPolicyRequest>,
    ) -> Result<Response<PolicyChange>, Status> {
        let actor = self.operator(&request, "ApplyPolicy")?;
        let req = request.into_inner();
        self.with_hosts(move |book, hosts| book.apply(&req, &actor, hosts, now_ms()))
            .await
            .map(Response::new)
    }

    async fn list_policies(
        &self,
        request: Request<ListPoliciesRequest>,
    ) -> Result<Response<PolicyList>, Status> {
        self.0.auth.check(&request, Need::View, "ListPolicies")?;
        let cluster = request.into_inner().cluster;
        Ok(Response::new(PolicyList {
            policies: self.book().list(&cluster),
        }))
    }

    async fn get_policy_status(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyStatusReport>, Status> {
        self.0.auth.check(&request, Need::View, "GetPolicyStatus")?;
        let name = name_of(request.get_ref())?;
        self.with_hosts(move |book, hosts| book.status(&name, hosts))
            .await
            .map(Response::new)
    }

    async fn policy_history(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyHistoryList>, Status> {
        self.0.auth.check(&request, Need::View, "PolicyHistory")?;
        let name = name_of(request.get_ref())?;
        let versions = self.book().history(&name).map_err(book_status)?;
        Ok(Response::new(PolicyHistoryList { versions }))
    }

    async fn rollback_policy(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyChange>, Status> {
        let actor = self.operator(&request, "RollbackPolicy")?;
        let name = name_of(request.get_ref())?;
        self.with_hosts(move |book, hosts| book.rollback(&name, &actor, hosts, now_ms()))
            .await
            .map(Response::new)
    }

    async fn delete_policy(
        &self,
        request: Request<PolicyName>,
    ) -> Result<Response<PolicyChange>, Status> {
        let actor = self.operator(&request, "DeletePolicy")?;
        let name = name_of(request.get_ref())?;
        self.with_hosts(move |book, _| book.delete(&name, &actor, now_ms()))
            .await
            .map(Response::new)
    }
}

/// The names of the policies a session sent its agent, in every set since the stream opened
/// (bounded by the policies that exist): the agent may report on these.
#[derive(Debug, Default)]
pub(super) struct Sent(Mutex<HashSet<String>>);

impl Sent {
    fn add(&self, specs: &[fleet_proto::v1::PolicySpec]) {
        let mut names = self.0.lock().expect("sent lock");
        names.extend(specs.iter().map(|s| s.name.clone()));
    }

    fn names(&self) -> HashSet<String> {
        self.0.lock().expect("sent lock").clone()
    }
}

/// Sends the host its policy set now and after every change, until the stream closes, noting
/// in `sent` what it sends. The book keeps every set under the message limit
/// (`MAX_POLICY_SET_BYTES`); a set over it anyway is not sent (logged), which leaves the agent
/// with its previous set rather than cutting its stream.
pub(super) fn spawn_pusher(
    book: Arc<PolicyBook>,
    host: HostRecord,
    out: mpsc::Sender<Result<CollectorMessage, Status>>,
    sent_names: Arc<Sent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changed = book.subscribe();
        let mut sent = None;
        loop {
            let want = book.desired_for(&host);
            if sent.as_ref() != Some(&want) {
                let sync = PolicySync {
                    policies: want.clone(),
                };
                if sync.encoded_len() >= MAX_MESSAGE_BYTES {
                    error!(host_id = %host.identity.host_id, bytes = sync.encoded_len(),
                        "policy set over the message limit; not sent");
                } else {
                    sent_names.add(&sync.policies);
                    let msg = CollectorMessage {
                        msg: Some(collector_message::Msg::PolicySync(sync)),
                    };
                    if out.send(Ok(msg)).await.is_err() {
                        return;
                    }
                }
                sent = Some(want);
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Checks an agent's process list.
///
/// # Errors
/// `InvalidArgument` naming the limit.
pub fn check_process_list(list: &ProcessList) -> Result<(), Status> {
    if list.processes.len() > MAX_PROCESSES {
        return Err(Status::invalid_argument(format!(
            "process list has {} processes; at most {MAX_PROCESSES}",
            list.processes.len()
        )));
    }
    Ok(())
}

/// Reports a session may have queued for its saver.
const REPORTS_PENDING: usize = 4;
/// First and longest wait before writing a report again after a failed write.
const REPORT_RETRY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(30));

/// Takes a session's policy reports (see [`PolicyBook::take_report`]: only about what `sent`
/// names) and writes them, off the stream: a write that fails is retried with backoff until it
/// succeeds or the stream closes (then the host's next report writes them). Entries about
/// policies the host was not sent are dropped, logged once per session. Ends when the sender
/// is dropped.
pub(super) fn spawn_report_saver(
    book: Arc<PolicyBook>,
    host: HostRecord,
    sent: Arc<Sent>,
) -> (mpsc::Sender<PolicyReport>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<PolicyReport>(REPORTS_PENDING);
    let task = tokio::spawn(async move {
        let host_id = host.identity.host_id.clone();
        let mut backoff = Backoff::new(REPORT_RETRY.0, REPORT_RETRY.1);
        let mut retry_in: Option<Duration> = None;
        let mut dropped_logged = false;
        loop {
            let retry = async move {
                match retry_in {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                report = rx.recv() => {
                    let Some(report) = report else { break };
                    let dropped = book.take_report(&host, &report, &sent.names());
                    if !dropped.is_empty() && !dropped_logged {
                        warn!(%host_id, policies = ?dropped,
                            "policy report about policies this host was not sent; dropped");
                        dropped_logged = true;
                    }
                }
                () = retry => {}
            }
            let (b, num) = (book.clone(), host.num);
            match blocking(move || b.save_reports(num)).await {
                Ok(_) => {
                    if retry_in.take().is_some() {
                        info!(%host_id, "policy report stored after a failed write");
                    }
                    backoff.reset();
                }
                Err(e) => {
                    if retry_in.is_none() {
                        warn!(%host_id, error = %e.message(), "policy report not stored; retrying");
                    }
                    retry_in = Some(backoff.next_delay());
                }
            }
        }
        if book.has_unsaved(host.num) {
            warn!(%host_id, "stream closed with a policy report not stored; the host's next report writes it");
        }
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::flaky::Flaky;
    use crate::policy::{STATE_ENFORCED, STATE_PENDING};
    use crate::storage::{Store, StoreOptions};
    use fleet_proto::v1::{HostIdentity, PolicyHostStatus};

    /// Issue 12: a report whose write failed was lost (and showed in memory as if stored). The
    /// saver retries it with backoff until the store takes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_report_that_cannot_be_written_is_retried_until_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
        let flaky = Flaky::new(store.clone());
        let book = Arc::new(PolicyBook::open(flaky.clone()).unwrap());
        let identity = HostIdentity {
            host_id: "web1".into(),
            cluster: "prod".into(),
            ..HostIdentity::default()
        };
        let web1 = store.upsert_host(&identity, 1, true).unwrap();
        let doc = "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\noom_score_adj: -500\n";
        let req = ApplyPolicyRequest {
            document: doc.into(),
            ..ApplyPolicyRequest::default()
        };
        book.apply(&req, "a", std::slice::from_ref(&web1), 1)
            .unwrap();
        let sent = Arc::new(Sent::default());
        sent.add(&book.desired_for(&web1));

        flaky.fail(true);
        let (reports, saver) = spawn_report_saver(book.clone(), web1.clone(), sent);
        let report = PolicyReport {
            time_ms: 5,
            policies: vec![PolicyHostStatus {
                name: "protect-sshd".into(),
                version: 1,
                ..PolicyHostStatus::default()
            }],
            removed: vec![],
        };
        reports.send(report).await.unwrap();
        let state = |book: &PolicyBook| {
            book.status("protect-sshd", std::slice::from_ref(&web1))
                .unwrap()
                .hosts[0]
                .state
                .clone()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !book.has_unsaved(web1.num) {
            assert!(tokio::time::Instant::now() < deadline, "never taken");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A few failed attempts: still not shown.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(state(&book), STATE_PENDING);
        flaky.fail(false);
        while state(&book) != STATE_ENFORCED {
            assert!(tokio::time::Instant::now() < deadline, "never retried");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!book.has_unsaved(web1.num));
        drop(reports);
        saver.await.unwrap();
    }
}
