//! The manifest of a file larger than one chunk: a small blob naming its chunk blobs, so the
//! file reads back as one ([`crate::files`] stores and reads files).
//!
//! When the client encrypts ([`crate::crypt`]), each chunk blob and the manifest blob are
//! each one age file; the manifest's sizes are those of the plaintext.
//!
//! A manifest blob is the bytes [`MAGIC`] followed by a JSON [`Manifest`]. A file that is
//! stored whole is never one that starts with [`MAGIC`] (such a file is stored as a
//! one-chunk manifest instead), so a blob stored by Morsa that starts with [`MAGIC`] is always
//! a manifest. A blob from elsewhere that starts with it but does not parse as one is read as
//! it is.

use std::ops::Range;

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::Error;

/// First bytes of every manifest blob.
pub const MAGIC: &[u8] = b"morsa-manifest-v1\n";

/// Largest manifest read (a 1 TiB file in 1 GiB chunks needs about 100 KiB).
pub(crate) const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The chunks of a file, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Size of the whole file.
    pub size: u64,
    /// The chunks, in file order.
    pub chunks: Vec<Chunk>,
}

/// One chunk of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// The chunk's blob.
    pub blob_id: BlobId,
    /// Its size.
    pub size: u64,
}

impl Manifest {
    /// The manifest's blob bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(serde_json::to_vec(self).expect("manifests serialize"));
        bytes
    }

    /// Parses a blob that starts with [`MAGIC`]; checks that the chunk sizes add up.
    pub fn parse(blob_id: &BlobId, bytes: &[u8]) -> Result<Self, Error> {
        let bad = |reason: String| Error::Manifest { blob_id: *blob_id, reason };
        let body =
            bytes.strip_prefix(MAGIC).ok_or_else(|| bad("it does not start with the manifest tag".into()))?;
        let manifest: Manifest = serde_json::from_slice(body).map_err(|error| bad(error.to_string()))?;
        let sum = manifest.chunks.iter().try_fold(0u64, |sum, chunk| sum.checked_add(chunk.size));
        if sum != Some(manifest.size) {
            return Err(bad(format!("its chunks do not add up to its size {}", manifest.size)));
        }
        Ok(manifest)
    }

    /// The chunks overlapping bytes `range` of the file, each with the part of it needed.
    pub(crate) fn pieces(&self, range: Range<u64>) -> Vec<(&Chunk, Range<u64>)> {
        let mut start = 0;
        let mut pieces = Vec::new();
        if range.is_empty() {
            return pieces;
        }
        for chunk in &self.chunks {
            let end = start + chunk.size;
            if range.start < end && start < range.end {
                let from = range.start.max(start) - start;
                let to = range.end.min(end) - start;
                pieces.push((chunk, from..to));
            }
            start = end;
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seed: u8) -> BlobId {
        BlobId::from_root(1, &[seed; 32])
    }

    #[test]
    fn a_manifest_round_trips_and_its_sizes_must_add_up() {
        let manifest = Manifest {
            size: 30,
            chunks: vec![Chunk { blob_id: id(1), size: 10 }, Chunk { blob_id: id(2), size: 20 }],
        };
        let bytes = manifest.to_bytes();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(Manifest::parse(&id(9), &bytes).unwrap(), manifest);
        let wrong = Manifest { size: 31, ..manifest };
        assert!(Manifest::parse(&id(9), &wrong.to_bytes()).unwrap_err().to_string().contains("add up"));
        let cut = Manifest::parse(&id(9), b"morsa-manifest-v1\n{").unwrap_err();
        assert!(matches!(cut, Error::Manifest { blob_id, .. } if blob_id == id(9)), "{cut}");
    }

    #[test]
    fn a_range_maps_to_the_parts_of_the_chunks_it_overlaps() {
        let manifest = Manifest {
            size: 30,
            chunks: vec![Chunk { blob_id: id(1), size: 10 }, Chunk { blob_id: id(2), size: 20 }],
        };
        let pieces: Vec<_> = manifest.pieces(5..15).into_iter().map(|(c, r)| (c.blob_id, r)).collect();
        assert_eq!(pieces, vec![(id(1), 5..10), (id(2), 0..5)]);
        let pieces: Vec<_> = manifest.pieces(10..30).into_iter().map(|(c, r)| (c.blob_id, r)).collect();
        assert_eq!(pieces, vec![(id(2), 0..20)]);
        assert!(manifest.pieces(7..7).is_empty());
    }
}
