//! The root secret: 32 random bytes from which every data identity is derived, and which the
//! SLIP-39 shares carry.
//!
//! Derivations (HKDF-SHA256, RFC 5869, with salt [`SALT`] and the root as input keying
//! material):
//! - the age X25519 data identity of generation `g` (from 1): 32 bytes with info
//!   `"age-x25519-identity"` followed by `g` as 4 big-endian bytes; these bytes are the
//!   X25519 secret key, written as `AGE-SECRET-KEY-1…` (Bech32) for the age tool;
//! - the key-check value: 4 bytes with info `"key-check"`;
//! - the convergence key: 32 bytes with info `"convergence"`, the secret that makes
//!   convergent encryption (`morsa store --convergent`) deterministic for this root only.
//!
//! What the shares carry is the root followed by its key-check value (36 bytes), so that a
//! wrong share passphrase, which SLIP-39 cannot notice, is caught when the shares are
//! combined.

use age::secrecy::ExposeSecret;
use hkdf::Hkdf;
use rand::TryRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::slip39::{self, ShareError, SplitError};

/// Salt of every derivation from the root.
pub const SALT: &[u8] = b"morsa-keys-v1";

/// Bytes of the root secret.
pub const ROOT_BYTES: usize = 32;

/// Bytes of the key-check value.
pub const CHECK_BYTES: usize = 4;

/// PBKDF2 iteration exponent of the shares Morsa makes (10 000 × 2 iterations).
const SHARE_EXPONENT: u8 = 1;

/// Why shares do not give a root secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecoverError {
    /// The shares themselves do not combine (the check that failed is named).
    #[error(transparent)]
    Shares(#[from] ShareError),
    /// The shares combine, but not to a Morsa root secret with its check value.
    #[error(
        "the shares combine, but the key-check value does not match: wrong share passphrase (or shares of something other than a Morsa root)"
    )]
    KeyCheck,
}

/// The root secret. Zeroed when dropped; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RootSecret(Zeroizing<[u8; ROOT_BYTES]>);

impl std::fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootSecret(check {})", hex::encode(self.key_check()))
    }
}

impl RootSecret {
    /// A new root from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; ROOT_BYTES]);
        rand::rngs::OsRng.try_fill_bytes(bytes.as_mut()).expect("the operating system's RNG works");
        Self(bytes)
    }

    /// The root with these bytes.
    pub fn from_bytes(bytes: [u8; ROOT_BYTES]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; ROOT_BYTES] {
        &self.0
    }

    fn derive<const N: usize>(&self, info: &[u8]) -> Zeroizing<[u8; N]> {
        let mut out = Zeroizing::new([0u8; N]);
        Hkdf::<Sha256>::new(Some(SALT), self.0.as_ref())
            .expand(info, out.as_mut())
            .expect("HKDF-SHA256 gives up to 8160 bytes");
        out
    }

    /// The key-check value: names the root without revealing it.
    pub fn key_check(&self) -> [u8; CHECK_BYTES] {
        *self.derive::<CHECK_BYTES>(b"key-check")
    }

    /// The convergence key: what keys convergent encryption, so that the same plaintext
    /// stored twice under this root gives the same blob, and under another root a different
    /// one.
    pub fn convergence_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive::<32>(b"convergence")
    }

    /// The age X25519 identity of `generation` (from 1).
    pub fn identity(&self, generation: u32) -> age::x25519::Identity {
        let info = [b"age-x25519-identity".as_slice(), &generation.to_be_bytes()].concat();
        let secret = self.derive::<32>(&info);
        let hrp = bech32::Hrp::parse("age-secret-key-").expect("a valid human-readable part");
        let encoded = Zeroizing::new(
            bech32::encode::<bech32::Bech32>(hrp, secret.as_ref()).expect("32 bytes fit in Bech32"),
        );
        encoded.to_uppercase().parse().expect("a Bech32 X25519 secret key is an age identity")
    }

    /// The identity of `generation` as the age tool reads it (`AGE-SECRET-KEY-1…`).
    pub fn identity_string(&self, generation: u32) -> Zeroizing<String> {
        Zeroizing::new(self.identity(generation).to_string().expose_secret().to_string())
    }

    /// SLIP-39 shares of the root and its check value: `count` shares, any `threshold` of
    /// which (with `passphrase`, empty for none) recover it.
    pub fn split(&self, threshold: u8, count: u8, passphrase: &[u8]) -> Result<Vec<String>, SplitError> {
        let secret = Zeroizing::new([self.0.as_slice(), &self.key_check()].concat());
        slip39::split(&secret, threshold, count, passphrase, SHARE_EXPONENT)
    }

    /// The root the shares carry, checked against its key-check value.
    pub fn recover<S: AsRef<str>>(shares: &[S], passphrase: &[u8]) -> Result<Self, RecoverError> {
        let secret = Zeroizing::new(slip39::combine(shares, passphrase)?);
        if secret.len() != ROOT_BYTES + CHECK_BYTES {
            return Err(RecoverError::KeyCheck);
        }
        let mut bytes = [0u8; ROOT_BYTES];
        bytes.copy_from_slice(&secret[..ROOT_BYTES]);
        let root = Self::from_bytes(bytes);
        bytes.fill(0);
        match root.key_check() == secret[ROOT_BYTES..] {
            true => Ok(root),
            false => Err(RecoverError::KeyCheck),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_deterministic_per_generation_and_differ_between_them() {
        let root = RootSecret::from_bytes([9; 32]);
        let again = RootSecret::from_bytes([9; 32]);
        assert_eq!(root.identity(1).to_public().to_string(), again.identity(1).to_public().to_string());
        assert_ne!(root.identity(1).to_public().to_string(), root.identity(2).to_public().to_string());
        assert!(root.identity_string(1).starts_with("AGE-SECRET-KEY-1"));
        assert_ne!(RootSecret::generate(), RootSecret::generate());
    }

    #[test]
    fn the_derivation_matches_an_independent_hkdf_computation() {
        // HKDF-SHA256 by hand from HMAC: PRK = HMAC(salt, root); T1 = HMAC(PRK, info || 1).
        use hmac::{Hmac, Mac};
        let root = RootSecret::from_bytes([1; 32]);
        let mut extract = Hmac::<Sha256>::new_from_slice(SALT).unwrap();
        extract.update(&[1; 32]);
        let prk = extract.finalize().into_bytes();
        let mut expand = Hmac::<Sha256>::new_from_slice(&prk).unwrap();
        expand.update(b"key-check\x01");
        assert_eq!(root.key_check(), expand.finalize().into_bytes()[..4]);
    }

    #[test]
    fn shares_recover_the_root_and_a_wrong_passphrase_fails_the_key_check() {
        let root = RootSecret::generate();
        let shares = root.split(2, 3, b"correct horse").unwrap();
        assert_eq!(shares[0].split(' ').count(), 36);
        assert_eq!(RootSecret::recover(&shares[1..], b"correct horse").unwrap(), root);
        assert_eq!(RootSecret::recover(&shares[1..], b"wrong horse"), Err(RecoverError::KeyCheck));
        assert_eq!(
            RootSecret::recover(&shares[..1], b"correct horse"),
            Err(RecoverError::Shares(ShareError::NotEnoughShares { have: 1, need: 2 }))
        );
    }
}
