//! The text a scraper reads: metric families in, the Prometheus text exposition format 0.0.4 or
//! OpenMetrics 1.0 text out ([`render`]). Pure: values in, text out.
//!
//! ```text
//! # HELP fleet_collector_batches_ingested_total Agent batches stored for the first time.
//! # TYPE fleet_collector_batches_ingested_total counter
//! fleet_collector_batches_ingested_total 42
//! # HELP fleet_host_up Whether the host's agent is connected (1) or known but not (0).
//! # TYPE fleet_host_up gauge
//! fleet_host_up{host_id="web1",hostname="web1",cluster="prod"} 1
//! # HELP fleet_collector_write_duration_seconds How long the writer's group commits took.
//! # TYPE fleet_collector_write_duration_seconds histogram
//! fleet_collector_write_duration_seconds_bucket{le="0.001"} 3
//! fleet_collector_write_duration_seconds_bucket{le="+Inf"} 4
//! fleet_collector_write_duration_seconds_sum 0.0042
//! fleet_collector_write_duration_seconds_count 4
//! ```
//!
//! The two formats differ where OpenMetrics is stricter: a counter family is named without
//! `_total` in its HELP and TYPE lines (its sample still ends in `_total`), HELP text escapes
//! `"` as well as `\` and line feeds, and the text ends with `# EOF`. Label values escape `\`,
//! `"` and line feeds in both. Bucket bounds are written with a decimal point (`1.0`, not `1`),
//! which both accept and OpenMetrics asks for; `+Inf` is the last bucket.

use std::fmt::Write;

/// Which text the scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4`).
    Prometheus,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the HTTP Accept header names it (Prometheus asks for it first, with
    /// the 0.0.4 text as a fallback); the 0.0.4 text otherwise.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a)
                if a.to_ascii_lowercase()
                    .contains("application/openmetrics-text") =>
            {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    /// The Content-Type of the answer.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A histogram at one moment: cumulative counts per upper bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Upper bounds, ascending, without `+Inf`.
    pub bounds: Vec<f64>,
    /// Observations at or below each bound, then all of them (the `+Inf` bucket and the count):
    /// one more than `bounds`, never decreasing.
    pub cumulative: Vec<u64>,
    /// The sum of the observations.
    pub sum: f64,
}

/// One sample's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Histogram(Buckets),
}

/// One labelled sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// A metric family: its name (a counter's without `_total`), help, type and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family of `kind`.
    pub fn new(kind: Kind, name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample with `labels` and a number.
    pub fn with(mut self, labels: Vec<(&'static str, String)>, value: f64) -> Family {
        self.push(labels, value);
        self
    }

    /// Adds a sample with `labels` and a number.
    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample {
            labels,
            value: Value::Number(value),
        });
    }

    /// Adds a histogram sample with `labels`.
    pub fn with_histogram(mut self, labels: Vec<(&'static str, String)>, b: Buckets) -> Family {
        self.samples.push(Sample {
            labels,
            value: Value::Histogram(b),
        });
        self
    }
}

/// Escapes a label value: `\`, `"` and line feed.
fn label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes HELP text: `\` and line feed, and in OpenMetrics `"` too.
fn help_text(out: &mut String, v: &str, format: Format) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A sample value: Rust's shortest round-trip decimal, `NaN`, `+Inf`, `-Inf`.
fn number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A bucket bound with a decimal point (`1.0`, `0.005`).
fn bound(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// One sample line: `name{labels} value`.
fn line(out: &mut String, name: &str, suffix: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    number(out, value);
    out.push('\n');
}

/// The families as text in `format`. Families without samples are written with their HELP and
/// TYPE lines only.
pub fn render(families: &[Family], format: Format) -> String {
    let mut out = String::new();
    for f in families {
        let (family_name, type_word) = match (f.kind, format) {
            (Kind::Counter, Format::Prometheus) => (format!("{}_total", f.name), "counter"),
            (Kind::Counter, Format::OpenMetrics) => (f.name.to_string(), "counter"),
            (Kind::Gauge, _) => (f.name.to_string(), "gauge"),
            (Kind::Histogram, _) => (f.name.to_string(), "histogram"),
        };
        out.push_str("# HELP ");
        out.push_str(&family_name);
        out.push(' ');
        help_text(&mut out, f.help, format);
        out.push('\n');
        let _ = writeln!(out, "# TYPE {family_name} {type_word}");
        for s in &f.samples {
            let labels: Vec<(&str, &str)> =
                s.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match (&s.value, f.kind) {
                (Value::Number(v), Kind::Counter) => line(&mut out, f.name, "_total", &labels, *v),
                (Value::Number(v), _) => line(&mut out, f.name, "", &labels, *v),
                (Value::Histogram(b), _) => {
                    let inf = f64::INFINITY;
                    for (le, n) in b.bounds.iter().chain([&inf]).zip(&b.cumulative) {
                        let le = bound(*le);
                        let mut with_le = labels.clone();
                        with_le.push(("le", &le));
                        line(&mut out, f.name, "_bucket", &with_le, *n as f64);
                    }
                    let count = b.cumulative.last().copied().unwrap_or(0);
                    line(&mut out, f.name, "_sum", &labels, b.sum);
                    line(&mut out, f.name, "_count", &labels, count as f64);
                }
            }
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families() -> Vec<Family> {
        vec![
            Family::new(
                Kind::Counter,
                "x_batches",
                "Batches \"stored\".\nFirst time.",
            )
            .with(vec![], 42.0),
            Family::new(Kind::Gauge, "x_up", "Up or not \\ down.").with(
                vec![
                    ("host_id", "a\\b".into()),
                    ("hostname", "say \"hi\"\nthere".into()),
                ],
                1.0,
            ),
            Family::new(Kind::Histogram, "x_seconds", "Durations.").with_histogram(
                vec![("op", "w".into())],
                Buckets {
                    bounds: vec![0.005, 1.0, 2.5],
                    cumulative: vec![1, 3, 3, 4],
                    sum: 4.25,
                },
            ),
            Family::new(Kind::Gauge, "x_empty", "Nothing yet."),
        ]
    }

    /// What both formats write alike: every family after the counter.
    const COMMON: &str = "# HELP x_up Up or not \\\\ down.\n\
             # TYPE x_up gauge\n\
             x_up{host_id=\"a\\\\b\",hostname=\"say \\\"hi\\\"\\nthere\"} 1\n\
             # HELP x_seconds Durations.\n\
             # TYPE x_seconds histogram\n\
             x_seconds_bucket{op=\"w\",le=\"0.005\"} 1\n\
             x_seconds_bucket{op=\"w\",le=\"1.0\"} 3\n\
             x_seconds_bucket{op=\"w\",le=\"2.5\"} 3\n\
             x_seconds_bucket{op=\"w\",le=\"+Inf\"} 4\n\
             x_seconds_sum{op=\"w\"} 4.25\n\
             x_seconds_count{op=\"w\"} 4\n\
             # HELP x_empty Nothing yet.\n\
             # TYPE x_empty gauge\n";

    #[test]
    fn prometheus_text() {
        let text = render(&families(), Format::Prometheus);
        let counter = "# HELP x_batches_total Batches \"stored\".\\nFirst time.\n\
                       # TYPE x_batches_total counter\n\
                       x_batches_total 42\n";
        assert_eq!(text, format!("{counter}{COMMON}"));
    }

    #[test]
    fn openmetrics_text() {
        let text = render(&families(), Format::OpenMetrics);
        // The family without `_total`, its sample with; `"` escaped in HELP; `# EOF` last.
        let counter = "# HELP x_batches Batches \\\"stored\\\".\\nFirst time.\n\
                       # TYPE x_batches counter\n\
                       x_batches_total 42\n";
        assert_eq!(text, format!("{counter}{COMMON}# EOF\n"));
    }

    #[test]
    fn special_numbers_and_negotiation() {
        let mut s = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.1, 1e21, -3.0] {
            number(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "NaN +Inf -Inf 0.1 1000000000000000000000 -3 ");
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                    version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert!(Format::OpenMetrics
            .content_type()
            .starts_with("application/openmetrics-text; version=1.0.0"));
    }
}
