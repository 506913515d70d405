//! `/proc/loadavg`: load averages and task counts (sar `-q`).
//!
//! A real example:
//!
//! ```text
//! 0.18 0.69 0.48 1/85 9744
//! ```
//!
//! 1, 5 and 15 minute load averages, runnable tasks / total tasks, last pid. Read as sysstat's
//! `read_loadavg` (rd_stats.c) reads it: `"%u.%u %u.%u %u.%u %llu/%llu"`, the averages kept in
//! hundredths.

use super::parse::{fields, hundredths, u64_field, ParseError};

/// The figures sar uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadAvg {
    /// Load averages in hundredths (`0.69` is 69).
    pub load_1: u64,
    pub load_5: u64,
    pub load_15: u64,
    /// Runnable tasks, including the one reading the file.
    pub nr_running: u64,
    /// All tasks (threads included).
    pub nr_threads: u64,
}

/// Parses `/proc/loadavg`.
///
/// # Errors
/// When any of the five figures is missing or not a number.
pub fn parse(buf: &[u8]) -> Result<LoadAvg, ParseError> {
    let mut it = fields(buf);
    let bad = ParseError("expected \"L1 L5 L15 RUNNING/TOTAL ...\"");
    let load_1 = it.next().and_then(hundredths).ok_or(bad)?;
    let load_5 = it.next().and_then(hundredths).ok_or(bad)?;
    let load_15 = it.next().and_then(hundredths).ok_or(bad)?;
    let tasks = it.next().ok_or(bad)?;
    let slash = tasks.iter().position(|&b| b == b'/').ok_or(bad)?;
    let nr_running = u64_field(&tasks[..slash]).ok_or(bad)?;
    let nr_threads = u64_field(&tasks[slash + 1..]).ok_or(bad)?;
    Ok(LoadAvg {
        load_1,
        load_5,
        load_15,
        nr_running,
        nr_threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file() {
        let l = parse(b"0.18 0.69 12.48 1/85 9744\n").expect("parses");
        assert_eq!(
            l,
            LoadAvg {
                load_1: 18,
                load_5: 69,
                load_15: 1248,
                nr_running: 1,
                nr_threads: 85
            }
        );
    }

    #[test]
    fn garbage() {
        assert!(parse(b"0.18 0.69\n").is_err());
        assert!(parse(b"0.18 0.69 0.48 185 9744\n").is_err());
        assert!(parse(b"").is_err());
    }
}
