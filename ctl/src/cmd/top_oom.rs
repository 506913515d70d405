//! `fleetctl top-oom [--cluster C] [--host H]... [--limit N]`: the processes the OOM killer would
//! pick next (`Query.TopOom`): the latest ranking of each selected host, merged, highest
//! `oom_score` first.
//!
//! ```text
//! HOST    PID   COMM       OOM_SCORE    ADJ    RSS   CMDLINE
//! web-1     7   java            1500   1000   4.3G   /usr/bin/java -Xmx4g -Dapp.name=shop …
//! db-1     42   postgres         300      0   2.0G   postgres -D /var/lib/pg
//! ```
//!
//! The table cuts command lines to [`CMDLINE_WIDTH`]; JSON and CSV rows are keyed
//! [`TOP_OOM_KEYS`] and carry them whole. `oom show` prints the ranking before a kill with
//! `table`, without the host column.

use anyhow::Result;
use clap::Args;
use fleet_proto::v1::{OomProcess, TopOomQuery, TopOomRow};
use serde::Serialize;

use super::{Context, Run};
use crate::output::{
    csv_line, dash, host_name, human_kb, json, nonzero_rfc3339_ms, printable, OutputFormat,
};
use crate::Output;

/// `fleetctl top-oom`: the latest ranking of each selected host, merged.
#[derive(Debug, Clone, Args)]
pub struct TopOomArgs {
    /// Host id or hostname (repeatable) [default: every host]
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// How many processes to show, over all hosts
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        // The collector's own cap (its `TopOom` handler).
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub limit: u32,
}

impl Run for TopOomArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        let query = TopOomQuery {
            hosts: self.hosts,
            cluster: self.cluster.unwrap_or_default(),
            limit: self.limit,
        };
        let collector = ctx.connect().await?;
        let rows = collector
            .query("TopOom", async |c| c.top_oom(query).await)
            .await?
            .rows;
        let notice = (rows.is_empty() && ctx.format == OutputFormat::Table).then(|| {
            "no top-oom ranking stored for the selected hosts (agents send one with their samples)"
                .to_owned()
        });
        Ok(Output::print(render(&rows, ctx.format)).with_notice(notice))
    }
}

/// The widest command line a table prints (the rest becomes `…`); JSON and CSV carry it whole.
pub const CMDLINE_WIDTH: usize = 60;

/// The keys of a `top-oom` row, in order (JSON and CSV).
pub const TOP_OOM_KEYS: [&str; 11] = [
    "host_id",
    "hostname",
    "cluster",
    "time",
    "pid",
    "comm",
    "cmdline",
    "uid",
    "oom_score",
    "oom_score_adj",
    "rss_kb",
];

/// One ranked process as `-o json` shows it. The field order is [`TOP_OOM_KEYS`].
#[derive(Debug, Serialize)]
pub(crate) struct TopOomView {
    host_id: String,
    hostname: String,
    cluster: String,
    /// When the host's ranking was taken.
    time: Option<String>,
    pid: i64,
    comm: String,
    cmdline: String,
    uid: i64,
    oom_score: i64,
    oom_score_adj: i64,
    rss_kb: u64,
}

impl TopOomView {
    fn new(row: &TopOomRow) -> Self {
        let process = row.process.clone().unwrap_or_default();
        Self::of(
            &row.host_id,
            &row.hostname,
            &row.cluster,
            row.time_ms,
            process,
        )
    }

    /// Process `p` of the host's ranking taken at `time_ms`.
    pub(crate) fn of(
        host_id: &str,
        hostname: &str,
        cluster: &str,
        time_ms: i64,
        p: OomProcess,
    ) -> Self {
        TopOomView {
            host_id: host_id.to_owned(),
            hostname: hostname.to_owned(),
            cluster: cluster.to_owned(),
            time: nonzero_rfc3339_ms(time_ms),
            pid: p.pid,
            comm: p.comm,
            cmdline: p.cmdline,
            uid: p.uid,
            oom_score: p.oom_score,
            oom_score_adj: p.oom_score_adj,
            rss_kb: p.rss_kb,
        }
    }

    fn csv_fields(&self) -> [String; 11] {
        [
            self.host_id.clone(),
            self.hostname.clone(),
            self.cluster.clone(),
            self.time.clone().unwrap_or_default(),
            self.pid.to_string(),
            self.comm.clone(),
            self.cmdline.clone(),
            self.uid.to_string(),
            self.oom_score.to_string(),
            self.oom_score_adj.to_string(),
            self.rss_kb.to_string(),
        ]
    }
}

/// Highest `oom_score` first; a stable sort, so ties keep the collector's order.
pub(crate) fn sort(views: &mut [TopOomView]) {
    views.sort_by_key(|v| std::cmp::Reverse(v.oom_score));
}

/// Renders `fleetctl top-oom`: highest `oom_score` first, with each process's host.
pub fn render(rows: &[TopOomRow], format: OutputFormat) -> String {
    let mut views: Vec<TopOomView> = rows.iter().map(TopOomView::new).collect();
    sort(&mut views);
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut out = csv_line(TOP_OOM_KEYS);
            for v in &views {
                out.push_str(&csv_line(v.csv_fields()));
            }
            out
        }
        OutputFormat::Table => table(&views, true),
    }
}

/// `HOST PID COMM OOM_SCORE ADJ RSS CMDLINE`, like `dstat --top-oom` with more columns; without
/// the host column for one host's ranking (`oom show`).
pub(crate) fn table(views: &[TopOomView], with_host: bool) -> String {
    let skip = usize::from(!with_host);
    let mut rows = vec![
        ["HOST", "PID", "COMM", "OOM_SCORE", "ADJ", "RSS", "CMDLINE"]
            .iter()
            .skip(skip)
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for v in views {
        let cells = [
            dash(host_name(&v.hostname, &v.host_id)),
            v.pid.to_string(),
            dash(&printable(&v.comm, usize::MAX)),
            v.oom_score.to_string(),
            v.oom_score_adj.to_string(),
            human_kb(v.rss_kb),
            dash(&printable(&v.cmdline, CMDLINE_WIDTH)),
        ];
        rows.push(cells.into_iter().skip(skip).collect());
    }
    let right = [false, true, false, true, true, true, false];
    crate::output::table(&rows, &right[skip..])
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;
    use crate::cmd::testing::{command, keys, keys_in_text_order, parse, process, T0};
    use crate::cmd::Command;
    use crate::golden;

    fn top_oom(args: &[&str]) -> TopOomArgs {
        match command("top-oom", args) {
            Command::TopOom(args) => args,
            other => panic!("not top-oom: {other:?}"),
        }
    }

    #[test]
    fn top_oom_defaults_to_every_host_and_ten() {
        let args = top_oom(&[]);
        assert!(args.hosts.is_empty());
        assert_eq!(args.cluster, None);
        assert_eq!(args.limit, 10);
        let args = top_oom(&[
            "--host",
            "web-1",
            "--host",
            "a1",
            "--cluster",
            "prod",
            "--limit",
            "3",
        ]);
        assert_eq!(args.hosts, ["web-1", "a1"]);
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert_eq!(args.limit, 3);
        for bad in ["0", "-1", "10001", "many"] {
            let err = parse(&["top-oom", "--limit", bad]).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::ValueValidation | ErrorKind::UnknownArgument
                ),
                "{bad}: {err}"
            );
        }
    }

    fn top_row(host: &str, name: &str, p: OomProcess) -> TopOomRow {
        TopOomRow {
            host_id: host.into(),
            hostname: name.into(),
            cluster: "prod".into(),
            time_ms: T0,
            process: Some(p),
        }
    }

    fn top_rows() -> Vec<TopOomRow> {
        vec![
            top_row(
                "b2",
                "db-1",
                process(42, "postgres", "postgres -D /var/lib/pg", 300, 0, 2_097_152),
            ),
            top_row(
                "a1",
                "web-1",
                process(
                    7,
                    "java",
                    "/usr/bin/java -Xmx4g -Dapp.name=shop -Dlog.dir=/var/log/shop -jar /opt/shop/shop.jar --port 8080",
                    1500,
                    1000,
                    4_500_000,
                ),
            ),
            top_row("a1", "web-1", process(9, "sleep", "", 2, -998, 512)),
        ]
    }

    #[test]
    fn top_oom_json_has_exactly_the_contract_keys() {
        let text = render(&top_rows(), OutputFormat::Json);
        golden::check("top-oom.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        let mut got = keys(&rows[0]);
        got.sort_unstable();
        let mut want = TOP_OOM_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(
            keys_in_text_order(&text[..text.find('}').unwrap()], &TOP_OOM_KEYS),
            TOP_OOM_KEYS
        );
        // Highest oom_score first, whatever order the rows came in.
        assert_eq!(rows[0]["host_id"], "a1");
        assert_eq!(rows[0]["pid"], 7);
        assert_eq!(rows[0]["oom_score"], 1500);
        assert_eq!(rows[0]["oom_score_adj"], 1000);
        assert_eq!(rows[0]["rss_kb"], 4_500_000);
        assert_eq!(rows[0]["uid"], 1000);
        assert_eq!(rows[0]["time"], "2026-11-25T22:10:03.000Z");
        assert_eq!(rows[0]["hostname"], "web-1");
        assert_eq!(rows[0]["cluster"], "prod");
        // JSON carries the command line whole.
        assert!(rows[0]["cmdline"]
            .as_str()
            .unwrap()
            .ends_with("--port 8080"));
        assert_eq!(rows[1]["comm"], "postgres");
        assert_eq!(rows[2]["oom_score_adj"], -998);
        assert_eq!(render(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn top_oom_table_cuts_the_cmdline() {
        let text = render(&top_rows(), OutputFormat::Table);
        golden::check("top-oom-table.txt", &text);
        let cmdline = text.lines().nth(1).unwrap().split("   ").last().unwrap();
        assert_eq!(cmdline.chars().count(), CMDLINE_WIDTH);
    }

    #[test]
    fn top_oom_csv_has_the_json_keys() {
        golden::check("top-oom.csv", &render(&top_rows(), OutputFormat::Csv));
    }
}
