//! A real OpenSSH sshd (Debian package `openssh-server`) listening on a loopback port, with its
//! own host key and config: a real process for the OOM-policy tests to protect.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::caps;
use crate::net::free_port;
use crate::procs::{with_oom_score_adj, Reaped};
use crate::wait::wait_for;

/// Starts `sshd -D` with `oom_score_adj` = `initial_adj`, its config at `DIR/sshd_config_TAG`
/// (so a policy can match this sshd by that path in its command line) and its host key at
/// `DIR/host_key` (made once per `dir`); returns once it listens.
pub fn start_sshd(dir: &Path, tag: &str, initial_adj: i32) -> Reaped {
    let sshd = caps::require(caps::sshd());
    // sshd checks its privilege separation directory at start (the package's unit makes it).
    std::fs::create_dir_all("/run/sshd").unwrap();
    let key = dir.join("host_key");
    if !key.exists() {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client)");
        assert!(st.success());
    }
    let port = free_port();
    let cfg = dir.join(format!("sshd_config_{tag}"));
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}/sshd_{tag}.pid\nUsePAM no\n",
            key.display(),
            dir.display()
        ),
    )
    .unwrap();
    let child = Reaped(
        with_oom_score_adj(
            Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(&cfg)
                .stderr(Stdio::null()),
            initial_adj,
        )
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", sshd.display())),
    );
    // Listening means it has read its config and titled itself "[listener]".
    wait_for("sshd listening", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    child
}
