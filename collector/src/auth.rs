//! Who a client is, from its certificate, and what it may do.
//!
//! `fleetctl certs` issues certificates whose subject says who and what: CN is the name (an
//! agent's host id, a person or a tool), OU is the role, O the organisation; an agent
//! certificate also names the one cluster its host belongs to, as the URI subject alternative
//! name `urn:fleet:cluster:CLUSTER` ([`fleet_proto::identity::cluster_uri`]). The collector
//! reads them from the verified client certificate of the connection (rustls checked the chain
//! to the fleet CA, the validity dates and the CRL during the handshake) with [`client_of_cert`]:
//!
//! | role       | may                                                       |
//! |------------|-----------------------------------------------------------|
//! | `agent`    | stream (`Ingest.Session`) for the host id its CN names, in its cluster |
//! | `viewer`   | query: hosts, sar, OOM kills, NTP, alerts, policies       |
//! | `operator` | what a viewer may, and change policies                    |
//!
//! A certificate has exactly one role: exactly one OU among `agent`, `viewer`, `operator` and
//! `collector` (the collector's own, which no client may use); other OUs are not looked at. With
//! [`CertRules::org`] (`tls_org`) its O must be that organisation, so a CA shared with other
//! uses does not admit every certificate it ever signed.
//!
//! Everything else is refused with `PermissionDenied` (a certificate with no role or two, of
//! another organisation, an agent certificate on a query, a viewer changing a policy, an agent
//! for another host or cluster) or `Unauthenticated` (no certificate where one is required); each
//! refusal is logged and counted in [`Refusals`].
//!
//! Without a fleet CA (`--insecure`, or TLS without `tls_ca`) no client certificate exists and
//! [`Auth::Open`] lets every call through: the collector warns about it at start.

use std::sync::atomic::{AtomicU64, Ordering};

use fleet_proto::identity::cluster_of_uri;
use tonic::{Request, Status};
use tracing::warn;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A client's role, from its certificate's OU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May stream for its own host id only.
    Agent,
    Viewer,
    Operator,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// The OUs that name a role; `collector` is the collector's own certificate.
const ROLE_WORDS: [&str; 4] = ["agent", "viewer", "operator", "collector"];

/// Who a verified client certificate says the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The certificate's CN: an agent's host id, a person's or a tool's name.
    pub name: String,
    pub role: Role,
    /// The cluster an agent certificate is bound to; None: the certificate names none (issued
    /// before clusters were bound, or without `--cluster`).
    pub cluster: Option<String>,
}

/// What a client certificate must carry besides a chain to the fleet CA (settings, fixed at
/// start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertRules {
    /// The subject O every client certificate must have (`tls_org`); None: any.
    pub org: Option<String>,
    /// Accept agent certificates bound to no cluster (`allow_unbound_cluster`), for fleets whose
    /// certificates predate the binding.
    pub allow_unbound_cluster: bool,
}

/// Reads who a DER client certificate names, and checks it against `rules` (one role, the
/// organisation).
///
/// # Errors
/// A message naming the certificate and what it lacks or has too much of.
pub fn client_of_cert(der: &[u8], rules: &CertRules) -> Result<Client, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("client certificate does not parse: {e}"))?;
    let subject = cert.subject();
    let texts = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.map(|a| a.as_str().map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()
    };
    let cns = texts(&mut subject.iter_common_name())
        .map_err(|e| format!("client certificate has a CN that is not text: {e}"))?;
    let name = match cns.as_slice() {
        [cn] => cn.clone(),
        [] => return Err("client certificate has no CN (its name)".into()),
        many => {
            return Err(format!(
                "client certificate has {} CNs {many:?}; it names one client",
                many.len()
            ))
        }
    };
    let ous = texts(&mut subject.iter_organizational_unit())
        .map_err(|e| format!("client certificate {name:?} has an OU that is not text: {e}"))?;
    let roles: Vec<&str> = ous
        .iter()
        .map(String::as_str)
        .filter(|ou| ROLE_WORDS.contains(ou))
        .collect();
    let role = match roles.as_slice() {
        ["agent"] => Role::Agent,
        ["viewer"] => Role::Viewer,
        ["operator"] => Role::Operator,
        ["collector"] => {
            return Err(format!(
                "certificate {name:?} is the collector's own (OU collector), not a client's"
            ))
        }
        [] if ous.is_empty() => {
            return Err(format!("client certificate {name:?} has no OU (its role)"))
        }
        [] => {
            return Err(format!(
                "client certificate {name:?} has role {:?}; expected agent, viewer or operator",
                ous.join(", ")
            ))
        }
        many => {
            return Err(format!(
                "client certificate {name:?} has {} roles ({}); a certificate has exactly one",
                many.len(),
                many.join(", ")
            ))
        }
    };
    if let Some(org) = &rules.org {
        let orgs = texts(&mut subject.iter_organization())
            .map_err(|e| format!("client certificate {name:?} has an O that is not text: {e}"))?;
        if orgs.is_empty() || orgs.iter().any(|o| o != org) {
            let has = match orgs.as_slice() {
                [] => "no O".to_owned(),
                _ => format!("O {:?}", orgs.join(", ")),
            };
            return Err(format!(
                "client certificate {name:?} has {has}; this collector admits O {org:?} only \
                 (tls_org)"
            ));
        }
    }
    let san = cert.subject_alternative_name().map_err(|e| {
        format!("client certificate {name:?}: its subject alternative names do not parse: {e}")
    })?;
    let mut clusters = Vec::new();
    for gn in san.iter().flat_map(|s| &s.value.general_names) {
        if let GeneralName::URI(uri) = gn {
            match cluster_of_uri(uri) {
                Some(Ok(c)) => clusters.push(c),
                Some(Err(e)) => return Err(format!("client certificate {name:?}: {e}")),
                None => {}
            }
        }
    }
    if clusters.len() > 1 {
        return Err(format!(
            "client certificate {name:?} names {} clusters ({}); it may name one",
            clusters.len(),
            clusters.join(", ")
        ));
    }
    Ok(Client {
        name,
        role,
        cluster: clusters.pop(),
    })
}

/// Refusals since start, by kind.
#[derive(Debug, Default)]
pub struct Refusals {
    pub unauthenticated: AtomicU64,
    pub permission_denied: AtomicU64,
    /// Agent hellos for a cluster their certificate is not bound to (or bound to none where
    /// that is not allowed).
    pub cluster: AtomicU64,
}

/// The counts of [`Refusals`] at one moment (zero in [`Auth::Open`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefusalCounts {
    pub unauthenticated: u64,
    pub permission_denied: u64,
    pub cluster: u64,
}

/// The collector's access control.
#[derive(Debug)]
pub enum Auth {
    /// No client certificates (plaintext or server-only TLS): every call is let through.
    Open,
    /// Mutual TLS: roles from the client certificates, checked against the rules.
    Roles(CertRules, Refusals),
}

fn refuse(
    counter: &AtomicU64,
    status: Status,
    rpc: &str,
    peer: Option<std::net::SocketAddr>,
) -> Status {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    warn!(?peer, rpc, code = ?status.code(), reason = %status.message(), refusals_total = n, "request refused");
    status
}

impl Auth {
    /// Mutual TLS with these rules.
    pub fn roles(rules: CertRules) -> Auth {
        Auth::Roles(rules, Refusals::default())
    }

    /// The refusals counted so far.
    pub fn counts(&self) -> RefusalCounts {
        match self {
            Auth::Open => RefusalCounts::default(),
            Auth::Roles(_, r) => RefusalCounts {
                unauthenticated: r.unauthenticated.load(Ordering::Relaxed),
                permission_denied: r.permission_denied.load(Ordering::Relaxed),
                cluster: r.cluster.load(Ordering::Relaxed),
            },
        }
    }

    /// The caller, checked against `need`. `Ok(None)` in [`Auth::Open`] mode.
    ///
    /// # Errors
    /// `Unauthenticated` or `PermissionDenied`, naming the certificate and what it may do.
    pub fn check<T>(
        &self,
        req: &Request<T>,
        need: Need,
        rpc: &str,
    ) -> Result<Option<Client>, Status> {
        let cert = req.peer_certs().and_then(|c| c.first().cloned());
        self.check_cert(
            cert.as_ref().map(|c| c.as_ref()),
            req.remote_addr(),
            need,
            rpc,
        )
    }

    /// As [`Auth::check`], for a caller that presented the DER certificate `cert` (None: none)
    /// from `peer`, outside gRPC (the metrics port).
    ///
    /// # Errors
    /// As [`Auth::check`].
    pub fn check_cert(
        &self,
        cert: Option<&[u8]>,
        peer: Option<std::net::SocketAddr>,
        need: Need,
        rpc: &str,
    ) -> Result<Option<Client>, Status> {
        let Auth::Roles(rules, refusals) = self else {
            return Ok(None);
        };
        let Some(der) = cert else {
            return Err(refuse(
                &refusals.unauthenticated,
                Status::unauthenticated("a client certificate signed by the fleet CA is required"),
                rpc,
                peer,
            ));
        };
        let client = client_of_cert(der, rules).map_err(|m| {
            refuse(
                &refusals.permission_denied,
                Status::permission_denied(m),
                rpc,
                peer,
            )
        })?;
        let allowed = matches!(
            (client.role, need),
            (Role::Agent, Need::Stream)
                | (Role::Viewer | Role::Operator, Need::View)
                | (Role::Operator, Need::Operate)
        );
        if !allowed {
            let what = match need {
                Need::View => "query the collector (viewer or operator certificates may)",
                Need::Operate => "change policies (operator certificates may)",
                Need::Stream => "stream samples (agent certificates may)",
            };
            return Err(refuse(
                &refusals.permission_denied,
                Status::permission_denied(format!(
                    "{} certificate {:?} may not {what}",
                    client.role.word(),
                    client.name
                )),
                rpc,
                peer,
            ));
        }
        Ok(Some(client))
    }

    /// Checks that an agent certificate streams for its own host, in the cluster it is bound
    /// to. Counted and logged when refused; the caller stores nothing of a refused hello.
    ///
    /// # Errors
    /// `PermissionDenied` naming both host ids, or both clusters (with the fix for a
    /// certificate bound to none).
    pub fn check_hello(
        &self,
        client: Option<&Client>,
        host_id: &str,
        cluster: &str,
    ) -> Result<(), Status> {
        let (Auth::Roles(rules, refusals), Some(c)) = (self, client) else {
            return Ok(());
        };
        if c.role != Role::Agent {
            return Ok(());
        }
        if c.name != host_id {
            let n = refusals.permission_denied.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(certificate = %c.name, claimed = %host_id, refusals_total = n, "agent refused: host id is not its certificate's");
            return Err(Status::permission_denied(format!(
                "the certificate of host {:?} cannot stream as host {host_id:?}",
                c.name
            )));
        }
        let refusal = match &c.cluster {
            Some(bound) if bound == cluster => return Ok(()),
            None if rules.allow_unbound_cluster => return Ok(()),
            Some(bound) => format!(
                "the certificate of host {:?} is bound to cluster {bound:?} and cannot join \
                 cluster {cluster:?}",
                c.name
            ),
            None => format!(
                "the certificate of host {name:?} is bound to no cluster, and this collector \
                 refuses unbound agent certificates (allow_unbound_cluster = false); issue it \
                 anew with `fleetctl certs issue --role agent --name {name} --cluster {cluster}`",
                name = c.name
            ),
        };
        let n = refusals.cluster.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(certificate = %c.name, bound = c.cluster.as_deref().unwrap_or(""), claimed = %cluster, refusals_total = n,
            "agent refused: cluster is not its certificate's");
        Err(Status::permission_denied(refusal))
    }

    /// Who made a change, for the policy history: the certificate's name and role, or the
    /// name the client claims, marked as unauthenticated, when there are no certificates.
    pub fn actor(client: Option<&Client>, claimed: Option<&str>) -> String {
        match client {
            Some(c) => format!("{} ({})", c.name, c.role.word()),
            None => format!("{} (unauthenticated)", claimed.unwrap_or("unknown")),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate with this subject and cluster URIs.
    fn cert_with(cn: &[&str], ous: &[&str], orgs: &[&str], clusters: &[&str]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        // rcgen keeps one value per attribute type: a second one goes under the same OID
        // spelled as a custom type.
        for (ty, oid, values) in [
            (rcgen::DnType::CommonName, 3, cn),
            (rcgen::DnType::OrganizationalUnitName, 11, ous),
            (rcgen::DnType::OrganizationName, 10, orgs),
        ] {
            for (i, v) in values.iter().enumerate() {
                let ty = match i {
                    0 => ty.clone(),
                    _ => rcgen::DnType::CustomDnType(vec![2, 5, 4, oid]),
                };
                params.distinguished_name.push(ty, *v);
            }
        }
        params.subject_alt_names = clusters
            .iter()
            .map(|c| rcgen::SanType::URI(fleet_proto::identity::cluster_uri(c).try_into().unwrap()))
            .collect();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn cert(cn: &str, ou: Option<&str>) -> Vec<u8> {
        cert_with(&[cn], ou.as_slice(), &["Fleet"], &[])
    }

    fn open() -> CertRules {
        CertRules::default()
    }

    fn agent(name: &str, cluster: Option<&str>) -> Client {
        Client {
            name: name.into(),
            role: Role::Agent,
            cluster: cluster.map(Into::into),
        }
    }

    #[test]
    fn roles_from_the_subject() {
        assert_eq!(
            client_of_cert(&cert("web1", Some("agent")), &open()).unwrap(),
            agent("web1", None)
        );
        let alice = client_of_cert(&cert("alice", Some("operator")), &open()).unwrap();
        assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::Operator));
        let e = client_of_cert(&cert("bob", Some("admin")), &open()).unwrap_err();
        assert!(e.contains("\"admin\""), "{e}");
        let e = client_of_cert(&cert("carol", None), &open()).unwrap_err();
        assert!(e.contains("no OU"), "{e}");
        assert!(client_of_cert(b"garbage", &open()).is_err());
    }

    #[test]
    fn exactly_one_role_and_the_organisation() {
        let two = cert_with(&["eve"], &["viewer", "operator"], &["Fleet"], &[]);
        let e = client_of_cert(&two, &open()).unwrap_err();
        assert!(e.contains("2 roles (viewer, operator)"), "{e}");
        // Another OU besides one role is not a role.
        let team = cert_with(&["dan"], &["Platform", "viewer"], &["Fleet"], &[]);
        assert_eq!(client_of_cert(&team, &open()).unwrap().role, Role::Viewer);
        let e = client_of_cert(&cert("collector", Some("collector")), &open()).unwrap_err();
        assert!(e.contains("collector's own"), "{e}");
        let e =
            client_of_cert(&cert_with(&["a", "b"], &["viewer"], &[], &[]), &open()).unwrap_err();
        assert!(e.contains("2 CNs"), "{e}");

        let acme = CertRules {
            org: Some("Acme Fleet".into()),
            ..CertRules::default()
        };
        let e = client_of_cert(&cert("v", Some("viewer")), &acme).unwrap_err();
        assert!(
            e.contains("has O \"Fleet\"") && e.contains("\"Acme Fleet\" only (tls_org)"),
            "{e}"
        );
        let none = cert_with(&["v"], &["viewer"], &[], &[]);
        assert!(client_of_cert(&none, &acme).is_err());
        let mixed = cert_with(&["v"], &["viewer"], &["Acme Fleet", "Other"], &[]);
        assert!(client_of_cert(&mixed, &acme).is_err());
        let good = cert_with(&["v"], &["viewer"], &["Acme Fleet"], &[]);
        assert_eq!(client_of_cert(&good, &acme).unwrap().role, Role::Viewer);
    }

    #[test]
    fn the_cluster_from_the_uri() {
        let c = cert_with(&["web1"], &["agent"], &["Fleet"], &["eu west"]);
        assert_eq!(
            client_of_cert(&c, &open()).unwrap(),
            agent("web1", Some("eu west"))
        );
        let two = cert_with(&["web1"], &["agent"], &["Fleet"], &["prod", "staging"]);
        let e = client_of_cert(&two, &open()).unwrap_err();
        assert!(e.contains("2 clusters (prod, staging)"), "{e}");
    }

    #[test]
    fn hellos_bound_to_host_and_cluster() {
        let auth = Auth::roles(CertRules::default());
        let web1 = agent("web1", Some("prod"));
        assert!(auth.check_hello(Some(&web1), "web1", "prod").is_ok());
        let e = auth.check_hello(Some(&web1), "db1", "prod").unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("web1") && e.message().contains("db1"));
        let e = auth
            .check_hello(Some(&web1), "web1", "staging")
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            e.message(),
            "the certificate of host \"web1\" is bound to cluster \"prod\" and cannot join \
             cluster \"staging\""
        );
        let unbound = agent("web2", None);
        let e = auth
            .check_hello(Some(&unbound), "web2", "prod")
            .unwrap_err();
        assert!(
            e.message().contains("allow_unbound_cluster = false")
                && e.message().contains("--name web2 --cluster prod"),
            "{}",
            e.message()
        );
        assert_eq!(
            auth.counts(),
            RefusalCounts {
                unauthenticated: 0,
                permission_denied: 1,
                cluster: 2
            }
        );
        let lenient = Auth::roles(CertRules {
            allow_unbound_cluster: true,
            ..CertRules::default()
        });
        assert!(lenient.check_hello(Some(&unbound), "web2", "prod").is_ok());
        assert!(lenient.check_hello(Some(&web1), "web1", "staging").is_err());
        assert!(Auth::Open.check_hello(None, "anything", "any").is_ok());
    }

    #[test]
    fn actors() {
        let alice = Client {
            name: "alice".into(),
            role: Role::Operator,
            cluster: None,
        };
        assert_eq!(
            Auth::actor(Some(&alice), Some("mallory")),
            "alice (operator)"
        );
        assert_eq!(
            Auth::actor(None, Some("bob@laptop")),
            "bob@laptop (unauthenticated)"
        );
    }

    #[test]
    fn no_certificate_is_unauthenticated() {
        let auth = Auth::roles(CertRules::default());
        let e = auth
            .check(&Request::new(()), Need::View, "ListHosts")
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert_eq!(auth.counts().unauthenticated, 1);
        assert!(Auth::Open
            .check(&Request::new(()), Need::Operate, "x")
            .unwrap()
            .is_none());
    }
}
