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
//!
//! Each file is read by one activity (`activity/psi_cpu.rs`, `psi_io.rs`, `psi_mem.rs`); the
//! format, and the columns sar makes of a line, are shared here.

use super::parse::{fields, hundredths, lines, strip, u64_field, ParseError};

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

impl PsiLine {
    /// What sar prints for this line over the interval from `prev` (pr_stats.c,
    /// `print_psi*_stats`): the three averages in percent, then the stalled time over the
    /// interval as a percentage, `(total_now - total_before) / (100 * itv)` with totals in
    /// microseconds and `itv` in hundredths of a second.
    pub fn sar_columns(&self, prev: &PsiLine, itv: u64) -> [f64; 4] {
        [
            self.avg10 as f64 / 100.0,
            self.avg60 as f64 / 100.0,
            self.avg300 as f64 / 100.0,
            (self.total as f64 - prev.total as f64) / (100.0 * itv as f64),
        ]
    }
}

/// One pressure file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub some: Option<PsiLine>,
    pub full: Option<PsiLine>,
}

impl Pressure {
    /// sar's columns for `some` then `full` over the interval from `prev`; `None` unless both
    /// readings have both lines (sysstat's `read_psiio`/`read_psimem` fail without them).
    pub fn some_full_columns(&self, prev: &Pressure, itv: u64) -> Option<Vec<f64>> {
        let (ps, pf, cs, cf) = (prev.some?, prev.full?, self.some?, self.full?);
        let mut v = Vec::with_capacity(8);
        v.extend(cs.sar_columns(&ps, itv));
        v.extend(cf.sar_columns(&pf, itv));
        Some(v)
    }
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

/// [`parse`] in the shape of an activity's own-file parser (`OwnFile::parse`). Never fails: a
/// garbled line is `None`, and the activity that needs it is left out.
pub fn parse_into(buf: &[u8], out: &mut Pressure) -> Result<(), ParseError> {
    *out = parse(buf);
    Ok(())
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
