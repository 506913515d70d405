//! The `sar` kind's condition: `column`, `op`, `value` and the optional `activity`, checked
//! against the sysstat schema (an unknown or misspelt column is named, with the nearest one).

use fleet_proto::schema::{schema_by_name, ACTIVITIES};
use toml::Value;

use super::fields::{describe, number, Ctx};
use super::{CmpOp, SarCondition};

pub(super) fn condition(t: &toml::Table, ctx: &mut Ctx) -> Option<SarCondition> {
    let op = match t.get("op") {
        None => {
            ctx.err("op", format!("missing; one of: {}", ops_list()));
            None
        }
        Some(Value::String(s)) => match CmpOp::from_name(s.trim()) {
            Some(op) => Some(op),
            None => {
                ctx.err(
                    "op",
                    format!("unknown operator {s:?}; one of: {}", ops_list()),
                );
                None
            }
        },
        Some(v) => {
            ctx.err(
                "op",
                format!(
                    "must be a string, one of: {}; not {}",
                    ops_list(),
                    describe(v)
                ),
            );
            None
        }
    };
    let value = number(t, "value", "a number", ctx);

    let activity = match t.get("activity") {
        None => None,
        Some(Value::String(s)) => match schema_by_name(s) {
            Some(schema) => Some(schema),
            None => {
                let names: Vec<&str> = ACTIVITIES.iter().map(|a| a.name).collect();
                ctx.err(
                    "activity",
                    format!("unknown activity {s:?}; one of: {}", names.join(", ")),
                );
                return None;
            }
        },
        Some(v) => {
            ctx.err("activity", format!("must be a string, not {}", describe(v)));
            return None;
        }
    };
    let column = match t.get("column") {
        None => {
            ctx.err(
                "column",
                "missing; a sysstat column name such as \"%memused\" or \"pswpout/s\"",
            );
            return None;
        }
        Some(Value::String(s)) => s.as_str(),
        Some(v) => {
            ctx.err("column", format!("must be a string, not {}", describe(v)));
            return None;
        }
    };
    let schema = match activity {
        Some(schema) => {
            if !schema.columns.contains(&column) {
                ctx.err(
                    "column",
                    format!(
                        "{column:?} is not a column of activity {} (its columns: {})",
                        schema.name,
                        schema.columns.join(", ")
                    ),
                );
                return None;
            }
            schema
        }
        None => {
            let owners: Vec<_> = ACTIVITIES
                .iter()
                .filter(|a| a.columns.contains(&column))
                .collect();
            match owners.as_slice() {
                [one] => *one,
                [] => {
                    let hint = nearest_column(column)
                        .map(|c| format!(" (did you mean {c:?}?)"))
                        .unwrap_or_default();
                    ctx.err("column", format!("unknown sar column {column:?}{hint}"));
                    return None;
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|a| a.name).collect();
                    let choices: Vec<String> =
                        names.iter().map(|n| format!("activity = {n:?}")).collect();
                    ctx.err(
                        "column",
                        format!(
                            "{column:?} is a column of several activities ({}); add {}",
                            names.join(" and "),
                            choices.join(" or ")
                        ),
                    );
                    return None;
                }
            }
        }
    };
    let column_index = schema.columns.iter().position(|c| *c == column)?;
    Some(SarCondition {
        activity: schema.activity,
        column: column.to_owned(),
        column_index,
        op: op?,
        value: value?,
    })
}

fn ops_list() -> String {
    CmpOp::ALL
        .iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The known column closest to a misspelt one (edit distance at most 2, or the same letters in
/// another case).
fn nearest_column(column: &str) -> Option<&'static str> {
    ACTIVITIES
        .iter()
        .flat_map(|a| a.columns.iter().copied())
        .map(|c| (edit_distance(&c.to_lowercase(), &column.to_lowercase()), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
