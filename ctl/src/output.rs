//! What every command prints with: the `-o` format, aligned tables, CSV records, JSON, times,
//! the small conventions of a table cell (`-` for nothing, long text cut with `…`, sizes as
//! `1.9M`), and [`escape`], which keeps text from agents from driving the reader's terminal.
//!
//! Text from agents (hostnames, kernels, labels, clusters, process names and command lines,
//! memcg paths, sar instance names, OOM reports) is whatever a host, or someone who took it
//! over, chose to say. Every cell of a [`table`], every [`csv_line`] field and every [`json`]
//! string goes through [`escape`]; a command that prints such text in a line of its own (a
//! header, a notice) calls it too. No control character reaches the terminal raw.
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

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::ser::{Formatter, PrettyFormatter};
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
// text from agents

/// What [`escape`] makes of tabs and line feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaks {
    /// Spaces: the text goes in one table cell, on one line (a command line's tabs and newlines).
    Space,
    /// Kept: a CSV field, which [`csv_line`] quotes, or a message printed line by line. They only
    /// move the cursor on, to the next tab stop or line.
    Keep,
}

/// `s` safe to print on a terminal: tabs and line feeds as `breaks` says, and every other
/// character that a terminal acts on instead of showing written out as an escape: C0 controls
/// (ESC, CR, BEL, backspace...), DEL and C1 controls (CSI is U+009B) as `\x1b`, and the Unicode
/// bidirectional controls, which make text read as something else (a hostname shown backwards),
/// as `\u{202e}`. Everything else, any script included, is kept.
pub fn escape(s: &str, breaks: Breaks) -> Cow<'_, str> {
    let acts = |c: char| match c {
        '\t' | '\n' => breaks == Breaks::Space,
        c => c.is_control() || is_bidi_control(c),
    };
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' | '\n' if breaks == Breaks::Space => out.push(' '),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The Unicode bidirectional formatting characters: marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

// ---------------------------------------------------------------------------------------------
// tables

/// Columns three spaces apart, column `i` right-aligned where `right[i]`, else left-aligned; no
/// trailing blanks. Each cell is [`escape`]d (tabs and line feeds as spaces).
pub fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell, Breaks::Space)).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
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

/// A cell, or a name in a line of text: `s` [`escape`]d (tabs and line feeds as spaces), or `-`
/// when it is empty.
pub fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        escape(s, Breaks::Space).into_owned()
    }
}

/// `s` fit for one table cell: [`escape`]d (a cmdline's newlines and tabs as spaces), cut to
/// `max` characters with `…` marking the cut.
pub fn printable(s: &str, max: usize) -> String {
    let clean = escape(s, Breaks::Space);
    if clean.chars().count() <= max {
        clean.into_owned()
    } else {
        clean
            .chars()
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

/// `value` as pretty JSON, with a final newline. serde_json escapes the C0 controls of strings
/// (`\u001b`); `TerminalSafe` escapes the rest of what [`escape`] does, so the text printed
/// holds no control character while every string still reads back exactly.
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut bytes = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut bytes, TerminalSafe(PrettyFormatter::new()));
    value
        .serialize(&mut serializer)
        .expect("plain data with string keys always serializes");
    let mut text = String::from_utf8(bytes).expect("serde_json writes UTF-8");
    text.push('\n');
    text
}

/// serde_json's pretty printer, except that DEL, the C1 controls and the bidirectional controls
/// in strings are written as `\uXXXX` escapes: the same JSON value, and nothing a terminal acts
/// on.
struct TerminalSafe<'a>(PrettyFormatter<'a>);

impl Formatter for TerminalSafe<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest
            .char_indices()
            .find(|&(_, c)| c.is_control() || is_bidi_control(c))
        {
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    // The layout: PrettyFormatter's.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// One CSV record, RFC 4180 quoting, `\n`-terminated. Each field is [`escape`]d, tabs and line
/// feeds kept (a quoted field may hold them).
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
        let field = escape(field.as_ref(), Breaks::Keep);
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&field);
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
    fn escape_writes_out_what_a_terminal_would_act_on() {
        assert!(matches!(
            escape("web-1 wéb 東京", Breaks::Space),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape("a\u{1b}[2Jb", Breaks::Space), "a\\x1b[2Jb");
        assert_eq!(
            escape("\r\u{7}\u{8}\u{0}\u{7f}", Breaks::Keep),
            "\\x0d\\x07\\x08\\x00\\x7f"
        );
        // C1 controls (U+009B is CSI on terminals that take 8-bit controls).
        assert_eq!(escape("\u{9b}31m\u{85}", Breaks::Space), "\\x9b31m\\x85");
        // Bidirectional overrides and isolates.
        assert_eq!(
            escape("\u{202e}1-bew\u{2066}", Breaks::Space),
            "\\u{202e}1-bew\\u{2066}"
        );
        assert_eq!(escape("a\tb\nc", Breaks::Space), "a b c");
        assert_eq!(escape("a\tb\nc", Breaks::Keep), "a\tb\nc");
    }

    #[test]
    fn tables_csv_and_json_escape_every_field() {
        let rows = vec![header(&["A", "B"]), vec!["x\u{1b}[1m".into(), "y".into()]];
        assert_eq!(
            table(&rows, &[false, false]),
            "A          B\nx\\x1b[1m   y\n"
        );
        assert_eq!(csv_line(["a\u{9b}", "b\nc\r"]), "a\\x9b,\"b\nc\\x0d\"\n");
        let value = serde_json::json!({"k\u{1b}": ["\u{7f}\u{9b}\u{202e}é\"\n"]});
        let text = json(&value);
        assert_eq!(
            text,
            "{\n  \"k\\u001b\": [\n    \"\\u007f\\u009b\\u202eé\\\"\\n\"\n  ]\n}\n"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
        // The layout is serde_json's pretty printer's.
        let plain = serde_json::json!([{"a": 1, "b": [true, null]}, {}, []]);
        assert_eq!(
            json(&plain),
            serde_json::to_string_pretty(&plain).unwrap() + "\n"
        );
    }

    #[test]
    fn printable_cells() {
        assert_eq!(printable("a\tb\nc", 10), "a b c");
        assert_eq!(printable("abcdef", 4), "abc…");
        assert_eq!(printable("abcd", 4), "abcd");
        assert_eq!(printable("ééééé", 3), "éé…");
        assert_eq!(printable("", 3), "");
        assert_eq!(printable("a\u{1b}[31mb", 8), "a\\x1b[3…");
        assert_eq!(dash("a\u{7}"), "a\\x07");
        assert_eq!(dash(""), "-");
    }
}
