//! The `Policies` gRPC service (`fleetctl policy ...`) over [`PolicyBook`], and what an agent
//! session does with policies: push the host's set, take its reports and process lists.

use std::sync::Arc;

use fleet_proto::clock::now_ms;
use fleet_proto::v1::{
    collector_message, policies_server::Policies, ApplyPolicyRequest, CollectorMessage,
    ListPoliciesRequest, PolicyChange, PolicyHistoryList, PolicyList, PolicyName,
    PolicyStatusReport, PolicySync, ProcessList,
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

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

/// Sends the host its policy set now and after every change, until the stream closes.
pub(super) fn spawn_pusher(
    book: Arc<PolicyBook>,
    host: HostRecord,
    out: mpsc::Sender<Result<CollectorMessage, Status>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changed = book.subscribe();
        let mut sent = None;
        loop {
            let want = book.desired_for(&host);
            if sent.as_ref() != Some(&want) {
                let msg = CollectorMessage {
                    msg: Some(collector_message::Msg::PolicySync(PolicySync {
                        policies: want.clone(),
                    })),
                };
                if out.send(Ok(msg)).await.is_err() {
                    return;
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

/// Stores an agent's policy report (a synced write, off the async threads).
pub(super) async fn store_report(
    book: Arc<PolicyBook>,
    host: HostRecord,
    report: fleet_proto::v1::PolicyReport,
) -> Result<(), Status> {
    blocking(move || book.report(&host, &report)).await
}
