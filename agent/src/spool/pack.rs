//! What goes into the spool: batches that meet the rules the collector enforces
//! ([`fleet_proto::check`]) and fit one message, whatever came in. Each batch is checked with
//! the collector's own check before it is appended, so the spool never holds a batch the
//! collector would refuse for its shape.
//!
//! - OOM events ([`spool_events`]): any number, split into batches of at most
//!   [`MAX_EVENTS_PER_BATCH`] events and [`EVENT_BATCH_BYTES`] encoded (an event larger goes
//!   alone, up to [`MAX_BATCH_BYTES`]), one frame each. An event
//!   the rules refuse is repaired, never dropped: a time at or before 1970 becomes now, an
//!   impossible `kmsg_seq` is left out, and a detail over [`MAX_EVENT_DETAIL_BYTES`] (the kmsg
//!   watcher keeps details under it; this is the last resort) is replaced by a short one that
//!   says how large it was.
//! - A sample ([`spool_sample`]): records the rules refuse (a non-finite value, an empty or
//!   overlong instance name) are left out, records beyond [`MAX_RECORDS_PER_SAMPLE`] cut; a
//!   sample still refused (its time) is not spooled and counts in `dropped_samples`.
//!
//! Every change is counted in the returned [`Repairs`], for the caller to log.

use fleet_proto::check::{check_batch, check_event, check_record, fits_message};
use fleet_proto::limits::{
    MAX_BATCH_BYTES, MAX_EVENTS_PER_BATCH, MAX_EVENT_DETAIL_BYTES, MAX_RECORDS_PER_SAMPLE,
};
use fleet_proto::v1::{Batch, OomEvent, Sample};
use prost::Message;

use super::{Spool, SpoolError};
use crate::now_ms;

/// Room kept in a batch of events for its own fields: its seq, and those written after the
/// spooled bytes when it is sent (seq again, dropped_samples, kmsg: see `link::outbound`).
const BATCH_FIELDS: usize = 80;

/// The size a batch of events is filled to (an event larger alone goes alone, up to
/// [`MAX_BATCH_BYTES`]). The gRPC stream's encode buffer keeps the capacity of the largest message
/// it ever sent, so an agent that starts on a kernel log full of OOM reports and sent them in
/// messages of 3 MiB would hold that much for as long as it stays connected; batches of 32 KiB
/// cost a frame and a sequence number more per 32 KiB of events, which are rare.
pub const EVENT_BATCH_BYTES: usize = 32 * 1024;

/// What was changed or left out to make batches valid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repairs {
    /// Frames appended.
    pub frames: u64,
    /// Records left out of samples.
    pub records_dropped: u64,
    /// Samples not spooled (counted in `dropped_samples`).
    pub samples_dropped: u64,
    /// OOM events whose time, seq or detail was replaced.
    pub events_repaired: u64,
    /// The first problem found, in the words of the collector's check.
    pub first: Option<String>,
}

impl Repairs {
    /// Whether anything was changed or left out.
    pub fn any(&self) -> bool {
        self.records_dropped + self.samples_dropped + self.events_repaired > 0
    }

    fn note(&mut self, problem: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some(problem());
        }
    }
}

/// Spools OOM events, in as many batches as the limits need, each in a frame the spool never
/// drops. Events come out in the order they went in.
///
/// # Errors
/// The spool cannot be written.
pub fn spool_events(spool: &mut Spool, events: Vec<OomEvent>) -> Result<Repairs, SpoolError> {
    let mut repairs = Repairs::default();
    let mut batch = Batch::default();
    let mut bytes = BATCH_FIELDS;
    for mut event in events {
        repair_event(&mut event, &mut repairs);
        let len = event.encoded_len();
        let field = 1 + prost::length_delimiter_len(len) + len;
        let full =
            batch.oom_events.len() >= MAX_EVENTS_PER_BATCH || bytes + field > EVENT_BATCH_BYTES;
        if full && !batch.oom_events.is_empty() {
            append_checked(spool, &mut batch, 0, true, &mut repairs)?;
            bytes = BATCH_FIELDS;
        }
        bytes += field;
        batch.oom_events.push(event);
    }
    if !batch.oom_events.is_empty() {
        append_checked(spool, &mut batch, 0, true, &mut repairs)?;
    }
    Ok(repairs)
}

/// Makes one event pass [`check_event`] and fit a batch alone.
fn repair_event(e: &mut OomEvent, repairs: &mut Repairs) {
    let Err(problem) = check_event(e) else {
        if e.encoded_len() + BATCH_FIELDS > MAX_BATCH_BYTES {
            repairs.note(|| "an OOM event larger than one message".into());
            repairs.events_repaired += 1;
            reduce_detail(e);
        }
        return;
    };
    repairs.note(|| format!("OOM event: {problem}"));
    repairs.events_repaired += 1;
    if e.time_ms <= 0 {
        e.time_ms = now_ms();
    }
    if e.kmsg_seq.is_some_and(|seq| seq >= 1 << 63) {
        e.kmsg_seq = None;
    }
    if e.detail_json.len() > MAX_EVENT_DETAIL_BYTES
        || e.encoded_len() + BATCH_FIELDS > MAX_BATCH_BYTES
    {
        reduce_detail(e);
    }
}

/// Replaces an event's detail by one that says how large it was (the typed fields stay).
fn reduce_detail(e: &mut OomEvent) {
    let bytes = e.detail_json.len();
    e.detail_json = format!(
        "{{\"source\":{:?},\"detail_omitted_bytes\":{bytes},\"note\":\"the report's detail was larger than the collector accepts; the agent kept its fields and left the rest out\"}}",
        e.source
    );
    // Strings from the kernel log are bounded by its record size; a made-up event is not.
    for text in [
        &mut e.victim_comm,
        &mut e.oom_memcg,
        &mut e.task_memcg,
        &mut e.trigger_comm,
        &mut e.constraint,
        &mut e.gfp_mask,
    ]
    .into_iter()
    .flatten()
    {
        if text.len() > 4096 {
            let mut cut = 4096;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
    }
    if e.boot_id.len() > 4096 {
        e.boot_id.clear();
    }
}

/// Spools one sample in a batch of its own, after leaving out what the collector would refuse.
///
/// # Errors
/// The spool cannot be written.
pub fn spool_sample(spool: &mut Spool, mut sample: Sample) -> Result<Repairs, SpoolError> {
    let mut repairs = Repairs::default();
    let before = sample.records.len();
    sample.records.retain(|r| match check_record(r) {
        Ok(()) => true,
        Err(problem) => {
            repairs.note(|| format!("record {problem}"));
            false
        }
    });
    if sample.records.len() > MAX_RECORDS_PER_SAMPLE {
        repairs.note(|| format!("{} records in one sample", sample.records.len()));
        sample.records.truncate(MAX_RECORDS_PER_SAMPLE);
    }
    repairs.records_dropped = (before - sample.records.len()) as u64;
    let mut batch = Batch {
        samples: vec![sample],
        ..Batch::default()
    };
    append_checked(spool, &mut batch, 1, false, &mut repairs)?;
    Ok(repairs)
}

/// Checks `batch` with the seq it will get and appends it, or, refused, counts its samples as
/// dropped. Leaves `batch` empty.
fn append_checked(
    spool: &mut Spool,
    batch: &mut Batch,
    samples: u32,
    precious: bool,
    repairs: &mut Repairs,
) -> Result<(), SpoolError> {
    let mut batch = std::mem::take(batch);
    batch.seq = spool.next_seq();
    let verdict = check_batch(&batch)
        .map_err(|r| r.to_string())
        .and_then(|()| {
            fits_message(&batch).then_some(()).ok_or_else(|| {
                format!(
                    "{} bytes, one message holds {MAX_BATCH_BYTES}",
                    batch.encoded_len()
                )
            })
        });
    match verdict {
        Ok(()) => {
            spool.append(&batch.encode_to_vec(), samples, precious)?;
            repairs.frames += 1;
        }
        Err(problem) if !precious => {
            repairs.note(|| problem);
            repairs.samples_dropped += batch.samples.len() as u64;
            spool.count_dropped(batch.samples.len() as u64)?;
        }
        Err(problem) => {
            // Events were repaired one by one, so this is a bug: spooled anyway (never lost); if
            // the collector refuses it, it is set aside and kept for inspection.
            tracing::error!(problem = %problem, "a batch of OOM events fails the collector's check");
            spool.append(&batch.encode_to_vec(), samples, precious)?;
            repairs.frames += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_proto::v1::{Activity, Record};

    fn spool(dir: &std::path::Path) -> Spool {
        Spool::open(dir, 256 << 20, 4 << 20).unwrap().0
    }

    fn frames(s: &mut Spool) -> Vec<Batch> {
        std::iter::from_fn(|| s.next_unsent().unwrap())
            .map(|f| Batch::decode(f.payload.as_slice()).unwrap())
            .collect()
    }

    fn event(i: u64, detail_bytes: usize) -> OomEvent {
        OomEvent {
            time_ms: 1_700_000_000_000,
            kmsg_seq: Some(i),
            victim_pid: Some(i as i64),
            source: "kmsg".into(),
            detail_json: format!("{{\"raw\":[\"{}\"]}}", "x".repeat(detail_bytes)),
            ..OomEvent::default()
        }
    }

    #[test]
    fn events_are_split_by_count_and_by_size_in_order() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spool(d.path());
        // Small events: 256 to a batch at most.
        let r = spool_events(&mut s, (0..600).map(|i| event(i, 1)).collect()).unwrap();
        assert_eq!(r.frames, 3);
        assert!(!r.any());
        let batches = frames(&mut s);
        assert_eq!(
            batches
                .iter()
                .map(|b| b.oom_events.len())
                .collect::<Vec<_>>(),
            [256, 256, 88]
        );
        let pids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.oom_events.iter().map(|e| e.victim_pid.unwrap()))
            .collect();
        assert_eq!(pids, (0..600).collect::<Vec<_>>());

        // Events of 1 KiB (a report's size without its task list): 32 KiB to a batch at most.
        let r = spool_events(&mut s, (0..100).map(|i| event(i, 1000)).collect()).unwrap();
        let batches = frames(&mut s);
        assert_eq!(r.frames as usize, batches.len());
        assert_eq!(batches.len(), 4, "{} events of ~1 KiB in 32 KiB", 100);
        for b in &batches {
            assert!(b.encoded_len() <= EVENT_BATCH_BYTES, "{}", b.encoded_len());
        }
        let pids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.oom_events.iter().map(|e| e.victim_pid.unwrap()))
            .collect();
        assert_eq!(pids, (0..100).collect::<Vec<_>>());

        // Ten events of 1 MiB: one to a message.
        let r = spool_events(&mut s, (0..10).map(|i| event(i, 1 << 20)).collect()).unwrap();
        assert_eq!(r.frames, 10);
        for b in frames(&mut s) {
            assert!(b.encoded_len() <= MAX_BATCH_BYTES);
            assert_eq!(b.oom_events.len(), 1);
        }
    }

    /// A kernel log storm whose events together exceed the spool's frame limit (16 MiB) is
    /// spooled, in frames that each fit a message: it cannot stop the agent.
    #[test]
    fn events_over_the_frame_limit_in_all_are_spooled() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spool(d.path());
        let detail = MAX_EVENT_DETAIL_BYTES - 64;
        let events: Vec<OomEvent> = (0..12).map(|i| event(i, detail)).collect();
        let total: usize = events.iter().map(Message::encoded_len).sum();
        assert!(total > 16 << 20, "{total} bytes");
        let r = spool_events(&mut s, events).unwrap();
        assert_eq!(r.frames, 12, "one 2 MiB event to a message");
        assert!(!r.any(), "{r:?}");
        let batches = frames(&mut s);
        assert_eq!(
            batches.iter().map(|b| b.oom_events.len()).sum::<usize>(),
            12
        );
        for b in batches {
            assert!(fits_message(&b));
        }
    }

    #[test]
    fn refused_events_are_repaired_never_dropped() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spool(d.path());
        let mut old = event(1, 10);
        old.time_ms = 0;
        let mut seq = event(2, 10);
        seq.kmsg_seq = Some(u64::MAX);
        let huge = event(3, MAX_EVENT_DETAIL_BYTES + 10);
        let huge_bytes = huge.detail_json.len();
        let mut comm = event(4, 10);
        comm.victim_comm = Some("c".repeat(MAX_BATCH_BYTES));
        let r = spool_events(&mut s, vec![old, seq, huge, comm, event(5, 10)]).unwrap();
        assert_eq!(r.events_repaired, 4);
        assert_eq!(
            r.first.as_deref(),
            Some("OOM event: time_ms must be positive")
        );
        let events: Vec<OomEvent> = frames(&mut s)
            .into_iter()
            .flat_map(|b| b.oom_events)
            .collect();
        assert_eq!(events.len(), 5);
        assert!(events[0].time_ms > 1_700_000_000_000);
        assert_eq!(events[1].kmsg_seq, None);
        assert!(
            events[2]
                .detail_json
                .contains(&format!("\"detail_omitted_bytes\":{huge_bytes}")),
            "{}",
            events[2].detail_json
        );
        assert_eq!(events[3].victim_comm.as_ref().unwrap().len(), 4096);
        assert_eq!(events[4], event(5, 10));
        for e in &events {
            check_event(e).unwrap();
        }
    }

    fn cpu(instance: &str, v: f64) -> Record {
        Record {
            activity: Activity::Cpu as i32,
            instance: instance.into(),
            values: vec![v; 6],
        }
    }

    #[test]
    fn samples_lose_bad_records_and_a_bad_time_drops_them_counted() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spool(d.path());
        let sample = Sample {
            time_ms: 1_700_000_000_000,
            interval_ms: 1000,
            records: vec![cpu("all", 1.0), cpu("0", f64::INFINITY), cpu("", 1.0)],
            ..Sample::default()
        };
        let r = spool_sample(&mut s, sample.clone()).unwrap();
        assert_eq!((r.frames, r.records_dropped), (1, 2));
        assert_eq!(
            r.first.as_deref(),
            Some("record (cpu): %user is not a finite number")
        );
        let b = frames(&mut s).pop().unwrap();
        assert_eq!(b.samples[0].records, [cpu("all", 1.0)]);

        let r = spool_sample(
            &mut s,
            Sample {
                time_ms: -5,
                records: vec![cpu("all", 1.0)],
                ..sample
            },
        )
        .unwrap();
        assert_eq!((r.frames, r.samples_dropped), (0, 1));
        assert!(
            r.first
                .as_deref()
                .unwrap()
                .ends_with("sample 0: time_ms must be positive"),
            "{r:?}"
        );
        assert_eq!(s.dropped_samples(), 1);
        assert!(frames(&mut s).is_empty());
    }
}
