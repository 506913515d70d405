//! The rules file: its format, parsing and validation. Pure: the text comes in, a [`RuleSet`] or
//! a [`RulesError`] naming every problem comes out.
//!
//! ```toml
//! [[rule]]
//! name = "prod-clock-skew"
//! kind = "clock_skew"
//! cluster = "prod"          # optional; every cluster when absent
//! threshold_ms = 100
//! for = "5s"
//! ```
//!
//! The file is parsed as a TOML table first and each `[[rule]]` is then read field by field (not
//! through serde's derive), so every message can name the rule and the field, and every problem
//! of the file is reported at once:
//!
//! ```text
//! rules.toml: rule "prod-clock-skew": threshold_ms: must be a positive number, not the string "100"
//! rules.toml: rule #3: name: missing; every rule needs a unique name
//! ```
//!
//! A rule is named by its `name` when it has a valid one, else by its position (`#1` is the
//! first `[[rule]]` of the file).
//!
//! Here: the rule types and [`parse_rules`], which reads each kind's fields; `parse/fields.rs`
//! reads the fields every kind shares (durations, numbers, labels, summary), `parse/sar.rs` the
//! `sar` kind's condition. A new rule kind is a [`RuleKind`] variant and its fields here, and its
//! evaluation in `eval.rs`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use fleet_proto::v1::Activity;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use toml::Value;

mod fields;
mod sar;

use fields::{check_name, describe, duration, integer, labels, positive, summary, Ctx};

/// Longest rule name accepted.
pub const MAX_NAME_BYTES: usize = 128;

/// Labels every alert carries; a rule's `[rule.labels]` may not redefine them.
pub const RESERVED_LABELS: [&str; 5] = ["alertname", "rule", "kind", "cluster", "hosts"];

/// Placeholders a `summary` template may use.
pub const SUMMARY_PLACEHOLDERS: [&str; 5] = ["rule", "cluster", "hosts", "value", "summary"];

/// Fields every kind accepts.
const COMMON_FIELDS: [&str; 7] = [
    "name",
    "kind",
    "cluster",
    "for",
    "keep_firing_for",
    "labels",
    "summary",
];

/// The built-in kinds of rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Spread (max − min) of the NTP offsets of a cluster's hosts beyond `threshold_ms`.
    ClockSkew,
    /// One host's NTP offset beyond ± `threshold_ms`.
    NtpOffset,
    /// A host without a synchronised NTP source.
    NtpUnsynced,
    /// A host whose best NTP source is above `max_stratum`.
    NtpStratum,
    /// A host that sent nothing for `for`.
    HostSilent,
    /// At least `count` OOM kills within `window` in a cluster.
    OomKillBurst,
    /// A threshold on a sar column of one host.
    Sar,
}

impl RuleKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [RuleKind; 7] = [
        RuleKind::ClockSkew,
        RuleKind::NtpOffset,
        RuleKind::NtpUnsynced,
        RuleKind::NtpStratum,
        RuleKind::HostSilent,
        RuleKind::OomKillBurst,
        RuleKind::Sar,
    ];

    /// The name used in the rules file and in alert labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::ClockSkew => "clock_skew",
            RuleKind::NtpOffset => "ntp_offset",
            RuleKind::NtpUnsynced => "ntp_unsynced",
            RuleKind::NtpStratum => "ntp_stratum",
            RuleKind::HostSilent => "host_silent",
            RuleKind::OomKillBurst => "oom_kill_burst",
            RuleKind::Sar => "sar",
        }
    }

    /// The kind named `name` in a rules file.
    pub fn from_name(name: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether one alert of this kind covers a whole cluster (`clock_skew`, `oom_kill_burst`)
    /// rather than one host.
    pub fn is_cluster_scoped(self) -> bool {
        matches!(self, RuleKind::ClockSkew | RuleKind::OomKillBurst)
    }

    /// The fields this kind accepts besides the common ones (`name`, `kind`, `cluster`, `for`,
    /// `keep_firing_for`, `labels`, `summary`).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            RuleKind::ClockSkew | RuleKind::NtpOffset => &["threshold_ms"],
            RuleKind::NtpUnsynced | RuleKind::HostSilent => &[],
            RuleKind::NtpStratum => &["max_stratum"],
            RuleKind::OomKillBurst => &["count", "window"],
            RuleKind::Sar => &["column", "op", "value", "activity"],
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison of a `sar` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    /// Every operator, as written in a rules file.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Eq,
        CmpOp::Ne,
    ];

    /// The operator as written in a rules file (`>`, `>=`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// The operator written `s`.
    pub fn from_name(s: &str) -> Option<CmpOp> {
        CmpOp::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether `left op right` holds. Always false when either side is NaN.
    pub fn holds(self, left: f64, right: f64) -> bool {
        if left.is_nan() || right.is_nan() {
            return false;
        }
        match self {
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threshold on one sar column.
#[derive(Clone, Debug, PartialEq)]
pub struct SarCondition {
    pub activity: Activity,
    /// The column name as sysstat prints it (`%memused`).
    pub column: String,
    /// Its position in the activity's schema (`Record::values[column_index]`).
    pub column_index: usize,
    pub op: CmpOp,
    pub value: f64,
}

/// What a rule tests, with its kind's parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    ClockSkew {
        threshold_ms: f64,
    },
    NtpOffset {
        threshold_ms: f64,
    },
    NtpUnsynced,
    NtpStratum {
        max_stratum: u32,
    },
    /// Silence for the rule's `hold_for` (its `for`).
    HostSilent,
    OomKillBurst {
        count: u32,
        window: Duration,
    },
    Sar(SarCondition),
}

impl Condition {
    pub fn kind(&self) -> RuleKind {
        match self {
            Condition::ClockSkew { .. } => RuleKind::ClockSkew,
            Condition::NtpOffset { .. } => RuleKind::NtpOffset,
            Condition::NtpUnsynced => RuleKind::NtpUnsynced,
            Condition::NtpStratum { .. } => RuleKind::NtpStratum,
            Condition::HostSilent => RuleKind::HostSilent,
            Condition::OomKillBurst { .. } => RuleKind::OomKillBurst,
            Condition::Sar(_) => RuleKind::Sar,
        }
    }
}

/// One validated `[[rule]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Unique in its file; identifies the rule's alerts (and survives reloads).
    pub name: String,
    /// Only hosts of this cluster; every cluster when `None`.
    pub cluster: Option<String>,
    /// `for`: how long the condition must hold before the alert fires (0: at once). For
    /// `host_silent` it is the silence itself (see [`Rule::pending_for`]).
    pub hold_for: Duration,
    /// `keep_firing_for`: how long a firing alert stays firing after its condition stopped
    /// holding (as in Prometheus; damps flapping). Default 0.
    pub keep_firing_for: Duration,
    /// `[rule.labels]`: extra labels of the rule's alerts (`severity = "page"`).
    pub labels: BTreeMap<String, String>,
    /// `summary`: a template replacing the built-in summary (see [`SUMMARY_PLACEHOLDERS`]).
    pub summary: Option<String>,
    pub condition: Condition,
}

impl Rule {
    pub fn kind(&self) -> RuleKind {
        self.condition.kind()
    }

    /// Whether the rule looks at hosts of `cluster`.
    pub fn applies_to(&self, cluster: &str) -> bool {
        self.cluster.as_deref().is_none_or(|c| c == cluster)
    }

    /// How long an alert stays pending before it fires: `for`, except for `host_silent`, whose
    /// condition (`now − last_seen ≥ for`) already contains the wait, so it fires as soon as the
    /// condition holds.
    pub fn pending_for(&self) -> Duration {
        match self.condition {
            Condition::HostSilent => Duration::ZERO,
            _ => self.hold_for,
        }
    }
}

/// The rules of one file, in file order, with unique names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSet {
    origin: String,
    rules: Vec<Rule>,
    by_name: HashMap<String, usize>,
}

impl RuleSet {
    /// A set without rules (a collector started without `--rules`).
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// Builds a set from rules that are already valid (tests, benchmarks).
    ///
    /// # Panics
    /// If two rules share a name.
    pub fn from_rules(origin: &str, rules: Vec<Rule>) -> RuleSet {
        let mut by_name = HashMap::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            assert!(
                by_name.insert(r.name.clone(), i).is_none(),
                "duplicate rule name {:?}",
                r.name
            );
        }
        RuleSet {
            origin: origin.to_owned(),
            rules,
            by_name,
        }
    }

    /// Where the rules came from (the file name given to [`parse_rules`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The activities the `sar` rules look at, each once: a view of the fleet for these rules
    /// needs no other sar values.
    pub fn sar_activities(&self) -> Vec<Activity> {
        let mut activities: Vec<Activity> = Vec::new();
        for r in &self.rules {
            if let Condition::Sar(c) = &r.condition {
                if !activities.contains(&c.activity) {
                    activities.push(c.activity);
                }
            }
        }
        activities
    }

    /// The rule named `name`.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.by_name.get(name).map(|&i| &self.rules[i])
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Which rule a problem is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleRef {
    /// By its name.
    Named(String),
    /// By its position in the file, from 1, when it has no valid name.
    Index(usize),
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleRef::Named(n) => write!(f, "rule {n:?}"),
            RuleRef::Index(i) => write!(f, "rule #{i}"),
        }
    }
}

/// One thing wrong with a rules file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The rule, unless the problem is with the file as a whole.
    pub rule: Option<RuleRef>,
    /// The field (`threshold_ms`, `labels.severity`), when one is to blame.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.rule {
            write!(f, "{r}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A rules file that does not validate: every problem found, in file order.
///
/// Displayed as one line per problem, each prefixed with the file name:
/// `rules.toml: rule "prod-clock-skew": threshold_ms: must be a positive number`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct RulesError {
    /// The file name given to [`parse_rules`].
    pub origin: String,
    /// Never empty.
    pub problems: Vec<Problem>,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {p}", self.origin)?;
        }
        Ok(())
    }
}

/// Parses and validates a rules file. `origin` names it in messages (usually its path).
///
/// An empty file is a valid set without rules.
///
/// # Errors
/// [`RulesError`] listing every problem: TOML syntax (with line and column), keys other than
/// `rule` at the top level, and per rule: a missing, invalid or duplicate `name`; a missing or
/// unknown `kind` (the message lists the valid ones); fields the kind does not have; missing
/// required fields; values of the wrong type or out of range; durations that do not parse;
/// unknown or ambiguous sar columns.
pub fn parse_rules(text: &str, origin: &str) -> Result<RuleSet, RulesError> {
    let fail = |problems| {
        Err(RulesError {
            origin: origin.to_owned(),
            problems,
        })
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return fail(vec![syntax_problem(text, &e)]),
    };
    let mut problems = Vec::new();
    for key in table.keys().filter(|k| *k != "rule") {
        problems.push(Problem {
            rule: None,
            field: Some(key.clone()),
            message: "unknown top-level key; a rules file holds only [[rule]] tables".into(),
        });
    }
    let items: &[Value] = match table.get("rule") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(other) => {
            problems.push(Problem {
                rule: None,
                field: Some("rule".into()),
                message: format!(
                    "must be an array of tables ([[rule]]), not {}",
                    describe(other)
                ),
            });
            &[]
        }
    };

    let mut rules: Vec<Rule> = Vec::with_capacity(items.len());
    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let index = i + 1;
        let Value::Table(t) = item else {
            problems.push(Problem {
                rule: Some(RuleRef::Index(index)),
                field: None,
                message: format!("must be a table ([[rule]]), not {}", describe(item)),
            });
            continue;
        };
        let mut ctx = Ctx {
            who: RuleRef::Index(index),
            problems: Vec::new(),
        };
        let rule = parse_rule(t, &mut ctx);
        if let RuleRef::Named(name) = &ctx.who {
            if let Some(first) = first_index.get(name) {
                ctx.err("name", format!("duplicate name; rule #{first} has it too"));
            } else {
                first_index.insert(name.clone(), index);
            }
        }
        match rule {
            Some(r) if ctx.problems.is_empty() => rules.push(r),
            _ => problems.append(&mut ctx.problems),
        }
    }
    if !problems.is_empty() {
        return fail(problems);
    }
    Ok(RuleSet::from_rules(origin, rules))
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    // toml's messages may span lines ("invalid string\nexpected `\"`, `'`"): one line here.
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let message = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    };
    Problem {
        rule: None,
        field: None,
        message: format!("not valid TOML: {message}"),
    }
}

fn parse_rule(t: &toml::Table, ctx: &mut Ctx) -> Option<Rule> {
    // The name first, so the other messages can use it.
    let name = match t.get("name") {
        None => {
            ctx.err("name", "missing; every rule needs a unique name");
            None
        }
        Some(Value::String(s)) => match check_name(s) {
            Ok(()) => Some(s.clone()),
            Err(m) => {
                ctx.err("name", m);
                None
            }
        },
        Some(v) => {
            ctx.err("name", format!("must be a string, not {}", describe(v)));
            None
        }
    };
    if let Some(n) = &name {
        ctx.who = RuleRef::Named(n.clone());
    }

    let valid_kinds = || {
        RuleKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind = match t.get("kind") {
        None => {
            ctx.err("kind", format!("missing; one of: {}", valid_kinds()));
            None
        }
        Some(Value::String(s)) => match RuleKind::from_name(s) {
            Some(k) => Some(k),
            None => {
                ctx.err(
                    "kind",
                    format!("unknown kind {s:?}; valid kinds: {}", valid_kinds()),
                );
                None
            }
        },
        Some(v) => {
            ctx.err(
                "kind",
                format!(
                    "must be a string, one of: {}; not {}",
                    valid_kinds(),
                    describe(v)
                ),
            );
            None
        }
    };

    // Fields the kind does not have.
    for key in t.keys() {
        if COMMON_FIELDS.contains(&key.as_str()) {
            continue;
        }
        match kind {
            Some(k) if k.fields().contains(&key.as_str()) => {}
            Some(k) => {
                let owners: Vec<&str> = RuleKind::ALL
                    .iter()
                    .filter(|o| o.fields().contains(&key.as_str()))
                    .map(|o| o.as_str())
                    .collect();
                let mine = if k.fields().is_empty() {
                    "none besides the common ones".to_owned()
                } else {
                    k.fields().join(", ")
                };
                if owners.is_empty() {
                    ctx.err(
                        key,
                        format!(
                            "unknown field; kind {k} takes {} and {mine}",
                            COMMON_FIELDS.join(", ")
                        ),
                    );
                } else {
                    ctx.err(
                        key,
                        format!(
                            "not a field of kind {k} (it belongs to {}); kind {k} takes {mine}",
                            owners.join(", ")
                        ),
                    );
                }
            }
            // Unknown kind: only flag what no kind has.
            None => {
                if !RuleKind::ALL
                    .iter()
                    .any(|o| o.fields().contains(&key.as_str()))
                {
                    ctx.err(key, "unknown field");
                }
            }
        }
    }

    let cluster = match t.get("cluster") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            ctx.err(
                "cluster",
                "must not be empty; leave it out to cover every cluster",
            );
            None
        }
        Some(v) => {
            ctx.err("cluster", format!("must be a string, not {}", describe(v)));
            None
        }
    };
    let hold_for = duration(t, "for", ctx, Some(Duration::ZERO));
    let keep_firing_for = duration(t, "keep_firing_for", ctx, Some(Duration::ZERO));
    let labels = labels(t, ctx);
    let summary = summary(t, ctx);

    let condition = match kind? {
        RuleKind::ClockSkew => Condition::ClockSkew {
            threshold_ms: positive(t, "threshold_ms", ctx)?,
        },
        RuleKind::NtpOffset => Condition::NtpOffset {
            threshold_ms: positive(t, "threshold_ms", ctx)?,
        },
        RuleKind::NtpUnsynced => Condition::NtpUnsynced,
        RuleKind::NtpStratum => Condition::NtpStratum {
            max_stratum: integer(t, "max_stratum", 1, 15, ctx)?,
        },
        RuleKind::HostSilent => {
            match t.get("for") {
                None => ctx.err(
                    "for",
                    "missing; host_silent needs how long a host may send nothing, e.g. for = \"2m\"",
                ),
                Some(_) if hold_for == Some(Duration::ZERO) => ctx.err(
                    "for",
                    "must be longer than 0s for host_silent (it is how long a host may send nothing)",
                ),
                Some(_) => {}
            }
            Condition::HostSilent
        }
        RuleKind::OomKillBurst => {
            let count = integer(t, "count", 1, u32::MAX, ctx);
            let window = duration(t, "window", ctx, None);
            if window == Some(Duration::ZERO) {
                ctx.err("window", "must be longer than 0s");
            }
            Condition::OomKillBurst {
                count: count?,
                window: window?,
            }
        }
        RuleKind::Sar => Condition::Sar(sar::condition(t, ctx)?),
    };

    Some(Rule {
        name: name?,
        cluster,
        hold_for: hold_for?,
        keep_firing_for: keep_firing_for?,
        labels: labels?,
        summary,
        condition,
    })
}
