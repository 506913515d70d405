//! `fleetctl rules check FILE`: checks a rules file offline, with `fleet-rules`, the parser the
//! collector loads `--rules` with, and lists its rules.
//!
//! ```text
//! rules.toml: 2 rules OK
//!   prod-clock-skew   clock_skew    prod           for 5s
//!   silent            host_silent   all clusters   for 1m 30s
//! ```
//!
//! JSON `{"file", "ok", "rules": [{"name", "kind", "cluster", "for"}]}`, or `{"file", "ok",
//! "error"}` for a file that does not validate; the other formats say the error on stderr. Either
//! way a bad file exits 1 ([`Output::failed`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Context, Run};
use crate::output::{csv_line, json, printable, table, OutputFormat};
use crate::Output;

/// `fleetctl rules`.
#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

/// What follows `fleetctl rules`.
#[derive(Debug, Clone, Subcommand)]
pub enum RulesCommand {
    /// Check a rules file as the collector's `--rules` would load it, and list its rules; exits 1
    /// with the rule and field at fault when it does not validate
    Check(RulesCheckArgs),
}

/// `fleetctl rules check FILE`.
#[derive(Debug, Clone, Args)]
pub struct RulesCheckArgs {
    /// The rules file (TOML, `[[rule]]` tables)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl Run for RulesArgs {
    const OFFLINE: bool = true;

    async fn run(self, ctx: &Context) -> Result<Output> {
        match self.command {
            RulesCommand::Check(check) => Ok(check.check(ctx.format)),
        }
    }
}

impl RulesCheckArgs {
    /// The file's rules, or why it does not validate: on stderr, or with `-o json` as
    /// `{"file", "ok": false, "error"}` on stdout. A file that cannot be read fails the same way.
    fn check(&self, format: OutputFormat) -> Output {
        let file = self.file.display().to_string();
        match (read_rules(&self.file, &file), format) {
            (Ok(rules), format) => Output::print(render_ok(&file, &rules, format)),
            (Err(error), OutputFormat::Json) => {
                Output::print(render_error_json(&file, &error)).failed_if(true)
            }
            (Err(error), OutputFormat::Table | OutputFormat::Csv) => {
                Output::default().with_notice(Some(error)).failed_if(true)
            }
        }
    }
}

/// The rules of the file at `path` (`file` names it in messages), or every problem with it, one
/// per line.
fn read_rules(path: &Path, file: &str) -> Result<Vec<RuleLine>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read rules file {file}: {e}"))?;
    let rules = fleet_rules::parse_rules(&text, file).map_err(|e| e.to_string())?;
    Ok(rules
        .rules()
        .iter()
        .map(|rule| RuleLine {
            name: rule.name.clone(),
            kind: rule.kind().as_str().to_owned(),
            cluster: rule.cluster.clone(),
            for_: rule.hold_for,
        })
        .collect())
}

/// One rule as `rules check` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLine {
    pub name: String,
    pub kind: String,
    /// `None`: the rule applies to every cluster.
    pub cluster: Option<String>,
    /// How long the condition must hold before the alert fires.
    pub for_: std::time::Duration,
}

/// `rules check -o json`, a file that validates. The field order is the key order.
#[derive(Serialize)]
struct RulesOkView<'a> {
    file: &'a str,
    ok: bool,
    rules: Vec<RuleView<'a>>,
}

#[derive(Serialize)]
struct RuleView<'a> {
    name: &'a str,
    kind: &'a str,
    cluster: Option<&'a str>,
    #[serde(rename = "for")]
    for_: String,
}

/// `rules check -o json`, a file that does not.
#[derive(Serialize)]
struct RulesErrorView<'a> {
    file: &'a str,
    ok: bool,
    error: &'a str,
}

/// Renders `fleetctl rules check` of a file that validates: `FILE: N rules OK` and one line per
/// rule (table), `{"file", "ok": true, "rules": [{"name", "kind", "cluster", "for"}]}` (JSON, a
/// `null` cluster for every cluster), or the rules' keys as a CSV header and one line per rule.
pub fn render_ok(file: &str, rules: &[RuleLine], format: OutputFormat) -> String {
    let for_text = |r: &RuleLine| humantime::format_duration(r.for_).to_string();
    match format {
        OutputFormat::Json => json(&RulesOkView {
            file,
            ok: true,
            rules: rules
                .iter()
                .map(|r| RuleView {
                    name: &r.name,
                    kind: &r.kind,
                    cluster: r.cluster.as_deref(),
                    for_: for_text(r),
                })
                .collect(),
        }),
        OutputFormat::Csv => {
            let mut out = csv_line(["name", "kind", "cluster", "for"]);
            for r in rules {
                out.push_str(&csv_line([
                    r.name.as_str(),
                    &r.kind,
                    r.cluster.as_deref().unwrap_or(""),
                    &for_text(r),
                ]));
            }
            out
        }
        OutputFormat::Table => {
            let count = match rules.len() {
                1 => "1 rule".to_owned(),
                n => format!("{n} rules"),
            };
            let mut out = format!("{file}: {count} OK\n");
            let rows: Vec<Vec<String>> = rules
                .iter()
                .map(|r| {
                    vec![
                        format!("  {}", printable(&r.name, usize::MAX)),
                        r.kind.clone(),
                        r.cluster.as_deref().map_or_else(
                            || "all clusters".to_owned(),
                            |c| printable(c, usize::MAX),
                        ),
                        format!("for {}", for_text(r)),
                    ]
                })
                .collect();
            out.push_str(&table(&rows, &[false; 4]));
            out
        }
    }
}

/// Renders `fleetctl rules check -o json` of a file that does not validate (or cannot be read):
/// `{"file", "ok": false, "error"}`. The other formats say `error` on stderr alone.
pub fn render_error_json(file: &str, error: &str) -> String {
    json(&RulesErrorView {
        file,
        ok: false,
        error,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::error::ErrorKind;

    use super::*;
    use crate::cmd::testing::{keys_in_text_order, parse, parse_ok};
    use crate::cmd::Command;
    use crate::{execute, golden};

    #[test]
    fn rules_check_takes_one_file() {
        let cli = parse(&["rules", "check", "deploy/rules.toml", "-o", "json"]).unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        let Command::Rules(RulesArgs {
            command: RulesCommand::Check(check),
        }) = cli.command
        else {
            panic!("not rules check");
        };
        assert_eq!(check.file, PathBuf::from("deploy/rules.toml"));
        let err = parse(&["rules", "check"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        let err = parse(&["rules"]).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
            "{err}"
        );
        let err = parse(&["rules", "check", "a.toml", "b.toml"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }

    fn rules_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path.display().to_string())
    }

    const GOOD_RULES: &str = r#"
[[rule]]
name = "prod-clock-skew"
kind = "clock_skew"
cluster = "prod"
threshold_ms = 100
for = "5s"

[[rule]]
name = "silent"
kind = "host_silent"
for = "1m"
"#;

    #[tokio::test]
    async fn rules_check_needs_no_collector_settings() {
        // The default collector is https:// without a CA, which no other command accepts.
        let (_dir, path) = rules_file(GOOD_RULES);
        let cli = parse_ok(&["rules", "check", &path]);
        let out = execute(cli).await.unwrap();
        assert!(!out.failed);
        assert_eq!(out.notice, None);
        assert_eq!(
            out.stdout,
            format!(
                "{path}: 2 rules OK\n  \
                 prod-clock-skew   clock_skew    prod           for 5s\n  \
                 silent            host_silent   all clusters   for 1m\n"
            )
        );
    }

    #[tokio::test]
    async fn rules_check_output_format_comes_from_the_config_file_too() {
        let (dir, path) = rules_file("[[rule]]\nname = \"x\"\nkind = \"nope\"\n");
        let config = dir.path().join("fleetctl.toml");
        std::fs::write(&config, "output = \"json\"\n").unwrap();
        let config = config.display().to_string();
        let cli = parse_ok(&["--config", &config, "rules", "check", &path]);
        let out = execute(cli).await.unwrap();
        assert!(out.failed);
        assert_eq!(out.notice, None);
        let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["file"], path.as_str());
        let error = value["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("{path}: rule \"x\": kind: ")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn rules_check_of_a_missing_file_fails_like_a_bad_one() {
        let cli = parse_ok(&["rules", "check", "/nonexistent/rules.toml"]);
        let out = execute(cli).await.unwrap();
        assert!(out.failed);
        assert_eq!(out.stdout, "");
        let notice = out.notice.unwrap();
        assert!(
            notice.starts_with("cannot read rules file /nonexistent/rules.toml: "),
            "{notice}"
        );
    }

    fn rule_lines() -> Vec<RuleLine> {
        vec![
            RuleLine {
                name: "prod-clock-skew".into(),
                kind: "clock_skew".into(),
                cluster: Some("prod".into()),
                for_: std::time::Duration::from_secs(5),
            },
            RuleLine {
                name: "silent".into(),
                kind: "host_silent".into(),
                cluster: None,
                for_: std::time::Duration::from_secs(90),
            },
        ]
    }

    #[test]
    fn rules_check_output() {
        golden::check(
            "rules-check-table.txt",
            &render_ok("rules.toml", &rule_lines(), OutputFormat::Table),
        );
        assert_eq!(
            render_ok("r.toml", &rule_lines()[..1], OutputFormat::Table)
                .lines()
                .next(),
            Some("r.toml: 1 rule OK")
        );
        let text = render_ok("rules.toml", &rule_lines(), OutputFormat::Json);
        golden::check("rules-check.json", &text);
        assert_eq!(
            keys_in_text_order(&text, &["file", "ok", "rules"]),
            ["file", "ok", "rules"]
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "file": "rules.toml",
                "ok": true,
                "rules": [
                    {"name": "prod-clock-skew", "kind": "clock_skew", "cluster": "prod", "for": "5s"},
                    {"name": "silent", "kind": "host_silent", "cluster": null, "for": "1m 30s"}
                ]
            })
        );
        golden::check(
            "rules-check.csv",
            &render_ok("rules.toml", &rule_lines(), OutputFormat::Csv),
        );
        let error = render_error_json("bad.toml", "rule \"x\": threshold_ms: missing");
        golden::check("rules-check-error.json", &error);
        let value: serde_json::Value = serde_json::from_str(&error).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"file": "bad.toml", "ok": false, "error": "rule \"x\": threshold_ms: missing"})
        );
    }
}
