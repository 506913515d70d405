//! Where the store keeps the times chunks that series chunks share (see "Shared times" in
//! [`crate::storage::chunk`]), and a decoder of chunks that fetches them.
//!
//! A times chunk of host `h` in window `w` is in the `chunks` CF under the chunk key
//! `0x20 · w · h · 0x00 · id`, `id` its 16 lowercase hex digits: activity 0 is no sar
//! activity, so a query's seek to one activity's series never meets it, and retention deletes
//! it with its window.

use crate::storage::chunk::{self, ChunkError, Columns, Row};
use crate::storage::keys::{self, ChunkKey};
use crate::storage::StorageError;

/// The activity byte of times chunks' keys.
pub(in crate::storage) const TIMES_ACTIVITY: u8 = 0;

/// The key of times chunk `id` of host `host_num` in window `window_s`.
pub(in crate::storage) fn times_key(window_s: u64, host_num: u32, id: u64) -> Vec<u8> {
    keys::chunk_key(&ChunkKey {
        window_start_s: window_s,
        host_num,
        activity: TIMES_ACTIVITY,
        instance: format!("{id:016x}"),
    })
}

/// Decodes the chunks of one read, fetching the times chunks they refer to with `get` (a read
/// of the `chunks` CF, in the read's snapshot). Keeps the last one: the series of a host in a
/// window share it.
pub(in crate::storage) struct ChunkDecoder<F> {
    get: F,
    last: Option<(u64, u32, u64, Columns)>,
}

impl<F> ChunkDecoder<F>
where
    F: FnMut(&[u8]) -> Result<Option<Vec<u8>>, StorageError>,
{
    pub(in crate::storage) fn new(get: F) -> Self {
        ChunkDecoder { get, last: None }
    }

    /// The decoded times chunk the chunk `value` under `ck` refers to, if it refers to one.
    fn times(&mut self, ck: &ChunkKey, value: &[u8]) -> Result<Option<&Columns>, StorageError> {
        let Some(id) = chunk::times_id(value)? else {
            return Ok(None);
        };
        let (w, h) = (ck.window_start_s, ck.host_num);
        if !matches!(&self.last, Some((lw, lh, lid, _)) if (*lw, *lh, *lid) == (w, h, id)) {
            let bytes = (self.get)(&times_key(w, h, id))?.ok_or(ChunkError::MissingTimes(id))?;
            let times = chunk::decode_columns(&bytes)?;
            if !times.values.is_empty() {
                return Err(ChunkError::Malformed("a times chunk with columns").into());
            }
            self.last = Some((w, h, id, times));
        }
        Ok(self.last.as_ref().map(|(.., t)| t))
    }

    /// The chunk `value` (under `ck`) as columns.
    ///
    /// # Errors
    /// A chunk error if it or its times chunk does not decode, or its times chunk is missing;
    /// [`StorageError::Rocks`] if reading the times chunk fails.
    pub(in crate::storage) fn columns(
        &mut self,
        ck: &ChunkKey,
        value: &[u8],
    ) -> Result<Columns, StorageError> {
        let times = self.times(ck, value)?;
        Ok(chunk::decode_columns_with(value, times)?)
    }

    /// The chunk `value` (under `ck`) as rows.
    ///
    /// # Errors
    /// As [`ChunkDecoder::columns`].
    pub(in crate::storage) fn rows(
        &mut self,
        ck: &ChunkKey,
        value: &[u8],
    ) -> Result<Vec<Row>, StorageError> {
        let times = self.times(ck, value)?;
        Ok(chunk::decode_with(value, times)?)
    }
}
