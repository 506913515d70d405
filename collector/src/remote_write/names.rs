//! The remote-write naming contract: which Prometheus metric name and labels each value Fleet
//! sends carries. Dashboards and alert rules are written against these names: change them only
//! with a note in README ("Remote-write: metric names", generated from [`readme_table`]; a test
//! fails when the two disagree).
//!
//! # sar columns
//!
//! `fleet_<activity>_<column>`: the activity's short name (`cpu`, `net-dev`, ...) and sysstat's
//! column, each lowercased with every character outside `[a-z0-9]` turned into `_`, and sysstat's
//! units moved to a suffix:
//! - `%` -> `_percent` (`%idle` -> `fleet_cpu_idle_percent`, `%scpu-10` ->
//!   `fleet_psi_cpu_scpu_10_percent`);
//! - `/s` -> `_per_second` (`fault/s` -> `fleet_paging_fault_per_second`);
//! - kB amounts keep their unit as `_kb`: a leading `kb` becomes a suffix (`kbmemfree` ->
//!   `fleet_memory_memfree_kb`), an inner `kB` a word (`rxkB/s` ->
//!   `fleet_net_dev_rx_kb_per_second`).
//!
//! # Labels
//!
//! Every series carries `host_id`, `hostname` and `cluster`; then the host's own labels (names
//! sanitised to `[a-zA-Z_][a-zA-Z0-9_]*`, never one starting with `__`, never overriding a label
//! the series already has), then the collector's `--remote-write-label`s (same rule). A sar
//! activity with instances adds its instance label: `cpu` (`all`, `0`, `1`, ...), `device` or
//! `iface`. Labels are sent sorted by name, as the protocol requires.

use std::sync::OnceLock;

use fleet_proto::schema::{ActivitySchema, ACTIVITIES};

/// The prefix of every name.
pub const PREFIX: &str = "fleet_";

/// Whether the host's agent is connected (1) or not (0), sent every few seconds at the
/// collector's time for every known host.
pub const HOST_UP: &str = "fleet_host_up";
/// One NTP server's offset (server clock minus the host's), label `server` (`HOST:PORT`), for
/// each reachable server of a measurement.
pub const NTP_OFFSET: &str = "fleet_ntp_offset_seconds";
/// One NTP server's round-trip delay, label `server`.
pub const NTP_DELAY: &str = "fleet_ntp_delay_seconds";
/// 1 when the server answered validly, else 0, label `server`.
pub const NTP_REACHABLE: &str = "fleet_ntp_reachable";
/// 1 when the server is a usable source (reachable, leap != 3, stratum 1..15), label `server`.
pub const NTP_SYNCED: &str = "fleet_ntp_synced";
/// The server's stratum, label `server` (reachable servers only).
pub const NTP_STRATUM: &str = "fleet_ntp_stratum";
/// 1 when the host's kernel clock says it is synchronised (STA_UNSYNC clear).
pub const KERNEL_CLOCK_SYNCED: &str = "fleet_kernel_clock_synced";
/// The kernel's estimated clock error.
pub const KERNEL_CLOCK_EST_ERROR: &str = "fleet_kernel_clock_estimated_error_seconds";
/// The kernel's clock frequency adjustment.
pub const KERNEL_CLOCK_FREQ: &str = "fleet_kernel_clock_frequency_ppm";
/// The host's clock minus the collector's, measured by the probes on the agent's stream, sent
/// with `fleet_host_up`.
pub const COLLECTOR_OFFSET: &str = "fleet_collector_offset_seconds";
/// The host's OOM kills stored so far (within retention): a counter, sent at each of the
/// host's sample times and at each kill's time.
pub const OOM_KILLS: &str = "fleet_oom_kills_total";
/// Always 1, with the last kill's victim as labels `victim_comm` and `victim_pid`, sent with
/// `fleet_oom_kills_total` once the host had a kill.
pub const OOM_LAST_KILL_INFO: &str = "fleet_oom_last_kill_info";

/// The label of the host's id.
pub const LABEL_HOST_ID: &str = "host_id";
/// The label of the host's name.
pub const LABEL_HOSTNAME: &str = "hostname";
/// The label of the host's cluster.
pub const LABEL_CLUSTER: &str = "cluster";
/// The label of an NTP server.
pub const LABEL_SERVER: &str = "server";
/// The labels of the last OOM victim.
pub const LABEL_VICTIM_COMM: &str = "victim_comm";
pub const LABEL_VICTIM_PID: &str = "victim_pid";

/// Every metric name outside the sar columns, with its labels beyond the host's and what it
/// holds (README's table).
pub const OTHER_METRICS: &[(&str, &str, &str)] = &[
    (
        HOST_UP,
        "",
        "1 while the host's agent is connected, else 0 (every 5 s, collector time)",
    ),
    (
        COLLECTOR_OFFSET,
        "",
        "the host's clock minus the collector's, from the stream's probes (with `fleet_host_up`)",
    ),
    (
        NTP_OFFSET,
        "server",
        "server clock minus the host's, per reachable server",
    ),
    (NTP_DELAY, "server", "round trip to the server"),
    (
        NTP_REACHABLE,
        "server",
        "1 when the server answered validly",
    ),
    (
        NTP_SYNCED,
        "server",
        "1 when the server is usable (reachable, leap != 3, stratum 1..15)",
    ),
    (
        NTP_STRATUM,
        "server",
        "the server's stratum (reachable servers)",
    ),
    (
        KERNEL_CLOCK_SYNCED,
        "",
        "1 when the kernel clock is synchronised (STA_UNSYNC clear)",
    ),
    (
        KERNEL_CLOCK_EST_ERROR,
        "",
        "the kernel's estimated clock error",
    ),
    (KERNEL_CLOCK_FREQ, "", "the kernel's frequency adjustment"),
    (
        OOM_KILLS,
        "",
        "counter: the host's stored OOM kills, at each sample and each kill",
    ),
    (
        OOM_LAST_KILL_INFO,
        "victim_comm, victim_pid",
        "1, naming the host's last OOM victim (once it had one)",
    ),
];

/// The metric name of one sysstat column of one activity.
pub fn column_metric(activity: &ActivitySchema, column: &str) -> String {
    format!("{PREFIX}{}_{}", snake(activity.name), column_part(column))
}

/// The label naming an activity's instance (`cpu`, `device`, `iface`), or `None` when the
/// activity has none (its records' instance is `-`).
pub fn instance_label(activity: &ActivitySchema) -> Option<&'static str> {
    activity.instance_column.map(|c| match c {
        "CPU" => "cpu",
        "DEV" => "device",
        "IFACE" => "iface",
        _ => "instance_name",
    })
}

/// The metric names of every column of every activity, in [`ACTIVITIES`] and column order
/// (computed once).
pub fn sar_metrics() -> &'static [Vec<String>] {
    static NAMES: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    NAMES.get_or_init(|| {
        ACTIVITIES
            .iter()
            .map(|a| a.columns.iter().map(|c| column_metric(a, c)).collect())
            .collect()
    })
}

/// The column part of a name: units to suffixes, the rest snake case.
fn column_part(column: &str) -> String {
    let mut rest = column;
    let mut suffixes = Vec::new();
    if let Some(r) = rest.strip_suffix("/s") {
        suffixes.push("per_second");
        rest = r;
    }
    if let Some(r) = rest.strip_prefix('%') {
        suffixes.insert(0, "percent");
        rest = r;
    }
    if let Some(r) = rest.strip_prefix("kb") {
        suffixes.insert(0, "kb");
        rest = r;
    }
    let mut words = snake(&rest.replace("kB", "_kb_"));
    for s in suffixes {
        words.push('_');
        words.push_str(s);
    }
    words
}

/// Lowercase, every run of characters outside `[a-z0-9]` one `_`, none at either end.
fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Whether `name` is a valid Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A host's (or the configuration's) label name as a valid, non-reserved Prometheus label name:
/// every character outside `[a-zA-Z0-9_]` becomes `_`, a leading digit gets a `_` before it.
/// `None` for an empty name or one starting with `__` (reserved for Prometheus).
pub fn sanitize_label_name(name: &str) -> Option<String> {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    (!out.is_empty() && !out.starts_with("__")).then_some(out)
}

/// A series' label set under construction: first added wins, sorted when taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSet(Vec<(String, String)>);

impl LabelSet {
    /// Adds `name="value"` unless the set already has `name`.
    pub fn add(&mut self, name: &str, value: &str) {
        if !self.has(name) {
            self.0.push((name.to_owned(), value.to_owned()));
        }
    }

    /// Adds a label whose name comes from outside (a host's or the configuration's): sanitised
    /// by [`sanitize_label_name`], dropped when reserved, never overriding one already set.
    pub fn add_foreign(&mut self, name: &str, value: &str) {
        if let Some(name) = sanitize_label_name(name) {
            self.add(&name, value);
        }
    }

    /// Whether `name` is set.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// The labels sorted by name, with `__name__` = `metric` added.
    pub fn into_sorted(mut self, metric: &str) -> Vec<(String, String)> {
        self.0.push(("__name__".to_owned(), metric.to_owned()));
        self.0.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.0
    }

    /// The labels so far, in insertion order.
    pub fn labels(&self) -> &[(String, String)] {
        &self.0
    }
}

/// The labels every series of a host carries, before its own: the fixed ones, the host's
/// labels, then the `extra` labels of the configuration (never overriding).
pub fn host_labels(
    identity: &fleet_proto::v1::HostIdentity,
    extra: &[(String, String)],
) -> LabelSet {
    let mut set = LabelSet::default();
    set.add(LABEL_HOST_ID, &identity.host_id);
    set.add(LABEL_HOSTNAME, &identity.hostname);
    set.add(LABEL_CLUSTER, &identity.cluster);
    // Reserve the labels series add after these, so a host label of the same name cannot take
    // them: the instance labels and the NTP server's, the OOM victim's.
    let mut own: Vec<(&String, &String)> = identity.labels.iter().collect();
    own.sort_unstable();
    for (name, value) in own {
        if !is_series_label(name) {
            set.add_foreign(name, value);
        }
    }
    for (name, value) in extra {
        if !is_series_label(name) {
            set.add_foreign(name, value);
        }
    }
    set
}

/// Labels some series set themselves, which host and configured labels never take.
fn is_series_label(name: &str) -> bool {
    let reserved = [
        "cpu",
        "device",
        "iface",
        "instance_name",
        LABEL_SERVER,
        LABEL_VICTIM_COMM,
        LABEL_VICTIM_PID,
    ];
    sanitize_label_name(name).is_some_and(|n| reserved.contains(&n.as_str()))
}

/// README's "Remote-write: metric names" table, from the code.
pub fn readme_table() -> String {
    let mut out =
        String::from("| metric | labels beyond the host's | from |\n| --- | --- | --- |\n");
    for (schema, names) in ACTIVITIES.iter().zip(sar_metrics()) {
        let label = instance_label(schema).unwrap_or("");
        for (column, name) in schema.columns.iter().zip(names) {
            out.push_str(&format!(
                "| `{name}` | {} | `sar {}` column `{column}` |\n",
                if label.is_empty() {
                    String::new()
                } else {
                    format!("`{label}`")
                },
                schema.sar_flag
            ));
        }
    }
    for (name, labels, what) in OTHER_METRICS {
        let labels = (labels.split(", ").filter(|l| !l.is_empty()))
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!("| `{name}` | {labels} | {what} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    #[test]
    fn the_contract_names() {
        let cpu = fleet_proto::schema::schema_by_name("cpu").unwrap();
        assert_eq!(column_metric(cpu, "%idle"), "fleet_cpu_idle_percent");
        assert_eq!(instance_label(cpu), Some("cpu"));
        let mem = fleet_proto::schema::schema_by_name("memory").unwrap();
        assert_eq!(column_metric(mem, "kbmemfree"), "fleet_memory_memfree_kb");
        assert_eq!(
            column_metric(mem, "%memused"),
            "fleet_memory_memused_percent"
        );
        assert_eq!(instance_label(mem), None);
        let net = fleet_proto::schema::schema_by_name("net-dev").unwrap();
        assert_eq!(
            column_metric(net, "rxkB/s"),
            "fleet_net_dev_rx_kb_per_second"
        );
        assert_eq!(
            column_metric(net, "%ifutil"),
            "fleet_net_dev_ifutil_percent"
        );
        assert_eq!(instance_label(net), Some("iface"));
        let disk = fleet_proto::schema::schema_by_name("disk").unwrap();
        assert_eq!(column_metric(disk, "areq-sz"), "fleet_disk_areq_sz");
        assert_eq!(instance_label(disk), Some("device"));
        let psi = fleet_proto::schema::schema_by_name("psi-cpu").unwrap();
        assert_eq!(
            column_metric(psi, "%scpu-10"),
            "fleet_psi_cpu_scpu_10_percent"
        );
        let paging = fleet_proto::schema::schema_by_name("paging").unwrap();
        assert_eq!(
            column_metric(paging, "fault/s"),
            "fleet_paging_fault_per_second"
        );
    }

    #[test]
    fn every_column_has_a_valid_name_of_its_own() {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (schema, names) in ACTIVITIES.iter().zip(sar_metrics()) {
            assert_eq!(names.len(), schema.columns.len());
            for (column, name) in schema.columns.iter().zip(names) {
                assert!(is_valid_metric_name(name), "{name}");
                assert!(name.starts_with(PREFIX), "{name}");
                assert!(!name.contains("__") && !name.ends_with('_'), "{name}");
                if let Some(prev) = seen.insert(name.clone(), format!("{} {column}", schema.name)) {
                    panic!("{name}: both {prev} and {} {column}", schema.name);
                }
            }
        }
        for (name, _, _) in OTHER_METRICS {
            assert!(is_valid_metric_name(name), "{name}");
            assert!(!seen.contains_key(*name), "{name} is also a sar column");
        }
        let others: HashSet<_> = OTHER_METRICS.iter().map(|m| m.0).collect();
        assert_eq!(others.len(), OTHER_METRICS.len());
    }

    #[test]
    fn label_names_are_sanitised_and_never_override() {
        assert_eq!(
            sanitize_label_name("team.name").as_deref(),
            Some("team_name")
        );
        assert_eq!(sanitize_label_name("9rack").as_deref(), Some("_9rack"));
        assert_eq!(sanitize_label_name("__name__"), None);
        assert_eq!(sanitize_label_name(""), None);
        let identity = fleet_proto::v1::HostIdentity {
            host_id: "h1".into(),
            hostname: "web-1".into(),
            cluster: "prod".into(),
            labels: [
                ("hostname", "spoof"),
                ("cpu", "spoof"),
                ("rack.row", "r7"),
                ("__name__", "x"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..Default::default()
        };
        let extra = vec![
            ("region".to_owned(), "eu".to_owned()),
            ("cluster".to_owned(), "spoof".to_owned()),
        ];
        let mut set = host_labels(&identity, &extra);
        set.add("cpu", "all");
        let labels = set.into_sorted("fleet_cpu_idle_percent");
        let get = |n: &str| labels.iter().find(|l| l.0 == n).map(|l| l.1.as_str());
        assert_eq!(get("hostname"), Some("web-1"));
        assert_eq!(get("cluster"), Some("prod"));
        assert_eq!(get("cpu"), Some("all"));
        assert_eq!(get("rack_row"), Some("r7"));
        assert_eq!(get("region"), Some("eu"));
        assert_eq!(get("__name__"), Some("fleet_cpu_idle_percent"));
        assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "{labels:?}");
    }

    /// README's table is this module's: regenerate it with
    /// `UPDATE_README=1 cargo test -p fleet-collector readme_names`.
    #[test]
    fn readme_names_table_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let (begin, end) = (
            "<!-- remote-write names: begin (generated) -->\n",
            "<!-- remote-write names: end -->",
        );
        let start = readme.find(begin).expect("README has the begin marker") + begin.len();
        let stop = readme.find(end).expect("README has the end marker");
        let table = readme_table();
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..start], &readme[stop..]);
            std::fs::write(path, updated).expect("write README.md");
            return;
        }
        assert_eq!(
            &readme[start..stop],
            table,
            "README's remote-write names disagree with the code: run with UPDATE_README=1"
        );
    }
}
