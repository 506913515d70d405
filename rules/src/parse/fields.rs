//! Readers of the fields every rule kind shares, each reporting its problem into the rule's
//! [`Ctx`] (so that every problem of a file is reported at once) and returning `None` on error.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Value;

use super::{Problem, RuleRef, MAX_NAME_BYTES, RESERVED_LABELS};

/// The problems of one rule, and how to name it.
pub(super) struct Ctx {
    pub(super) who: RuleRef,
    pub(super) problems: Vec<Problem>,
}

impl Ctx {
    pub(super) fn err(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            rule: Some(self.who.clone()),
            field: Some(field.to_owned()),
            message: message.into(),
        });
    }
}

pub(super) fn check_name(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(format!("{} bytes long; at most {MAX_NAME_BYTES}", s.len()));
    }
    if s.trim() != s {
        return Err(format!("{s:?} starts or ends with white space"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{s:?} holds a control character"));
    }
    Ok(())
}

/// `field`, a duration like `"30s"`, `"5m"`, `"1h 30m"`; `default` when absent (`None`: required).
pub(super) fn duration(
    t: &toml::Table,
    field: &str,
    ctx: &mut Ctx,
    default: Option<Duration>,
) -> Option<Duration> {
    match t.get(field) {
        None => {
            if default.is_none() {
                ctx.err(field, "missing; a duration like \"30s\", \"5m\" or \"1h\"");
            }
            default
        }
        Some(Value::String(s)) => match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.err(
                    field,
                    format!("{s:?} is not a duration like \"30s\", \"5m\" or \"1h\" ({e})"),
                );
                None
            }
        },
        Some(v) => {
            ctx.err(
                field,
                format!(
                    "must be a duration string like \"30s\", \"5m\" or \"1h\", not {}",
                    describe(v)
                ),
            );
            None
        }
    }
}

/// A required number (integer or float).
pub(super) fn number(t: &toml::Table, field: &str, what: &str, ctx: &mut Ctx) -> Option<f64> {
    match t.get(field) {
        None => {
            ctx.err(field, format!("missing; must be {what}"));
            None
        }
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Float(f)) if f.is_finite() => Some(*f),
        Some(v) => {
            ctx.err(field, format!("must be {what}, not {}", describe(v)));
            None
        }
    }
}

pub(super) fn positive(t: &toml::Table, field: &str, ctx: &mut Ctx) -> Option<f64> {
    const WHAT: &str = "a positive number";
    let v = number(t, field, WHAT, ctx)?;
    if v > 0.0 {
        Some(v)
    } else {
        ctx.err(field, format!("must be {WHAT}, not {v}"));
        None
    }
}

pub(super) fn integer(
    t: &toml::Table,
    field: &str,
    min: u32,
    max: u32,
    ctx: &mut Ctx,
) -> Option<u32> {
    let what = if max == u32::MAX {
        format!("an integer of at least {min}")
    } else {
        format!("an integer from {min} to {max}")
    };
    match t.get(field) {
        None => {
            ctx.err(field, format!("missing; must be {what}"));
            None
        }
        Some(Value::Integer(i)) => match u32::try_from(*i) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                ctx.err(field, format!("must be {what}, not {i}"));
                None
            }
        },
        Some(v) => {
            ctx.err(field, format!("must be {what}, not {}", describe(v)));
            None
        }
    }
}

pub(super) fn labels(t: &toml::Table, ctx: &mut Ctx) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let table = match t.get("labels") {
        None => return Some(out),
        Some(Value::Table(table)) => table,
        Some(v) => {
            ctx.err(
                "labels",
                format!(
                    "must be a table of strings ([rule.labels]), not {}",
                    describe(v)
                ),
            );
            return None;
        }
    };
    let mut ok = true;
    for (k, v) in table {
        let field = format!("labels.{k}");
        if !is_label_name(k) {
            ctx.err(
                &field,
                "a label name is a letter or '_' followed by letters, digits and '_', and does not start with \"__\"",
            );
            ok = false;
        } else if RESERVED_LABELS.contains(&k.as_str()) {
            ctx.err(
                &field,
                format!(
                    "reserved: every alert sets {} itself",
                    RESERVED_LABELS.join(", ")
                ),
            );
            ok = false;
        }
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            other => {
                ctx.err(&field, format!("must be a string, not {}", describe(other)));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`, with `__` reserved for internal use.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

pub(super) fn summary(t: &toml::Table, ctx: &mut Ctx) -> Option<String> {
    match t.get("summary") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => {
            ctx.err(
                "summary",
                "must not be empty; leave it out for the built-in summary",
            );
            None
        }
        Some(Value::String(s)) => match crate::eval::check_template(s) {
            Ok(()) => Some(s.clone()),
            Err(m) => {
                ctx.err("summary", m);
                None
            }
        },
        Some(v) => {
            ctx.err("summary", format!("must be a string, not {}", describe(v)));
            None
        }
    }
}

/// How a TOML value reads in a message: `the string "100"`, `an integer (5)`, `a table`.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}
