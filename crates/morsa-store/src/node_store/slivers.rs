//! Slivers: batched durable writes, checked reads, and deletes that keep the index and the
//! per-shard counters in step with the sliver table.
//!
//! Invariant, kept by writing all three in one transaction: a key is in `SLIVERS` exactly when it
//! is in `SLIVER_INDEX`, with the same length, and `SHARD_STATS` counts exactly those slivers.

use redb::{ReadableTable, Table};

use super::shard_stats::ShardChanges;
use super::tables::{
    SHARD_STATS, SLIVER_INDEX, SLIVERS, SLIVERS_TABLE, SliverKey, blob_sliver_range, index_value,
    open_index_value, open_sealed, parse_sliver_key, sealed_len, sliver_key, unsealed_len, write_sealed,
};
use super::{BlobValue, DeleteStats, MAX_SLIVER_BYTES, NodeStore, SliverKind, SliverWrite, check_size};
use crate::error::{StoreError, database};

const WRITING_SLIVERS: &str = "writing slivers";
const READING_SLIVER: &str = "reading a sliver";
const DELETING_SLIVER: &str = "deleting a sliver";
const DELETING_BLOB: &str = "deleting a blob";

/// A table of slivers or of their index: both are keyed by [`SliverKey`].
type SliverTable<'txn> = Table<'txn, &'static SliverKey, &'static [u8]>;

impl NodeStore {
    /// Stores every sliver of `writes` (replacing any already stored under the same blob, shard
    /// and kind) in one transaction with one fsync, before returning. Either all of them are
    /// stored or none is. An empty batch writes nothing. If the same sliver appears twice, the
    /// later one wins.
    ///
    /// # Errors
    ///
    /// [`StoreError::ValueTooLarge`] if any sliver is over [`MAX_SLIVER_BYTES`] (then none is
    /// written), [`StoreError::CorruptShardStats`], [`StoreError::Database`].
    pub fn put_slivers(&self, writes: &[SliverWrite<'_>]) -> Result<(), StoreError> {
        for write in writes {
            check_size("sliver", write.bytes.len(), MAX_SLIVER_BYTES)?;
        }
        if writes.is_empty() {
            return Ok(());
        }
        let transaction = self.begin_write(WRITING_SLIVERS)?;
        {
            let mut slivers = transaction.open_table(SLIVERS).map_err(database(WRITING_SLIVERS))?;
            let mut index = transaction.open_table(SLIVER_INDEX).map_err(database(WRITING_SLIVERS))?;
            let mut changes = ShardChanges::default();
            for write in writes {
                let key = sliver_key(&write.blob_id, write.shard, write.kind);
                if let Some(replaced) = stored_len(&slivers, &index, &key, WRITING_SLIVERS)? {
                    changes.remove(write.shard, write.kind, replaced);
                }
                let mut slot = slivers
                    .insert_reserve(&key, sealed_len(write.bytes.len()))
                    .map_err(database(WRITING_SLIVERS))?;
                write_sealed(slot.as_mut(), SLIVERS_TABLE, &key, write.bytes);
                drop(slot);
                let len = length(write.bytes.len());
                index.insert(&key, index_value(&key, len).as_slice()).map_err(database(WRITING_SLIVERS))?;
                changes.add(write.shard, write.kind, len);
            }
            let mut counters = transaction.open_table(SHARD_STATS).map_err(database(WRITING_SLIVERS))?;
            changes.apply(&mut counters, WRITING_SLIVERS)?;
        }
        // Dropped without a commit on any error above: nothing of the batch is written.
        transaction.commit().map_err(database(WRITING_SLIVERS))
    }

    /// The bytes of one sliver, if stored, after checking them against their checksum.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptSliver`] if they fail it, [`StoreError::Database`].
    pub fn get_sliver(
        &self,
        blob_id: &[u8; 32],
        shard: u16,
        kind: SliverKind,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let transaction = self.begin_read(READING_SLIVER)?;
        let slivers = transaction.open_table(SLIVERS).map_err(database(READING_SLIVER))?;
        let key = sliver_key(blob_id, shard, kind);
        let Some(stored) = slivers.get(&key).map_err(database(READING_SLIVER))? else {
            return Ok(None);
        };
        let bytes = open_sealed(stored.value(), SLIVERS_TABLE, &key).ok_or(StoreError::CorruptSliver {
            blob_id: *blob_id,
            shard,
            kind,
        })?;
        Ok(Some(bytes.to_vec()))
    }

    /// Whether one sliver is stored. Reads the index only, not the sliver, so it is cheap and
    /// does not verify the sliver's bytes ([`NodeStore::get_sliver`] does).
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptSliver`] if its index entry is damaged, [`StoreError::Database`].
    pub fn has_sliver(&self, blob_id: &[u8; 32], shard: u16, kind: SliverKind) -> Result<bool, StoreError> {
        let transaction = self.begin_read(READING_SLIVER)?;
        let index = transaction.open_table(SLIVER_INDEX).map_err(database(READING_SLIVER))?;
        indexed(&index, blob_id, shard, kind)
    }

    /// Which slivers of shard `shard`'s pair of `blob_id` are stored: `(primary, secondary)`.
    /// Reads the index only, as [`NodeStore::has_sliver`].
    ///
    /// # Errors
    ///
    /// As [`NodeStore::has_sliver`].
    pub fn sliver_kinds_held(&self, blob_id: &[u8; 32], shard: u16) -> Result<(bool, bool), StoreError> {
        let transaction = self.begin_read(READING_SLIVER)?;
        let index = transaction.open_table(SLIVER_INDEX).map_err(database(READING_SLIVER))?;
        Ok((
            indexed(&index, blob_id, shard, SliverKind::Primary)?,
            indexed(&index, blob_id, shard, SliverKind::Secondary)?,
        ))
    }

    /// Removes one sliver, durably, and returns whether it was stored. Works on a sliver whose
    /// bytes or index entry are damaged. Removing a sliver that is not stored writes nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptShardStats`], [`StoreError::Database`].
    pub fn delete_slivers(
        &self,
        blob_id: &[u8; 32],
        shard: u16,
        kind: SliverKind,
    ) -> Result<bool, StoreError> {
        self.delete_sliver_if(blob_id, shard, kind, |_| true)
    }

    /// Removes one sliver if it is still what its reader found damaged, durably, and returns
    /// whether it did: `found` is the bytes the reader checked and found wrong (`None`: its
    /// record failed the checksum). A record failing its checksum now is removed too; one
    /// stored since with other bytes (rebuilt for a concurrent read, uploaded again) is kept.
    /// This is how a scrubber or a read discards a damaged sliver before it is rebuilt: two
    /// readers of one damaged sliver remove it once, and never the good one stored after it.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptShardStats`], [`StoreError::Database`].
    pub fn delete_damaged_sliver(
        &self,
        blob_id: &[u8; 32],
        shard: u16,
        kind: SliverKind,
        found: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let key = sliver_key(blob_id, shard, kind);
        self.delete_sliver_if(blob_id, shard, kind, |record| {
            record.is_some_and(|raw| {
                open_sealed(raw, SLIVERS_TABLE, &key).is_none_or(|bytes| found == Some(bytes))
            })
        })
    }

    /// Removes one sliver (and its index entry) if `remove` says so of its stored record
    /// (`None` if the sliver table has none), updating the shard's counters in the same
    /// transaction; returns whether anything was removed.
    fn delete_sliver_if(
        &self,
        blob_id: &[u8; 32],
        shard: u16,
        kind: SliverKind,
        remove: impl FnOnce(Option<&[u8]>) -> bool,
    ) -> Result<bool, StoreError> {
        let transaction = self.begin_write(DELETING_SLIVER)?;
        let removed = {
            let mut slivers = transaction.open_table(SLIVERS).map_err(database(DELETING_SLIVER))?;
            let mut index = transaction.open_table(SLIVER_INDEX).map_err(database(DELETING_SLIVER))?;
            let key = sliver_key(blob_id, shard, kind);
            let wanted = {
                let record = slivers.get(&key).map_err(database(DELETING_SLIVER))?;
                remove(record.as_ref().map(|stored| stored.value()))
            };
            let removed =
                if wanted { remove_sliver(&mut slivers, &mut index, &key, DELETING_SLIVER)? } else { None };
            if let Some(len) = removed {
                let mut changes = ShardChanges::default();
                changes.remove(shard, kind, len);
                let mut counters = transaction.open_table(SHARD_STATS).map_err(database(DELETING_SLIVER))?;
                changes.apply(&mut counters, DELETING_SLIVER)?;
            }
            removed.is_some()
        };
        finish(transaction, removed, DELETING_SLIVER)?;
        Ok(removed)
    }

    /// Flips one bit in the middle of a stored sliver's record, durably, as rot on the disk
    /// would: its next read fails the checksum ([`StoreError::CorruptSliver`]). Returns whether
    /// the sliver was stored. Only for tests of what finds and repairs such damage.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    #[cfg(feature = "testing")]
    pub fn damage_sliver(
        &self,
        blob_id: &[u8; 32],
        shard: u16,
        kind: SliverKind,
    ) -> Result<bool, StoreError> {
        const DAMAGING: &str = "damaging a sliver";
        let transaction = self.begin_write(DAMAGING)?;
        let damaged = {
            let mut slivers = transaction.open_table(SLIVERS).map_err(database(DAMAGING))?;
            let key = sliver_key(blob_id, shard, kind);
            let stored = slivers.get(&key).map_err(database(DAMAGING))?.map(|stored| stored.value().to_vec());
            match stored {
                Some(mut bytes) => {
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 1;
                    slivers.insert(&key, bytes.as_slice()).map_err(database(DAMAGING))?;
                    true
                }
                None => false,
            }
        };
        finish(transaction, damaged, DAMAGING)?;
        Ok(damaged)
    }

    /// Removes everything stored for `blob_id` (its metadata, its blob info, and every sliver of
    /// every shard) in one durable transaction, and reports the slivers removed. Other blobs are
    /// untouched, even those whose IDs share a prefix with it. Works on damaged slivers, like
    /// [`NodeStore::delete_slivers`]. A blob with nothing stored writes nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptShardStats`], [`StoreError::Database`].
    pub fn delete_blob(&self, blob_id: &[u8; 32]) -> Result<DeleteStats, StoreError> {
        let transaction = self.begin_write(DELETING_BLOB)?;
        let (stats, removed_any) = {
            let mut slivers = transaction.open_table(SLIVERS).map_err(database(DELETING_BLOB))?;
            let mut index = transaction.open_table(SLIVER_INDEX).map_err(database(DELETING_BLOB))?;
            // The keys come from the index: listing them from the slivers would load every sliver.
            let range = blob_sliver_range(blob_id);
            let keys = index
                .range::<&SliverKey>(range.start()..=range.end())
                .map_err(database(DELETING_BLOB))?
                .map(|entry| entry.map(|(key, _)| *key.value()))
                .collect::<Result<Vec<SliverKey>, _>>()
                .map_err(database(DELETING_BLOB))?;

            let mut stats = DeleteStats::default();
            let mut changes = ShardChanges::default();
            for key in &keys {
                let Some(len) = remove_sliver(&mut slivers, &mut index, key, DELETING_BLOB)? else {
                    continue;
                };
                stats.slivers = stats.slivers.saturating_add(1);
                stats.bytes = stats.bytes.saturating_add(len);
                if let Some((shard, kind)) = parse_sliver_key(key) {
                    changes.remove(shard, kind, len);
                }
            }
            let mut counters = transaction.open_table(SHARD_STATS).map_err(database(DELETING_BLOB))?;
            changes.apply(&mut counters, DELETING_BLOB)?;

            let mut removed_any = stats.slivers > 0;
            for value in [BlobValue::METADATA, BlobValue::BLOB_INFO] {
                let mut table = transaction.open_table(value.table).map_err(database(DELETING_BLOB))?;
                removed_any |= table.remove(blob_id).map_err(database(DELETING_BLOB))?.is_some();
            }
            (stats, removed_any)
        };
        finish(transaction, removed_any, DELETING_BLOB)?;
        Ok(stats)
    }
}

/// Whether the index holds the sliver, checking its entry.
fn indexed(
    index: &impl ReadableTable<&'static SliverKey, &'static [u8]>,
    blob_id: &[u8; 32],
    shard: u16,
    kind: SliverKind,
) -> Result<bool, StoreError> {
    let key = sliver_key(blob_id, shard, kind);
    let Some(stored) = index.get(&key).map_err(database(READING_SLIVER))? else {
        return Ok(false);
    };
    match open_index_value(stored.value(), &key) {
        Some(_) => Ok(true),
        None => Err(StoreError::CorruptSliver { blob_id: *blob_id, shard, kind }),
    }
}

/// The length of the sliver stored under `key`, if any, as the counters know it: from its index
/// entry, or from the stored sliver if that entry is damaged (so a damaged sliver can still be
/// replaced).
fn stored_len(
    slivers: &SliverTable<'_>,
    index: &SliverTable<'_>,
    key: &SliverKey,
    action: &'static str,
) -> Result<Option<u64>, StoreError> {
    let Some(stored) = index.get(key).map_err(database(action))? else {
        return Ok(None);
    };
    if let Some(len) = open_index_value(stored.value(), key) {
        return Ok(Some(len));
    }
    let sliver = slivers.get(key).map_err(database(action))?;
    Ok(Some(sliver.map_or(0, |sliver| length(unsealed_len(sliver.value().len())))))
}

/// Removes the sliver under `key` and its index entry, and returns its length if either was
/// there. Checks no checksum: damaged slivers must be removable.
fn remove_sliver(
    slivers: &mut SliverTable<'_>,
    index: &mut SliverTable<'_>,
    key: &SliverKey,
    action: &'static str,
) -> Result<Option<u64>, StoreError> {
    let indexed =
        index.remove(key).map_err(database(action))?.map(|stored| open_index_value(stored.value(), key));
    let stored = slivers
        .remove(key)
        .map_err(database(action))?
        .map(|stored| length(unsealed_len(stored.value().len())));
    Ok(match (indexed, stored) {
        (None, None) => None,
        (Some(Some(len)), _) => Some(len),
        (_, Some(len)) => Some(len),
        // A damaged index entry for a sliver that is gone: counted once, length unknown.
        (Some(None), None) => Some(0),
    })
}

/// Commits `transaction` if it `changed` anything, else aborts it: a write that changed nothing
/// needs no fsync.
fn finish(
    transaction: redb::WriteTransaction,
    changed: bool,
    action: &'static str,
) -> Result<(), StoreError> {
    if changed {
        transaction.commit().map_err(database(action))
    } else {
        transaction.abort().map_err(database(action))
    }
}

/// A byte count as `u64`.
fn length(len: usize) -> u64 {
    u64::try_from(len).expect("a usize fits in a u64 on every platform Rust supports")
}
