//! BLS12-381 signatures of storage nodes, `min_pk` variant as in Walrus: public keys in G1
//! (48 bytes compressed), signatures in G2 (96 bytes compressed), built on `blst`.
//!
//! Every key and signature is decoded with full checks (canonical encoding, on the curve, in
//! the prime-order subgroup, not the identity) before use. Aggregate verification of one
//! message ([`verify_aggregate`]) is only sound for keys whose proof of possession
//! ([`BlsPublicKey::verify_proof_of_possession`]) was checked when they were registered:
//! otherwise a rogue key can forge an aggregate.

use std::fmt;

use blst::BLST_ERROR;
use blst::min_pk::{AggregateSignature, PublicKey, SecretKey, Signature};
use rand::TryRngCore as _;
use rand::rngs::OsRng;

use crate::hex_bytes::hex_newtype;
use crate::signature::SignatureError;

/// Domain separation tag of node signatures (the IETF `NUL` ciphersuite, as Walrus uses).
pub const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";
/// Domain separation tag of proofs of possession (the IETF `POP` ciphersuite).
pub const BLS_POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A node's BLS public key: a compressed G1 point.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlsPublicKey(pub [u8; 48]);
hex_newtype!(BlsPublicKey, 48, "a BLS public key");

/// A BLS signature, single or aggregate: a compressed G2 point.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BlsSignature(pub [u8; 96]);
hex_newtype!(BlsSignature, 96, "a BLS signature");

/// A node's BLS secret key. Its `Debug` shows only the public key; the secret is wiped on drop.
#[derive(Clone)]
pub struct BlsSecretKey(SecretKey);

impl BlsPublicKey {
    /// Checks that `signature` is this key's signature over `message` under [`BLS_DST`].
    pub fn verify(&self, message: &[u8], signature: &BlsSignature) -> Result<(), SignatureError> {
        verify_aggregate(std::slice::from_ref(self), message, signature)
    }

    /// Checks that `pop` proves possession of this key's secret: a signature over the 48 key
    /// bytes under [`BLS_POP_DST`] (a signature under [`BLS_DST`] does not count).
    pub fn verify_proof_of_possession(&self, pop: &BlsSignature) -> Result<(), SignatureError> {
        let key = self.decode()?;
        let pop = pop.decode()?;
        check(pop.verify(false, &self.0, BLS_POP_DST, &[], &key, false))
    }

    fn decode(&self) -> Result<PublicKey, SignatureError> {
        let key = PublicKey::key_validate(&self.0).map_err(|_| SignatureError::MalformedPublicKey)?;
        if key.compress() != self.0 {
            return Err(SignatureError::MalformedPublicKey);
        }
        Ok(key)
    }
}

impl BlsSignature {
    /// The aggregate of `signatures`: one signature that verifies (with [`verify_aggregate`])
    /// against the signers' keys, if each part does against its own key.
    pub fn aggregate(signatures: &[BlsSignature]) -> Result<BlsSignature, SignatureError> {
        if signatures.is_empty() {
            return Err(SignatureError::EmptyAggregate);
        }
        let decoded = signatures.iter().map(BlsSignature::decode).collect::<Result<Vec<_>, _>>()?;
        let parts: Vec<&Signature> = decoded.iter().collect();
        let aggregate =
            AggregateSignature::aggregate(&parts, false).map_err(|_| SignatureError::EmptyAggregate)?;
        Ok(BlsSignature(aggregate.to_signature().compress()))
    }

    fn decode(&self) -> Result<Signature, SignatureError> {
        let signature =
            Signature::sig_validate(&self.0, true).map_err(|_| SignatureError::MalformedSignature)?;
        if signature.compress() != self.0 {
            return Err(SignatureError::MalformedSignature);
        }
        Ok(signature)
    }
}

/// Checks that `signature` aggregates signatures over `message`, under [`BLS_DST`], by exactly
/// the holders of `public_keys` (each once; order does not matter). The keys must have had
/// their proofs of possession checked.
pub fn verify_aggregate(
    public_keys: &[BlsPublicKey],
    message: &[u8],
    signature: &BlsSignature,
) -> Result<(), SignatureError> {
    if public_keys.is_empty() {
        return Err(SignatureError::EmptyAggregate);
    }
    let keys = public_keys.iter().map(BlsPublicKey::decode).collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<&PublicKey> = keys.iter().collect();
    let signature = signature.decode()?;
    check(signature.fast_aggregate_verify(false, message, BLS_DST, &keys))
}

fn check(result: BLST_ERROR) -> Result<(), SignatureError> {
    match result {
        BLST_ERROR::BLST_SUCCESS => Ok(()),
        _ => Err(SignatureError::InvalidSignature),
    }
}

impl BlsSecretKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut seed = [0; 32];
        OsRng.try_fill_bytes(&mut seed).expect("the operating system's random number generator works");
        Self::from_seed(seed)
    }

    /// The key that `KeyGen` (IETF BLS draft) derives from `seed` as input key material.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SecretKey::key_gen(&seed, &[]).expect("32 bytes of key material is enough for KeyGen"))
    }

    /// The secret scalar, big-endian.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key with secret scalar `bytes` (big-endian), which must be in `1..r`.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SignatureError> {
        SecretKey::from_bytes(bytes).map(Self).map_err(|_| SignatureError::MalformedSecretKey)
    }

    /// This key's public key.
    pub fn public_key(&self) -> BlsPublicKey {
        BlsPublicKey(self.0.sk_to_pk().compress())
    }

    /// Signs `message` under [`BLS_DST`].
    pub fn sign(&self, message: &[u8]) -> BlsSignature {
        BlsSignature(self.0.sign(message, BLS_DST, &[]).compress())
    }

    /// The proof of possession of this key: its signature over the public key bytes under
    /// [`BLS_POP_DST`].
    pub fn proof_of_possession(&self) -> BlsSignature {
        BlsSignature(self.0.sign(&self.public_key().0, BLS_POP_DST, &[]).compress())
    }
}

impl fmt::Debug for BlsSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlsSecretKey").field("public_key", &self.public_key()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
