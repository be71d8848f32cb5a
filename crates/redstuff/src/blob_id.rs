//! The blob ID: `H(encoding type ‖ length as u64 LE ‖ metadata root)`, shown as URL-safe base64.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::config::ENCODING_TYPE_RS2;
use crate::merkle::Digest;

/// A blob's identity, derived from its length and the Merkle root of its metadata.
///
/// In BCS it is its 32 bytes; in human-readable formats (JSON, TOML) its text form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub Digest);

impl Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            Digest::deserialize(deserializer).map(Self)
        }
    }
}

/// The error for text that is not a blob ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a blob ID: expected 43 characters of URL-safe base64 without padding")]
pub struct BlobIdParseError(pub String);

impl BlobId {
    /// Length of the text form.
    pub const TEXT_LEN: usize = 43;

    /// The ID of an RS2 blob of `unencoded_length` bytes whose metadata has `root`.
    pub fn from_root(unencoded_length: u64, root: &Digest) -> Self {
        let mut params = blake2b_simd::Params::new();
        params.hash_length(32);
        let mut state = params.to_state();
        state.update(&[ENCODING_TYPE_RS2]);
        state.update(&unencoded_length.to_le_bytes());
        state.update(root);
        let mut digest = [0; 32];
        digest.copy_from_slice(state.finalize().as_bytes());
        Self(digest)
    }

    /// The ID's bytes.
    pub fn as_bytes(&self) -> &Digest {
        &self.0
    }

    /// The ID read as a big-endian integer, modulo `n_shards`: how far pairs are rotated.
    ///
    /// Folds the ID in four 64-bit limbs (four divisions instead of 32). Code that maps many
    /// shards of one blob takes a [`Placement`] once instead of calling this per shard.
    pub fn rotation(&self, n_shards: usize) -> usize {
        assert!(n_shards > 0, "there is always at least one shard");
        let n = u128::try_from(n_shards).expect("a usize fits in a u128");
        let rest = self.0.chunks_exact(8).fold(0u128, |acc, limb| {
            let limb = u64::from_be_bytes(limb.try_into().expect("chunks of eight bytes"));
            ((acc << 64) | u128::from(limb)) % n
        });
        usize::try_from(rest).expect("a remainder modulo a usize fits in a usize")
    }

    /// Where this blob's sliver pairs sit among `n_shards` shards, the rotation computed once.
    pub fn placement(&self, n_shards: usize) -> Placement {
        Placement { rotation: self.rotation(n_shards), n_shards }
    }

    /// The shard that stores sliver pair `pair_index`: `(pair + rotation) mod n`.
    pub fn shard_for_pair(&self, pair_index: usize, n_shards: usize) -> usize {
        self.placement(n_shards).shard_for_pair(pair_index)
    }

    /// The sliver pair that shard `shard_index` stores: `(shard − rotation) mod n`.
    pub fn pair_for_shard(&self, shard_index: usize, n_shards: usize) -> usize {
        self.placement(n_shards).pair_for_shard(shard_index)
    }
}

/// A blob's sliver pairs placed on `n` shards: pair `p` is stored by shard `(p + rotation) mod n`,
/// where the rotation is the blob ID modulo `n` ([`BlobId::rotation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    rotation: usize,
    n_shards: usize,
}

impl Placement {
    /// The shard that stores sliver pair `pair_index`.
    pub fn shard_for_pair(&self, pair_index: usize) -> usize {
        (pair_index % self.n_shards + self.rotation) % self.n_shards
    }

    /// The sliver pair that shard `shard_index` stores.
    pub fn pair_for_shard(&self, shard_index: usize) -> usize {
        (shard_index % self.n_shards + self.n_shards - self.rotation) % self.n_shards
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({self})")
    }
}

impl FromStr for BlobId {
    type Err = BlobIdParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || BlobIdParseError(text.chars().take(64).collect());
        if text.len() != Self::TEXT_LEN {
            return Err(error());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| error())?;
        let digest = Digest::try_from(bytes.as_slice()).map_err(|_| error())?;
        Ok(Self(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let id = BlobId([0xfb; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), BlobId::TEXT_LEN);
        assert!(!text.contains('+') && !text.contains('/') && !text.contains('='));
        assert_eq!(text.parse::<BlobId>(), Ok(id));
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in ["", "abc", "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2k", "!".repeat(43).as_str()] {
            assert!(bad.parse::<BlobId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_is_text_in_json_and_raw_bytes_in_bcs() {
        let id = BlobId([7; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<BlobId>(&json).unwrap(), id);
        let bytes = bcs::to_bytes(&id).unwrap();
        assert_eq!(bytes, vec![7; 32]);
        assert_eq!(bcs::from_bytes::<BlobId>(&bytes).unwrap(), id);
        assert!(serde_json::from_str::<BlobId>("\"not an id\"").is_err());
    }

    #[test]
    fn rotation_by_limbs_equals_the_bytewise_fold() {
        let bytewise =
            |id: &BlobId, n: usize| id.0.iter().fold(0, |acc, byte| (acc * 256 + usize::from(*byte)) % n);
        let mut ids = vec![BlobId([0; 32]), BlobId([0xff; 32])];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..200 {
            let mut bytes = [0u8; 32];
            for byte in &mut bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state.to_le_bytes()[0];
            }
            ids.push(BlobId(bytes));
        }
        for id in &ids {
            for n in [1, 2, 4, 7, 10, 255, 256, 1000, 1001, 65_535, 1 << 20] {
                assert_eq!(id.rotation(n), bytewise(id, n), "{id} mod {n}");
                let placement = id.placement(n);
                for shard in [0, 1, n / 2, n - 1].into_iter().filter(|shard| *shard < n) {
                    assert_eq!(placement.shard_for_pair(placement.pair_for_shard(shard)), shard);
                }
            }
        }
    }

    #[test]
    fn rotation_is_the_big_endian_value_mod_n() {
        let mut bytes = [0u8; 32];
        bytes[30] = 1; // value 256
        bytes[31] = 7; // value 263
        let id = BlobId(bytes);
        assert_eq!(id.rotation(10), 3);
        assert_eq!(id.rotation(1000), 263);
        assert_eq!(id.shard_for_pair(0, 10), 3);
        assert_eq!(id.shard_for_pair(9, 10), 2);
        for shard in 0..10 {
            assert_eq!(id.shard_for_pair(id.pair_for_shard(shard, 10), 10), shard);
        }
    }
}
