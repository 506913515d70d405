//! The rules a batch meets to be stored, checked by both ends: the agent before it spools a
//! batch (so it never queues one the collector would refuse), the collector on receipt (so a
//! bad batch is refused alone, naming what is wrong, instead of failing a group commit).
//!
//! - [`check_batch`]: the whole batch, its first problem as a [`Refusal`] whose text is what the
//!   collector answers (`batch seq 2: sample 0 record 0 (cpu): %system is not a finite number`);
//!   [`Refusal::seq_in`] reads the seq back out of that text (the agent sets such a batch aside).
//! - [`check_sample`], [`check_record`], [`check_event`]: one part each, for an agent that
//!   repairs or leaves out the part at fault rather than the whole batch.
//! - [`fits_message`]: a batch's encoded size against [`MAX_BATCH_BYTES`], the room a batch has
//!   in one message under the gRPC decode limit.
//!
//! The collector keeps what depends on its own state (activities it does not know, clock skew)
//! apart; everything here is pure.

use std::fmt;

use prost::Message;

use crate::limits::{
    MAX_BATCH_BYTES, MAX_EVENTS_PER_BATCH, MAX_EVENT_DETAIL_BYTES, MAX_INSTANCE_BYTES,
    MAX_RECORDS_PER_SAMPLE, MAX_SAMPLES_PER_BATCH,
};
use crate::schema::schema_of_i32;
use crate::v1::{Batch, OomEvent, Record, Sample};

/// Why a batch cannot be stored: its seq and the first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub seq: u64,
    pub problem: Problem,
}

/// The first problem of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Seq 0: sequence numbers start at 1.
    Seq,
    /// Neither samples nor events.
    Empty,
    TooManySamples(usize),
    TooManyEvents(usize),
    /// A sample's own problem (its time, its record count).
    Sample {
        index: usize,
        problem: String,
    },
    /// A record of a sample.
    Record {
        sample: usize,
        index: usize,
        problem: RecordProblem,
    },
    /// An OOM event.
    Event {
        index: usize,
        problem: String,
    },
}

/// What is wrong with one record; shown as `(activity): why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// The activity's name (`cpu`), or `activity N` for one this build does not know.
    pub activity: String,
    pub why: String,
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}): {}", self.activity, self.why)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Seq => f.write_str("seq must be at least 1"),
            Problem::Empty => f.write_str("a batch carries samples, OOM events or both"),
            Problem::TooManySamples(n) => write!(
                f,
                "{n} samples; a batch holds at most {MAX_SAMPLES_PER_BATCH}"
            ),
            Problem::TooManyEvents(n) => write!(
                f,
                "{n} OOM events; a batch holds at most {MAX_EVENTS_PER_BATCH}"
            ),
            Problem::Sample { index, problem } => write!(f, "sample {index}: {problem}"),
            Problem::Record {
                sample,
                index,
                problem,
            } => write!(f, "sample {sample} record {index} {problem}"),
            Problem::Event { index, problem } => write!(f, "OOM event {index}: {problem}"),
        }
    }
}

/// The collector's answer: `batch seq N: problem`.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}: {}", self.seq, self.problem)
    }
}

impl std::error::Error for Refusal {}

const PREFIX: &str = "batch seq ";

impl Refusal {
    /// The seq of the batch a refusal's text names (`batch seq N: ...`), if it names one.
    pub fn seq_in(message: &str) -> Option<u64> {
        let rest = message.strip_prefix(PREFIX)?;
        let (digits, _) = rest.split_once(':')?;
        digits.parse().ok().filter(|&seq| seq > 0)
    }
}

/// Checks a whole batch; the first problem found, in the order samples are stored.
///
/// # Errors
/// A [`Refusal`] naming the batch, the part and what is wrong.
pub fn check_batch(b: &Batch) -> Result<(), Refusal> {
    let refuse = |problem| {
        Err(Refusal {
            seq: b.seq,
            problem,
        })
    };
    if b.seq == 0 {
        return refuse(Problem::Seq);
    }
    if b.samples.len() > MAX_SAMPLES_PER_BATCH {
        return refuse(Problem::TooManySamples(b.samples.len()));
    }
    if b.samples.is_empty() && b.oom_events.is_empty() {
        return refuse(Problem::Empty);
    }
    if b.oom_events.len() > MAX_EVENTS_PER_BATCH {
        return refuse(Problem::TooManyEvents(b.oom_events.len()));
    }
    for (index, e) in b.oom_events.iter().enumerate() {
        if let Err(problem) = check_event(e) {
            return refuse(Problem::Event { index, problem });
        }
    }
    for (si, s) in b.samples.iter().enumerate() {
        if let Err(problem) = check_sample(s) {
            return refuse(problem.at(si));
        }
    }
    Ok(())
}

/// What is wrong with one sample: its own fields, or one of its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleProblem {
    Sample(String),
    Record(usize, RecordProblem),
}

impl SampleProblem {
    /// The problem as the sample at `index` of a batch has it.
    pub fn at(self, index: usize) -> Problem {
        match self {
            SampleProblem::Sample(problem) => Problem::Sample { index, problem },
            SampleProblem::Record(ri, problem) => Problem::Record {
                sample: index,
                index: ri,
                problem,
            },
        }
    }
}

/// Checks one sample: a positive time, at most [`MAX_RECORDS_PER_SAMPLE`] records, and each
/// record ([`check_record`]).
///
/// # Errors
/// The first problem.
pub fn check_sample(s: &Sample) -> Result<(), SampleProblem> {
    if s.time_ms <= 0 {
        return Err(SampleProblem::Sample("time_ms must be positive".into()));
    }
    if s.records.len() > MAX_RECORDS_PER_SAMPLE {
        return Err(SampleProblem::Sample(format!(
            "{} records; a sample holds at most {MAX_RECORDS_PER_SAMPLE}",
            s.records.len()
        )));
    }
    for (ri, r) in s.records.iter().enumerate() {
        check_record(r).map_err(|p| SampleProblem::Record(ri, p))?;
    }
    Ok(())
}

/// Checks one record: a known activity, one value per column of its schema, an instance name
/// of 1 to [`MAX_INSTANCE_BYTES`] bytes, finite values.
///
/// # Errors
/// What is wrong, with the activity's name.
pub fn check_record(r: &Record) -> Result<(), RecordProblem> {
    let Some(schema) = schema_of_i32(r.activity) else {
        return Err(RecordProblem {
            activity: format!("activity {}", r.activity),
            why: "unknown activity".into(),
        });
    };
    let bad = |why: String| {
        Err(RecordProblem {
            activity: schema.name.into(),
            why,
        })
    };
    if r.values.len() != schema.columns.len() {
        return bad(format!(
            "{} values, the schema has {} columns",
            r.values.len(),
            schema.columns.len()
        ));
    }
    if r.instance.is_empty() {
        return bad("empty instance name".into());
    }
    if r.instance.len() > MAX_INSTANCE_BYTES {
        return bad(format!(
            "instance name of {} bytes, at most {MAX_INSTANCE_BYTES}",
            r.instance.len()
        ));
    }
    if let Some(ci) = r.values.iter().position(|v| !v.is_finite()) {
        return bad(format!("{} is not a finite number", schema.columns[ci]));
    }
    Ok(())
}

/// Checks one OOM event: a detail of at most [`MAX_EVENT_DETAIL_BYTES`], a positive time, and
/// a `kmsg_seq`, when present, below 2⁶³ (the collector's event keys use the high bit).
///
/// # Errors
/// What is wrong.
pub fn check_event(e: &OomEvent) -> Result<(), String> {
    if e.detail_json.len() > MAX_EVENT_DETAIL_BYTES {
        return Err(format!(
            "detail of {} bytes, at most {MAX_EVENT_DETAIL_BYTES}",
            e.detail_json.len()
        ));
    }
    if e.time_ms <= 0 {
        return Err("time_ms must be positive".into());
    }
    if e.kmsg_seq.is_some_and(|seq| seq >= 1 << 63) {
        return Err(format!(
            "kmsg_seq {} is 2^63 or more",
            e.kmsg_seq.unwrap_or_default()
        ));
    }
    Ok(())
}

/// Whether a batch, encoded, fits in [`MAX_BATCH_BYTES`]: with what is filled in when it is
/// sent, it stays under the gRPC message limit both ends set.
pub fn fits_message(b: &Batch) -> bool {
    b.encoded_len() <= MAX_BATCH_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::Activity;

    fn cpu(instance: &str, system: f64) -> Record {
        Record {
            activity: Activity::Cpu as i32,
            instance: instance.into(),
            values: vec![1.0, 0.0, system, 0.0, 0.0, 99.0],
        }
    }

    fn batch(seq: u64, records: Vec<Record>) -> Batch {
        Batch {
            seq,
            samples: vec![Sample {
                time_ms: 1_700_000_000_000,
                interval_ms: 1000,
                records,
                ..Sample::default()
            }],
            ..Batch::default()
        }
    }

    fn refused(b: &Batch) -> String {
        check_batch(b).unwrap_err().to_string()
    }

    #[test]
    fn a_good_batch_passes_and_each_rule_is_named() {
        check_batch(&batch(1, vec![cpu("all", 1.0)])).unwrap();
        assert_eq!(
            refused(&batch(2, vec![cpu("all", 0.0), cpu("0", f64::NAN)])),
            "batch seq 2: sample 0 record 1 (cpu): %system is not a finite number"
        );
        assert_eq!(
            refused(&batch(0, vec![])),
            "batch seq 0: seq must be at least 1"
        );
        assert_eq!(
            refused(&Batch {
                seq: 3,
                ..Batch::default()
            }),
            "batch seq 3: a batch carries samples, OOM events or both"
        );
        assert_eq!(
            refused(&batch(4, vec![cpu("", 0.0)])),
            "batch seq 4: sample 0 record 0 (cpu): empty instance name"
        );
        assert_eq!(
            refused(&batch(4, vec![cpu(&"x".repeat(256), 0.0)])),
            "batch seq 4: sample 0 record 0 (cpu): instance name of 256 bytes, at most 255"
        );
        let mut short = cpu("all", 0.0);
        short.values.pop();
        assert_eq!(
            refused(&batch(5, vec![short])),
            "batch seq 5: sample 0 record 0 (cpu): 5 values, the schema has 6 columns"
        );
        let unknown = Record {
            activity: 999,
            ..cpu("all", 0.0)
        };
        assert_eq!(
            refused(&batch(5, vec![unknown])),
            "batch seq 5: sample 0 record 0 (activity 999): unknown activity"
        );
        let mut old = batch(6, vec![]);
        old.samples[0].time_ms = 0;
        assert_eq!(
            refused(&old),
            "batch seq 6: sample 0: time_ms must be positive"
        );
        let mut many = batch(7, vec![]);
        many.samples = vec![many.samples[0].clone(); MAX_SAMPLES_PER_BATCH + 1];
        assert_eq!(
            refused(&many),
            "batch seq 7: 65 samples; a batch holds at most 64"
        );
    }

    #[test]
    fn events_are_checked_for_count_detail_time_and_seq() {
        let event = OomEvent {
            time_ms: 1_700_000_000_000,
            kmsg_seq: Some(5),
            detail_json: "{}".into(),
            ..OomEvent::default()
        };
        let events = |events: Vec<OomEvent>| Batch {
            seq: 9,
            oom_events: events,
            ..Batch::default()
        };
        check_batch(&events(vec![event.clone(); MAX_EVENTS_PER_BATCH])).unwrap();
        assert_eq!(
            refused(&events(vec![event.clone(); MAX_EVENTS_PER_BATCH + 1])),
            "batch seq 9: 257 OOM events; a batch holds at most 256"
        );
        let big = OomEvent {
            detail_json: "x".repeat(MAX_EVENT_DETAIL_BYTES + 1),
            ..event.clone()
        };
        assert_eq!(
            refused(&events(vec![event.clone(), big])),
            "batch seq 9: OOM event 1: detail of 2097153 bytes, at most 2097152"
        );
        let zero = OomEvent {
            time_ms: 0,
            ..event.clone()
        };
        assert_eq!(
            refused(&events(vec![zero])),
            "batch seq 9: OOM event 0: time_ms must be positive"
        );
        let seq = OomEvent {
            kmsg_seq: Some(1 << 63),
            ..event
        };
        assert!(refused(&events(vec![seq])).ends_with("is 2^63 or more"));
    }

    #[test]
    fn the_seq_is_read_back_from_a_refusal() {
        let r = check_batch(&batch(42, vec![cpu("", 0.0)])).unwrap_err();
        assert_eq!(Refusal::seq_in(&r.to_string()), Some(42));
        assert_eq!(Refusal::seq_in("batch seq 7: anything"), Some(7));
        for other in [
            "batch 1: too many samples",
            "batch seq : x",
            "batch seq 0: x",
            "batch seq 12",
            "malformed process list",
            "",
        ] {
            assert_eq!(Refusal::seq_in(other), None, "{other:?}");
        }
    }

    #[test]
    fn the_message_size_leaves_room_under_the_grpc_limit() {
        let mut b = batch(1, vec![cpu("all", 1.0)]);
        assert!(fits_message(&b));
        b.oom_events.push(OomEvent {
            detail_json: "x".repeat(MAX_BATCH_BYTES),
            ..OomEvent::default()
        });
        assert!(!fits_message(&b));
        // What a send adds (seq, dropped_samples, the kernel log counters, the message wrapper)
        // fits in the headroom.
        const { assert!(MAX_BATCH_BYTES + 1024 < crate::limits::MAX_MESSAGE_BYTES) };
    }
}
