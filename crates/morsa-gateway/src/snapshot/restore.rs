//! `morsa gateway restore-namespace`: rebuilding a lost database from the newest snapshot on
//! Morsa (or a named one), a part at a time.

use std::collections::BTreeMap;
use std::path::Path;

use morsa_client::Client;
use redstuff::BlobId;
use sha2::{Digest as _, Sha256};

use crate::GatewayError;
use crate::snapshot::format::{self, HEADER_LEN, Header, Piece, SnapshotKey};
use crate::snapshot::rows::{self, Restoring, TableCounts};
use crate::snapshot::tables::Tables;
use crate::snapshot::{Manifest, SnapshotRecord};

/// What [`restore_namespace`] restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The snapshot.
    pub record: SnapshotRecord,
    /// What it held.
    pub counts: TableCounts,
}

/// Rebuilds the database at `database` (which must not exist) from the snapshot whose head
/// (or whole format-1 blob) is `blob`, or else from the newest snapshot among the account's
/// blobs. A format-2 snapshot is read a part at a time, each written in a transaction of its
/// own; the database is moved into place only once every part is in.
pub async fn restore_namespace(
    client: &Client,
    key: &SnapshotKey,
    database: &Path,
    blob: Option<BlobId>,
) -> Result<Restored, GatewayError> {
    // An existing database is refused before anything is read.
    let restoring = Restoring::start(database)?;
    let (blob_id, header, body, end_epoch) = match blob {
        Some(blob_id) => {
            let (header, body) = format::open(key, &client.read_blob(&blob_id).await?.data)?;
            (blob_id, header, body, end_epoch_of(client, &blob_id).await?)
        }
        None => newest(client, key).await?,
    };
    let mut record = SnapshotRecord {
        sequence: header.sequence,
        blob_id,
        created_ms: header.created_ms,
        tables_sha256: [0; 32],
        end_epoch,
        parts: Vec::new(),
    };
    let counts = match header.piece {
        Piece::Whole => {
            let tables = Tables::from_bytes(&body)?;
            record.tables_sha256 = Sha256::digest(&body).into();
            let counts = tables.counts();
            restoring.write(tables.into_rows())?;
            counts
        }
        Piece::Head => {
            let manifest: Manifest =
                crate::db::decode(&body, || format!("the head of snapshot {}", header.sequence))?;
            let mut hasher = Sha256::new();
            for (number, part) in (1u32..).zip(&manifest.parts) {
                let (part_header, bytes) = format::open(key, &client.read_blob(part).await?.data)?;
                if part_header.sequence != header.sequence || part_header.piece != Piece::Part(number) {
                    return Err(GatewayError::Snapshot(format!(
                        "blob {part}, part {number} of snapshot {}, is {:?} of snapshot {}",
                        header.sequence, part_header.piece, part_header.sequence
                    )));
                }
                hasher.update(&bytes);
                restoring.write(rows::decode_part(&bytes)?)?;
                record.end_epoch = record.end_epoch.min(end_epoch_of(client, part).await?);
            }
            let tables_sha256: [u8; 32] = hasher.finalize().into();
            if tables_sha256 != manifest.tables_sha256 {
                return Err(GatewayError::Snapshot(format!(
                    "the parts of snapshot {} do not add up to what its head says",
                    header.sequence
                )));
            }
            record.tables_sha256 = tables_sha256;
            record.parts = manifest.parts;
            manifest.counts
        }
        Piece::Part(number) => {
            return Err(GatewayError::Snapshot(format!(
                "blob {blob_id} is part {number} of snapshot {}, not its head",
                header.sequence
            )));
        }
    };
    restoring.finish(&record)?;
    Ok(Restored { record, counts })
}

async fn end_epoch_of(client: &Client, blob_id: &BlobId) -> Result<u32, GatewayError> {
    let status = client.blob_status(blob_id).await?;
    Ok(status.objects.iter().map(|object| object.end_epoch.0).max().unwrap_or(0))
}

/// The newest snapshot among the account's certified blobs: epochs of registration are
/// searched newest first; within one, every blob's header is read, and the snapshots' heads
/// (and format-1 snapshots) found are opened by descending sequence number until one opens (a
/// blob that merely starts like a snapshot — an object's chunk — does not open under the
/// account's key).
async fn newest(client: &Client, key: &SnapshotKey) -> Result<(BlobId, Header, Vec<u8>, u32), GatewayError> {
    let mut by_epoch: BTreeMap<u32, BTreeMap<BlobId, (u32, u64)>> = BTreeMap::new();
    let header_len = u64::try_from(HEADER_LEN).unwrap_or(u64::MAX);
    for blob in client.list_blobs().await? {
        if blob.certified_epoch.is_some() && !blob.invalid && blob.size > 0 {
            let entry = by_epoch.entry(blob.registered_epoch.0).or_default().entry(blob.blob_id).or_default();
            *entry = (entry.0.max(blob.end_epoch.0), blob.size);
        }
    }
    let mut looked_at = 0usize;
    for blobs in by_epoch.values().rev() {
        let mut found = Vec::new();
        for (blob_id, (end_epoch, size)) in blobs {
            looked_at += 1;
            let start = client.read_blob_range(blob_id, 0..header_len.min(*size)).await?;
            // Parts are found through their head.
            if let Ok(header) = Header::parse(&start.data)
                && !matches!(header.piece, Piece::Part(_))
            {
                found.push((header, *blob_id, *end_epoch));
            }
        }
        found.sort_by_key(|(header, _, _)| std::cmp::Reverse((header.sequence, header.created_ms)));
        for (_, blob_id, end_epoch) in found {
            match format::open(key, &client.read_blob(&blob_id).await?.data) {
                Ok((header, body)) => return Ok((blob_id, header, body, end_epoch)),
                Err(error) => tracing::warn!("passed over blob {blob_id}: {error}"),
            }
        }
    }
    Err(GatewayError::Snapshot(format!(
        "no namespace snapshot among the {looked_at} certified blobs of account {}",
        client.account()
    )))
}
