//! The per-shard sliver counters behind [`NodeStore::stats`](super::NodeStore::stats).
//!
//! They are kept in [`SHARD_STATS`](super::tables::SHARD_STATS), one row per shard that holds at
//! least one sliver, and changed in the same write transaction as the slivers they count: they
//! can never disagree with the slivers after a crash, and `stats` reads a few rows instead of
//! scanning every sliver. A write collects its changes in a [`ShardChanges`] and applies them
//! once, just before it commits.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, Table};

use super::tables::{SHARD_STATS_BYTES, SHARD_STATS_TABLE, open_sealed, sealed_len, write_sealed};
use super::{ShardStats, SliverKind};
use crate::error::{StoreError, database};

/// What one write transaction adds to and removes from the counters of each shard.
#[derive(Debug, Default)]
pub(super) struct ShardChanges {
    added: BTreeMap<u16, ShardStats>,
    removed: BTreeMap<u16, ShardStats>,
}

impl ShardChanges {
    /// Counts a sliver of `bytes` bytes that the transaction stores.
    pub(super) fn add(&mut self, shard: u16, kind: SliverKind, bytes: u64) {
        count(self.added.entry(shard).or_default(), kind, bytes);
    }

    /// Counts a sliver of `bytes` bytes that the transaction removes (or replaces).
    pub(super) fn remove(&mut self, shard: u16, kind: SliverKind, bytes: u64) {
        count(self.removed.entry(shard).or_default(), kind, bytes);
    }

    /// Writes the changed counters into `table`, dropping the row of a shard left empty.
    ///
    /// Counters saturate at zero rather than fail: they are bookkeeping, and a delete (the way
    /// out of damage) must not be refused because a counter was already off.
    pub(super) fn apply(
        self,
        table: &mut Table<'_, u16, &'static [u8]>,
        action: &'static str,
    ) -> Result<(), StoreError> {
        let shards: BTreeSet<u16> = self.added.keys().chain(self.removed.keys()).copied().collect();
        let zero = ShardStats::default();
        for shard in shards {
            let old = match table.get(shard).map_err(database(action))? {
                Some(stored) => decode(stored.value(), shard)?,
                None => zero,
            };
            let added = self.added.get(&shard).unwrap_or(&zero);
            let removed = self.removed.get(&shard).unwrap_or(&zero);
            let new = ShardStats {
                primary_slivers: old
                    .primary_slivers
                    .saturating_add(added.primary_slivers)
                    .saturating_sub(removed.primary_slivers),
                secondary_slivers: old
                    .secondary_slivers
                    .saturating_add(added.secondary_slivers)
                    .saturating_sub(removed.secondary_slivers),
                bytes: old.bytes.saturating_add(added.bytes).saturating_sub(removed.bytes),
            };
            if new == zero {
                table.remove(shard).map_err(database(action))?;
            } else {
                let value = encode(&new);
                let mut slot =
                    table.insert_reserve(shard, sealed_len(value.len())).map_err(database(action))?;
                write_sealed(slot.as_mut(), SHARD_STATS_TABLE, &shard.to_be_bytes(), &value);
            }
        }
        Ok(())
    }
}

/// The counters of `shard` from their stored value, or [`StoreError::CorruptShardStats`].
pub(super) fn decode(stored: &[u8], shard: u16) -> Result<ShardStats, StoreError> {
    let corrupt = || StoreError::CorruptShardStats { shard };
    let value = open_sealed(stored, SHARD_STATS_TABLE, &shard.to_be_bytes()).ok_or_else(corrupt)?;
    let value: &[u8; SHARD_STATS_BYTES] = value.try_into().map_err(|_| corrupt())?;
    let [primary_slivers, secondary_slivers, bytes] = [0, 8, 16].map(|start| {
        let mut word = [0; 8];
        word.copy_from_slice(&value[start..start + 8]);
        u64::from_le_bytes(word)
    });
    Ok(ShardStats { primary_slivers, secondary_slivers, bytes })
}

/// The stored form of counters: three little-endian `u64`s.
fn encode(stats: &ShardStats) -> [u8; SHARD_STATS_BYTES] {
    let mut value = [0; SHARD_STATS_BYTES];
    value[..8].copy_from_slice(&stats.primary_slivers.to_le_bytes());
    value[8..16].copy_from_slice(&stats.secondary_slivers.to_le_bytes());
    value[16..].copy_from_slice(&stats.bytes.to_le_bytes());
    value
}

/// Adds one sliver of `bytes` bytes to `stats`.
fn count(stats: &mut ShardStats, kind: SliverKind, bytes: u64) {
    match kind {
        SliverKind::Primary => stats.primary_slivers = stats.primary_slivers.saturating_add(1),
        SliverKind::Secondary => stats.secondary_slivers = stats.secondary_slivers.saturating_add(1),
    }
    stats.bytes = stats.bytes.saturating_add(bytes);
}

/// Reads the counters of every shard that holds a sliver.
pub(super) fn read_all(
    table: &impl ReadableTable<u16, &'static [u8]>,
    action: &'static str,
) -> Result<BTreeMap<u16, ShardStats>, StoreError> {
    let mut shards = BTreeMap::new();
    for entry in table.range::<u16>(..).map_err(database(action))? {
        let (shard, stored) = entry.map_err(database(action))?;
        let shard = shard.value();
        shards.insert(shard, decode(stored.value(), shard)?);
    }
    Ok(shards)
}
