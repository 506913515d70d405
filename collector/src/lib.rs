//! collector
pub mod storage;
