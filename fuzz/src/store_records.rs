//! The records Morsa keeps in its stores (`morsa-store` holds them as opaque bytes behind a
//! checksum; the meaning is decoded by their owners when they read them back):
//!
//! - a command log record: a BCS [`LogEntry`], decoded by the coordinator's replay and audit;
//! - a node's blob info: a BCS [`BlobInfo`], decoded by `morsa-node` for every request and
//!   scan, and then asked for the blob's status;
//! - a node's stored metadata: a BCS [`MetadataWithId`], decoded under the limit of the code
//!   it claims and verified against its blob ID before use;
//! - the node's event cursor: eight little-endian bytes.
//!
//! Slivers are stored as the codec's BCS, which `wire_decode` covers.

use morsa_api::coord::{Command, Input, LogEntry};
use morsa_core::Epoch;
use morsa_node::BlobInfo;
use redstuff::wire::metadata_limit;
use redstuff::{EncodingConfig, MetadataWithId};

use crate::check;

/// Feeds `data` to the decoder of every stored record.
pub fn run(data: &[u8]) {
    if let Some(entry) = check::bcs::<LogEntry>(data)
        && let Input::Transaction(signed) = &entry.input
    {
        let transaction = &signed.transaction;
        let _ = transaction.sender.verify(&transaction.signing_bytes("morsa-fuzz"), &signed.signature);
        if let Command::RegisterBlob { blob_id, root_hash, size, .. } = &transaction.command {
            let _ = *blob_id == redstuff::BlobId::from_root(*size, root_hash);
        }
    }
    if let Some(info) = check::bcs::<BlobInfo>(data) {
        blob_info(&info);
    }
    metadata(data);
    let cursor: Option<[u8; 8]> = data.try_into().ok();
    if let Some(bytes) = cursor {
        assert_eq!(u64::from_le_bytes(bytes).to_le_bytes(), bytes);
    }
}

/// What the node asks of a blob's record, in the epochs where its answers change.
fn blob_info(info: &BlobInfo) {
    let epochs = info
        .objects
        .values()
        .flat_map(|object| [Some(object.end_epoch), object.certified_epoch])
        .chain([info.invalid, Some(Epoch(0)), Some(Epoch(u32::MAX))])
        .flatten();
    for epoch in epochs {
        let status = info.status(epoch);
        let live = info.live(epoch).count();
        let end = info.end_epoch(epoch);
        assert_eq!(end.is_some(), live > 0, "an end epoch without a live registration");
        assert_eq!(info.is_garbage(epoch), info.invalid.is_some() || live == 0);
        let _ = (status, info.has_permanent(epoch));
        for object in info.objects.keys() {
            let _ = info.has_deletable(object, epoch);
        }
    }
}

/// Stored metadata, read back the way the node reads it.
fn metadata(data: &[u8]) {
    let Ok(with_id) = redstuff::wire::from_bcs::<MetadataWithId>(data, data.len()) else {
        return;
    };
    let Ok(pairs) = u16::try_from(with_id.metadata.hashes.len()) else {
        return;
    };
    let Ok(config) = EncodingConfig::new(pairs) else {
        return;
    };
    if data.len() <= metadata_limit(config) {
        let _ = with_id.metadata.verify(&with_id.blob_id, config);
    }
}
