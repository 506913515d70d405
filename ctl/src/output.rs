//! What every command prints with: the `-o` format, aligned tables, CSV records, JSON, times,
//! and the small conventions of a table cell (`-` for nothing, control characters blanked, long
//! text cut with `…`, sizes as `1.9M`).
//!
//! Three formats, chosen with `-o`:
//!
//! - `table` (default): for people. Columns three spaces apart, left-aligned except numbers, no
//!   trailing blanks, `-` for an empty cell; times in UTC with whole seconds.
//! - `json`: for scripts. One pretty-printed value ending in a newline: an array of row objects
//!   (or one object), keys in a fixed order, times RFC 3339 UTC with milliseconds, `null` for
//!   none.
//! - `csv`: the JSON row keys as a header line, then one line per row, RFC 4180 quoting; empty
//!   for `null`.
//!
//! Each command's module (`crate::cmd`) documents its own rows and keys.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `-o` / `output` choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
    Csv,
}

// ---------------------------------------------------------------------------------------------
// tables

/// Columns three spaces apart, column `i` right-aligned where `right[i]`, else left-aligned; no
/// trailing blanks.
pub fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("   ");
            }
            let w = widths[i];
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(line, "{cell:>w$}");
            } else {
                let _ = write!(line, "{cell:<w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A table's header row.
pub fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// A cell: `s`, or `-` when it is empty.
pub fn dash(s: &str) -> String {
    if s.is_empty() { "-" } else { s }.to_owned()
}

/// `s` fit for one table cell: control characters (a cmdline's newlines, tabs) as spaces, cut to
/// `max` characters with `…` marking the cut.
pub fn printable(s: &str, max: usize) -> String {
    let clean = s.chars().map(|c| if c.is_control() { ' ' } else { c });
    if s.chars().count() <= max {
        clean.collect()
    } else {
        clean
            .take(max.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    }
}

/// A JSON value as a table shows it: strings without quotes, anything else as JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An amount of kB as a table shows it: `564K`, `1.9M`, `7.6G` (binary units, as `top` uses).
pub fn human_kb(kb: u64) -> String {
    const UNITS: [&str; 4] = ["M", "G", "T", "P"];
    if kb < 1024 {
        return format!("{kb}K");
    }
    let mut value = kb as f64 / 1024.0;
    let mut unit = 0;
    // Roll over before rounding would print 1024.0.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// A host as tables name it: its hostname, or its id when it has none.
pub fn host_name<'a>(hostname: &'a str, host_id: &'a str) -> &'a str {
    if hostname.is_empty() {
        host_id
    } else {
        hostname
    }
}

// ---------------------------------------------------------------------------------------------
// JSON and CSV

/// `value` as pretty JSON, with a final newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut text =
        serde_json::to_string_pretty(value).expect("plain data with string keys always serializes");
    text.push('\n');
    text
}

/// One CSV record, RFC 4180 quoting, `\n`-terminated.
pub fn csv_line<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = String::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let field = field.as_ref();
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push('\n');
    line
}

/// A JSON value as one CSV field: strings bare, `null` empty, arrays and objects as compact JSON.
pub fn csv_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// An optional value as a CSV field: empty for `None`.
pub fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// times

/// RFC 3339 UTC with whole seconds (`2026-11-25T22:10:03Z`); `None` for 0 (never) or an
/// unrepresentable time.
pub fn rfc3339(ms: i64) -> Option<String> {
    if ms == 0 {
        return None;
    }
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// RFC 3339 UTC with milliseconds (`2026-11-25T22:10:03.250Z`), for sample times: samples are
/// stamped to the millisecond and two of them may fall in the same second.
pub fn rfc3339_ms(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// [`rfc3339_ms`], with `None` for 0 (no such time).
pub fn nonzero_rfc3339_ms(ms: i64) -> Option<String> {
    (ms != 0).then(|| rfc3339_ms(ms)).flatten()
}

/// A time cell: [`rfc3339`], or `-` for never.
pub fn time_cell(ms: i64) -> String {
    rfc3339(ms).unwrap_or_else(|| "-".into())
}

/// `t` in messages: RFC 3339 UTC with whole seconds.
pub fn show_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The end of a time range in messages: [`show_time`], or `now` for none.
pub fn show_until(until: Option<DateTime<Utc>>) -> String {
    until.map_or_else(|| "now".to_owned(), show_time)
}

/// The time of day, `22:10:03` (sar's time column).
pub fn hms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || "??:??:??".to_owned(),
        |t| t.format("%H:%M:%S").to_string(),
    )
}

/// The day, `2026-11-25` (sar's header line).
pub fn day(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| "?".to_owned(), |t| t.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::T0;

    #[test]
    fn t0_is_what_the_tests_say() {
        assert_eq!(rfc3339(T0).as_deref(), Some("2026-11-25T22:10:03Z"));
        assert_eq!(rfc3339(T0 + 999).as_deref(), Some("2026-11-25T22:10:03Z"));
        assert_eq!(rfc3339(0), None);
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_line(["a", "b,c", "d\"e", "f\ng", ""]),
            "a,\"b,c\",\"d\"\"e\",\"f\ng\",\n"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_kb(0), "0K");
        assert_eq!(human_kb(1023), "1023K");
        assert_eq!(human_kb(1024), "1.0M");
        assert_eq!(human_kb(15_596), "15.2M");
        assert_eq!(human_kb(1_048_575), "1.0G");
        assert_eq!(human_kb(7_980_628), "7.6G");
        assert_eq!(human_kb(3 * 1024 * 1024 * 1024), "3.0T");
        assert_eq!(human_kb(u64::MAX), "16777216.0P");
    }

    #[test]
    fn printable_cells() {
        assert_eq!(printable("a\tb\nc", 10), "a b c");
        assert_eq!(printable("abcdef", 4), "abc…");
        assert_eq!(printable("abcd", 4), "abcd");
        assert_eq!(printable("ééééé", 3), "éé…");
        assert_eq!(printable("", 3), "");
    }
}
