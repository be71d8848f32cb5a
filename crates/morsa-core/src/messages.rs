//! The exact bytes storage nodes sign, laid out as Walrus's nodes lay them out: the BCS of a
//! `ProtocolMessage { intent, epoch, contents }`, where the intent is three bytes
//! `[message type, version 0, app ID 3 (storage)]` and the epoch a `u32` little-endian.
//!
//! ```
//! use morsa_core::{BlobId, Epoch, PersistenceType, storage_confirmation_message};
//! let message = storage_confirmation_message(Epoch(7), &BlobId([9; 32]), &PersistenceType::Permanent);
//! assert_eq!(message[..7], [1, 0, 3, 7, 0, 0, 0]);
//! assert_eq!(message.len(), 3 + 4 + 32 + 1);
//! ```

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::committee::NodeId;
use crate::hex_bytes::hex_newtype;
use crate::index::Epoch;

/// The ID of an object in the coordinator's state (a blob registration, a storage resource),
/// like a Sui object ID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub [u8; 32]);
hex_newtype!(ObjectId, 32, "an object ID");

/// Whether a stored blob may be deleted by its owner before it expires. Nodes confirm (sign)
/// this along with the blob ID, so a certificate for one kind is no certificate for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PersistenceType {
    /// Kept until it expires. BCS: `0`.
    Permanent,
    /// May be deleted by the owner of the blob object. BCS: `1` then the 32 object ID bytes.
    Deletable {
        /// The blob object whose owner may delete it.
        object_id: ObjectId,
    },
}

/// Version of every intent.
pub const INTENT_VERSION: u8 = 0;
/// App ID of every intent: storage.
pub const INTENT_APP_ID_STORAGE: u8 = 3;
/// Intent of a storage confirmation: a node holds all its slivers of a blob.
pub const BLOB_CERTIFICATION_INTENT: [u8; 3] = [1, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of an invalid-blob attestation: a node proved a blob inconsistently encoded.
pub const INVALID_BLOB_INTENT: [u8; 3] = [2, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of Morsa's epoch-sync-done message: a node holds its shards for a new epoch. Type 4
/// is unused by Walrus (0 proof of possession, 1 blob certification, 2 invalid blob, 3 shard
/// sync), so the message can never be mistaken for one of those.
pub const EPOCH_SYNC_DONE_INTENT: [u8; 3] = [4, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of Morsa's availability summary: which slivers a node knows it lacks. Type 5 is
/// unused by Walrus and by Morsa's other messages.
pub const AVAILABILITY_SUMMARY_INTENT: [u8; 3] = [5, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of Morsa's shard-page request: a shard's new owner asks its previous owner for a
/// page of the shard's slivers. Type 6 is unused by Walrus and by Morsa's other messages.
pub const SHARD_PAGE_INTENT: [u8; 3] = [6, INTENT_VERSION, INTENT_APP_ID_STORAGE];
/// Intent of Morsa's unresponsive-peer report: a member says another answered nothing this
/// epoch. Type 8 is unused by Walrus and by Morsa's other messages.
pub const NODE_UNRESPONSIVE_INTENT: [u8; 3] = [8, INTENT_VERSION, INTENT_APP_ID_STORAGE];

/// What a node signs to confirm it stores all its slivers of `blob_id` in `epoch`:
/// `[1, 0, 3] ‖ epoch (u32 LE) ‖ blob ID (32 bytes) ‖ bcs(persistence)`.
pub fn storage_confirmation_message(
    epoch: Epoch,
    blob_id: &BlobId,
    persistence: &PersistenceType,
) -> Vec<u8> {
    let mut message = header(BLOB_CERTIFICATION_INTENT, epoch, 33);
    message.extend_from_slice(blob_id.as_bytes());
    match persistence {
        PersistenceType::Permanent => message.push(0),
        PersistenceType::Deletable { object_id } => {
            message.push(1);
            message.extend_from_slice(&object_id.0);
        }
    }
    message
}

/// What a node signs to attest that `blob_id` is inconsistently encoded, in `epoch`:
/// `[2, 0, 3] ‖ epoch (u32 LE) ‖ blob ID (32 bytes)`.
pub fn invalid_blob_message(epoch: Epoch, blob_id: &BlobId) -> Vec<u8> {
    let mut message = header(INVALID_BLOB_INTENT, epoch, 0);
    message.extend_from_slice(blob_id.as_bytes());
    message
}

/// What node `node_id` signs once it holds all its shards for `epoch`:
/// `[4, 0, 3] ‖ epoch (u32 LE) ‖ node ID (32 bytes)`. Morsa's own message.
pub fn epoch_sync_done_message(epoch: Epoch, node_id: &NodeId) -> Vec<u8> {
    let mut message = header(EPOCH_SYNC_DONE_INTENT, epoch, 0);
    message.extend_from_slice(&node_id.0);
    message
}

/// What a member signs to report that node `subject` answered nothing in `epoch`:
/// `[8, 0, 3] ‖ epoch (u32 LE) ‖ subject's node ID (32 bytes)`. Morsa's own message.
pub fn node_unresponsive_message(epoch: Epoch, subject: &NodeId) -> Vec<u8> {
    let mut message = header(NODE_UNRESPONSIVE_INTENT, epoch, 0);
    message.extend_from_slice(&subject.0);
    message
}

/// What node `node_id` signs over an availability summary whose digest is `digest`, in
/// `epoch`: `[5, 0, 3] ‖ epoch (u32 LE) ‖ node ID (32 bytes) ‖ digest (32 bytes)`. Morsa's own
/// message; the summary is soft state, never logged.
pub fn availability_summary_message(epoch: Epoch, node_id: &NodeId, digest: &[u8; 32]) -> Vec<u8> {
    let mut message = header(AVAILABILITY_SUMMARY_INTENT, epoch, 32);
    message.extend_from_slice(&node_id.0);
    message.extend_from_slice(digest);
    message
}

/// What node `node_id`, the owner of `shard` in `epoch`, signs to ask the shard's previous
/// owner for a page of it: at most `max_blobs` blobs from `from` on (blob-ID order, `from`
/// included; the first blob if none): `[6, 0, 3] ‖ epoch (u32 LE) ‖ node ID (32 bytes) ‖
/// shard (u16 LE) ‖ 0, or 1 ‖ from (32 bytes) ‖ max_blobs (u32 LE)`. Morsa's own message.
pub fn shard_page_message(
    epoch: Epoch,
    node_id: &NodeId,
    shard: u16,
    from: Option<&BlobId>,
    max_blobs: u32,
) -> Vec<u8> {
    let mut message = header(SHARD_PAGE_INTENT, epoch, 2 + 33 + 4);
    message.extend_from_slice(&node_id.0);
    message.extend_from_slice(&shard.to_le_bytes());
    match from {
        None => message.push(0),
        Some(from) => {
            message.push(1);
            message.extend_from_slice(from.as_bytes());
        }
    }
    message.extend_from_slice(&max_blobs.to_le_bytes());
    message
}

/// Intent and epoch, with room for 32 bytes of ID and `extra` bytes after it.
fn header(intent: [u8; 3], epoch: Epoch, extra: usize) -> Vec<u8> {
    let mut message = Vec::with_capacity(3 + 4 + 32 + extra);
    message.extend_from_slice(&intent);
    message.extend_from_slice(&epoch.0.to_le_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: Epoch = Epoch(0x0102_0304);

    fn blob_id() -> BlobId {
        BlobId(std::array::from_fn(|i| u8::try_from(i).unwrap() + 0xa0))
    }

    #[test]
    fn shard_page_layout_is_exact() {
        let node = NodeId([0x11; 32]);
        let mut expected = vec![6, 0, 3, 0x04, 0x03, 0x02, 0x01];
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[0x34, 0x12]);
        let mut first = expected.clone();
        first.extend_from_slice(&[0, 9, 0, 0, 0]);
        assert_eq!(shard_page_message(EPOCH, &node, 0x1234, None, 9), first);
        let id = blob_id();
        expected.push(1);
        expected.extend_from_slice(&id.0);
        expected.extend_from_slice(&[9, 0, 0, 0]);
        assert_eq!(shard_page_message(EPOCH, &node, 0x1234, Some(&id), 9), expected);
        assert_eq!(expected.len(), 3 + 4 + 32 + 2 + 33 + 4);
    }

    #[test]
    fn storage_confirmation_layout_is_exact() {
        let id = blob_id();
        let mut expected = vec![1, 0, 3, 0x04, 0x03, 0x02, 0x01];
        expected.extend_from_slice(&id.0);
        let mut permanent = expected.clone();
        permanent.push(0);
        assert_eq!(storage_confirmation_message(EPOCH, &id, &PersistenceType::Permanent), permanent);

        let object_id = ObjectId([0x5e; 32]);
        let mut deletable = expected;
        deletable.push(1);
        deletable.extend_from_slice(&[0x5e; 32]);
        let persistence = PersistenceType::Deletable { object_id };
        assert_eq!(storage_confirmation_message(EPOCH, &id, &persistence), deletable);
        assert_eq!(deletable.len(), 3 + 4 + 32 + 1 + 32);
    }

    #[test]
    fn persistence_type_bcs_matches_what_the_message_appends() {
        assert_eq!(bcs::to_bytes(&PersistenceType::Permanent).unwrap(), [0]);
        let deletable = PersistenceType::Deletable { object_id: ObjectId([7; 32]) };
        let bytes = bcs::to_bytes(&deletable).unwrap();
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[1..], [7; 32]);
        assert_eq!(bcs::from_bytes::<PersistenceType>(&bytes).unwrap(), deletable);
        let message = storage_confirmation_message(EPOCH, &blob_id(), &deletable);
        assert_eq!(message[39..], bytes);
    }

    #[test]
    fn invalid_blob_and_epoch_sync_layouts_are_exact() {
        let mut expected = vec![2, 0, 3, 0x04, 0x03, 0x02, 0x01];
        expected.extend_from_slice(&blob_id().0);
        assert_eq!(invalid_blob_message(EPOCH, &blob_id()), expected);

        let node_id = NodeId([0x11; 32]);
        let mut expected = vec![4, 0, 3, 0x04, 0x03, 0x02, 0x01];
        expected.extend_from_slice(&[0x11; 32]);
        assert_eq!(epoch_sync_done_message(EPOCH, &node_id), expected);
    }

    #[test]
    fn object_ids_read_as_hex() {
        let id = ObjectId([0xab; 32]);
        assert_eq!(id.to_string(), "ab".repeat(32));
        assert_eq!(id.to_string().parse::<ObjectId>(), Ok(id));
        let json = serde_json::to_string(&PersistenceType::Deletable { object_id: id }).unwrap();
        assert_eq!(json, format!("{{\"Deletable\":{{\"object_id\":\"{}\"}}}}", "ab".repeat(32)));
    }
}
