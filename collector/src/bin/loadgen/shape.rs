//! The load generator's sample: about 150 sar-like values (per-CPU, memory, paging, disks,
//! interfaces...), random walks for busy columns, constants and zeros for the rest. Shared by
//! `fleet-loadgen` and the store benchmark (`benches/store.rs`), so both measure the same data.

use fleet_proto::schema::ACTIVITIES;
use fleet_proto::v1::{Activity, Record};

/// A tiny xorshift generator: deterministic, no allocation.
pub struct Rng(u64);
impl Rng {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A sar-like sample: random walks for busy columns, constants and zeros for the rest.
pub struct Shape {
    records: Vec<Record>,
    rng: Rng,
}

impl Shape {
    pub fn new(seed: u64) -> Shape {
        let mut records = Vec::new();
        let mut add = |activity: Activity, instance: &str| {
            let schema = ACTIVITIES
                .iter()
                .find(|s| s.activity == activity)
                .expect("schema");
            records.push(Record {
                activity: activity as i32,
                instance: instance.to_string(),
                values: vec![0.0; schema.columns.len()],
            });
        };
        for cpu in ["all", "0", "1", "2", "3"] {
            add(Activity::Cpu, cpu);
        }
        for a in [
            Activity::Memory,
            Activity::Swap,
            Activity::Swapping,
            Activity::Paging,
            Activity::Io,
            Activity::Load,
            Activity::PsiCpu,
            Activity::PsiIo,
            Activity::PsiMem,
        ] {
            add(a, "-");
        }
        for d in ["sda", "sdb"] {
            add(Activity::Disk, d);
        }
        for i in ["lo", "eth0", "eth1"] {
            add(Activity::NetDev, i);
            add(Activity::NetEdev, i);
        }
        let mut s = Shape {
            records,
            rng: Rng(seed | 1),
        };
        for r in &mut s.records {
            for v in &mut r.values {
                *v = (s.rng.next() * 1000.0).round();
            }
        }
        s
    }

    pub fn values(&self) -> u64 {
        self.records.iter().map(|r| r.values.len() as u64).sum()
    }

    pub fn step(&mut self) -> Vec<Record> {
        for r in &mut self.records {
            let busy = matches!(
                Activity::try_from(r.activity),
                Ok(Activity::Cpu | Activity::Memory | Activity::Paging | Activity::Load)
            ) || r.instance == "eth0";
            for (i, v) in r.values.iter_mut().enumerate() {
                if busy && i % 2 == 0 {
                    *v = (*v + (self.rng.next() - 0.5) * 20.0).max(0.0);
                    *v = (*v * 100.0).round() / 100.0;
                } else if !busy {
                    *v = 0.0;
                }
            }
        }
        self.records.clone()
    }
}
