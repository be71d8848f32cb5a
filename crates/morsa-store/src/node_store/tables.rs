//! The tables of a node store, how their keys are laid out and how their values are sealed.
//!
//! Every value is stored as `crc32c(table name ‖ 0 ‖ key ‖ value)` (4 bytes, little-endian) followed
//! by the value, with [`seal`] and [`unseal`] of the command log. The table name in the checksum
//! keeps a value from passing for another table's (metadata and blob info share their keys); the
//! key in it keeps a value from passing for another key's.

use std::ops::RangeInclusive;

use redb::TableDefinition;

use super::SliverKind;
use crate::checksum::Crc32c;
use crate::command_log::{CHECKSUM_BYTES, seal, unseal};

/// The name of [`METADATA`], also the domain of its checksums.
pub(super) const METADATA_TABLE: &str = "node_metadata";
/// Each blob's metadata (BCS, opaque here), by blob ID.
pub(super) const METADATA: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new(METADATA_TABLE);

/// The name of [`BLOB_INFO`].
pub(super) const BLOB_INFO_TABLE: &str = "node_blob_info";
/// The node's own per-blob state (opaque here), by blob ID.
pub(super) const BLOB_INFO: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new(BLOB_INFO_TABLE);

/// The name of [`SLIVERS`].
pub(super) const SLIVERS_TABLE: &str = "node_slivers";
/// Sliver bytes by [`SliverKey`]: all slivers of one blob are one contiguous range.
pub(super) const SLIVERS: TableDefinition<&SliverKey, &[u8]> = TableDefinition::new(SLIVERS_TABLE);

/// The name of [`SLIVER_INDEX`].
pub(super) const SLIVER_INDEX_TABLE: &str = "node_sliver_index";
/// The length of every stored sliver, under the same key as in [`SLIVERS`], written in the same
/// transactions. Existence checks, counters and deletes read this small table instead of
/// [`SLIVERS`], where redb would load a whole (up to 64 MiB) value to answer.
pub(super) const SLIVER_INDEX: TableDefinition<&SliverKey, &[u8]> = TableDefinition::new(SLIVER_INDEX_TABLE);

/// The name of [`SHARD_STATS`].
pub(super) const SHARD_STATS_TABLE: &str = "node_shard_stats";
/// Per shard that holds at least one sliver: its counters (see `shard_stats.rs`).
pub(super) const SHARD_STATS: TableDefinition<u16, &[u8]> = TableDefinition::new(SHARD_STATS_TABLE);

/// The name of [`META`].
pub(super) const META_TABLE: &str = "node_meta";
/// Small named values of the node, such as its event cursor.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new(META_TABLE);

/// Bytes of a [`SliverKey`].
const SLIVER_KEY_BYTES: usize = 32 + 2 + 1;

/// `blob_id ‖ shard (big-endian) ‖ kind (0 primary, 1 secondary)`: byte order is
/// (blob, shard, kind) order, so one blob's slivers, and within it one shard's pair, are
/// contiguous.
pub(super) type SliverKey = [u8; SLIVER_KEY_BYTES];

/// Bytes of a stored [`SLIVER_INDEX`] value: the sliver's length (`u64`, little-endian).
const LENGTH_BYTES: usize = 8;

/// Bytes of a shard's counters in [`SHARD_STATS`]: three `u64`s.
pub(super) const SHARD_STATS_BYTES: usize = 3 * 8;

/// The key of one sliver.
pub(super) fn sliver_key(blob_id: &[u8; 32], shard: u16, kind: SliverKind) -> SliverKey {
    let mut key = [0; SLIVER_KEY_BYTES];
    key[..32].copy_from_slice(blob_id);
    key[32..34].copy_from_slice(&shard.to_be_bytes());
    key[34] = match kind {
        SliverKind::Primary => 0,
        SliverKind::Secondary => 1,
    };
    key
}

/// The shard and kind of a sliver key, or `None` for a kind byte this store never writes.
pub(super) fn parse_sliver_key(key: &SliverKey) -> Option<(u16, SliverKind)> {
    let shard = u16::from_be_bytes([key[32], key[33]]);
    let kind = match key[34] {
        0 => SliverKind::Primary,
        1 => SliverKind::Secondary,
        _ => return None,
    };
    Some((shard, kind))
}

/// Every key a sliver of `blob_id` can have, and no other blob's.
pub(super) fn blob_sliver_range(blob_id: &[u8; 32]) -> RangeInclusive<SliverKey> {
    sliver_key(blob_id, 0, SliverKind::Primary)..=sliver_key(blob_id, u16::MAX, SliverKind::Secondary)
}

/// Bytes a value of `len` bytes takes once sealed.
pub(super) fn sealed_len(len: usize) -> usize {
    CHECKSUM_BYTES + len
}

/// The length of the value in a sealed value of `stored_len` bytes, without checking it: for
/// counting what a delete removes, even when the value is damaged.
pub(super) fn unsealed_len(stored_len: usize) -> usize {
    stored_len.saturating_sub(CHECKSUM_BYTES)
}

/// Writes `value`, sealed for `key` of `table`, into `slot` of [`sealed_len`]`(value.len())`
/// bytes.
pub(super) fn write_sealed(slot: &mut [u8], table: &str, key: &[u8], value: &[u8]) {
    seal(checksum(table, key, value), value, slot);
}

/// The value of a stored `key` of `table` if its checksum matches, or `None`.
pub(super) fn open_sealed<'a>(stored: &'a [u8], table: &str, key: &[u8]) -> Option<&'a [u8]> {
    unseal(stored, |value| checksum(table, key, value))
}

/// The sealed [`SLIVER_INDEX`] value of a sliver of `len` bytes under `key`.
pub(super) fn index_value(key: &SliverKey, len: u64) -> [u8; CHECKSUM_BYTES + LENGTH_BYTES] {
    let mut stored = [0; CHECKSUM_BYTES + LENGTH_BYTES];
    write_sealed(&mut stored, SLIVER_INDEX_TABLE, key, &len.to_le_bytes());
    stored
}

/// The sliver length in a stored [`SLIVER_INDEX`] value, or `None` if it is damaged.
pub(super) fn open_index_value(stored: &[u8], key: &SliverKey) -> Option<u64> {
    let value = open_sealed(stored, SLIVER_INDEX_TABLE, key)?;
    let length: [u8; LENGTH_BYTES] = value.try_into().ok()?;
    Some(u64::from_le_bytes(length))
}

/// `crc32c(table ‖ 0 ‖ key ‖ value)`; the zero byte ends the name, so no table's name and key run
/// into another's ("node_meta" and a key "data..." are not "node_metadata").
fn checksum(table: &str, key: &[u8], value: &[u8]) -> u32 {
    Crc32c::new().update(table.as_bytes()).update(&[0]).update(key).update(value).finish()
}
