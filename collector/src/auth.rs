//! Who a client is, from its certificate, and what it may do.
//!
//! `fleetctl certs` issues certificates whose subject says who and what: CN is the name (an
//! agent's host id, a person or a tool), OU is the role. The collector reads them from the
//! verified client certificate of the connection (rustls checked the chain to the fleet CA and
//! the validity dates during the handshake):
//!
//! | role       | may                                                       |
//! |------------|-----------------------------------------------------------|
//! | `agent`    | stream (`Ingest.Session`) for the host id its CN names    |
//! | `viewer`   | query: hosts, sar, OOM kills, NTP, alerts, policies       |
//! | `operator` | what a viewer may, and change policies                    |
//!
//! Everything else is refused with `PermissionDenied` (a certificate without a known role, an
//! agent certificate on a query, a viewer changing a policy) or `Unauthenticated` (no
//! certificate where one is required); each refusal is logged and counted in [`Refusals`].
//!
//! Without a fleet CA (`--insecure`, or TLS without `tls_ca`) no client certificate exists and
//! [`Auth::Open`] lets every call through: the collector warns about it at start.

use std::sync::atomic::{AtomicU64, Ordering};

use tonic::{Request, Status};
use tracing::warn;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A client's role, from its certificate's OU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// May stream for this host id only.
    Agent(String),
    Viewer(String),
    Operator(String),
}

impl Role {
    /// The certificate's name (CN).
    pub fn name(&self) -> &str {
        match self {
            Role::Agent(n) | Role::Viewer(n) | Role::Operator(n) => n,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Role::Agent(_) => "agent",
            Role::Viewer(_) => "viewer",
            Role::Operator(_) => "operator",
        }
    }
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A query (viewer or operator).
    View,
    /// A change of policy (operator).
    Operate,
    /// An agent stream.
    Stream,
}

/// Reads the role from a DER certificate: CN and OU of its subject.
///
/// # Errors
/// A message saying what the certificate lacks.
pub fn role_of_cert(der: &[u8]) -> Result<Role, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("client certificate does not parse: {e}"))?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or("client certificate has no CN (its name)")?
        .to_string();
    let ou = subject
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or_else(|| format!("client certificate {cn:?} has no OU (its role)"))?;
    match ou {
        "agent" => Ok(Role::Agent(cn)),
        "viewer" => Ok(Role::Viewer(cn)),
        "operator" => Ok(Role::Operator(cn)),
        other => Err(format!(
            "client certificate {cn:?} has role {other:?}; expected agent, viewer or operator"
        )),
    }
}

/// Refusals since start, by kind.
#[derive(Debug, Default)]
pub struct Refusals {
    pub unauthenticated: AtomicU64,
    pub permission_denied: AtomicU64,
}

/// The collector's access control.
#[derive(Debug)]
pub enum Auth {
    /// No client certificates (plaintext or server-only TLS): every call is let through.
    Open,
    /// Mutual TLS: roles from the client certificates.
    Roles(Refusals),
}

impl Auth {
    /// The role of the caller, checked against `need`. `Ok(None)` in [`Auth::Open`] mode.
    ///
    /// # Errors
    /// `Unauthenticated` or `PermissionDenied`, naming the certificate and what it may do.
    pub fn check<T>(
        &self,
        req: &Request<T>,
        need: Need,
        rpc: &str,
    ) -> Result<Option<Role>, Status> {
        let Auth::Roles(refusals) = self else {
            return Ok(None);
        };
        let peer = req.remote_addr();
        let refuse = |status: Status, counter: &AtomicU64| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(?peer, rpc, code = ?status.code(), reason = %status.message(), refusals_total = n, "request refused");
            status
        };
        let Some(der) = req.peer_certs().and_then(|c| c.first().cloned()) else {
            return Err(refuse(
                Status::unauthenticated("a client certificate signed by the fleet CA is required"),
                &refusals.unauthenticated,
            ));
        };
        let role = role_of_cert(der.as_ref())
            .map_err(|m| refuse(Status::permission_denied(m), &refusals.permission_denied))?;
        let allowed = matches!(
            (&role, need),
            (Role::Agent(_), Need::Stream)
                | (Role::Viewer(_) | Role::Operator(_), Need::View)
                | (Role::Operator(_), Need::Operate)
        );
        if !allowed {
            let what = match need {
                Need::View => "query the collector (viewer or operator certificates may)",
                Need::Operate => "change policies (operator certificates may)",
                Need::Stream => "stream samples (agent certificates may)",
            };
            return Err(refuse(
                Status::permission_denied(format!(
                    "{} certificate {:?} may not {what}",
                    role.word(),
                    role.name()
                )),
                &refusals.permission_denied,
            ));
        }
        Ok(Some(role))
    }

    /// Checks that an agent certificate streams for its own host.
    ///
    /// # Errors
    /// `PermissionDenied` naming both host ids.
    pub fn check_host(&self, role: Option<&Role>, host_id: &str) -> Result<(), Status> {
        let (Auth::Roles(refusals), Some(Role::Agent(name))) = (self, role) else {
            return Ok(());
        };
        if name == host_id {
            return Ok(());
        }
        let n = refusals.permission_denied.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(certificate = %name, claimed = %host_id, refusals_total = n, "agent refused: host id is not its certificate's");
        Err(Status::permission_denied(format!(
            "the certificate of host {name:?} cannot stream as host {host_id:?}"
        )))
    }

    /// Who made a change, for the policy history: the certificate's name and role, or the
    /// name the client claims, marked as unauthenticated, when there are no certificates.
    pub fn actor(role: Option<&Role>, claimed: Option<&str>) -> String {
        match role {
            Some(r) => format!("{} ({})", r.name(), r.word()),
            None => format!("{} (unauthenticated)", claimed.unwrap_or("unknown")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, ou: Option<&str>) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if let Some(ou) = ou {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationalUnitName, ou);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn roles_from_the_subject() {
        assert_eq!(
            role_of_cert(&cert("web1", Some("agent"))).unwrap(),
            Role::Agent("web1".into())
        );
        assert_eq!(
            role_of_cert(&cert("alice", Some("operator"))).unwrap(),
            Role::Operator("alice".into())
        );
        let e = role_of_cert(&cert("bob", Some("admin"))).unwrap_err();
        assert!(e.contains("\"admin\""), "{e}");
        let e = role_of_cert(&cert("carol", None)).unwrap_err();
        assert!(e.contains("no OU"), "{e}");
        assert!(role_of_cert(b"garbage").is_err());
    }

    #[test]
    fn host_ids_and_actors() {
        let auth = Auth::Roles(Refusals::default());
        let web1 = Role::Agent("web1".into());
        assert!(auth.check_host(Some(&web1), "web1").is_ok());
        let e = auth.check_host(Some(&web1), "db1").unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("web1") && e.message().contains("db1"));
        assert!(Auth::Open.check_host(None, "anything").is_ok());
        assert_eq!(
            Auth::actor(Some(&Role::Operator("alice".into())), Some("mallory")),
            "alice (operator)"
        );
        assert_eq!(
            Auth::actor(None, Some("bob@laptop")),
            "bob@laptop (unauthenticated)"
        );
    }

    #[test]
    fn no_certificate_is_unauthenticated() {
        let auth = Auth::Roles(Refusals::default());
        let e = auth
            .check(&Request::new(()), Need::View, "ListHosts")
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(Auth::Open
            .check(&Request::new(()), Need::Operate, "x")
            .unwrap()
            .is_none());
    }
}
