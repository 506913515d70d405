//! Who this host is: host id, hostname and kernel, read once at start.

use std::path::Path;

use fleet_proto::v1::HostIdentity;

use crate::config::{check_host_id, Settings};

pub mod cert;

use cert::Certificate;

/// Builds the identity the agent announces in its Hello.
///
/// # Errors
/// A message naming the file that could not be read or the value that is not a valid host id.
pub fn identity(settings: &Settings) -> Result<HostIdentity, String> {
    let host_id = match &settings.host_id {
        Some(id) => id.clone(),
        None => {
            let id = read_trimmed(&settings.machine_id_path)?;
            check_host_id(&id)
                .map_err(|m| format!("{}: {m}", settings.machine_id_path.display()))?;
            id
        }
    };
    let kernel_dir = settings.proc_root.join("sys/kernel");
    let hostname = match &settings.hostname {
        Some(h) => h.clone(),
        None => read_trimmed(&kernel_dir.join("hostname"))?,
    };
    let kernel = read_trimmed(&kernel_dir.join("osrelease")).unwrap_or_default();
    Ok(HostIdentity {
        host_id,
        hostname,
        cluster: settings.cluster.clone(),
        labels: settings.labels.clone().into_iter().collect(),
        kernel,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

fn read_trimmed(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Checks the agent's client certificate (when it has one) against its identity, so a mismatch
/// the collector would refuse is reported at start and by `--check-config`: the certificate must
/// be an agent certificate (subject OU `agent`) whose name (CN) is this host id, bound to this
/// agent's cluster (its URI `urn:fleet:cluster:CLUSTER`), and must not have expired. `now_s` is
/// Unix seconds. A certificate bound to no cluster passes with a warning: collectors accept it
/// only with `allow_unbound_cluster = true`, which this agent cannot see.
///
/// # Errors
/// A message naming the file and what is wrong, with the fix.
pub fn check_certificate(settings: &Settings, host_id: &str, now_s: i64) -> Result<(), String> {
    let Some(path) = settings.tls.as_ref().and_then(|t| t.cert.as_ref()) else {
        return Ok(());
    };
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    check_certificate_pem(path, &pem, host_id, &settings.cluster, now_s)
}

/// [`check_certificate`] on the contents `pem` of the certificate file `path`.
fn check_certificate_pem(
    path: &Path,
    pem: &[u8],
    host_id: &str,
    cluster: &str,
    now_s: i64,
) -> Result<(), String> {
    let cert =
        Certificate::from_pem(pem).map_err(|e| format!("tls_cert {}: {e}", path.display()))?;
    let (cn, ou) = (cert.common_name, cert.org_unit);
    let fix = format!("issue one with `fleetctl certs issue --role agent --name {host_id}`");
    if let Some(role) = ou.as_deref().filter(|r| *r != "agent") {
        return Err(format!(
            "tls_cert {}: a {role} certificate; the collector lets only agent certificates stream ({fix})",
            path.display()
        ));
    }
    if cn.as_deref() != Some(host_id) {
        return Err(format!(
            "tls_cert {} is for host {:?} but this agent's host_id is {host_id:?}: the collector \
             would refuse it; set host_id = {:?} or {fix}",
            path.display(),
            cn.as_deref().unwrap_or(""),
            cn.as_deref().unwrap_or("")
        ));
    }
    let mut clusters = Vec::new();
    for uri in &cert.uris {
        match fleet_proto::identity::cluster_of_uri(uri) {
            Some(Ok(c)) => clusters.push(c),
            Some(Err(e)) => return Err(format!("tls_cert {}: {e}", path.display())),
            None => {}
        }
    }
    let bound_fix = format!(
        "issue one with `fleetctl certs issue --role agent --name {host_id} --cluster {cluster}`"
    );
    match clusters.as_slice() {
        [] => tracing::warn!(
            cert = %path.display(),
            "the agent certificate is bound to no cluster: collectors refuse it unless \
             allow_unbound_cluster = true; {bound_fix}"
        ),
        [c] if c.as_str() == cluster => {}
        [c] => {
            return Err(format!(
                "tls_cert {} is bound to cluster {c:?} but this agent's cluster is {cluster:?}: \
                 the collector would refuse it; set cluster = {c:?} or {bound_fix}",
                path.display()
            ))
        }
        many => {
            return Err(format!(
                "tls_cert {} names {} clusters {many:?}: the collector refuses it; {bound_fix}",
                path.display(),
                many.len()
            ))
        }
    }
    if cert.not_after.unix_seconds() < now_s {
        return Err(format!(
            "tls_cert {} expired at {} ({fix})",
            path.display(),
            cert.not_after
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cert::tests::{agent_cert, at};
    use super::*;

    const NOW: i64 = 1_800_000_000; // 2027-01-15

    fn check(pem: &str, host_id: &str, cluster: &str) -> Result<(), String> {
        check_certificate_pem(
            Path::new("/etc/fleet/h1.pem"),
            pem.as_bytes(),
            host_id,
            cluster,
            NOW,
        )
    }

    fn later() -> time::OffsetDateTime {
        at(2030, 1, 1, 0, 0, 0)
    }

    #[test]
    fn an_agent_certificate_for_this_host_and_cluster_passes() {
        let pem = agent_cert("h1", "agent", &["urn:fleet:cluster:prod"], later());
        assert_eq!(check(&pem, "h1", "prod"), Ok(()));
        // Bound to no cluster: passes (with a warning; a collector may allow it).
        assert_eq!(
            check(&agent_cert("h1", "agent", &[], later()), "h1", "prod"),
            Ok(())
        );
        // Other URIs are not cluster bindings.
        let pem = agent_cert(
            "h1",
            "agent",
            &["https://example.org/", "urn:fleet:cluster:prod"],
            later(),
        );
        assert_eq!(check(&pem, "h1", "prod"), Ok(()));
        // Valid to the second it ends.
        let end = at(2027, 1, 15, 8, 0, 0);
        assert_eq!(end.unix_timestamp(), NOW);
        assert_eq!(
            check(&agent_cert("h1", "agent", &[], end), "h1", "prod"),
            Ok(())
        );
    }

    #[test]
    fn what_the_collector_would_refuse_is_named_with_its_fix() {
        let fix = "issue one with `fleetctl certs issue --role agent --name h1`";
        let e = check(&agent_cert("ops", "viewer", &[], later()), "h1", "prod").unwrap_err();
        assert_eq!(
            e,
            format!("tls_cert /etc/fleet/h1.pem: a viewer certificate; the collector lets only agent certificates stream ({fix})")
        );
        let e = check(&agent_cert("h2", "agent", &[], later()), "h1", "prod").unwrap_err();
        assert_eq!(
            e,
            format!("tls_cert /etc/fleet/h1.pem is for host \"h2\" but this agent's host_id is \"h1\": the collector would refuse it; set host_id = \"h2\" or {fix}")
        );
        let bound_fix =
            "issue one with `fleetctl certs issue --role agent --name h1 --cluster prod`";
        let pem = agent_cert("h1", "agent", &["urn:fleet:cluster:staging"], later());
        assert_eq!(
            check(&pem, "h1", "prod").unwrap_err(),
            format!("tls_cert /etc/fleet/h1.pem is bound to cluster \"staging\" but this agent's cluster is \"prod\": the collector would refuse it; set cluster = \"staging\" or {bound_fix}")
        );
        let pem = agent_cert(
            "h1",
            "agent",
            &["urn:fleet:cluster:prod", "urn:fleet:cluster:b"],
            later(),
        );
        assert_eq!(
            check(&pem, "h1", "prod").unwrap_err(),
            format!("tls_cert /etc/fleet/h1.pem names 2 clusters [\"prod\", \"b\"]: the collector refuses it; {bound_fix}")
        );
        let pem = agent_cert("h1", "agent", &["urn:fleet:cluster:%zz"], later());
        let e = check(&pem, "h1", "prod").unwrap_err();
        assert!(
            e.starts_with("tls_cert /etc/fleet/h1.pem: ") && e.contains("%zz"),
            "{e}"
        );
        let pem = agent_cert(
            "h1",
            "agent",
            &["urn:fleet:cluster:prod"],
            at(2026, 1, 1, 0, 0, 0),
        );
        assert_eq!(
            check(&pem, "h1", "prod").unwrap_err(),
            format!("tls_cert /etc/fleet/h1.pem expired at 2026-01-01T00:00:00Z ({fix})")
        );
    }

    #[test]
    fn a_file_that_is_no_certificate_is_named() {
        assert_eq!(
            check("hello\n", "h1", "prod").unwrap_err(),
            "tls_cert /etc/fleet/h1.pem: not a PEM certificate (no CERTIFICATE block)"
        );
        let e = check(
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
            "h1",
            "prod",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "tls_cert /etc/fleet/h1.pem: the certificate is cut short in its tbsCertificate"
        );
    }
}
