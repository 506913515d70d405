//! OOM kills (`events` CF) with their deduplication index, and top-oom rankings (`topoom` CF).
//!
//! Both arrive in agent batches and are stored by [`Store::write`] in the same synced write as
//! the batch's samples and dedup state; [`OomWrite`] is that part of the write. A kill the agent
//! sends again (it re-read the kernel log) is recognised by the `0x31` index and stored once
//! (see [`super::keys`], "OOM events"). An amendment (`OomEvent.amends`: the agent sent the kill
//! at its kill line, and now the whole event again with what later lines of the report said)
//! replaces the stored kill under the key, and so the id, it already has; it is never a second
//! kill. The latest ranking of each host is also kept in memory for [`Store::top_oom_latest`].
//! The reads here are the `fleetctl oom` and `top-oom` queries.

use std::collections::HashMap;

use fleet_proto::v1::{OomEvent, OomProcess, Sample};
use rocksdb::{ColumnFamily, ReadOptions, WriteBatch, DB};

use super::engine::{cf, Db};
use super::hosts::Registry;
use super::keys::{self, EventKey, TopOomKey};
use super::values::{self, NO_TOP_OOM};
use super::{
    sorted_hosts, IngestItem, Span, StorageError, Store, StoredOomKill, CF_EVENTS, CF_TOPOOM,
};

/// A host's latest top-oom ranking, as cached in the [`Registry`].
#[derive(Clone)]
pub(super) struct LatestTopOom {
    pub(super) time_ms: i64,
    pub(super) processes: Vec<OomProcess>,
}

/// Where the kill an index entry names is.
struct Found {
    key: [u8; keys::EVENT_KEY_LEN],
    /// Put by this group (not in the database yet).
    in_group: bool,
}

/// The OOM part of one group commit: puts the rankings and kills of the group's batches into
/// its `WriteBatch`, and keeps what the registry learns until that batch is durable
/// ([`OomWrite::commit`]). Used under `write_lock`.
pub(super) struct OomWrite<'a> {
    db: &'a DB,
    window_s: u64,
    events: &'a ColumnFamily,
    topoom: &'a ColumnFamily,
    /// The time of the latest ranking of each host of the group that has one, as cached, then
    /// as the group changes it ([`NO_TOP_OOM`] for a host whose first one is in this group).
    latest_ms: HashMap<u32, i64>,
    /// Rankings newer than the host's latest, to cache once the write is durable.
    new_latest: HashMap<u32, LatestTopOom>,
    /// Event index keys this group adds (the database does not show them yet), with the event
    /// key each points to.
    new_index: HashMap<[u8; keys::EVENT_SEQ_KEY_LEN], [u8; keys::EVENT_KEY_LEN]>,
    /// Kills skipped as already stored.
    repeated: u64,
    /// Kills replaced by their amendment.
    amended: u64,
}

impl<'a> OomWrite<'a> {
    /// Starts the OOM part of a group changing the given hosts, with their latest rankings'
    /// times from the registry.
    pub(super) fn new(
        store: &Store,
        db: &'a Db<'_>,
        reg: &Registry,
        hosts: impl IntoIterator<Item = u32>,
    ) -> Result<Self, StorageError> {
        let latest_ms = hosts
            .into_iter()
            .filter_map(|h| reg.top_oom_ms(h).map(|t| (h, t)))
            .collect();
        Ok(OomWrite {
            db,
            window_s: store.window_s,
            events: db.cf(CF_EVENTS)?,
            topoom: db.cf(CF_TOPOOM)?,
            latest_ms,
            new_latest: HashMap::new(),
            new_index: HashMap::new(),
            repeated: 0,
            amended: 0,
        })
    }

    /// Puts the ranking that `sample` (of `host_num`, in `window`) carries, highest `oom_score`
    /// first; it becomes the host's latest unless a later one is known.
    pub(super) fn put_ranking(
        &mut self,
        batch: &mut WriteBatch,
        host_num: u32,
        window: u64,
        sample: &Sample,
    ) {
        let mut processes = sample.top_oom.clone();
        // Stable: equal scores keep the agent's order.
        processes.sort_by_key(|p| std::cmp::Reverse(p.oom_score));
        let key = keys::topoom_key(&TopOomKey {
            window_start_s: window,
            host_num,
            // validate_sample checked time_ms >= 0.
            time_ms: sample.time_ms as u64,
        });
        batch.put_cf(self.topoom, key, values::encode_ranking(&processes));
        // At or after: a later write of the same time replaced the stored ranking.
        let latest = self.latest_ms.entry(host_num).or_insert(NO_TOP_OOM);
        if sample.time_ms >= *latest {
            *latest = sample.time_ms;
            self.new_latest.insert(
                host_num,
                LatestTopOom {
                    time_ms: sample.time_ms,
                    processes,
                },
            );
        }
    }

    /// Puts the `index`th OOM kill of `item`, with its index entry when it has a `kmsg_seq`.
    /// Returns the kill's window, or `None` when the host already has it stored for the same
    /// boot (from an earlier batch or earlier in this group): then nothing is put, unless the
    /// event is an amendment, which replaces the stored kill (see [`OomWrite::amend`]). `None`
    /// means no new kill either way.
    ///
    /// # Errors
    /// [`StorageError::Rocks`] if the index cannot be read.
    pub(super) fn put_kill(
        &mut self,
        batch: &mut WriteBatch,
        item: &IngestItem,
        index: usize,
        ev: &OomEvent,
    ) -> Result<Option<u64>, StorageError> {
        if ev.amends {
            if let Some(seq) = ev.kmsg_seq {
                let index_key =
                    keys::event_seq_key(item.host_num, keys::boot_id_hash(&ev.boot_id), seq);
                if let Some(found) = self.stored_key(&index_key)? {
                    self.amend(batch, found, ev)?;
                    return Ok(None);
                }
            } else {
                // Nothing names the kill it amends (agents send none such): no kill of its own.
                self.repeated += 1;
                return Ok(None);
            }
            // The kill it amends is not stored (retention dropped it, or it never came): this
            // is the kill, stored as one.
        }
        // validate_oom_event checked time_ms >= 0 and kmsg_seq < 2^63.
        let time_ms = ev.time_ms as u64;
        let window = keys::window_start_s(time_ms, self.window_s);
        let key = keys::event_key(&EventKey {
            window_start_s: window,
            host_num: item.host_num,
            time_ms,
            disc: match ev.kmsg_seq {
                Some(seq) => seq,
                None => keys::kmsgless_disc(item.epoch, item.seq, index as u64),
            },
        });
        if let Some(seq) = ev.kmsg_seq {
            let index_key =
                keys::event_seq_key(item.host_num, keys::boot_id_hash(&ev.boot_id), seq);
            if self.stored_key(&index_key)?.is_some() {
                self.repeated += 1;
                return Ok(None);
            }
            self.new_index.insert(index_key, key);
            batch.put_cf(self.events, index_key, key);
        }
        let value = if ev.amends {
            values::encode_oom_event(&first_version(ev))
        } else {
            values::encode_oom_event(ev)
        };
        batch.put_cf(self.events, key, value);
        Ok(Some(window))
    }

    /// The event key an index entry points to: one this group adds, or one stored.
    fn stored_key(
        &self,
        index_key: &[u8; keys::EVENT_SEQ_KEY_LEN],
    ) -> Result<Option<Found>, StorageError> {
        if let Some(key) = self.new_index.get(index_key) {
            return Ok(Some(Found {
                key: *key,
                in_group: true,
            }));
        }
        let Some(value) = self.db.get_pinned_cf(self.events, index_key)? else {
            return Ok(None);
        };
        let key: [u8; keys::EVENT_KEY_LEN] =
            value
                .as_ref()
                .try_into()
                .map_err(|_| StorageError::Corrupt {
                    what: "OOM event index entry",
                    detail: format!("{} bytes", value.len()),
                })?;
        Ok(Some(Found {
            key,
            in_group: false,
        }))
    }

    /// Replaces the kill stored under `found` by its amendment `ev`, which keeps the key's time
    /// (the kill's id does not change, whatever time the amendment says). Skipped when the kill
    /// is no longer there (retention deleted its window, the index entry goes next).
    fn amend(
        &mut self,
        batch: &mut WriteBatch,
        Found { key, in_group }: Found,
        ev: &OomEvent,
    ) -> Result<(), StorageError> {
        if !in_group && self.db.get_pinned_cf(self.events, key)?.is_none() {
            self.repeated += 1;
            return Ok(());
        }
        let ek = keys::decode_event_key(&key)?;
        let mut event = first_version(ev);
        // The key holds a time at most i64::MAX: validate_oom_event checked it when it was put.
        event.time_ms = ek.time_ms as i64;
        batch.put_cf(self.events, key, values::encode_oom_event(&event));
        self.amended += 1;
        Ok(())
    }

    /// The `top_oom_ms` to write in the record of `host_num`.
    pub(super) fn latest_ms(&self, host_num: u32) -> Option<i64> {
        self.latest_ms.get(&host_num).copied().filter(|&t| t >= 0)
    }

    /// Logs the kills skipped as already stored, and those amended, if any.
    pub(super) fn log_repeated(&self) {
        if self.repeated > 0 {
            tracing::debug!(events = self.repeated, "OOM events already stored; skipped");
        }
        if self.amended > 0 {
            tracing::debug!(
                events = self.amended,
                "OOM events amended by the rest of their report"
            );
        }
    }

    /// Caches the new latest rankings, once the write is durable.
    pub(super) fn commit(self, reg: &mut Registry) {
        reg.top_oom.extend(self.new_latest);
    }
}

/// The event as stored: an amendment is stored as the kill it is (`amends` is what it did on
/// the wire, not part of the kill).
fn first_version(ev: &OomEvent) -> OomEvent {
    OomEvent {
        amends: false,
        ..ev.clone()
    }
}

/// Reads back the ranking a host record names as the host's latest. `None` when retention
/// dropped it, and also (with a warning) when it does not decode: a damaged ranking must not
/// keep the collector from starting, and `top_oom_before` still reports it as an error.
pub(super) fn load_top_oom(
    db: &DB,
    window_s: u64,
    host_num: u32,
    time_ms: i64,
) -> Option<LatestTopOom> {
    let t = u64::try_from(time_ms).ok()?;
    let key = keys::topoom_key(&TopOomKey {
        window_start_s: keys::window_start_s(t, window_s),
        host_num,
        time_ms: t,
    });
    let loaded = cf(db, CF_TOPOOM)
        .and_then(|cf| Ok(db.get_pinned_cf(cf, key)?))
        .and_then(|v| v.map(|v| values::decode_ranking(&v)).transpose());
    match loaded {
        Ok(Some(processes)) => Some(LatestTopOom { time_ms, processes }),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(host_num, time_ms, %error, "latest top-oom ranking unreadable; ignored");
            None
        }
    }
}

impl Store {
    /// The OOM kills of the given hosts (of every host when `hosts` is empty) with
    /// `from_ms <= time_ms <= to_ms`, newest first (kills of the same millisecond by host number,
    /// then key), at most `limit`. Reads one consistent snapshot backwards from the newest window
    /// of the range and stops at the first window boundary after `limit` kills, jumping over the
    /// hosts not asked for.
    ///
    /// # Errors
    /// A corruption error if a key or event in the range does not decode; [`StorageError::Rocks`]
    /// on read errors.
    pub fn oom_kills(
        &self,
        hosts: &[u32],
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredOomKill>, StorageError> {
        let Some(span) = Span::new(from_ms, to_ms, self.window_s).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let hosts = sorted_hosts(hosts);

        let db = self.db()?;
        let events_cf = db.cf(CF_EVENTS)?;
        let snapshot = db.snapshot();
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(keys::event_window_prefix(span.w_from).to_vec());
        ro.set_iterate_upper_bound(keys::event_window_prefix(span.w_to.saturating_add(1)).to_vec());
        let mut it = snapshot.raw_iterator_cf_opt(events_cf, ro);
        it.seek_to_last();

        let mut out: Vec<StoredOomKill> = Vec::new();
        // The kills of the window being read: keys run by host within a window, so a window is
        // sorted by time before it joins `out` (earlier windows hold only older kills).
        let mut window: Vec<(EventKey, StoredOomKill)> = Vec::new();
        let flush = |window: &mut Vec<(EventKey, StoredOomKill)>, out: &mut Vec<StoredOomKill>| {
            window.sort_by_key(|(k, _)| (std::cmp::Reverse(k.time_ms), k.host_num, k.disc));
            out.extend(window.drain(..).map(|(_, kill)| kill));
        };
        let mut current_w = None;
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            let ek = keys::decode_event_key(key)?;
            if current_w != Some(ek.window_start_s) {
                flush(&mut window, &mut out);
                if out.len() >= limit {
                    break;
                }
                current_w = Some(ek.window_start_s);
            }
            if !hosts.is_empty() && hosts.binary_search(&ek.host_num).is_err() {
                // Jump to the last key of the next selected host below this one in this window,
                // or, if there is none, to the last key of the windows before.
                let below = hosts.partition_point(|&h| h < ek.host_num);
                match below.checked_sub(1).map(|i| hosts[i]) {
                    // h < ek.host_num, so h + 1 does not overflow.
                    Some(h) => it.seek_for_prev(keys::event_host_prefix(ek.window_start_s, h + 1)),
                    None => it.seek_for_prev(keys::event_window_prefix(ek.window_start_s)),
                }
                continue;
            }
            if span.contains(ek.time_ms) {
                window.push((ek, values::decode_oom_kill(&ek, value)?));
            }
            it.prev();
        }
        it.status()?;
        flush(&mut window, &mut out);
        out.truncate(limit);
        Ok(out)
    }

    /// One OOM kill by its id (see [`keys::kill_id`]): one get. The returned id is the canonical
    /// (lowercase) spelling.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] if the id is malformed; a corruption error if the stored
    /// event does not decode; [`StorageError::Rocks`] on read errors.
    pub fn oom_kill(&self, id: &str) -> Result<Option<StoredOomKill>, StorageError> {
        let ek = keys::parse_kill_id(id, self.window_s)
            .map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        let db = self.db()?;
        let events_cf = db.cf(CF_EVENTS)?;
        let found = match db.get_pinned_cf(events_cf, keys::event_key(&ek))? {
            Some(v) => Some(values::decode_oom_kill(&ek, &v)?),
            None => None,
        };
        Ok(found)
    }

    /// The latest top-oom ranking of a host, from memory: its time and the processes, highest
    /// `oom_score` first. `None` for a host that never sent one (or whose last one expired).
    pub fn top_oom_latest(&self, host_num: u32) -> Option<(i64, Vec<OomProcess>)> {
        self.read_registry()
            .top_oom
            .get(&host_num)
            .map(|l| (l.time_ms, l.processes.clone()))
    }

    /// The last ranking of a host taken at or before `at_ms` (the evidence beside a kill), among
    /// those retention kept. From memory when the latest ranking qualifies; otherwise a backward
    /// search of one consistent snapshot that costs one or two seeks per earlier window holding
    /// rankings.
    ///
    /// # Errors
    /// A corruption error if a key or the ranking found does not decode; [`StorageError::Rocks`]
    /// on read errors.
    pub fn top_oom_before(
        &self,
        host_num: u32,
        at_ms: i64,
    ) -> Result<Option<(i64, Vec<OomProcess>)>, StorageError> {
        let Ok(at) = u64::try_from(at_ms) else {
            return Ok(None);
        };
        match self.read_registry().top_oom.get(&host_num) {
            // Every ranking of the host is at or before its latest one.
            None => return Ok(None),
            Some(l) if l.time_ms <= at_ms => return Ok(Some((l.time_ms, l.processes.clone()))),
            Some(_) => {}
        }
        let db = self.db()?;
        let topoom_cf = db.cf(CF_TOPOOM)?;
        let snapshot = db.snapshot();
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(vec![keys::PREFIX_TOPOOM]);
        let mut it = snapshot.raw_iterator_cf_opt(topoom_cf, ro);
        let (mut w, mut t) = (keys::window_start_s(at, self.window_s), at);
        loop {
            // The last key at or before (w, host, t): ours if the host has a ranking in w.
            it.seek_for_prev(keys::topoom_key(&TopOomKey {
                window_start_s: w,
                host_num,
                time_ms: t,
            }));
            let (Some(key), Some(value)) = (it.key(), it.value()) else {
                break;
            };
            let k = keys::decode_topoom_key(key)?;
            if (k.window_start_s, k.host_num) == (w, host_num) {
                let time_ms = i64::try_from(k.time_ms).map_err(|_| StorageError::Corrupt {
                    what: "top-oom key",
                    detail: format!("time_ms {}", k.time_ms),
                })?;
                return Ok(Some((time_ms, values::decode_ranking(value)?)));
            }
            if k.window_start_s == w {
                // A lower host in w: none of ours there; go to the windows before.
                it.seek_for_prev(keys::topoom_window_prefix(w));
                let Some(key) = it.key() else { break };
                w = keys::decode_topoom_key(key)?.window_start_s;
            } else {
                w = k.window_start_s;
            }
            t = u64::MAX;
        }
        it.status()?;
        Ok(None)
    }

    /// The deduplication index entries (`0x31` keys) whose kill lies in a window before `end`:
    /// what retention deletes beside the expired kills (the index is not time-first).
    pub(super) fn expired_event_index(
        &self,
        db: &Db<'_>,
        end: u64,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let events_cf = db.cf(CF_EVENTS)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(vec![keys::PREFIX_EVENT_SEQ + 1]);
        let mut it = db.raw_iterator_cf_opt(events_cf, ro);
        it.seek(keys::event_seq_prefix());
        let mut stale = Vec::new();
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if key.len() != keys::EVENT_SEQ_KEY_LEN {
                return Err(StorageError::Corrupt {
                    what: "OOM event index key",
                    detail: format!("{} bytes", key.len()),
                });
            }
            if keys::decode_event_key(value)?.window_start_s < end {
                stale.push(key.to_vec());
            }
            it.next();
        }
        it.status()?;
        Ok(stale)
    }

    /// Drops from memory the latest rankings of windows before `end` (retention deleted them).
    pub(super) fn forget_expired_rankings(&self, end: u64) {
        self.write_registry()
            .top_oom
            .retain(|_, l| keys::window_start_s(l.time_ms as u64, self.window_s) >= end);
    }
}

#[cfg(test)]
mod tests;
