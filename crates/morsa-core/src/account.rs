//! Account keys: ed25519 (RFC 8032) keys that sign the transactions users send the coordinator.
//! An account is named by its public key; verification is `verify_strict`, which refuses
//! small-order keys and non-canonical signatures, so a signature cannot be malleated.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand::TryRngCore as _;
use rand::rngs::OsRng;

use crate::hex_bytes::hex_newtype;
use crate::signature::SignatureError;

/// An account: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub [u8; 32]);
hex_newtype!(AccountId, 32, "an account ID");

/// An ed25519 signature by an account: `R ‖ s`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccountSignature(pub [u8; 64]);
hex_newtype!(AccountSignature, 64, "an account signature");

/// An account's secret key. Its `Debug` shows only the account ID; the secret is wiped on drop.
#[derive(Clone)]
pub struct AccountKey(SigningKey);

impl AccountId {
    /// Checks that `signature` is this account's signature over `message` (strict ed25519:
    /// small-order keys and non-canonical signatures are refused).
    pub fn verify(&self, message: &[u8], signature: &AccountSignature) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::MalformedPublicKey)?;
        if key.is_weak() {
            return Err(SignatureError::MalformedPublicKey);
        }
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature).map_err(|_| SignatureError::InvalidSignature)
    }
}

impl AccountKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut seed = [0; 32];
        OsRng.try_fill_bytes(&mut seed).expect("the operating system's random number generator works");
        Self::from_seed(seed)
    }

    /// The key whose RFC 8032 secret (seed) is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The RFC 8032 secret (seed): [`AccountKey::from_seed`] of it gives this key back.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The account this key signs for.
    pub fn id(&self) -> AccountId {
        AccountId(self.0.verifying_key().to_bytes())
    }

    /// Signs `message` (deterministic: the same key and message give the same signature).
    pub fn sign(&self, message: &[u8]) -> AccountSignature {
        AccountSignature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey").field("id", &self.id()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> AccountKey {
        AccountKey::from_seed([byte; 32])
    }

    #[test]
    fn signatures_verify_under_their_key_and_message_only() {
        let (alice, bob) = (key(1), key(2));
        let signature = alice.sign(b"transfer 5");
        assert_eq!(alice.id().verify(b"transfer 5", &signature), Ok(()));
        assert_eq!(bob.id().verify(b"transfer 5", &signature), Err(SignatureError::InvalidSignature));
        assert_eq!(alice.id().verify(b"transfer 6", &signature), Err(SignatureError::InvalidSignature));
        for bit in [0, 7, 255, 256, 511] {
            let mut flipped = signature.clone();
            flipped.0[bit / 8] ^= 1 << (bit % 8);
            let refused = alice.id().verify(b"transfer 5", &flipped);
            assert_eq!(refused, Err(SignatureError::InvalidSignature), "bit {bit} flipped");
        }
    }

    #[test]
    fn malformed_and_small_order_keys_are_refused() {
        let signature = key(1).sign(b"m");
        // y = 2 is not the y-coordinate of a curve point.
        let mut not_a_point = [0; 32];
        not_a_point[0] = 2;
        // The identity (y = 1) and the all-zero encoding (a point of order 4) are small order.
        let mut identity = [0; 32];
        identity[0] = 1;
        assert!(VerifyingKey::from_bytes(&not_a_point).is_err());
        for bytes in [not_a_point, identity, [0; 32]] {
            assert_eq!(AccountId(bytes).verify(b"m", &signature), Err(SignatureError::MalformedPublicKey));
        }
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        let alice = key(1);
        let mut signature = alice.sign(b"m");
        signature.0[63] |= 0xf0; // s ≥ 2^252 > ℓ
        assert_eq!(alice.id().verify(b"m", &signature), Err(SignatureError::InvalidSignature));
    }

    #[test]
    fn seed_round_trips_and_debug_hides_it() {
        let alice = key(7);
        assert_eq!(alice.seed(), [7; 32]);
        assert_eq!(AccountKey::from_seed(alice.seed()).id(), alice.id());
        assert_ne!(AccountKey::generate().id(), AccountKey::generate().id());
        let debug = format!("{alice:?}");
        assert!(debug.contains(&alice.id().to_string()), "{debug}");
        assert!(!debug.contains(&hex::encode(alice.seed())), "{debug}");
    }

    #[test]
    fn id_reads_as_hex_in_json_and_text() {
        let id = key(3).id();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", hex::encode(id.0)));
        assert_eq!(serde_json::from_str::<AccountId>(&json).unwrap(), id);
        assert_eq!(id.to_string().len(), 64);
        assert_eq!(id.to_string().parse::<AccountId>(), Ok(id));
        assert!(serde_json::from_str::<AccountId>("\"abcd\"").is_err());
        let error = "0x12".parse::<AccountId>().unwrap_err();
        assert_eq!(error.to_string(), "\"0x12\" is not an account ID: expected 64 hex characters");
    }

    #[test]
    fn bcs_is_raw_bytes_without_a_length_prefix() {
        let alice = key(4);
        let signature = alice.sign(b"m");
        let bytes = bcs::to_bytes(&signature).unwrap();
        assert_eq!(bytes, signature.0);
        assert_eq!(bcs::from_bytes::<AccountSignature>(&bytes).unwrap(), signature);
        assert_eq!(bcs::to_bytes(&alice.id()).unwrap(), alice.id().0);
        assert!(bcs::from_bytes::<AccountSignature>(&bytes[..63]).is_err());
        let json = serde_json::to_string(&signature).unwrap();
        assert_eq!(serde_json::from_str::<AccountSignature>(&json).unwrap(), signature);
    }
}
