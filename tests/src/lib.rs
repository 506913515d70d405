//! The harness of Fleet's end-to-end tests (`tests/tests/*.rs`): it starts the real
//! `fleet-collector`, `fleet-agent` and `fleetctl` binaries and the test peers on loopback, waits
//! on conditions with deadlines, says what the machine lacks for a test, and ends only the
//! processes it started, by pid. The test files hold their tests and the fixtures specific to
//! them; every general piece is here, once.
//!
//! - [`paths`]: the workspace binaries ([`bin`], built by `cargo build --workspace --bins` next to
//!   the test executables), files of the repository, a file's permission bits.
//! - [`procs`]: a started daemon with its log ([`Proc`]: signals, SIGTERM with a deadline), a child
//!   reaped on drop ([`Reaped`]; a `sleep` named for a policy to match: `procs::sleeper`),
//!   one-shot runs of a binary ([`run`]), the comm, `oom_score_adj` and RSS of a pid.
//! - [`wait`]: [`wait_for`] a condition with a deadline, polling; never a fixed sleep.
//! - [`net`]: a free loopback port (TCP or UDP), an HTTP(S) GET on loopback and its TLS client.
//! - [`collector`], [`agent`], [`fleetctl`](mod@fleetctl): start a collector (`--insecure` or
//!   with given TLS flags) and read its address, start an agent at a 1 s interval (reporting
//!   another hostname, or run through a wrapper such as `setpriv`: [`AgentAs`]), run fleetctl
//!   (plaintext or over mutual TLS, its JSON output parsed, a host's last sequence number,
//!   [`wait_for_batches`]).
//! - [`pki`]: certificates made with `fleetctl certs` ([`Pki`]: init, issue, revoke), odd ones
//!   signed by rcgen with the same CA, and a rustls client presenting one.
//! - [`cgroup`]: a memory cgroup with a small limit, v1 or v2 ([`MemCgroup`]), processes in it
//!   (at a given `oom_score_adj`) and the count of its OOM kills.
//! - [`caps`]: what a test needs from the machine (root, a readable `/dev/kmsg`, a memory cgroup
//!   controller, CAP_SYS_RESOURCE, chronyd, sshd, Alertmanager, Ansible, systemd-analyze): each
//!   check returns the reason when it is missing; [`caps::require`] fails a test with it and
//!   [`skip_unless!`] skips one.
//! - Test peers: [`alertmanager`] (a real Prometheus Alertmanager, http or https), [`sshd`] (a real
//!   OpenSSH listener), [`chronyd`] (a real NTP server that never touches the clock),
//!   [`fake_ntp`] (this crate's `fleet-fake-ntp`, offset set at run time), [`tsdb`] (real
//!   remote-write receivers: VictoriaMetrics and Prometheus, queried through the Prometheus API).
//! - [`systemd`]: the values of a unit file's `[Service]` keys; [`ansible`]: a host's PLAY RECAP;
//!   [`grafana`]: the PromQL of the dashboards in deploy/grafana/ and the names in it.
//! - [`tmpfs`]: a small tmpfs of the test's own ([`Tmpfs`], root only), filled to the last byte
//!   by a filler file for a full-disk test, unmounted on drop.
//! - [`vm`]: the test bed of real hosts (issue 13): Debian 12 VMs under qemu with systemd, cgroup
//!   v2, sshd and chrony, booted from a cached image ([`vm::TestBed`], [`vm::Vm`]: ssh, a 9p share
//!   of the binaries, forwards to loopback services, nothing else on the network).
//!
//! Safety on a shared machine: servers listen on 127.0.0.1 only, every wait has a deadline,
//! memory pressure stays inside a memory cgroup with a limit, and signals go only to the pids the
//! harness started.

pub mod agent;
pub mod alertmanager;
pub mod ansible;
pub mod caps;
pub mod cgroup;
pub mod chronyd;
pub mod collector;
pub mod fake_ntp;
pub mod fleetctl;
pub mod grafana;
pub mod net;
pub mod paths;
pub mod pki;
pub mod procs;
pub mod sshd;
pub mod systemd;
pub mod tmpfs;
pub mod tsdb;
pub mod vm;
pub mod wait;

pub use agent::{spawn_agent, spawn_agent_as, start_agent, AgentAs};
pub use cgroup::MemCgroup;
pub use collector::Collector;
pub use fleetctl::{
    fleetctl, fleetctl_json, last_seq, try_fleetctl_json, wait_for_batches, wait_for_sample_rows,
};
pub use net::free_port;
pub use paths::bin;
pub use pki::Pki;
pub use procs::{run, Proc, Reaped};
pub use tmpfs::Tmpfs;
pub use wait::wait_for;
