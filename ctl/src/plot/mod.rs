//! sar rows drawn as SVG, as pure functions (rows in, string out): `fleetctl sar --plot` writes
//! them as one standalone file, and `fleetctl ui` puts them inline in its pages.
//!
//! Each activity becomes one panel per column group, grouped as sysstat's `sadf -g` groups them
//! ([`groups`]: `kbmemfree kbavail kbmemused` together, `%memused` alone, ...). In a panel, each
//! column of each host and instance is one line, named in the legend and in its `<title>`
//! tooltip by its sysstat column name (`%user web-1 all`). The time axis is UTC; a line breaks
//! where samples are missing (a gap of more than twice the interval). Rows that carry an
//! [`Envelope`] (a downsampled bucket's min and max) get a shaded min–max band behind their
//! mean, so a spike is not averaged away. [`Marker`]s (OOM kills) are vertical lines with their
//! label as tooltip, linked when they have a link.
//!
//! A panel is a complete `<svg class="panel">` element whose attributes let a page's script map
//! a pixel back to a time (`data-since-ms`, `data-until-ms`, and the plot area's `data-x0`,
//! `data-x1` in viewBox units); each line is a `<path class="series" data-points="N" data-mean="M" data-label="L">` (M: the
//! mean of its drawn values). Every
//! text that came from an agent goes through [`escape`].
//!
//! [`source`] is the one impure part: it fetches the rows and OOM kills to draw.

mod axis;
mod bucket;
mod draw;
mod groups;
pub mod source;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use fleet_proto::schema::ActivitySchema;
use fleet_proto::v1::SarRow;

pub use axis::{utc, value_label};
pub use bucket::{downsample, from_buckets, step_ms};
pub use draw::sparkline;
pub use groups::{groups, Group};

use crate::output::host_name;

/// The width of a panel, in SVG user units (pixels when shown at scale).
pub const PANEL_WIDTH: u32 = 960;

/// One row to draw: a sar row, or one bucket of a downsampled query.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotRow {
    /// The host's id: one series per host id and instance.
    pub host_id: String,
    /// The host's name as shown (hostname, or host id without one).
    pub host: String,
    /// `all`, a CPU, a device, an interface; `-` or empty for none.
    pub instance: String,
    pub time_ms: i64,
    /// The sampling interval, to tell a gap from the next sample.
    pub interval_ms: u32,
    /// In the activity's schema order (the mean, for a bucket).
    pub values: Vec<f64>,
    /// A bucket's min and max per column, when downsampled.
    pub envelope: Option<Envelope>,
}

/// A bucket's extremes, per column in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

impl PlotRow {
    /// A raw sar row, without envelope.
    pub fn from_sar(row: &SarRow) -> PlotRow {
        PlotRow {
            host_id: row.host_id.clone(),
            host: host_name(&row.hostname, &row.host_id).to_owned(),
            instance: row.instance.clone(),
            time_ms: row.time_ms,
            interval_ms: row.interval_ms,
            values: row.values.clone(),
            envelope: None,
        }
    }
}

/// A moment marked on every panel (an OOM kill).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub time_ms: i64,
    /// The tooltip.
    pub label: String,
    /// Where a click leads (`/oom/ID`), if anywhere.
    pub link: Option<String>,
}

/// The time range drawn, Unix milliseconds; `since_ms < until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub since_ms: i64,
    pub until_ms: i64,
}

/// One drawn panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// A complete `<svg class="panel">` element.
    pub svg: String,
    /// Its height in user units.
    pub height: u32,
    /// How many points its lines hold, all together.
    pub points: usize,
}

/// A point of a line: time, value, and a bucket's (min, max) if any.
type Point = (i64, f64, Option<(f64, f64)>);

/// One line of a panel, before drawing.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    /// The legend's and the tooltip's text: `column host [instance]`.
    label: String,
    /// By time.
    points: Vec<Point>,
    /// The longest step that is not a gap.
    gap_ms: i64,
}

/// The panels of one activity: one per column group of [`groups`], each with a line per column,
/// host and instance in `rows` (any order), `markers` on each.
pub fn activity_panels(
    schema: &ActivitySchema,
    rows: &[PlotRow],
    range: Range,
    markers: &[Marker],
) -> Vec<Panel> {
    let series = series(rows);
    let has_instances = schema.instance_column.is_some();
    groups(schema.activity)
        .iter()
        .map(|group| {
            let mut lines = Vec::new();
            for column in group.columns {
                let Some(index) = schema.columns.iter().position(|c| c == column) else {
                    continue;
                };
                for ((host, _, instance), rows) in &series {
                    let mut label = format!("{column} {host}");
                    if has_instances && !instance.is_empty() && *instance != "-" {
                        let _ = write!(label, " {instance}");
                    }
                    lines.push(line(label, rows, index));
                }
            }
            let title = format!("{} (sar {})", group.title, schema.sar_flag);
            draw::panel(&title, schema.name, &lines, range, markers)
        })
        .collect()
}

/// One panel of the first value of `rows`: a line per host and instance (labelled `host
/// [instance]`), for a measure that is not a sar activity (a clock offset, a spread). `kind` goes
/// into the panel's `data-activity`.
pub fn value_panel(
    title: &str,
    kind: &str,
    rows: &[PlotRow],
    range: Range,
    markers: &[Marker],
) -> Panel {
    let lines: Vec<Line> = series(rows)
        .into_iter()
        .map(|((host, _, instance), rows)| {
            let label = if instance.is_empty() || instance == "-" {
                host.to_owned()
            } else {
                format!("{host} {instance}")
            };
            line(label, &rows, 0)
        })
        .collect();
    draw::panel(title, kind, &lines, range, markers)
}

/// `rows` as series, one per (host, host id, instance), each by time.
fn series(rows: &[PlotRow]) -> BTreeMap<(&str, &str, &str), Vec<&PlotRow>> {
    let mut series: BTreeMap<(&str, &str, &str), Vec<&PlotRow>> = BTreeMap::new();
    for row in rows {
        series
            .entry((
                row.host.as_str(),
                row.host_id.as_str(),
                row.instance.as_str(),
            ))
            .or_default()
            .push(row);
    }
    for rows in series.values_mut() {
        rows.sort_by_key(|r| r.time_ms);
    }
    series
}

/// The line of column `index` through `rows` (sorted by time).
fn line(label: String, rows: &[&PlotRow], index: usize) -> Line {
    let points = rows
        .iter()
        .filter_map(|r| {
            let v = *r.values.get(index)?;
            let band = r.envelope.as_ref().and_then(|e| {
                let (lo, hi) = (*e.min.get(index)?, *e.max.get(index)?);
                (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
            });
            v.is_finite().then_some((r.time_ms, v, band))
        })
        .collect();
    let interval = rows.iter().map(|r| r.interval_ms).max().unwrap_or(0);
    Line {
        label,
        points,
        gap_ms: 2 * i64::from(interval.max(1000)),
    }
}

/// A standalone SVG document: `heading` on top, then `panels` one under the other.
pub fn document(heading: &str, panels: &[Panel]) -> String {
    const HEADING: u32 = 34;
    let height = HEADING + panels.iter().map(|p| p.height).sum::<u32>();
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{PANEL_WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {PANEL_WIDTH} {height}\" font-family=\"sans-serif\">\n\
         <title>{title}</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n\
         <text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{title}</text>\n",
        title = escape(heading)
    );
    let mut y = HEADING;
    for panel in panels {
        let _ = writeln!(out, "<g transform=\"translate(0,{y})\">{}</g>", panel.svg);
        y += panel.height;
    }
    out.push_str("</svg>\n");
    out
}

/// `s` safe as XML or HTML text and attribute value: `& < > " '` as entities, and the characters
/// XML 1.0 forbids (C0 controls other than tab and line breaks) as U+FFFD, so a hostile hostname
/// can neither add markup nor make the document unparsable.
pub fn escape(s: &str) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(c, '&' | '<' | '>' | '"' | '\'')
            || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    };
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if needs(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
