//! `/proc/uptime`: seconds since boot, the clock sar computes its rates over.
//!
//! A real example (uptime, then idle time summed over CPUs):
//!
//! ```text
//! 8092.89 15514.20
//! ```
//!
//! sysstat's `read_uptime` (rd_stats.c) reads it as `"%lu.%lu"` into hundredths of a second, and
//! sar divides every counter delta by the difference of two such readings (`get_interval` in
//! common.c). Fleet does the same, so its rates are over the real elapsed time between the two
//! readings, not over the nominal sampling interval.

use super::parse::{fields, hundredths, ParseError};

/// Parses `/proc/uptime` into hundredths of a second since boot.
///
/// # Errors
/// When the first field is not `<seconds>.<hundredths>`.
pub fn parse(buf: &[u8]) -> Result<u64, ParseError> {
    fields(buf)
        .next()
        .and_then(hundredths)
        .ok_or(ParseError("expected \"<seconds>.<hundredths> ...\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file() {
        assert_eq!(parse(b"8092.89 15514.20\n"), Ok(809289));
        assert!(parse(b"\n").is_err());
        assert!(parse(b"abc 1.0\n").is_err());
    }
}
