//! How object and part records are stored, and how records written before chunks could be
//! sealed still decode.
//!
//! Format 1 (before encryption) was the record's fields in order, each chunk a blob ID and a
//! size. Format 2 is format 1's bytes followed by one [`Sealing`] per chunk. postcard writes
//! a struct as its fields one after another, so a format-1 record read as format 2 runs out of
//! bytes where the sealings would start and always fails; it is then read as format 1, which
//! must take every byte (a damaged format-2 record is never taken for a plaintext one), and
//! its chunks are [`Sealing::Plain`].

use std::collections::BTreeMap;

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use super::{ChunkRef, ObjectRecord, PartRecord, Sealing};
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
pub struct StoredObject {
    v1: ObjectV1,
    sealings: Vec<Sealing>,
}

/// A part as format 2 stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPart {
    v1: PartV1,
    sealings: Vec<Sealing>,
}

fn split(chunks: Vec<ChunkRef>) -> (Vec<StoredChunk>, Vec<Sealing>) {
    chunks
        .into_iter()
        .map(|chunk| (StoredChunk { blob_id: chunk.blob_id, size: chunk.size }, chunk.sealing))
        .unzip()
}

fn join(chunks: Vec<StoredChunk>, sealings: Vec<Sealing>) -> Result<Vec<ChunkRef>, String> {
    if chunks.len() != sealings.len() {
        return Err(format!("{} chunks but {} sealings", chunks.len(), sealings.len()));
    }
    Ok(chunks
        .into_iter()
        .zip(sealings)
        .map(|(chunk, sealing)| ChunkRef { blob_id: chunk.blob_id, size: chunk.size, sealing })
        .collect())
}

fn plain(chunks: Vec<StoredChunk>) -> Vec<ChunkRef> {
    let sealings = vec![Sealing::Plain; chunks.len()];
    join(chunks, sealings).expect("one sealing per chunk")
}

impl From<ObjectRecord> for StoredObject {
    fn from(record: ObjectRecord) -> Self {
        let (chunks, sealings) = split(record.chunks);
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
        Self { v1, sealings }
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

    fn try_from(mut stored: StoredObject) -> Result<Self, String> {
        let chunks = join(std::mem::take(&mut stored.v1.chunks), stored.sealings)?;
        Ok(stored.v1.into_record(chunks))
    }
}

impl From<PartRecord> for StoredPart {
    fn from(record: PartRecord) -> Self {
        let (chunks, sealings) = split(record.chunks);
        let v1 = PartV1 {
            chunks,
            size: record.size,
            md5_hex: record.md5_hex,
            checksum: record.checksum,
            modified_ms: record.modified_ms,
        };
        Self { v1, sealings }
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

    fn try_from(mut stored: StoredPart) -> Result<Self, String> {
        let chunks = join(std::mem::take(&mut stored.v1.chunks), stored.sealings)?;
        Ok(stored.v1.into_record(chunks))
    }
}

/// A stored object record of either format.
pub fn decode_object(bytes: &[u8], what: impl FnOnce() -> String) -> Result<ObjectRecord, GatewayError> {
    decode_either(bytes, what, |mut v1: ObjectV1| {
        let chunks = plain(std::mem::take(&mut v1.chunks));
        v1.into_record(chunks)
    })
}

/// A stored part record of either format.
pub fn decode_part(bytes: &[u8], what: impl FnOnce() -> String) -> Result<PartRecord, GatewayError> {
    decode_either(bytes, what, |mut v1: PartV1| {
        let chunks = plain(std::mem::take(&mut v1.chunks));
        v1.into_record(chunks)
    })
}

/// `bytes` as format 2, else as format 1 taking every byte.
fn decode_either<T, V1>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
    from_v1: impl FnOnce(V1) -> T,
) -> Result<T, GatewayError>
where
    T: serde::de::DeserializeOwned,
    V1: serde::de::DeserializeOwned,
{
    let current = match postcard::from_bytes::<T>(bytes) {
        Ok(record) => return Ok(record),
        Err(error) => error,
    };
    match postcard::take_from_bytes::<V1>(bytes) {
        Ok((v1, [])) => Ok(from_v1(v1)),
        _ => Err(GatewayError::CorruptRecord { what: what(), reason: current.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seed: u8, sealing: Sealing) -> ChunkRef {
        ChunkRef { blob_id: BlobId::from_root(1, &[seed; 32]), size: 1000 + u64::from(seed), sealing }
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
