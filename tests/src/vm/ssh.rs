//! Logging in to the VMs: an ed25519 key made for each run (its public half goes into each VM's
//! seed and becomes root's only way in), a known_hosts file of the run that trusts the image's
//! host key under one alias, and the `ssh` command line that uses only these (no user config,
//! no agent, no password prompt, the host key checked strictly).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::image::Image;

/// The name the run's known_hosts gives the VMs' host key (every VM of an image has the same).
pub const HOST_KEY_ALIAS: &str = "fleet-vm";

/// The run's key pair and known_hosts.
#[derive(Debug, Clone)]
pub struct SshKey {
    /// The private key (`id_ed25519`); its public half is `id_ed25519.pub`.
    pub private: PathBuf,
    pub known_hosts: PathBuf,
}

impl SshKey {
    /// Makes the key pair and known_hosts in `dir`.
    ///
    /// # Panics
    /// If `ssh-keygen` (openssh-client) fails or the image has no host key.
    pub fn generate(dir: &Path, image: &Image) -> SshKey {
        let private = dir.join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "fleet-test-run",
                "-f",
            ])
            .arg(&private)
            .output()
            .expect("run ssh-keygen (openssh-client)");
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let host = std::fs::read_to_string(image.host_key())
            .unwrap_or_else(|e| panic!("{}: {e}", image.host_key().display()));
        let mut fields = host.split_whitespace();
        let (kind, key) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, format!("{HOST_KEY_ALIAS} {kind} {key}\n")).unwrap();
        SshKey {
            private,
            known_hosts,
        }
    }

    /// The public key, one `authorized_keys` line.
    pub fn public(&self) -> String {
        let p = self.private.with_extension("pub");
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The options every ssh to a VM uses (also for Ansible's `ansible_ssh_common_args`).
    pub fn options(&self) -> Vec<String> {
        [
            "IdentitiesOnly=yes".to_string(),
            format!("IdentityFile={}", self.private.display()),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "GlobalKnownHostsFile=/dev/null".into(),
            format!("HostKeyAlias={HOST_KEY_ALIAS}"),
            "StrictHostKeyChecking=yes".into(),
            "BatchMode=yes".into(),
            "PasswordAuthentication=no".into(),
            "ConnectTimeout=10".into(),
            // A VM that stops answering (killed, hung) ends the command within 30 s.
            "ServerAliveInterval=5".into(),
            "ServerAliveCountMax=6".into(),
            "LogLevel=ERROR".into(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
    }

    /// `ssh` to root on `127.0.0.1:port` with the run's key, no config file; the remote command
    /// is added by the caller.
    pub fn command(&self, port: u16) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-p", &port.to_string()])
            .args(self.options())
            .arg("root@127.0.0.1");
        cmd
    }
}
