//! Convergent sealing: the same plaintext sealed with the same convergence key to the same
//! recipient gives the same age file, byte for byte, so storing it twice gives one blob.
//!
//! The output is an ordinary age v1 file to one X25519 recipient (the age tool and
//! [`super::Crypto::open`] read it like any other). What is usually drawn at random is derived
//! instead, with HKDF-SHA256 (salt: the convergence key; input: SHA-256 of the plaintext; info:
//! `"morsa/convergent/v1"` followed by the recipient's 32-byte public key), 64 bytes taken in
//! order as the 16-byte file key, the 32-byte ephemeral X25519 secret and the 16-byte payload
//! nonce. The rest follows the age format: the X25519 stanza (the file key wrapped with
//! ChaCha20-Poly1305 under HKDF(salt: ephemeral share ‖ recipient, info
//! `"age-encryption.org/v1/X25519"`)), the header MAC (HMAC-SHA256 under HKDF(file key, info
//! `"header"`)), and the payload in 64 KiB ChaCha20-Poly1305 STREAM chunks under HKDF(salt:
//! nonce, file key, info `"payload"`).
//!
//! The trade-off (docs/ENCRYPTION.md): whoever holds the convergence key (derived from the
//! root secret) and a candidate file can tell whether that file is stored; nobody else can.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hkdf::Hkdf;
use hmac::Mac;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use morsa_core::convert::{capacity_hint, saturating_u64, saturating_usize};

use super::CryptError;
use super::age_format::{FILE_KEY, header_mac, payload_key, seal_chunk, x25519_wrap_key};
use super::segments::{AGE_MAGIC, SEGMENT, payload_overhead};

/// Info of the derivation of a plaintext's secrets.
const DERIVATION: &[u8] = b"morsa/convergent/v1";

/// `plaintext` sealed convergently to the X25519 public key `recipient` under
/// `convergence_key`.
pub fn seal(
    convergence_key: &[u8; 32],
    recipient: &[u8; 32],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptError> {
    let secrets = derive(convergence_key, recipient, plaintext);
    let (file_key, rest) = secrets.split_at(FILE_KEY);
    let (ephemeral, nonce) = rest.split_at(32);

    let ephemeral = x25519_dalek::StaticSecret::from(<[u8; 32]>::try_from(ephemeral).expect("32 bytes"));
    let share = x25519_dalek::PublicKey::from(&ephemeral);
    let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(*recipient));
    if !shared.was_contributory() {
        return Err(CryptError::Seal("the recipient is not a usable X25519 public key".into()));
    }
    let wrap_key = x25519_wrap_key(share.as_bytes(), recipient, shared.as_bytes());
    let wrapped = aead(&wrap_key, 0, false, file_key)?;

    let overhead = capacity_hint(payload_overhead(saturating_u64(plaintext.len())));
    let mut out = Vec::with_capacity(plaintext.len().saturating_add(overhead).saturating_add(256));
    out.extend_from_slice(AGE_MAGIC);
    out.extend_from_slice(b"-> X25519 ");
    out.extend_from_slice(STANDARD_NO_PAD.encode(share.as_bytes()).as_bytes());
    out.push(b'\n');
    // 32 bytes are 43 Base64 characters: one body line, shorter than the 64-column wrap.
    out.extend_from_slice(STANDARD_NO_PAD.encode(&wrapped).as_bytes());
    out.extend_from_slice(b"\n---");
    let mac = header_mac(file_key, &out);
    out.push(b' ');
    out.extend_from_slice(STANDARD_NO_PAD.encode(mac.finalize().into_bytes()).as_bytes());
    out.push(b'\n');

    out.extend_from_slice(nonce);
    let payload_key = payload_key(file_key, nonce);
    let segment = saturating_usize(SEGMENT);
    let chunks = plaintext.len().div_ceil(segment).max(1);
    let empty: &[u8] = &[];
    let pieces = plaintext.chunks(segment).chain(plaintext.is_empty().then_some(empty));
    for (index, chunk) in (0u64..).zip(pieces) {
        let last = index + 1 == saturating_u64(chunks);
        out.extend_from_slice(&aead(&payload_key, index, last, chunk)?);
    }
    Ok(out)
}

/// The 64 bytes of secrets of `plaintext`: file key, ephemeral secret, payload nonce.
fn derive(convergence_key: &[u8; 32], recipient: &[u8; 32], plaintext: &[u8]) -> Zeroizing<[u8; 64]> {
    let digest = Sha256::digest(plaintext);
    let info = [DERIVATION, recipient].concat();
    let mut out = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(convergence_key), &digest)
        .expand(&info, out.as_mut())
        .expect("HKDF-SHA256 gives up to 8160 bytes");
    out
}

/// ChaCha20-Poly1305 under `key` with age's STREAM nonce.
fn aead(key: &[u8; 32], counter: u64, last: bool, plaintext: &[u8]) -> Result<Vec<u8>, CryptError> {
    seal_chunk(key, counter, last, plaintext)
        .ok_or_else(|| CryptError::Seal("ChaCha20-Poly1305 refused the input".into()))
}
