//! How object and part records are stored, and how records written before chunks could be
//! sealed or packed still decode.
//!
//! Format 1 (before encryption) was the record's fields in order, each chunk a blob ID and a
//! size. Format 2 is format 1's bytes followed by one [`Sealing`] per chunk; format 3 is
//! format 2's bytes followed by one `Option<`[`Packed`]`>` per chunk (where a piece of a
//! packed blob is). postcard writes a struct as its fields one after another, so an older
//! record read as a newer format runs out of bytes where the new fields would start and always
//! fails; it is then read as the older format, which must take every byte (a damaged newer
//! record is never taken for an older one). Format-2 chunks are whole blobs; format-1 chunks
//! are whole plaintext blobs.

use std::collections::BTreeMap;

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use super::{ChunkRef, ObjectRecord, Packed, PartRecord, Sealing};
use crate::GatewayError;
use crate::checksum::StoredChecksum;

/// A chunk as format 1 stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredChunk {
    blob_id: BlobId,
    size: u64,
}

/// An object's fields as format 1 stores them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectV1 {
    chunks: Vec<StoredChunk>,
    size: u64,
    etag: String,
    content_type: Option<String>,
    metadata: BTreeMap<String, String>,
    modified_ms: u64,
    checksum: Option<StoredChecksum>,
    parts: u32,
}

/// A part's fields as format 1 stores them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartV1 {
    chunks: Vec<StoredChunk>,
    size: u64,
    md5_hex: String,
    checksum: Option<StoredChecksum>,
    modified_ms: u64,
}

/// An object as format 2 stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectV2 {
    v1: ObjectV1,
    sealings: Vec<Sealing>,
}

/// A part as format 2 stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartV2 {
    v1: PartV1,
    sealings: Vec<Sealing>,
}

/// An object as format 3 stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredObject {
    v2: ObjectV2,
    packing: Vec<Option<Packed>>,
}

/// A part as format 3 stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPart {
    v2: PartV2,
    packing: Vec<Option<Packed>>,
}

type Split = (Vec<StoredChunk>, (Vec<Sealing>, Vec<Option<Packed>>));

fn split(chunks: Vec<ChunkRef>) -> Split {
    chunks
        .into_iter()
        .map(|chunk| {
            (StoredChunk { blob_id: chunk.blob_id, size: chunk.size }, (chunk.sealing, chunk.packed))
        })
        .unzip()
}

fn join(
    chunks: Vec<StoredChunk>,
    sealings: Vec<Sealing>,
    packing: Vec<Option<Packed>>,
) -> Result<Vec<ChunkRef>, String> {
    if chunks.len() != sealings.len() || chunks.len() != packing.len() {
        let (chunks, sealings, packing) = (chunks.len(), sealings.len(), packing.len());
        return Err(format!("{chunks} chunks but {sealings} sealings and {packing} placements"));
    }
    Ok(chunks
        .into_iter()
        .zip(sealings.into_iter().zip(packing))
        .map(|(chunk, (sealing, packed))| ChunkRef {
            blob_id: chunk.blob_id,
            size: chunk.size,
            sealing,
            packed,
        })
        .collect())
}

/// Chunks of a format-2 record: whole blobs.
fn whole(chunks: Vec<StoredChunk>, sealings: Vec<Sealing>) -> Result<Vec<ChunkRef>, String> {
    let packing = vec![None; chunks.len()];
    join(chunks, sealings, packing)
}

/// Chunks of a format-1 record: whole plaintext blobs.
fn plain(chunks: Vec<StoredChunk>) -> Vec<ChunkRef> {
    let sealings = vec![Sealing::Plain; chunks.len()];
    whole(chunks, sealings).expect("one sealing per chunk")
}

impl From<ObjectRecord> for StoredObject {
    fn from(record: ObjectRecord) -> Self {
        let (chunks, (sealings, packing)) = split(record.chunks);
        let v1 = ObjectV1 {
            chunks,
            size: record.size,
            etag: record.etag,
            content_type: record.content_type,
            metadata: record.metadata,
            modified_ms: record.modified_ms,
            checksum: record.checksum,
            parts: record.parts,
        };
        Self { v2: ObjectV2 { v1, sealings }, packing }
    }
}

impl ObjectV1 {
    fn into_record(self, chunks: Vec<ChunkRef>) -> ObjectRecord {
        ObjectRecord {
            chunks,
            size: self.size,
            etag: self.etag,
            content_type: self.content_type,
            metadata: self.metadata,
            modified_ms: self.modified_ms,
            checksum: self.checksum,
            parts: self.parts,
        }
    }
}

impl TryFrom<StoredObject> for ObjectRecord {
    type Error = String;

    fn try_from(stored: StoredObject) -> Result<Self, String> {
        let ObjectV2 { mut v1, sealings } = stored.v2;
        let chunks = join(std::mem::take(&mut v1.chunks), sealings, stored.packing)?;
        Ok(v1.into_record(chunks))
    }
}

impl From<PartRecord> for StoredPart {
    fn from(record: PartRecord) -> Self {
        let (chunks, (sealings, packing)) = split(record.chunks);
        let v1 = PartV1 {
            chunks,
            size: record.size,
            md5_hex: record.md5_hex,
            checksum: record.checksum,
            modified_ms: record.modified_ms,
        };
        Self { v2: PartV2 { v1, sealings }, packing }
    }
}

impl PartV1 {
    fn into_record(self, chunks: Vec<ChunkRef>) -> PartRecord {
        PartRecord {
            chunks,
            size: self.size,
            md5_hex: self.md5_hex,
            checksum: self.checksum,
            modified_ms: self.modified_ms,
        }
    }
}

impl TryFrom<StoredPart> for PartRecord {
    type Error = String;

    fn try_from(stored: StoredPart) -> Result<Self, String> {
        let PartV2 { mut v1, sealings } = stored.v2;
        let chunks = join(std::mem::take(&mut v1.chunks), sealings, stored.packing)?;
        Ok(v1.into_record(chunks))
    }
}

/// A stored object record of any format.
pub fn decode_object(bytes: &[u8], what: impl FnOnce() -> String) -> Result<ObjectRecord, GatewayError> {
    decode_any(
        bytes,
        what,
        |ObjectV2 { mut v1, sealings }| {
            let chunks = whole(std::mem::take(&mut v1.chunks), sealings)?;
            Ok(v1.into_record(chunks))
        },
        |mut v1: ObjectV1| {
            let chunks = plain(std::mem::take(&mut v1.chunks));
            v1.into_record(chunks)
        },
    )
}

/// A stored part record of any format.
pub fn decode_part(bytes: &[u8], what: impl FnOnce() -> String) -> Result<PartRecord, GatewayError> {
    decode_any(
        bytes,
        what,
        |PartV2 { mut v1, sealings }| {
            let chunks = whole(std::mem::take(&mut v1.chunks), sealings)?;
            Ok(v1.into_record(chunks))
        },
        |mut v1: PartV1| {
            let chunks = plain(std::mem::take(&mut v1.chunks));
            v1.into_record(chunks)
        },
    )
}

/// `bytes` as format 3, else as format 2 taking every byte, else as format 1 taking every
/// byte.
fn decode_any<T, V2, V1>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
    from_v2: impl FnOnce(V2) -> Result<T, String>,
    from_v1: impl FnOnce(V1) -> T,
) -> Result<T, GatewayError>
where
    T: serde::de::DeserializeOwned,
    V2: serde::de::DeserializeOwned,
    V1: serde::de::DeserializeOwned,
{
    let current = match postcard::from_bytes::<T>(bytes) {
        Ok(record) => return Ok(record),
        Err(error) => error.to_string(),
    };
    if let Ok((v2, [])) = postcard::take_from_bytes::<V2>(bytes) {
        return from_v2(v2).map_err(|reason| GatewayError::CorruptRecord { what: what(), reason });
    }
    match postcard::take_from_bytes::<V1>(bytes) {
        Ok((v1, [])) => Ok(from_v1(v1)),
        _ => Err(GatewayError::CorruptRecord { what: what(), reason: current }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seed: u8, sealing: Sealing) -> ChunkRef {
        ChunkRef {
            blob_id: BlobId::from_root(1, &[seed; 32]),
            size: 1000 + u64::from(seed),
            sealing,
            packed: None,
        }
    }

    fn object(chunks: Vec<ChunkRef>) -> ObjectRecord {
        ObjectRecord {
            chunks,
            size: 2003,
            etag: "abc-2".into(),
            content_type: Some("text/plain".into()),
            metadata: BTreeMap::from([("k".into(), "v".into())]),
            modified_ms: 5,
            checksum: None,
            parts: 2,
        }
    }

    /// The format-1 encoding, written out field by field as the gateway stored it before
    /// chunks could be sealed (not through this module's types).
    #[derive(Serialize)]
    struct Format1Object<'a> {
        chunks: Vec<(BlobId, u64)>,
        size: u64,
        etag: &'a str,
        content_type: Option<&'a str>,
        metadata: BTreeMap<String, String>,
        modified_ms: u64,
        checksum: Option<StoredChecksum>,
        parts: u32,
    }

    #[test]
    fn records_keep_each_chunks_sealing_and_format_1_records_read_as_plain() {
        let record = object(vec![chunk(1, Sealing::Age), chunk(2, Sealing::Plain), chunk(3, Sealing::Age)]);
        let bytes = crate::db::encode(&record);
        assert_eq!(decode_object(&bytes, String::new).unwrap(), record);

        let old = Format1Object {
            chunks: vec![(BlobId::from_root(1, &[1; 32]), 1001), (BlobId::from_root(1, &[2; 32]), 1002)],
            size: 2003,
            etag: "abc-2",
            content_type: Some("text/plain"),
            metadata: BTreeMap::from([("k".into(), "v".into())]),
            modified_ms: 5,
            checksum: None,
            parts: 2,
        };
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        let read = decode_object(&old_bytes, String::new).unwrap();
        assert_eq!(read, object(vec![chunk(1, Sealing::Plain), chunk(2, Sealing::Plain)]));

        // A format-2 record cut inside its sealings is damaged, not a plaintext object.
        let cut = &bytes[..bytes.len() - 1];
        let error = decode_object(cut, || "object b/k".into()).unwrap_err().to_string();
        assert!(error.contains("object b/k"), "{error}");
    }

    #[test]
    fn packed_pieces_keep_their_place_and_format_2_records_read_as_whole_blobs() {
        let packed = |seed, offset| ChunkRef {
            packed: Some(Packed { offset, stored: 1200 + u64::from(seed) }),
            ..chunk(seed, Sealing::Age)
        };
        let record = object(vec![packed(5, 0), chunk(6, Sealing::Age), packed(7, 4096)]);
        let bytes = crate::db::encode(&record);
        assert_eq!(decode_object(&bytes, String::new).unwrap(), record);

        // Format 2, written out as the gateway stored it before pieces could be packed.
        let format_2 = |sealings: &[Sealing]| {
            let old = Format1Object {
                chunks: vec![(BlobId::from_root(1, &[5; 32]), 1005), (BlobId::from_root(1, &[6; 32]), 1006)],
                size: 2011,
                etag: "e",
                content_type: None,
                metadata: BTreeMap::new(),
                modified_ms: 5,
                checksum: None,
                parts: 0,
            };
            postcard::to_allocvec(&(old, sealings)).unwrap()
        };
        let read = decode_object(&format_2(&[Sealing::Age, Sealing::Plain]), String::new).unwrap();
        assert_eq!(read.chunks, vec![chunk(5, Sealing::Age), chunk(6, Sealing::Plain)]);
        // A format-2 record with a sealing missing is damaged.
        assert!(decode_object(&format_2(&[Sealing::Age]), String::new).is_err());

        // A format-3 record cut inside its placements is damaged, not a record of whole blobs.
        let cut = &bytes[..bytes.len() - 1];
        assert!(decode_object(cut, String::new).is_err());
    }

    #[test]
    fn parts_round_trip_with_their_sealings() {
        let part = PartRecord {
            chunks: vec![chunk(4, Sealing::Age)],
            size: 1004,
            md5_hex: "00".into(),
            checksum: None,
            modified_ms: 9,
        };
        assert_eq!(decode_part(&crate::db::encode(&part), String::new).unwrap(), part);
        let old = postcard::to_allocvec(&(
            vec![(BlobId::from_root(1, &[4; 32]), 1004u64)],
            1004u64,
            "00",
            None::<StoredChecksum>,
            9u64,
        ))
        .unwrap();
        let read = decode_part(&old, String::new).unwrap();
        assert_eq!(read.chunks, vec![chunk(4, Sealing::Plain)]);
    }
}
