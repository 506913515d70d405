//! Samples: the write path of agent batches ([`Store::write`], one group commit for many hosts)
//! and the queries over unsealed samples (`raw` CF) and sealed chunks (`chunks` CF) alike.
//!
//! The write path is the store's one entry for agent data: a batch's samples go to `raw`, and
//! in the same synced `WriteBatch` its OOM kills and top-oom rankings ([`super::oom`]) and each
//! host's dedup state ([`super::hosts`]). Sealing raw samples into chunks is in
//! [`super::maintenance`].

use fleet_proto::v1::{Activity, Sample};
use rocksdb::{DBRawIterator, WriteBatch};

use super::buckets::raw;
use super::engine::lock;
use super::keys::{self, NtpKey, RawKey};
use super::oom::OomWrite;
use super::values;
use super::{
    validate_oom_event, validate_sample, IngestItem, Span, StorageError, Store, StoredRow,
    WriteOutcome, CF_CHUNKS, CF_HOSTS, CF_NTP, CF_OUTBOX, CF_RAW,
};

impl Store {
    /// Stores a group of batches (possibly from many hosts) in one atomic, synced RocksDB write
    /// (group commit). An item whose `seq` is at or below its host's watermark (`last_seq`) in
    /// the same epoch is skipped as [`WriteOutcome::Duplicate`]; an item of another epoch starts
    /// that epoch (a wiped agent spool restarts its numbering) from a watermark of 0.
    ///
    /// The watermark is contiguous over what the agent sent: an item is stored only when the
    /// watermark has reached its `after_seq` (the seq its stream sent before it), else it is
    /// [`WriteOutcome::Blocked`]. So when a group fails, the later batches of its streams, even
    /// in a later group that succeeds, are not stored past the failed ones, and the welcome of
    /// the agent's next stream never releases a batch that was not stored. Items of one host in
    /// one group are taken in order, so a stream's consecutive batches may share a group.
    ///
    /// The hosts' epoch, watermark, last-seen time, dropped-sample count and kernel log status
    /// are updated in the same write, so a crash never keeps data without its seq or a seq
    /// without its data. Returns one outcome per item, in order; when it returns `Ok`, every
    /// `Stored` item is durable.
    ///
    /// An item stores its samples in `raw` (less their `top_oom`, which goes to `topoom`; a
    /// sample that carried nothing else is not stored in `raw`), its OOM events in `events`, and
    /// its NTP measurements in `ntp` (a measurement of the same host and millisecond as a stored
    /// one replaces it). An event with a `kmsg_seq` that the host already has stored for the same boot (from an
    /// earlier batch or earlier in this group) is skipped: the agent re-read the kernel log.
    ///
    /// # Errors
    /// Nothing is written when it fails: [`StorageError::UnknownHost`] for an unregistered
    /// `host_num`, [`StorageError::InvalidSample`] if a sample fails [`validate_sample`] and
    /// [`StorageError::InvalidEvent`] if an event fails [`validate_oom_event`] (the server should
    /// validate each batch on receipt), [`StorageError::InvalidSample`] for an NTP measurement
    /// before 1970, [`StorageError::Rocks`] if a read or the write fails.
    pub fn write(
        &self,
        items: &[IngestItem],
        now_ms: i64,
    ) -> Result<Vec<WriteOutcome>, StorageError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        for item in items {
            for s in &item.samples {
                validate_sample(s).map_err(|e| {
                    StorageError::InvalidSample(format!(
                        "host {} seq {}: {e}",
                        item.host_num, item.seq
                    ))
                })?;
            }
            if let Some((t, _)) = item.clocks.iter().find(|(t, _)| *t < 0) {
                return Err(StorageError::InvalidSample(format!(
                    "host {} seq {}: NTP measurement time {t} is before 1970",
                    item.host_num, item.seq
                )));
            }
            for ev in &item.oom_events {
                validate_oom_event(ev).map_err(|e| {
                    StorageError::InvalidEvent(format!(
                        "host {} seq {}: {e}",
                        item.host_num, item.seq
                    ))
                })?;
            }
        }
        let db = self.db()?;
        let raw = db.cf(CF_RAW)?;
        let hosts = db.cf(CF_HOSTS)?;
        let ntp = db.cf(CF_NTP)?;
        let outbox_cf = db.cf(CF_OUTBOX)?;

        let _w = lock(&self.write_lock);
        // Remote-write: what is stored is appended to the outbox in the same write.
        let mut outbox = self.outbox.begin();
        // The records this group changes, starting from the cached ones, with the time of each
        // host's latest ranking.
        let (mut changed, mut oom) = {
            let reg = self.read_registry();
            let changed = reg.records_of(items.iter().map(|i| i.host_num))?;
            let oom = OomWrite::new(self, &db, &reg, changed.keys().copied())?;
            (changed, oom)
        };

        let mut batch = WriteBatch::default();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut buf = Vec::new();
        let mut min_window = u64::MAX;
        for item in items {
            let rec = changed
                .get_mut(&item.host_num)
                .expect("every host was looked up above");
            let watermark = if rec.epoch == item.epoch {
                rec.last_seq
            } else {
                0
            };
            if rec.epoch == item.epoch && item.seq <= watermark {
                outcomes.push(WriteOutcome::Duplicate);
                continue;
            }
            if item.after_seq > watermark {
                outcomes.push(WriteOutcome::Blocked);
                continue;
            }
            rec.epoch = item.epoch;
            rec.last_seq = item.seq;
            rec.dropped_samples = item.dropped_samples;
            rec.last_seen_ms = rec.last_seen_ms.max(now_ms);
            if let Some(k) = item.kmsg {
                rec.kmsg = k;
            }
            for s in &item.samples {
                // validate_sample checked time_ms >= 0.
                let time_ms = s.time_ms as u64;
                let window = keys::window_start_s(time_ms, self.window_s);
                min_window = min_window.min(window);
                let sar_only;
                let sar = if s.top_oom.is_empty() {
                    s
                } else {
                    oom.put_ranking(&mut batch, item.host_num, window, s);
                    if s.records.is_empty() {
                        continue;
                    }
                    sar_only = Sample {
                        time_ms: s.time_ms,
                        interval_ms: s.interval_ms,
                        records: s.records.clone(),
                        top_oom: Vec::new(),
                        clock: None,
                    };
                    &sar_only
                };
                let key = keys::raw_key(&RawKey {
                    window_start_s: window,
                    host_num: item.host_num,
                    time_ms,
                    seq: item.seq,
                });
                values::encode_raw_sample(sar, &mut buf)?;
                batch.put_cf(raw, key, &buf);
            }
            for (time_ms, clock) in &item.clocks {
                // Checked above: not negative.
                let time_ms = *time_ms as u64;
                let window = keys::window_start_s(time_ms, self.window_s);
                min_window = min_window.min(window);
                let key = keys::ntp_key(&NtpKey {
                    window_start_s: window,
                    host_num: item.host_num,
                    time_ms,
                });
                batch.put_cf(ntp, key, values::encode_clock(clock));
            }
            let mut repeated_kills = Vec::new();
            for (index, ev) in item.oom_events.iter().enumerate() {
                match oom.put_kill(&mut batch, item, index, ev)? {
                    Some(window) => min_window = min_window.min(window),
                    // At most MAX_EVENTS_PER_BATCH events: the index fits.
                    None => repeated_kills.push(index as u32),
                }
            }
            if let Some(o) = &mut outbox {
                o.append(
                    &mut batch,
                    outbox_cf,
                    &self.outbox,
                    item,
                    &repeated_kills,
                    now_ms,
                );
            }
            outcomes.push(WriteOutcome::Stored { repeated_kills });
        }
        oom.log_repeated();
        // Records of hosts whose items were all duplicates are rewritten unchanged: harmless.
        if outcomes.iter().any(WriteOutcome::is_stored) {
            for rec in changed.values() {
                batch.put_cf(
                    hosts,
                    keys::host_key(&rec.identity.host_id),
                    values::encode_host_record(rec, oom.latest_ms(rec.num)),
                );
            }
            // Refused while the store is not writable; a failure makes it failing. Either way
            // nothing of the group is acknowledged, and the registry keeps the old records.
            db.commit(batch)?;
            let mut reg = self.write_registry();
            for (num, rec) in changed {
                reg.by_num.insert(num, rec);
            }
            oom.commit(&mut reg);
            if let Some(o) = outbox {
                self.outbox.commit(o);
            }
        }
        if min_window != u64::MAX {
            let mut floor = lock(&self.retention_floor_s);
            *floor = (*floor).min(min_window);
        }
        Ok(outcomes)
    }

    /// Rows of one activity of one host with `from_ms <= time_ms <= to_ms`, ordered by time then
    /// instance, from sealed chunks and unsealed samples alike (one consistent snapshot). Values
    /// are rounded to two decimals whether sealed or not (see [`super::chunk::quantize`]). When a
    /// (time, instance) was stored twice, the later write wins.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for `Activity::Unspecified`; a corruption error if a
    /// key, sample or chunk in the range does not decode; [`StorageError::Rocks`] on read errors.
    pub fn query(
        &self,
        host_num: u32,
        activity: Activity,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredRow>, StorageError> {
        let (act_i32, act) = (activity as i32, activity_byte(activity)?);
        let Some(span) = Span::new(from_ms, to_ms, self.window_s) else {
            return Ok(Vec::new());
        };
        let db = self.db()?;
        let chunks_cf = db.cf(CF_CHUNKS)?;
        let raw_cf = db.cf(CF_RAW)?;
        let snapshot = db.snapshot();
        let mut rows: Vec<StoredRow> = Vec::new();

        // Sealed chunks: one seek per window, jumping over windows with no chunks at all.
        let mut it = snapshot.raw_iterator_cf_opt(chunks_cf, span.chunk_reads());
        let mut decoder = ChunkDecoder::new(|key: &[u8]| Ok(snapshot.get_cf(chunks_cf, key)?));
        let mut w = span.w_from;
        let series = |w| keys::chunk_series_prefix(w, host_num, act);
        while let Some(found) =
            self.seek_window(&mut it, keys::PREFIX_CHUNK, w, span.w_to, series)?
        {
            let prefix = series(found);
            while let (Some(key), Some(value)) = (it.key(), it.value()) {
                if !key.starts_with(&prefix) {
                    break;
                }
                let ck = keys::decode_chunk_key(key)?;
                for r in decoder.rows(&ck, value)? {
                    if span.contains_i64(r.time_ms) {
                        rows.push(StoredRow {
                            time_ms: r.time_ms,
                            interval_ms: r.interval_ms,
                            instance: ck.instance.clone(),
                            values: r.values,
                        });
                    }
                }
                it.next();
            }
            w = found.saturating_add(self.window_s);
        }
        it.status()?;
        drop(it);

        // Unsealed samples, after the chunks so that they win a tie (as sealing decides).
        let mut it = snapshot.raw_iterator_cf_opt(raw_cf, span.raw_reads());
        let mut w = span.w_from;
        let host = |w| keys::raw_host_prefix(w, host_num);
        while let Some(found) = self.seek_window(&mut it, keys::PREFIX_RAW, w, span.w_to, host)? {
            raw::read_rows_of(&mut it, &host(found), &span, act_i32, |instance, r| {
                rows.push(StoredRow {
                    time_ms: r.time_ms,
                    interval_ms: r.interval_ms,
                    instance,
                    values: r.values,
                });
            })?;
            w = found.saturating_add(self.window_s);
        }
        it.status()?;

        // Stable: of equal (time, instance) rows the last pushed is the latest write.
        rows.sort_by(|a, b| {
            a.time_ms
                .cmp(&b.time_ms)
                .then_with(|| a.instance.cmp(&b.instance))
        });
        dedup_keep_last(&mut rows, |a, b| {
            a.time_ms == b.time_ms && a.instance == b.instance
        });
        Ok(rows)
    }
}

impl Store {
    /// Seeks `it` to the first key starting with `prefix(w)` in the first window `w` from
    /// `from_w` to `to_w` that has one, jumping over windows without any key of the kind
    /// (`kind`: the key prefix byte; keys are window-first); returns that window, or `None` when
    /// there is none. One seek per window at most.
    ///
    /// # Errors
    /// A corruption error if a key found does not decode; [`StorageError::Rocks`] on read
    /// errors.
    pub(super) fn seek_window<P: AsRef<[u8]>>(
        &self,
        it: &mut DBRawIterator<'_>,
        kind: u8,
        from_w: u64,
        to_w: u64,
        prefix: impl Fn(u64) -> P,
    ) -> Result<Option<u64>, StorageError> {
        let mut w = from_w;
        while w <= to_w {
            let p = prefix(w);
            it.seek(p.as_ref());
            let Some(key) = it.key() else {
                it.status()?;
                return Ok(None);
            };
            let found = keys::decode_window(key, kind)?;
            if found > w {
                w = found;
            } else if key.starts_with(p.as_ref()) {
                return Ok(Some(w));
            } else {
                w = w.saturating_add(self.window_s);
            }
        }
        Ok(None)
    }
}

/// The key byte of a sar activity.
///
/// # Errors
/// [`StorageError::InvalidArgument`] for `Activity::Unspecified` (or a value without a schema).
pub(super) fn activity_byte(activity: Activity) -> Result<u8, StorageError> {
    let act_i32 = activity as i32;
    match fleet_proto::schema::schema_of_i32(act_i32) {
        Some(_) => u8::try_from(act_i32)
            .map_err(|_| StorageError::InvalidArgument(format!("activity {act_i32} out of range"))),
        None => Err(StorageError::InvalidArgument(format!(
            "cannot query activity {activity:?}"
        ))),
    }
}

/// Like `Vec::dedup_by`, but of each run of equal neighbours keeps the last one.
pub(super) fn dedup_keep_last<T>(v: &mut Vec<T>, same: impl Fn(&T, &T) -> bool) {
    if v.len() < 2 {
        return;
    }
    let mut keep = vec![true; v.len()];
    for i in 0..v.len() - 1 {
        if same(&v[i], &v[i + 1]) {
            keep[i] = false;
        }
    }
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

#[cfg(test)]
mod tests;
mod times;

pub(super) use times::{times_key, ChunkDecoder, TIMES_ACTIVITY};
