//! The pieces of the age v1 format (<https://age-encryption.org/v1>) that our own encoder
//! ([`super::convergent`]) and our parallel opener ([`super::whole`]) share: key derivations,
//! the X25519 stanza's wrap key, the header MAC and the STREAM chunk cipher.

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Label of the X25519 stanza's wrap key.
pub const X25519_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
/// Type of the X25519 stanza (`-> X25519 <ephemeral share>`).
pub const X25519_STANZA: &str = "X25519";
/// Bytes of a file key.
pub const FILE_KEY: usize = 16;
/// Bytes of the payload nonce after the header.
pub const NONCE: usize = 16;
/// Bytes of a ChaCha20-Poly1305 tag.
pub const TAG: usize = 16;

/// HKDF-SHA256 of 32 bytes.
pub fn expand(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(salt, ikm).expand(info, out.as_mut()).expect("HKDF-SHA256 gives up to 8160 bytes");
    out
}

/// The key that wraps the file key in an X25519 stanza: HKDF(salt: ephemeral share ‖
/// recipient, the shared secret).
pub fn x25519_wrap_key(share: &[u8; 32], recipient: &[u8; 32], shared: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let salt = [share.as_slice(), recipient].concat();
    expand(Some(&salt), shared, X25519_LABEL)
}

/// The header MAC over `header` (everything up to and including `---`).
pub fn header_mac(file_key: &[u8], header: &[u8]) -> Hmac<Sha256> {
    let key = expand(None, file_key, b"header");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref()).expect("HMAC takes any key length");
    mac.update(header);
    mac
}

/// The payload key: HKDF(salt: nonce, the file key).
pub fn payload_key(file_key: &[u8], nonce: &[u8]) -> Zeroizing<[u8; 32]> {
    expand(Some(nonce), file_key, b"payload")
}

/// age's STREAM nonce: an 11-byte big-endian counter and a last-chunk flag (a stanza body
/// uses the all-zero nonce: counter 0, not last).
fn nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Chunk `counter` (or a stanza body) sealed.
pub fn seal_chunk(key: &[u8; 32], counter: u64, last: bool, plaintext: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key.into()).encrypt(&nonce(counter, last).into(), plaintext).ok()
}

/// Chunk `counter` (or a stanza body) opened.
pub fn open_chunk(key: &[u8; 32], counter: u64, last: bool, sealed: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key.into()).decrypt(&nonce(counter, last).into(), sealed).ok()
}

/// A payload key ready to open chunks in place, with ring's ChaCha20-Poly1305 (assembly, about
/// three times the speed of the pure-Rust implementation on x86-64: docs/PERFORMANCE.md).
pub struct ChunkOpener(ring::aead::LessSafeKey);

impl ChunkOpener {
    /// An opener of chunks sealed under `key`.
    pub fn new(key: &[u8; 32]) -> Option<Self> {
        let key = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key).ok()?;
        Some(Self(ring::aead::LessSafeKey::new(key)))
    }

    /// Opens chunk `counter` in place: `buffer` holds its ciphertext, `tag` its tag. `false`
    /// if it does not authenticate (then `buffer` holds no plaintext).
    pub fn open_in_place(&self, counter: u64, last: bool, buffer: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <[u8; TAG]>::try_from(tag) else {
            return false;
        };
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce(counter, last));
        self.0
            .open_in_place_separate_tag(
                nonce,
                ring::aead::Aad::empty(),
                ring::aead::Tag::from(tag),
                buffer,
                0..,
            )
            .is_ok()
    }
}
