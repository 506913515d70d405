//! The collector's `Policies` service, on the same connection as `Query`.
//!
//! Mutating calls (apply, rollback, delete) say who makes them in the [`ACTOR_METADATA_KEY`]
//! metadata (`USER@HOSTNAME`); the collector records it as the change's actor only when no client
//! certificate names one.

use anyhow::{anyhow, Result};
use fleet_proto::v1::{
    ApplyPolicyRequest, ListPoliciesRequest, PolicyChange, PolicyName, PolicyStatusReport,
    PolicyVersion,
};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};

use super::Collector;

/// The gRPC metadata key of the actor a mutating `Policies` call names. The collector reads the
/// same key; keep the two equal.
pub const ACTOR_METADATA_KEY: &str = fleet_proto::metadata::ACTOR;

impl Collector {
    /// `Policies.ApplyPolicy`, as `actor`.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it. A refusal by the safety
    /// checks is an answer, not an error.
    pub async fn apply_policy(
        &self,
        request: ApplyPolicyRequest,
        actor: &str,
    ) -> Result<PolicyChange> {
        match self
            .policies
            .clone()
            .apply_policy(with_actor(request, actor))
            .await
        {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.status_error("ApplyPolicy", status)),
        }
    }

    /// `Policies.ListPolicies`; `cluster` empty for every policy.
    ///
    /// # Errors
    ///
    /// The collector's status, as [`Collector::status_error`] words it.
    pub async fn list_policies(&self, cluster: &str) -> Result<Vec<PolicyVersion>> {
        let request = ListPoliciesRequest {
            cluster: cluster.to_owned(),
        };
        match self.policies.clone().list_policies(request).await {
            Ok(response) => Ok(response.into_inner().policies),
            Err(status) => Err(self.status_error("ListPolicies", status)),
        }
    }

    /// `Policies.GetPolicyStatus`.
    ///
    /// # Errors
    ///
    /// `no policy named NAME` for an unknown policy, else as [`Collector::status_error`].
    pub async fn policy_status(&self, name: &str) -> Result<PolicyStatusReport> {
        match self
            .policies
            .clone()
            .get_policy_status(policy_name(name))
            .await
        {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.policy_error("GetPolicyStatus", name, status)),
        }
    }

    /// `Policies.PolicyHistory`, oldest version first.
    ///
    /// # Errors
    ///
    /// `no policy named NAME` for an unknown policy, else as [`Collector::status_error`].
    pub async fn policy_history(&self, name: &str) -> Result<Vec<PolicyVersion>> {
        match self
            .policies
            .clone()
            .policy_history(policy_name(name))
            .await
        {
            Ok(response) => Ok(response.into_inner().versions),
            Err(status) => Err(self.policy_error("PolicyHistory", name, status)),
        }
    }

    /// `Policies.RollbackPolicy`, as `actor`.
    ///
    /// # Errors
    ///
    /// `no policy named NAME` for an unknown policy, else as [`Collector::status_error`].
    pub async fn rollback_policy(&self, name: &str, actor: &str) -> Result<PolicyChange> {
        let request = with_actor(policy_name(name), actor);
        match self.policies.clone().rollback_policy(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.policy_error("RollbackPolicy", name, status)),
        }
    }

    /// `Policies.DeletePolicy`, as `actor`.
    ///
    /// # Errors
    ///
    /// `no policy named NAME` for an unknown policy, else as [`Collector::status_error`].
    pub async fn delete_policy(&self, name: &str, actor: &str) -> Result<PolicyChange> {
        let request = with_actor(policy_name(name), actor);
        match self.policies.clone().delete_policy(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.policy_error("DeletePolicy", name, status)),
        }
    }

    /// [`Collector::status_error`], except that `NotFound` for a call naming a policy reads
    /// `no policy named NAME`.
    fn policy_error(&self, rpc: &str, name: &str, status: Status) -> anyhow::Error {
        if status.code() == Code::NotFound {
            anyhow!("no policy named {name}")
        } else {
            self.status_error(rpc, status)
        }
    }
}

fn policy_name(name: &str) -> PolicyName {
    PolicyName {
        name: name.to_owned(),
    }
}

/// `message` with the [`ACTOR_METADATA_KEY`] metadata.
fn with_actor<T>(message: T, actor: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(ACTOR_METADATA_KEY, actor_value(actor));
    request
}

/// `actor` as an ASCII metadata value: gRPC metadata is printable ASCII, so any other character
/// (a non-ASCII user name) becomes `?` rather than failing the call.
fn actor_value(actor: &str) -> MetadataValue<tonic::metadata::Ascii> {
    let ascii: String = actor
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    MetadataValue::try_from(ascii.trim()).unwrap_or_else(|_| MetadataValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_metadata_is_printable_ascii() {
        assert_eq!(actor_value("alice@ops-1").to_str().unwrap(), "alice@ops-1");
        assert_eq!(
            actor_value("jürgen@ops-1").to_str().unwrap(),
            "j?rgen@ops-1"
        );
        assert_eq!(actor_value("a\nb@h").to_str().unwrap(), "a?b@h");
        let request = with_actor(policy_name("p"), "alice@ops-1");
        assert_eq!(
            request.metadata().get(ACTOR_METADATA_KEY).unwrap(),
            "alice@ops-1"
        );
    }
}
