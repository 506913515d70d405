//! The pids of the last victims, so that an `oom_reaper` line of a kill already sent is not
//! taken for an invocation that killed nothing.

use std::collections::{HashMap, VecDeque};

use super::RECENT_VICTIMS;

/// The pids of the last [`RECENT_VICTIMS`] victims.
#[derive(Debug, Default)]
pub(super) struct Recent {
    order: VecDeque<i64>,
    count: HashMap<i64, u32>,
}

impl Recent {
    pub(super) fn add(&mut self, pid: i64) {
        if self.order.len() >= RECENT_VICTIMS {
            if let Some(old) = self.order.pop_front() {
                if let Some(n) = self.count.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.count.remove(&old);
                    }
                }
            }
        }
        self.order.push_back(pid);
        *self.count.entry(pid).or_insert(0) += 1;
    }

    pub(super) fn contains(&self, pid: i64) -> bool {
        self.count.contains_key(&pid)
    }

    pub(super) fn clear(&mut self) {
        self.order.clear();
        self.count.clear();
    }
}
