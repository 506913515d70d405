//! What the agent measures.
//!
//! - [`procfs`]: sar's activities (CPU, memory, paging, disks, network, load, pressure), computed
//!   from `/proc` and `/sys` the way sysstat 12.x computes them.
pub mod kmsg;
pub mod procfs;
pub mod topoom;
