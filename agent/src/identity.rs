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
