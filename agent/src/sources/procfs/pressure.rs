//! `/proc/pressure/{cpu,io,memory}`: pressure stall information (sar `-q CPU`, `-q IO`,
//! `-q MEM`; kernel 4.20 and later, when built with PSI).
//!
//! A real example (`/proc/pressure/io`):
//!
//! ```text
//! some avg10=0.00 avg60=0.10 avg300=0.14 total=4017975
//! full avg10=0.00 avg60=0.10 avg300=0.13 total=3652173
//! ```
//!
//! `avgN` are percentages over the last N seconds, `total` the cumulated stall time in
//! microseconds. Read as sysstat's `read_psi_stub` (rd_stats.c): the averages in hundredths, and
//! a line counts only if all four figures are there.

use super::parse::{fields, hundredths, lines, strip, u64_field};

/// One `some` or `full` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PsiLine {
    /// Hundredths of a percent (`0.53` is 53).
    pub avg10: u64,
    pub avg60: u64,
    pub avg300: u64,
    /// Microseconds stalled since boot.
    pub total: u64,
}

/// One pressure file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub some: Option<PsiLine>,
    pub full: Option<PsiLine>,
}

/// The value of a `key=value` field.
fn value<'a>(field: Option<&'a [u8]>, key: &[u8]) -> Option<&'a [u8]> {
    field?.strip_prefix(key)
}

fn line(rest: &[u8]) -> Option<PsiLine> {
    let mut it = fields(rest);
    let avg10 = hundredths(value(it.next(), b"avg10=")?)?;
    let avg60 = hundredths(value(it.next(), b"avg60=")?)?;
    let avg300 = hundredths(value(it.next(), b"avg300=")?)?;
    let total = u64_field(value(it.next(), b"total=")?)?;
    Some(PsiLine {
        avg10,
        avg60,
        avg300,
        total,
    })
}

/// Parses one pressure file. A missing or garbled line is `None`.
pub fn parse(buf: &[u8]) -> Pressure {
    let mut p = Pressure::default();
    for l in lines(buf) {
        if let Some(rest) = strip(l, b"some ") {
            p.some = line(rest);
        } else if let Some(rest) = strip(l, b"full ") {
            p.full = line(rest);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file() {
        let p = parse(
            b"some avg10=0.00 avg60=0.10 avg300=0.14 total=4017975\n\
full avg10=1.25 avg60=0.10 avg300=0.13 total=3652173\n",
        );
        assert_eq!(
            p.some,
            Some(PsiLine {
                avg10: 0,
                avg60: 10,
                avg300: 14,
                total: 4017975
            })
        );
        assert_eq!(p.full.map(|f| (f.avg10, f.total)), Some((125, 3652173)));
    }

    #[test]
    fn cpu_file_without_full_and_garbage() {
        let p = parse(b"some avg10=0.00 avg60=0.53 avg300=1.50 total=21775634\n");
        assert_eq!(p.some.map(|s| s.avg300), Some(150));
        assert!(p.full.is_none());
        let p =
            parse(b"some avg10=0.00 avg60=0.53 total=1\nfull avg10=x avg60=0 avg300=0 total=0\n");
        assert!(p.some.is_none() && p.full.is_none());
    }
}
