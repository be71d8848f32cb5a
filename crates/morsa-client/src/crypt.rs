//! Encryption of stored data with age, before it is encoded: each blob a file is stored in
//! (its single blob, or each chunk and the manifest) is one complete age file encrypted to
//! the keyring's current X25519 recipient, so any blob read raw opens with `age -d -i
//! IDENTITY`. Reads open blobs that are age files with the keyring's identities (every
//! generation) and return other blobs as they are; a range read fetches and opens only the
//! 64 KiB segments that cover the range ([`segments`]).
//!
//! Every encryption draws a fresh file key, so the same plaintext stored twice gives two
//! different blob IDs (no deduplication, and nobody can confirm that a known file is
//! stored), unless the keys are [`Crypto::convergent`]: then the secrets of each age file are
//! derived from the plaintext and the keyring's convergence key ([`convergent`]), and the
//! same plaintext gives the same blob again.

mod age_format;
pub mod convergent;
pub mod segments;
mod whole;

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use age::stream::{StreamReader, StreamWriter};
use age::x25519::{Identity, Recipient};
use redstuff::BlobId;
use zeroize::Zeroizing;

pub use segments::AGE_MAGIC;

/// Why a blob could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// The blob is an age file and no identity was given to open it.
    #[error(
        "blob {0} is encrypted (age) and this machine has no keyring to open it: rebuild the keyring from \
         shares with `morsa key recover`, or write the encrypted bytes with `morsa read --raw`"
    )]
    NoKey(BlobId),
    /// None of the identities opens the blob.
    #[error(
        "blob {blob_id} is encrypted (age) to a key this keyring does not hold (tried {tried} \
         identities: its generations and the next ones); it was stored with another keyring; \
         `morsa read --raw` writes the encrypted bytes"
    )]
    NotOurs {
        /// The blob.
        blob_id: BlobId,
        /// Identities tried.
        tried: usize,
    },
    /// The age file is damaged or was altered.
    #[error("blob {blob_id} does not decrypt: {reason}")]
    Damaged {
        /// The blob.
        blob_id: BlobId,
        /// What failed.
        reason: String,
    },
    /// Encrypting failed.
    #[error("encrypting: {0}")]
    Seal(String),
    /// The blob is an age file and the keyring that would open it could not be unlocked.
    #[error("blob {blob_id} is encrypted (age) and the keyring could not be unlocked: {reason}")]
    Locked {
        /// The blob.
        blob_id: BlobId,
        /// Why (a wrong passphrase, an unreadable keyring file…).
        reason: String,
    },
}

/// What unlocks a keyring when the first age file is opened.
pub type Unlock = dyn Fn() -> Result<morsa_keys::Keyring, String> + Send + Sync;

/// Identities that come from a keyring unlocked on first need (at most once; its outcome is
/// kept, so a wrong passphrase is asked for once, not once per blob).
#[derive(Clone)]
struct Deferred {
    unlock: Arc<Unlock>,
    outcome: Arc<OnceLock<Result<Vec<Identity>, String>>>,
}

/// The keys a client encrypts to and decrypts with.
#[derive(Clone, Default)]
pub struct Crypto {
    recipient: Option<Recipient>,
    identities: Vec<Identity>,
    /// Identities to unlock when an age file is first opened (plaintext blobs need none).
    deferred: Option<Deferred>,
    /// With it, sealing is convergent.
    convergence: Option<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("recipient", &self.recipient.as_ref().map(ToString::to_string))
            .field("identities", &self.identities.len())
            .field("deferred", &self.deferred.is_some())
            .field("convergent", &self.convergence.is_some())
            .finish()
    }
}

impl Crypto {
    /// Encrypts what is stored to `recipient` (`None`: stores plaintext) and opens what is
    /// read with `identities` (tried in order).
    pub fn new(recipient: Option<Recipient>, identities: Vec<Identity>) -> Self {
        Self { recipient, identities, deferred: None, convergence: None }
    }

    /// Stores plaintext and opens age files with the identities of the keyring `unlock` gives
    /// (see [`Crypto::from_keyring`]), called only when the first age file is opened: reading
    /// plaintext blobs never asks for a passphrase.
    pub fn unlocking(unlock: Arc<Unlock>) -> Self {
        Self { deferred: Some(Deferred { unlock, outcome: Arc::default() }), ..Self::default() }
    }

    /// The identities reading tries: given ones, or those of the deferred keyring (unlocked now
    /// if it was not yet).
    fn identities(&self, blob_id: &BlobId) -> Result<&[Identity], CryptError> {
        let Some(deferred) = &self.deferred else {
            return Ok(&self.identities);
        };
        deferred
            .outcome
            .get_or_init(|| (deferred.unlock)().map(|keyring| keyring.reading_identities()))
            .as_deref()
            .map_err(|reason| CryptError::Locked { blob_id: *blob_id, reason: reason.clone() })
    }

    /// Encrypts to `keyring`'s current generation and opens with all its generations (and the
    /// next [`morsa_keys::READ_AHEAD`], for a keyring rebuilt from shares).
    pub fn from_keyring(keyring: &morsa_keys::Keyring) -> Self {
        Self::new(Some(keyring.identity().to_public()), keyring.reading_identities())
    }

    /// Like [`Crypto::from_keyring`], but sealing is convergent: the same plaintext seals to
    /// the same bytes under this keyring's current generation (deduplication, at the price
    /// that whoever holds this keyring can confirm that a known file is stored).
    pub fn convergent(keyring: &morsa_keys::Keyring) -> Self {
        Self { convergence: Some(keyring.root().convergence_key()), ..Self::from_keyring(keyring) }
    }

    /// Encrypts to the current generation of a keyring's public part (storing needs no
    /// passphrase); opens nothing.
    pub fn for_storing(public: &morsa_keys::PublicKeyring) -> Result<Self, CryptError> {
        Ok(Self::new(Some(public.recipient().map_err(CryptError::Seal)?), Vec::new()))
    }

    /// Whether stored data is encrypted.
    pub fn seals(&self) -> bool {
        self.recipient.is_some()
    }

    /// A writer that encrypts what is written into `output` as one age file (a plaintext
    /// pass-through writer is not offered: callers that do not seal write directly). Call
    /// `finish` on it at the end.
    pub fn sealer<W: Write>(&self, output: W) -> Result<StreamWriter<W>, CryptError> {
        let recipient = self.recipient.as_ref().ok_or_else(|| CryptError::Seal("no recipient".into()))?;
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|error| CryptError::Seal(error.to_string()))?
            .wrap_output(output)
            .map_err(|error| CryptError::Seal(error.to_string()))
    }

    /// `plaintext` as one age file.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptError> {
        if let (Some(key), Some(recipient)) = (&self.convergence, &self.recipient) {
            return convergent::seal(key, &recipient_bytes(recipient)?, plaintext);
        }
        let overhead =
            usize::try_from(segments::payload_overhead(u64::try_from(plaintext.len()).unwrap_or(0)))
                .unwrap_or(0);
        let mut sealed = Vec::with_capacity(plaintext.len() + overhead + 256);
        let mut writer = self.sealer(&mut sealed)?;
        writer.write_all(plaintext).map_err(|error| CryptError::Seal(error.to_string()))?;
        writer.finish().map_err(|error| CryptError::Seal(error.to_string()))?;
        Ok(sealed)
    }

    /// A reader of the plaintext of the age file `input` (blob `blob_id`, named in errors).
    pub fn opener<R: Read>(&self, blob_id: &BlobId, input: R) -> Result<StreamReader<R>, CryptError> {
        let identities = self.identities(blob_id)?;
        if identities.is_empty() {
            return Err(CryptError::NoKey(*blob_id));
        }
        let damaged =
            |error: age::DecryptError| CryptError::Damaged { blob_id: *blob_id, reason: error.to_string() };
        let decryptor = age::Decryptor::new(input).map_err(damaged)?;
        decryptor.decrypt(identities.iter().map(|identity| identity as &dyn age::Identity)).map_err(|error| {
            match error {
                age::DecryptError::NoMatchingKeys => {
                    CryptError::NotOurs { blob_id: *blob_id, tried: identities.len() }
                }
                other => damaged(other),
            }
        })
    }

    /// The plaintext of blob `blob_id` if its bytes are an age file, else the bytes as they are.
    ///
    /// An age file to one of our X25519 identities opens in place, its chunks in parallel
    /// (`crypt/whole.rs`); any other file, and any whose header does not check out, is opened by the
    /// `age` crate, which names what is wrong.
    pub fn open(&self, blob_id: &BlobId, bytes: Vec<u8>) -> Result<Vec<u8>, CryptError> {
        if !bytes.starts_with(AGE_MAGIC) {
            return Ok(bytes);
        }
        let secrets: Vec<whole::Secret> =
            self.identities(blob_id)?.iter().filter_map(whole::Secret::of).collect();
        let bytes = match whole::open(&secrets, bytes) {
            whole::Opened::Plaintext(plaintext) => return Ok(plaintext),
            whole::Opened::Damaged(reason) => return Err(CryptError::Damaged { blob_id: *blob_id, reason }),
            whole::Opened::Declined(bytes) => bytes,
        };
        let mut plaintext = Vec::with_capacity(bytes.len());
        self.opener(blob_id, bytes.as_slice())?
            .read_to_end(&mut plaintext)
            .map_err(|error| CryptError::Damaged { blob_id: *blob_id, reason: error.to_string() })?;
        Ok(plaintext)
    }

    /// The most plaintext that seals into at most `limit` bytes (a chunk of a file must fit
    /// one blob once sealed).
    pub fn plaintext_limit(&self, limit: u64) -> u64 {
        match self.seals() {
            // The header to one X25519 recipient is about 200 bytes: 1 KiB is ample.
            true => limit.saturating_sub(1024).saturating_sub(segments::payload_overhead(limit)),
            false => limit,
        }
    }
}

/// The 32-byte X25519 public key of `recipient` (`age1…`, Bech32).
fn recipient_bytes(recipient: &Recipient) -> Result<[u8; 32], CryptError> {
    let (_, bytes) = bech32::decode(&recipient.to_string())
        .map_err(|error| CryptError::Seal(format!("recipient does not decode: {error}")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| CryptError::Seal(format!("recipient has {} bytes, not 32", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (Crypto, Identity) {
        let identity = Identity::generate();
        (Crypto::new(Some(identity.to_public()), vec![Identity::generate(), identity.clone()]), identity)
    }

    #[test]
    fn sealed_bytes_open_with_any_identity_given_and_others_pass_through() {
        let (crypto, _) = keys();
        let id = BlobId::from_root(1, &[1; 32]);
        for len in [0, 1, 65_536, 65_537, 200_000] {
            let plaintext = vec![7u8; len];
            let sealed = crypto.seal(&plaintext).unwrap();
            assert!(sealed.starts_with(AGE_MAGIC));
            assert_eq!(crypto.open(&id, sealed.clone()).unwrap(), plaintext, "{len}");
            let stranger = Crypto::new(None, vec![Identity::generate()]);
            assert!(matches!(stranger.open(&id, sealed.clone()), Err(CryptError::NotOurs { .. })));
            assert!(matches!(Crypto::default().open(&id, sealed), Err(CryptError::NoKey(_))));
        }
        assert_eq!(Crypto::default().open(&id, b"plain".to_vec()).unwrap(), b"plain");
    }

    #[test]
    fn sealing_twice_gives_different_bytes_and_a_flipped_byte_is_refused() {
        let (crypto, _) = keys();
        let id = BlobId::from_root(1, &[1; 32]);
        let once = crypto.seal(b"same").unwrap();
        assert_ne!(once, crypto.seal(b"same").unwrap());
        let mut altered = once;
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(matches!(crypto.open(&id, altered), Err(CryptError::Damaged { .. })));
    }

    #[test]
    fn a_range_opens_from_the_header_and_the_segments_covering_it_alone() {
        use std::io::{Seek, SeekFrom};
        let (crypto, _) = keys();
        let id = BlobId::from_root(1, &[1; 32]);
        let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sealed = crypto.seal(&plaintext).unwrap();
        let sealed_len = u64::try_from(sealed.len()).unwrap();
        let start = segments::payload_start(&sealed[..4096]).unwrap().unwrap();
        assert_eq!(segments::payload_start(&sealed[..40]).unwrap(), None);
        assert_eq!(segments::plaintext_len(sealed_len, start).unwrap(), 300_000);
        for (from, to) in [
            (0u64, 1u64),
            (65_535, 65_537),
            (131_072, 196_608),
            (262_144, 262_145),
            (299_990, 300_000),
            (5, 299_999),
        ] {
            let mut pieces = vec![(0, sealed[..usize::try_from(start).unwrap()].to_vec())];
            for piece in segments::sealed_pieces(start, sealed_len, &(from..to)) {
                let bytes = sealed
                    [usize::try_from(piece.start).unwrap()..usize::try_from(piece.end).unwrap()]
                    .to_vec();
                pieces.push((piece.start, bytes));
            }
            let file = segments::Sparse::new(sealed_len, pieces);
            let mut reader = crypto.opener(&id, file).unwrap();
            reader.seek(SeekFrom::Start(from)).unwrap();
            let mut out = vec![0u8; usize::try_from(to - from).unwrap()];
            reader.read_exact(&mut out).unwrap();
            assert_eq!(
                out,
                plaintext[usize::try_from(from).unwrap()..usize::try_from(to).unwrap()],
                "{from}..{to}"
            );
        }
    }

    #[test]
    fn convergent_sealing_repeats_itself_per_keyring_and_opens_like_any_age_file() {
        let keyring = morsa_keys::Keyring::generate();
        let crypto = Crypto::convergent(&keyring);
        let other = Crypto::convergent(&morsa_keys::Keyring::generate());
        let id = BlobId::from_root(1, &[1; 32]);
        for len in [0usize, 1, 65_535, 65_536, 65_537, 200_000] {
            let plaintext: Vec<u8> = (0..len).map(|i| u8::try_from(i % 253).unwrap()).collect();
            let sealed = crypto.seal(&plaintext).unwrap();
            assert_eq!(sealed, crypto.seal(&plaintext).unwrap(), "{len}: not deterministic");
            assert_ne!(sealed, other.seal(&plaintext).unwrap(), "{len}: another keyring gives the same file");
            let mut changed = plaintext.clone();
            changed.push(0);
            assert_ne!(sealed, crypto.seal(&changed).unwrap(), "{len}");
            // The age crate, not our code, parses and checks every part of the file.
            assert_eq!(crypto.open(&id, sealed.clone()).unwrap(), plaintext, "{len}");
            let mut altered = sealed;
            let middle = altered.len() / 2;
            altered[middle] ^= 1;
            assert!(crypto.open(&id, altered).is_err(), "{len}: an altered file opens");
        }
    }

    #[test]
    fn a_keyring_rebuilt_without_its_generation_count_opens_files_of_later_generations() {
        let mut keyring = morsa_keys::Keyring::generate();
        for _ in 0..4 {
            keyring.rotate();
        }
        let id = BlobId::from_root(1, &[1; 32]);
        let sealed = Crypto::from_keyring(&keyring).seal(b"generation five").unwrap();
        let rebuilt = morsa_keys::Keyring::from_root(keyring.root().clone(), 1);
        assert_eq!(Crypto::from_keyring(&rebuilt).open(&id, sealed.clone()).unwrap(), b"generation five");
        let beyond = Crypto::new(None, rebuilt.identities());
        assert!(matches!(beyond.open(&id, sealed), Err(CryptError::NotOurs { .. })));
    }

    #[test]
    fn a_deferred_keyring_is_unlocked_once_and_only_for_an_age_file() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let keyring = morsa_keys::Keyring::generate();
        let id = BlobId::from_root(1, &[1; 32]);
        let sealed = Crypto::from_keyring(&keyring).seal(b"secret").unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let (counted, given) = (Arc::clone(&calls), keyring.clone());
        let crypto = Crypto::unlocking(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(given.clone())
        }));
        assert!(!crypto.seals());
        assert_eq!(crypto.open(&id, b"plain".to_vec()).unwrap(), b"plain");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "a plaintext blob unlocked the keyring");
        assert_eq!(crypto.open(&id, sealed.clone()).unwrap(), b"secret");
        assert_eq!(crypto.clone().open(&id, sealed.clone()).unwrap(), b"secret");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let locked = Crypto::unlocking(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Err("wrong passphrase".into())
        }));
        for _ in 0..2 {
            match locked.open(&id, sealed.clone()) {
                Err(CryptError::Locked { reason, .. }) => assert_eq!(reason, "wrong passphrase"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the failure is kept, not asked again");
    }

    #[test]
    fn a_chunk_at_the_plaintext_limit_fits_its_blob_once_sealed() {
        let (crypto, _) = keys();
        for limit in [300_000u64, 1 << 20] {
            let plaintext = vec![1u8; usize::try_from(crypto.plaintext_limit(limit)).unwrap()];
            assert!(u64::try_from(crypto.seal(&plaintext).unwrap().len()).unwrap() <= limit);
        }
    }
}
