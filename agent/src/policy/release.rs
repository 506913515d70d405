//! Giving every process back its original value: `fleet-agent release-policies`, run by the
//! uninstall path (deploy/ansible, `fleet_agent_state: absent`) after the agent stopped and
//! before its files go, so no process keeps a value set by an agent that no longer runs.

use std::path::Path;

use super::{EnforceError, Enforcer};

/// What releasing every policy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    /// The policies removed, in the order they were removed (the last applied first).
    pub policies: Vec<String>,
    /// Processes given back their original value.
    pub restored: usize,
    /// Writes that failed: pid and why (the process keeps the policy's value).
    pub failed: Vec<(u32, String)>,
}

impl Enforcer {
    /// Removes every policy, the last applied first, so that a process two policies match goes
    /// straight back to its original value rather than through the other policy's. The state
    /// file is stored after each removal.
    ///
    /// # Errors
    /// [`EnforceError::State`] when the state cannot be stored.
    pub fn release_all(&mut self) -> Result<ReleaseReport, EnforceError> {
        let names: Vec<String> = self.policies().map(|(p, _)| p.name.clone()).collect();
        let mut report = ReleaseReport::default();
        for name in names.into_iter().rev() {
            if let Some(r) = self.remove(&name)? {
                report.restored += r.restored;
                report.failed.extend(r.failed);
            }
            report.policies.push(name);
        }
        Ok(report)
    }
}

/// Opens the policy state of `state_dir` and releases every policy in it.
///
/// # Errors
/// [`EnforceError`] when the state cannot be read or stored.
pub fn release_policies(
    proc_root: &Path,
    etc_root: &Path,
    state_dir: &Path,
) -> Result<ReleaseReport, EnforceError> {
    Enforcer::open(proc_root, etc_root, state_dir)?.release_all()
}
