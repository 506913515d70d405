//! `spool.reserve` (`boot_id <id>\nnext_seq <n>\n`): the sequence numbers that may have left
//! the agent before their frames were synced, so that a power loss cannot make a seq be used
//! twice (see the spool's module doc, "When it is synced").

use std::fs;
use std::io;
use std::path::Path;

use super::format::parse_reserve;
use super::{io_err, sync_dir, write_atomically, SpoolError};

pub(super) const RESERVE: &str = "spool.reserve";

/// How far `spool.reserve`'s `next_seq` is raised ahead of a frame handed out before it was
/// synced.
pub const SEQ_RESERVE: u64 = 4096;

/// At open, from the spool's own `next_seq`: the `next_seq` to go on from and this boot's
/// reservation (0: none). Seqs reserved on another boot may have left and been lost with the
/// page cache, so numbering goes on above them; on the same boot every frame written is still
/// there.
pub(super) fn on_open(dir: &Path, boot_id: &str, next_seq: u64) -> (u64, u64) {
    let reserve = fs::read_to_string(dir.join(RESERVE))
        .ok()
        .and_then(|t| parse_reserve(&t));
    match reserve {
        Some((boot, seq)) if !boot_id.is_empty() && boot == boot_id => (next_seq, seq),
        Some((_, seq)) => (next_seq.max(seq), 0),
        None => (next_seq, 0),
    }
}

/// Reserves [`SEQ_RESERVE`] seqs past `seq` on `boot_id` (written atomically); the new
/// reservation.
pub(super) fn write(dir: &Path, boot_id: &str, seq: u64) -> Result<u64, SpoolError> {
    let reserved = seq + SEQ_RESERVE;
    let text = format!("boot_id {boot_id}\nnext_seq {reserved}\n");
    write_atomically(dir, &dir.join(RESERVE), &text)?;
    Ok(reserved)
}

/// The graceful stop: everything is synced, nothing is reserved.
pub(super) fn remove(dir: &Path) -> Result<(), SpoolError> {
    let path = dir.join(RESERVE);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path)(e)),
    }
}
