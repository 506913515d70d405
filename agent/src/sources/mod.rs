//! What the agent measures.
//!
//! - [`procfs`]: sar's activities (CPU, memory, paging, disks, network, load, pressure), computed
//!   from `/proc` and `/sys` the way sysstat 12.x computes them: one file per activity in
//!   `procfs/activity/`, the files several of them read as pure parsers in `procfs/`.
//! - [`kmsg`]: OOM-killer reports parsed from the kernel log, and the watcher of /dev/kmsg.
//! - [`topoom`]: the processes the OOM killer would pick next (highest oom_score first).
//! - [`ntp`]: the host's NTP servers (offset, delay, stratum...) and the kernel clock.

pub mod kmsg;
pub mod ntp;
pub mod procfs;
pub mod topoom;
