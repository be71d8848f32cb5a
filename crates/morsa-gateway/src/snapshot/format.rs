//! The bytes of a namespace snapshot's blobs. A plaintext header says what a blob is — magic,
//! format version, sequence number, time taken, nonce, body length and (format 2) which piece
//! of the snapshot — so `restore-namespace` recognises snapshots among the account's blobs with
//! a short range read; the body is sealed with ChaCha20-Poly1305 under a key derived from the
//! gateway's account key, the header being its associated data. Storage nodes thus hold only
//! ciphertext (the S3 users' secrets and every bucket and key name), and any change to header
//! or body fails to open.
//!
//! Format 2 (written now): a snapshot is parts 1, 2, … (the namespace's rows, a bounded number
//! of bytes each, see [`super::rows`]) and a head (piece 0) naming the parts' blobs in order.
//! Format 1 (still read): the whole namespace's tables in one blob.

use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit as _};
use hkdf::Hkdf;
use morsa_core::AccountKey;
use sha2::Sha256;

use crate::GatewayError;

/// What every snapshot blob starts with.
pub const MAGIC: &[u8; 16] = b"MorsaGwNamespace";
/// The format version this gateway writes (it also reads version 1).
pub const VERSION: u16 = 2;
/// The version of a whole snapshot in one blob.
const VERSION_WHOLE: u16 = 1;
/// Length of a format-1 header.
const HEADER_LEN_WHOLE: usize = 16 + 2 + 8 + 8 + 12 + 8;
/// Length of the plaintext header (format 2: format 1's, then the piece number); the longest.
pub const HEADER_LEN: usize = HEADER_LEN_WHOLE + 4;

/// Which piece of a snapshot a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The whole snapshot in one blob (format 1).
    Whole,
    /// The head, naming the parts' blobs (format 2, piece 0).
    Head,
    /// Part `n` (from 1) of the rows (format 2).
    Part(u32),
}

/// The plaintext header of a snapshot blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Snapshots of one gateway are numbered 1, 2, …; the newest has the largest number.
    pub sequence: u64,
    /// When it was taken (ms since the Unix epoch).
    pub created_ms: u64,
    /// Which piece of the snapshot the blob is.
    pub piece: Piece,
    nonce: [u8; 12],
    body_len: u64,
}

/// The key snapshots are sealed with: derived (HKDF-SHA256) from the account key's seed, so
/// whoever holds the gateway's account key can restore, and nobody else can read.
#[derive(Clone)]
pub struct SnapshotKey(chacha20poly1305::Key);

impl std::fmt::Debug for SnapshotKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SnapshotKey(..)")
    }
}

impl SnapshotKey {
    /// The snapshot key of the account `key`.
    pub fn derive(key: &AccountKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"morsa-gateway-namespace-snapshot"), &key.seed());
        let mut bytes = [0u8; 32];
        hkdf.expand(b"sealing key v1", &mut bytes).expect("32 bytes is a valid HKDF-SHA256 length");
        Self(bytes.into())
    }
}

impl Header {
    /// The header's bytes (as long as its format's header).
    fn to_bytes(self) -> Vec<u8> {
        let (version, piece) = match self.piece {
            Piece::Whole => (VERSION_WHOLE, None),
            Piece::Head => (VERSION, Some(0u32)),
            Piece::Part(number) => (VERSION, Some(number)),
        };
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&self.sequence.to_le_bytes());
        bytes.extend_from_slice(&self.created_ms.to_le_bytes());
        bytes.extend_from_slice(&self.nonce);
        bytes.extend_from_slice(&self.body_len.to_le_bytes());
        if let Some(piece) = piece {
            bytes.extend_from_slice(&piece.to_le_bytes());
        }
        bytes
    }

    /// Length of this header.
    fn len(&self) -> usize {
        match self.piece {
            Piece::Whole => HEADER_LEN_WHOLE,
            Piece::Head | Piece::Part(_) => HEADER_LEN,
        }
    }

    /// The header at the start of `bytes`, if they start like a snapshot of a version this
    /// gateway reads (1 or 2).
    pub fn parse(bytes: &[u8]) -> Result<Self, GatewayError> {
        let bad = |reason: &str| GatewayError::Snapshot(format!("not a namespace snapshot: {reason}"));
        let header = bytes.get(..HEADER_LEN_WHOLE).ok_or_else(|| bad("too short"))?;
        let (magic, rest) = header.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(bad("no magic"));
        }
        let (version, rest) = rest.split_at(2);
        let version = u16::from_le_bytes([version[0], version[1]]);
        let piece = match version {
            VERSION_WHOLE => Piece::Whole,
            VERSION => {
                let number = bytes.get(HEADER_LEN_WHOLE..HEADER_LEN).ok_or_else(|| bad("too short"))?;
                match u32::from_le_bytes(number.try_into().expect("four bytes")) {
                    0 => Piece::Head,
                    number => Piece::Part(number),
                }
            }
            _ => {
                return Err(bad(&format!(
                    "format version {version}, this gateway reads {VERSION_WHOLE} and {VERSION}"
                )));
            }
        };
        let u64_at = |slice: &[u8]| u64::from_le_bytes(slice.try_into().expect("eight bytes"));
        let (sequence, rest) = rest.split_at(8);
        let (created_ms, rest) = rest.split_at(8);
        let (nonce, body_len) = rest.split_at(12);
        Ok(Self {
            sequence: u64_at(sequence),
            created_ms: u64_at(created_ms),
            piece,
            nonce: nonce.try_into().expect("twelve bytes"),
            body_len: u64_at(body_len),
        })
    }
}

/// The blob of `piece` of snapshot `sequence`, holding `body`.
pub fn seal(key: &SnapshotKey, sequence: u64, created_ms: u64, piece: Piece, body: &[u8]) -> Vec<u8> {
    let sealed_len = body.len() + 16;
    let header = Header {
        sequence,
        created_ms,
        piece,
        nonce: rand::random(),
        body_len: u64::try_from(sealed_len).unwrap_or(u64::MAX),
    };
    let header_bytes = header.to_bytes();
    let cipher = ChaCha20Poly1305::new(&key.0);
    let sealed = cipher
        .encrypt(&header.nonce.into(), Payload { msg: body, aad: &header_bytes })
        .expect("sealing in memory does not fail");
    let mut blob = Vec::with_capacity(header_bytes.len() + sealed.len());
    blob.extend_from_slice(&header_bytes);
    blob.extend_from_slice(&sealed);
    blob
}

/// The header and the body of the snapshot blob `blob`, checked: the header is well formed,
/// the length is right, and the body opens under `key` (it was sealed by this account and
/// not altered).
pub fn open(key: &SnapshotKey, blob: &[u8]) -> Result<(Header, Vec<u8>), GatewayError> {
    let header = Header::parse(blob)?;
    let (header_bytes, sealed) = blob.split_at(header.len());
    if u64::try_from(sealed.len()).ok() != Some(header.body_len) {
        return Err(GatewayError::Snapshot(format!(
            "snapshot {} has a body of {} bytes, its header says {}",
            header.sequence,
            sealed.len(),
            header.body_len
        )));
    }
    let cipher = ChaCha20Poly1305::new(&key.0);
    let body =
        cipher.decrypt(&header.nonce.into(), Payload { msg: sealed, aad: header_bytes }).map_err(|_| {
            GatewayError::Snapshot(format!(
                "snapshot {} does not open: altered, or sealed by another account's key",
                header.sequence
            ))
        })?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_snapshot_opens_only_unaltered_and_under_its_key() {
        let key = SnapshotKey::derive(&AccountKey::from_seed([7; 32]));
        let body = b"the namespace's tables".to_vec();
        let blob = seal(&key, 42, 1_000, Piece::Part(3), &body);
        assert!(!blob.windows(body.len()).any(|window| window == body), "the body is not in clear");
        let (header, opened) = open(&key, &blob).unwrap();
        assert_eq!(
            (header.sequence, header.created_ms, header.piece, opened),
            (42, 1_000, Piece::Part(3), body)
        );
        assert_eq!(Header::parse(&blob[..HEADER_LEN]).unwrap(), header);
        for piece in [Piece::Head, Piece::Whole] {
            let (header, _) = open(&key, &seal(&key, 7, 1, piece, b"rows")).unwrap();
            assert_eq!(
                header.piece,
                piece,
                "format {} carries its piece",
                if piece == Piece::Whole { 1 } else { 2 }
            );
        }
        // A part cannot pass for another piece: the piece number is sealed with the body.
        let mut renumbered = blob.clone();
        renumbered[HEADER_LEN - 4] = 4;
        assert!(open(&key, &renumbered).is_err());

        let other = SnapshotKey::derive(&AccountKey::from_seed([8; 32]));
        assert!(open(&other, &blob).unwrap_err().to_string().contains("does not open"));
        for at in [20, HEADER_LEN + 3, blob.len() - 1] {
            let mut altered = blob.clone();
            altered[at] ^= 1;
            assert!(open(&key, &altered).is_err(), "a flipped byte at {at} is refused");
        }
        assert!(open(&key, &blob[..blob.len() - 1]).unwrap_err().to_string().contains("header says"));
        let mut wrong_version = blob.clone();
        wrong_version[16] = 9;
        assert!(Header::parse(&wrong_version).unwrap_err().to_string().contains("version 9"));
        assert!(Header::parse(b"MorsaGwNamespac").is_err());
        assert!(Header::parse(&[0; HEADER_LEN]).unwrap_err().to_string().contains("magic"));
    }
}
