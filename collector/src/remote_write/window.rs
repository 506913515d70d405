//! One receiver's read-ahead window (pure): the read batches handed to its shards that the
//! cursor has not passed yet, in read order, each with the number of shards still sending a
//! part of it.
//!
//! The cursor moves only over the prefix of batches every shard has finished (accepted, or
//! refused for good): a batch that one shard cannot deliver holds the cursor back however far
//! the other shards go, and the window's bound (`Window::is_full`) stops the reader there, so
//! a slow or failing shard costs at most `cap` batches of memory.

use std::collections::VecDeque;

/// A read batch in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    /// The seq after the batch's last entry: where the cursor goes once it is done.
    upto: u64,
    /// Shards still sending a part of it.
    pending: usize,
    /// When its oldest entry was stored (Unix ms).
    oldest_ms: i64,
}

/// The batches in flight; ids are given in read order, from 0.
#[derive(Debug)]
pub(super) struct Window {
    batches: VecDeque<InFlight>,
    /// The id of `batches[0]`.
    front_id: u64,
    cap: usize,
}

impl Window {
    /// A window of at most `cap` batches (at least 1).
    pub(super) fn new(cap: usize) -> Window {
        Window {
            batches: VecDeque::new(),
            front_id: 0,
            cap: cap.max(1),
        }
    }

    /// Whether the reader must wait for a batch to be done before it reads another.
    pub(super) fn is_full(&self) -> bool {
        self.batches.len() >= self.cap
    }

    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Adds a batch ending before `upto` whose parts go to `parts` shards (0: nothing to send,
    /// done at once); its id.
    pub(super) fn push(&mut self, upto: u64, parts: usize, oldest_ms: i64) -> u64 {
        let id = self.front_id + self.batches.len() as u64;
        self.batches.push_back(InFlight {
            upto,
            pending: parts,
            oldest_ms,
        });
        id
    }

    /// One shard is done with its part of batch `id` (an unknown id is ignored).
    pub(super) fn done(&mut self, id: u64) {
        let Some(i) = id.checked_sub(self.front_id) else {
            return;
        };
        if let Some(b) = self.batches.get_mut(i as usize) {
            b.pending = b.pending.saturating_sub(1);
        }
    }

    /// Drops the done prefix; the new cursor when it moved.
    pub(super) fn advance(&mut self) -> Option<u64> {
        let mut cursor = None;
        while let Some(b) = self.batches.front() {
            if b.pending > 0 {
                break;
            }
            cursor = Some(b.upto);
            self.batches.pop_front();
            self.front_id += 1;
        }
        cursor
    }

    /// When the oldest entry in flight was stored.
    pub(super) fn oldest_ms(&self) -> Option<i64> {
        self.batches.front().map(|b| b.oldest_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_moves_over_the_prefix_every_shard_is_done_with() {
        let mut w = Window::new(3);
        let a = w.push(10, 2, 100);
        let b = w.push(20, 1, 200);
        assert!(!w.is_full());
        let c = w.push(30, 0, 300);
        assert!(w.is_full());
        // Later batches done first: the cursor waits for the first.
        w.done(b);
        assert_eq!(w.advance(), None);
        w.done(a);
        assert_eq!(
            w.advance(),
            None,
            "one shard still sends a part of the first"
        );
        assert_eq!(w.oldest_ms(), Some(100));
        w.done(a);
        // The first, then the second and the empty third: done in one move.
        assert_eq!(w.advance(), Some(30));
        assert!(w.is_empty());
        assert_eq!(w.oldest_ms(), None);
        // Ids go on after the ones dropped; stale ids are ignored.
        w.done(c);
        let d = w.push(40, 1, 400);
        assert_eq!(d, 3);
        w.done(a);
        assert_eq!(w.advance(), None);
        w.done(d);
        assert_eq!(w.advance(), Some(40));
    }
}
