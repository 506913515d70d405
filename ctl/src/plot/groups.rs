//! Which sysstat columns share a panel, per activity: the grouping `sadf -g` draws (sysstat's
//! `svg_stats.c` puts, for example, `kbmemfree kbavail kbmemused` on one graph and `%memused` on
//! the next, so a percentage is never squashed against kilobytes), restricted to the columns
//! Fleet samples (`fleet_proto::schema`). Columns Fleet has and sadf does not graph (`%vmeff`)
//! get a panel of their own, so every column is drawn exactly once.

use fleet_proto::v1::Activity;

/// One panel: its title and the sysstat column names it draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub title: &'static str,
    pub columns: &'static [&'static str],
}

/// A [`Group`] literal (a literal, not a call, so the tables below are constants).
macro_rules! g {
    ($title:expr, $columns:expr $(,)?) => {
        Group {
            title: $title,
            columns: $columns,
        }
    };
}

/// The panels of `activity`, in the order sadf draws them.
pub fn groups(activity: Activity) -> &'static [Group] {
    match activity {
        Activity::Cpu => &[g!(
            "CPU utilization",
            &["%user", "%nice", "%system", "%iowait", "%steal", "%idle"],
        )],
        Activity::Memory => &[
            g!(
                "Memory utilization (1)",
                &["kbmemfree", "kbavail", "kbmemused"],
            ),
            g!("Memory utilization (2)", &["%memused"]),
            g!(
                "Memory utilization (3)",
                &["kbbuffers", "kbcached", "kbcommit"],
            ),
            g!("Memory utilization (4)", &["%commit"]),
            g!(
                "Memory utilization (5)",
                &["kbactive", "kbinact", "kbdirty"],
            ),
        ],
        Activity::Swap => &[
            g!(
                "Swap utilization (1)",
                &["kbswpfree", "kbswpused", "kbswpcad"],
            ),
            g!("Swap utilization (2)", &["%swpused"]),
            g!("Swap utilization (3)", &["%swpcad"]),
        ],
        Activity::Swapping => &[g!("Swap activity", &["pswpin/s", "pswpout/s"])],
        Activity::Paging => &[
            g!("Paging activity (1)", &["pgpgin/s", "pgpgout/s"]),
            g!("Paging activity (2)", &["fault/s", "majflt/s"]),
            g!(
                "Paging activity (3)",
                &["pgfree/s", "pgscank/s", "pgscand/s", "pgsteal/s"],
            ),
            g!("Paging activity (4)", &["%vmeff"]),
        ],
        Activity::Io => &[
            g!(
                "I/O and transfer rate statistics (1)",
                &["tps", "rtps", "wtps", "dtps"],
            ),
            g!(
                "I/O and transfer rate statistics (2)",
                &["bread/s", "bwrtn/s", "bdscd/s"],
            ),
        ],
        Activity::Disk => &[
            g!("Block devices statistics (1)", &["tps"]),
            g!("Block devices statistics (2)", &["rkB/s", "wkB/s", "dkB/s"],),
            g!("Block devices statistics (3)", &["areq-sz", "aqu-sz"]),
            g!("Block devices statistics (4)", &["await"]),
            g!("Block devices statistics (5)", &["%util"]),
        ],
        Activity::Load => &[
            g!("Queue length", &["runq-sz", "blocked"]),
            g!("Task list statistics", &["plist-sz"]),
            g!(
                "Load average statistics",
                &["ldavg-1", "ldavg-5", "ldavg-15"],
            ),
        ],
        Activity::NetDev => &[
            g!("Network interfaces statistics (1)", &["rxpck/s", "txpck/s"]),
            g!("Network interfaces statistics (2)", &["rxkB/s", "txkB/s"]),
            g!(
                "Network interfaces statistics (3)",
                &["rxcmp/s", "txcmp/s", "rxmcst/s"],
            ),
            g!("Network interfaces statistics (4)", &["%ifutil"]),
        ],
        Activity::NetEdev => &[
            g!(
                "Network interfaces errors statistics (1)",
                &["rxerr/s", "txerr/s"],
            ),
            g!(
                "Network interfaces errors statistics (2)",
                &["rxdrop/s", "txdrop/s"],
            ),
            g!(
                "Network interfaces errors statistics (3)",
                &["rxfifo/s", "txfifo/s"],
            ),
            g!(
                "Network interfaces errors statistics (4)",
                &["coll/s", "txcarr/s", "rxfram/s"],
            ),
        ],
        Activity::PsiCpu => &[
            g!(
                "CPU pressure trends (some tasks)",
                &["%scpu-10", "%scpu-60", "%scpu-300"],
            ),
            g!("CPU stall time (some tasks)", &["%scpu"]),
        ],
        Activity::PsiIo => &[
            g!(
                "I/O pressure trends (some tasks)",
                &["%sio-10", "%sio-60", "%sio-300"],
            ),
            g!("I/O stall time (some tasks)", &["%sio"]),
            g!(
                "I/O pressure trends (full)",
                &["%fio-10", "%fio-60", "%fio-300"],
            ),
            g!("I/O stall time (full)", &["%fio"]),
        ],
        Activity::PsiMem => &[
            g!(
                "Memory pressure trends (some tasks)",
                &["%smem-10", "%smem-60", "%smem-300"],
            ),
            g!("Memory stall time (some tasks)", &["%smem"]),
            g!(
                "Memory pressure trends (full)",
                &["%fmem-10", "%fmem-60", "%fmem-300"],
            ),
            g!("Memory stall time (full)", &["%fmem"]),
        ],
        Activity::Unspecified => &[],
    }
}

#[cfg(test)]
mod tests {
    use fleet_proto::schema::ACTIVITIES;

    use super::*;

    #[test]
    fn every_column_is_drawn_exactly_once() {
        for schema in ACTIVITIES {
            let mut drawn: Vec<&str> = groups(schema.activity)
                .iter()
                .flat_map(|g| g.columns.iter().copied())
                .collect();
            assert!(!drawn.is_empty(), "{}", schema.name);
            drawn.sort_unstable();
            let mut columns = schema.columns.to_vec();
            columns.sort_unstable();
            assert_eq!(drawn, columns, "{}", schema.name);
        }
    }
}
