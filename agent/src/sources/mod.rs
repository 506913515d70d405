//! What the agent measures.
//!
//! - [`procfs`]: sar's activities (CPU, memory, paging, disks, network, load, pressure), computed
//!   from `/proc` and `/sys` the way sysstat 12.x computes them.
//! - [`ntp`]: the host's NTP servers (offset, delay, stratum...) and the kernel clock.
pub mod kmsg;
pub mod ntp;
pub mod procfs;
pub mod topoom;
