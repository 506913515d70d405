//! The host registry (`hosts` CF, `0x01` keys): each host's small number, identity, first and
//! last sight, whether a session is open, and the dedup state of its spool (epoch and last
//! stored seq, changed by [`Store::write`] in the same write as the data). The whole registry is
//! cached in memory ([`Registry`]); every change is written (synced) before the cache sees it.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLockReadGuard, RwLockWriteGuard};

use fleet_proto::v1::{HostIdentity, KmsgStatus};
use rocksdb::{WriteBatch, DB};

use super::engine::{cf, lock, sync_write};
use super::oom::{load_top_oom, LatestTopOom};
use super::{keys, values};
use super::{HostRecord, StorageError, Store, CF_HOSTS};

/// The host registry as cached in memory.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) by_num: BTreeMap<u32, HostRecord>,
    pub(super) by_id: HashMap<String, u32>,
    pub(super) next_num: u32,
    /// The latest ranking of each host that has one, for `top_oom_latest` without a disk read
    /// (about 1 to 2 KiB per host for a top 10). Its time is persisted in the host record; the
    /// ranking itself is read back from `topoom` at open, one get per host.
    pub(super) top_oom: HashMap<u32, LatestTopOom>,
}

impl Registry {
    /// The persisted `top_oom_ms` of a host.
    pub(super) fn top_oom_ms(&self, num: u32) -> Option<i64> {
        self.top_oom.get(&num).map(|l| l.time_ms)
    }

    /// The cached records of the given hosts, one per host.
    ///
    /// # Errors
    /// [`StorageError::UnknownHost`] for the first host never registered.
    pub(super) fn records_of(
        &self,
        hosts: impl IntoIterator<Item = u32>,
    ) -> Result<HashMap<u32, HostRecord>, StorageError> {
        let mut out = HashMap::new();
        for num in hosts {
            if let Entry::Vacant(e) = out.entry(num) {
                let rec = self
                    .by_num
                    .get(&num)
                    .ok_or(StorageError::UnknownHost(num))?;
                e.insert(rec.clone());
            }
        }
        Ok(out)
    }

    /// Reads every host record of `db`, with each host's latest top-oom ranking, and the next
    /// host number. Each host is marked connected as `connected` says of its host id (at open:
    /// none is), on disk too when `persist`.
    pub(super) fn load(
        db: &DB,
        window_s: u64,
        persist: bool,
        connected: &dyn Fn(&str) -> bool,
    ) -> Result<Registry, StorageError> {
        let hosts = cf(db, CF_HOSTS)?;
        let mut reg = Registry::default();
        let mut it = db.raw_iterator_cf(hosts);
        it.seek(keys::host_prefix());
        let mut batch = WriteBatch::default();
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if key[0] != keys::PREFIX_HOST {
                break;
            }
            let host_id = keys::decode_host_key(key)?;
            let (mut rec, top_oom_ms) = values::decode_host_record(value)?;
            if rec.identity.host_id != host_id {
                return Err(StorageError::Corrupt {
                    what: "host record",
                    detail: format!(
                        "key says {host_id:?}, record says {:?}",
                        rec.identity.host_id
                    ),
                });
            }
            let open = connected(host_id);
            if rec.connected != open {
                rec.connected = open;
                batch.put_cf(hosts, key, values::encode_host_record(&rec, top_oom_ms));
            }
            if let Some(t) = top_oom_ms {
                if let Some(latest) = load_top_oom(db, window_s, rec.num, t) {
                    reg.top_oom.insert(rec.num, latest);
                }
            }
            reg.by_id.insert(rec.identity.host_id.clone(), rec.num);
            reg.by_num.insert(rec.num, rec);
            it.next();
        }
        it.status()?;
        drop(it);

        let stored_next = match db.get_cf(hosts, keys::meta_key(keys::META_NEXT_HOST_NUM))? {
            Some(v) => values::decode_next_host_num(&v)?,
            None => 1,
        };
        let after_max = reg
            .by_num
            .keys()
            .next_back()
            .map_or(1, |n| n.saturating_add(1));
        reg.next_num = stored_next.max(after_max).max(1);
        if persist && !batch.is_empty() {
            db.write_opt(batch, &sync_write())?;
        }
        Ok(reg)
    }
}

impl Store {
    /// Registers or updates a host (assigning a small numeric id on first sight), marks it
    /// connected or not, and returns its record. The identity fields other than `host_id` are
    /// replaced by the new ones.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for an empty or over-long host id or when the id space
    /// is exhausted; [`StorageError::Rocks`] if the write fails.
    pub fn upsert_host(
        &self,
        identity: &HostIdentity,
        now_ms: i64,
        connected: bool,
    ) -> Result<HostRecord, StorageError> {
        let id = identity.host_id.as_str();
        if id.is_empty() || id.len() > keys::MAX_HOST_ID_BYTES {
            return Err(StorageError::InvalidArgument(format!(
                "host_id must be 1..={} bytes, got {}",
                keys::MAX_HOST_ID_BYTES,
                id.len()
            )));
        }
        let db = self.db()?;
        let hosts = db.cf(CF_HOSTS)?;
        let _w = lock(&self.write_lock);
        let (existing, next_num, top_oom_ms) = {
            let reg = self.read_registry();
            let existing = reg.by_id.get(id).and_then(|n| reg.by_num.get(n)).cloned();
            let top_oom_ms = existing.as_ref().and_then(|r| reg.top_oom_ms(r.num));
            (existing, reg.next_num, top_oom_ms)
        };
        let mut batch = WriteBatch::default();
        let rec = match existing {
            Some(mut rec) => {
                rec.identity = identity.clone();
                rec.last_seen_ms = rec.last_seen_ms.max(now_ms);
                rec.connected = connected;
                rec
            }
            None => {
                let after = next_num.checked_add(1).ok_or_else(|| {
                    StorageError::InvalidArgument("host number space exhausted".into())
                })?;
                batch.put_cf(
                    hosts,
                    keys::meta_key(keys::META_NEXT_HOST_NUM),
                    values::encode_next_host_num(after),
                );
                HostRecord {
                    num: next_num,
                    identity: identity.clone(),
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    connected,
                    dropped_samples: 0,
                    epoch: 0,
                    last_seq: 0,
                    kmsg: KmsgStatus::default(),
                }
            }
        };
        batch.put_cf(
            hosts,
            keys::host_key(id),
            values::encode_host_record(&rec, top_oom_ms),
        );
        db.commit(batch)?;

        let mut reg = self.write_registry();
        if rec.num == reg.next_num {
            reg.next_num += 1;
            tracing::info!(host_id = id, host_num = rec.num, "new host registered");
        }
        reg.by_id.insert(id.to_owned(), rec.num);
        reg.by_num.insert(rec.num, rec.clone());
        Ok(rec)
    }

    /// Marks a host connected or not and updates its last-seen time.
    ///
    /// # Errors
    /// [`StorageError::UnknownHost`] if `host_num` was never registered; [`StorageError::Rocks`]
    /// if the write fails.
    pub fn set_connected(
        &self,
        host_num: u32,
        connected: bool,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let db = self.db()?;
        let hosts = db.cf(CF_HOSTS)?;
        let _w = lock(&self.write_lock);
        let mut rec = self
            .host_by_num(host_num)
            .ok_or(StorageError::UnknownHost(host_num))?;
        rec.connected = connected;
        rec.last_seen_ms = rec.last_seen_ms.max(now_ms);
        let top_oom_ms = self.read_registry().top_oom_ms(host_num);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            hosts,
            keys::host_key(&rec.identity.host_id),
            values::encode_host_record(&rec, top_oom_ms),
        );
        db.commit(batch)?;
        self.write_registry().by_num.insert(host_num, rec);
        Ok(())
    }

    /// Every registered host, by number, from the in-memory cache.
    pub fn hosts(&self) -> Vec<HostRecord> {
        self.read_registry().by_num.values().cloned().collect()
    }

    /// Calls `f` on every host's record in place, in host-number order, with the registry
    /// read-locked (a host registering meanwhile waits): `f` copies out what it needs.
    pub fn for_each_host(&self, mut f: impl FnMut(&HostRecord)) {
        self.read_registry().by_num.values().for_each(&mut f);
    }

    /// One host by number, from the in-memory cache.
    pub fn host_by_num(&self, num: u32) -> Option<HostRecord> {
        self.read_registry().by_num.get(&num).cloned()
    }

    /// The highest seq stored for (host, epoch); 0 if none, if the host is unknown, or if the
    /// host's last stored batch belongs to another epoch.
    pub fn last_seq(&self, host_num: u32, epoch: u64) -> u64 {
        self.read_registry()
            .by_num
            .get(&host_num)
            .filter(|r| r.epoch == epoch)
            .map_or(0, |r| r.last_seq)
    }

    pub(super) fn read_registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry for a change: only under `write_lock` (or by retention, which only drops
    /// expired rankings), after the change is durable.
    pub(super) fn write_registry(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
