//! Who this host is: host id, hostname and kernel, read once at start.

use std::path::Path;

use fleet_proto::v1::HostIdentity;

use crate::config::{check_host_id, Settings};

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
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|e| format!("tls_cert {}: not a PEM certificate ({e})", path.display()))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("tls_cert {}: {e}", path.display()))?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    let cn = first(&mut subject.iter_common_name());
    let ou = first(&mut subject.iter_organizational_unit());
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
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for gn in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = gn {
                match fleet_proto::identity::cluster_of_uri(uri) {
                    Some(Ok(c)) => clusters.push(c),
                    Some(Err(e)) => return Err(format!("tls_cert {}: {e}", path.display())),
                    None => {}
                }
            }
        }
    }
    let cluster = &settings.cluster;
    let bound_fix = format!(
        "issue one with `fleetctl certs issue --role agent --name {host_id} --cluster {cluster}`"
    );
    match clusters.as_slice() {
        [] => tracing::warn!(
            cert = %path.display(),
            "the agent certificate is bound to no cluster: collectors refuse it unless \
             allow_unbound_cluster = true; {bound_fix}"
        ),
        [c] if c == cluster => {}
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
    let not_after = cert.validity().not_after.timestamp();
    if not_after < now_s {
        return Err(format!(
            "tls_cert {} expired at {} ({fix})",
            path.display(),
            cert.validity().not_after
        ));
    }
    Ok(())
}
