//! The sar column schema: for each [`Activity`], the sysstat column names in wire order.
//!
//! This table is the one place that says what `Record::values[i]` means. The agent fills records
//! in this order, the collector checks the length, and fleetctl prints these names (they are the
//! JSON keys users script against, spelled as sysstat 12.x prints them).

use crate::v1::Activity;

/// How one activity is described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivitySchema {
    pub activity: Activity,
    /// Short stable name used in logs, storage docs and fleetctl (`cpu`, `memory`, ...).
    pub name: &'static str,
    /// The sar option that shows it (`-u`, `-n DEV`, ...).
    pub sar_flag: &'static str,
    /// The header sar prints for the instance column, if the activity has instances.
    pub instance_column: Option<&'static str>,
    /// Column names, in the order of `Record::values`.
    pub columns: &'static [&'static str],
    /// Columns sar prints without decimals (counts and kB amounts).
    pub integer_columns: &'static [&'static str],
}

impl ActivitySchema {
    /// Whether sar prints `column` as an integer.
    pub fn is_integer(&self, column: &str) -> bool {
        self.integer_columns.contains(&column)
    }
}

const MEM_INT: &[&str] = &[
    "kbmemfree",
    "kbavail",
    "kbmemused",
    "kbbuffers",
    "kbcached",
    "kbcommit",
    "kbactive",
    "kbinact",
    "kbdirty",
];

/// Every activity Fleet samples, in wire-enum order.
pub const ACTIVITIES: &[ActivitySchema] = &[
    ActivitySchema {
        activity: Activity::Cpu,
        name: "cpu",
        sar_flag: "-u",
        instance_column: Some("CPU"),
        columns: &["%user", "%nice", "%system", "%iowait", "%steal", "%idle"],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::Memory,
        name: "memory",
        sar_flag: "-r",
        instance_column: None,
        columns: &[
            "kbmemfree",
            "kbavail",
            "kbmemused",
            "%memused",
            "kbbuffers",
            "kbcached",
            "kbcommit",
            "%commit",
            "kbactive",
            "kbinact",
            "kbdirty",
        ],
        integer_columns: MEM_INT,
    },
    ActivitySchema {
        activity: Activity::Swap,
        name: "swap",
        sar_flag: "-S",
        instance_column: None,
        columns: &["kbswpfree", "kbswpused", "%swpused", "kbswpcad", "%swpcad"],
        integer_columns: &["kbswpfree", "kbswpused", "kbswpcad"],
    },
    ActivitySchema {
        activity: Activity::Swapping,
        name: "swapping",
        sar_flag: "-W",
        instance_column: None,
        columns: &["pswpin/s", "pswpout/s"],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::Paging,
        name: "paging",
        sar_flag: "-B",
        instance_column: None,
        columns: &[
            "pgpgin/s",
            "pgpgout/s",
            "fault/s",
            "majflt/s",
            "pgfree/s",
            "pgscank/s",
            "pgscand/s",
            "pgsteal/s",
            "%vmeff",
        ],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::Io,
        name: "io",
        sar_flag: "-b",
        instance_column: None,
        columns: &[
            "tps", "rtps", "wtps", "dtps", "bread/s", "bwrtn/s", "bdscd/s",
        ],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::Disk,
        name: "disk",
        sar_flag: "-d",
        instance_column: Some("DEV"),
        columns: &[
            "tps", "rkB/s", "wkB/s", "dkB/s", "areq-sz", "aqu-sz", "await", "%util",
        ],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::Load,
        name: "load",
        sar_flag: "-q",
        instance_column: None,
        columns: &[
            "runq-sz", "plist-sz", "ldavg-1", "ldavg-5", "ldavg-15", "blocked",
        ],
        integer_columns: &["runq-sz", "plist-sz", "blocked"],
    },
    ActivitySchema {
        activity: Activity::NetDev,
        name: "net-dev",
        sar_flag: "-n DEV",
        instance_column: Some("IFACE"),
        columns: &[
            "rxpck/s", "txpck/s", "rxkB/s", "txkB/s", "rxcmp/s", "txcmp/s", "rxmcst/s", "%ifutil",
        ],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::NetEdev,
        name: "net-edev",
        sar_flag: "-n EDEV",
        instance_column: Some("IFACE"),
        columns: &[
            "rxerr/s", "txerr/s", "coll/s", "rxdrop/s", "txdrop/s", "txcarr/s", "rxfram/s",
            "rxfifo/s", "txfifo/s",
        ],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::PsiCpu,
        name: "psi-cpu",
        sar_flag: "-q CPU",
        instance_column: None,
        columns: &["%scpu-10", "%scpu-60", "%scpu-300", "%scpu"],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::PsiIo,
        name: "psi-io",
        sar_flag: "-q IO",
        instance_column: None,
        columns: &[
            "%sio-10", "%sio-60", "%sio-300", "%sio", "%fio-10", "%fio-60", "%fio-300", "%fio",
        ],
        integer_columns: &[],
    },
    ActivitySchema {
        activity: Activity::PsiMem,
        name: "psi-mem",
        sar_flag: "-q MEM",
        instance_column: None,
        columns: &[
            "%smem-10",
            "%smem-60",
            "%smem-300",
            "%smem",
            "%fmem-10",
            "%fmem-60",
            "%fmem-300",
            "%fmem",
        ],
        integer_columns: &[],
    },
];

/// The schema of `activity`, or `None` for `ACTIVITY_UNSPECIFIED` and values this build does not
/// know.
pub fn schema(activity: Activity) -> Option<&'static ActivitySchema> {
    ACTIVITIES.iter().find(|s| s.activity == activity)
}

/// The schema for a raw wire value of the `activity` field.
pub fn schema_of_i32(activity: i32) -> Option<&'static ActivitySchema> {
    Activity::try_from(activity).ok().and_then(schema)
}

/// The schema whose short name is `name` (`cpu`, `net-dev`, ...).
pub fn schema_by_name(name: &str) -> Option<&'static ActivitySchema> {
    ACTIVITIES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_activity_has_one_schema() {
        for v in 1..=13 {
            let a = Activity::try_from(v).expect("enum value");
            assert_eq!(schema(a).map(|s| s.activity), Some(a));
        }
        assert!(schema(Activity::Unspecified).is_none());
        assert!(schema_of_i32(999).is_none());
    }

    #[test]
    fn integer_columns_are_columns() {
        for s in ACTIVITIES {
            for c in s.integer_columns {
                assert!(s.columns.contains(c), "{}: {c}", s.name);
            }
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = ACTIVITIES.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIVITIES.len());
    }
}
