//! An event waiting for its report's end, and what of it leaves when the report is over.

use super::OomEvent;

/// An event waiting for its report's end: for its reaper line, or for a late header.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) event: OomEvent,
    /// `partial` for a reason a late header does not mend: a cut report or line, no kill line.
    pub(super) cut: bool,
    /// Already returned at its line ([`OomAssembler::early`](super::OomAssembler::early)).
    pub(super) sent: bool,
    /// Changed by a later line since it was returned.
    pub(super) amended: bool,
}

impl Held {
    pub(super) fn new(event: OomEvent, cut: bool) -> Held {
        Held {
            event,
            cut,
            sent: false,
            amended: false,
        }
    }

    /// Its report is over: the event, unless it was returned early and nothing changed since
    /// (then nothing), or as an amendment of what was returned early.
    pub(super) fn release(self, out: &mut Vec<OomEvent>) {
        match (self.sent, self.amended) {
            (false, _) => out.push(self.event),
            (true, true) => out.push(OomEvent {
                amends: true,
                ..self.event
            }),
            (true, false) => {}
        }
    }
}

pub(super) fn release_all(held: impl IntoIterator<Item = Held>, out: &mut Vec<OomEvent>) {
    for h in held {
        h.release(out);
    }
}
