//! Opening a whole age file at the speed of the cores: the header is parsed and checked here
//! (X25519 stanzas only), and the 64 KiB payload chunks, which age seals independently, are
//! opened in parallel, in place in the buffer the file was read into, then moved together.
//!
//! Restores read whole blobs, and the `age` crate's reader opens one chunk after another
//! through a copy into a new buffer (whose pages are faulted in one by one); this path uses
//! every core and no second buffer. It is only a shortcut for files it fully understands:
//! whenever the header does not apply (another recipient type, a key not ours, an unusual
//! shape) it declines before touching the payload, and the caller opens the file with the
//! `age` crate, which accepts and refuses exactly what age does and names the failure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::Mac;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::age_format::{
    ChunkOpener, FILE_KEY, NONCE, TAG, X25519_STANZA, header_mac, open_chunk, payload_key, x25519_wrap_key,
};
use super::segments::{AGE_MAGIC, SEALED_SEGMENT, SEGMENT};

/// The longest header parsed here (longer ones are left to the `age` crate).
const MAX_HEADER: usize = 64 * 1024;
/// Characters of a full Base64 body line.
const BODY_COLUMNS: usize = 64;

/// An X25519 secret key and its public key.
#[derive(Clone)]
pub struct Secret {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl Secret {
    /// The key of `identity` (`AGE-SECRET-KEY-1…`); `None` if it does not decode.
    pub fn of(identity: &age::x25519::Identity) -> Option<Self> {
        use age::secrecy::ExposeSecret;
        let encoded = identity.to_string();
        let (_, bytes) = bech32::decode(encoded.expose_secret()).ok()?;
        let bytes = Zeroizing::new(bytes);
        let secret = Zeroizing::new(<[u8; 32]>::try_from(bytes.as_slice()).ok()?);
        let public = *x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).as_bytes();
        Some(Self { secret, public })
    }
}

/// One stanza of a header: its type, arguments and body.
struct Stanza<'a> {
    kind: &'a str,
    args: Vec<&'a str>,
    body: Vec<u8>,
}

/// A parsed header.
struct Header<'a> {
    stanzas: Vec<Stanza<'a>>,
    /// Bytes the MAC covers: up to and including `---`.
    mac_covers: usize,
    mac: Vec<u8>,
    /// Where the payload (its nonce) starts.
    end: usize,
}

/// What [`open`] made of a file.
pub enum Opened {
    /// The file's plaintext (in the buffer that held the file).
    Plaintext(Vec<u8>),
    /// Not a file this shortcut opens; the buffer is returned untouched.
    Declined(Vec<u8>),
    /// The header checked out under our key but the payload does not authenticate (what
    /// failed); the buffer is lost (partly opened).
    Damaged(String),
}

/// The plaintext of the age file `file`, opened in place, if one of `secrets` opens its header
/// and the header's MAC checks out; see [`Opened`].
pub fn open(secrets: &[Secret], mut file: Vec<u8>) -> Opened {
    let Some((file_key, start)) = header_key(secrets, &file) else {
        return Opened::Declined(file);
    };
    let Some(nonce) = file.get(start..start + NONCE) else {
        return Opened::Declined(file);
    };
    let key = payload_key(file_key.as_ref(), nonce);
    match open_payload_in_place(&key, &mut file, start + NONCE) {
        Ok(()) => Opened::Plaintext(file),
        Err(reason) => Opened::Damaged(reason),
    }
}

/// The file key of `file` and where its payload nonce starts, if its header parses, one of
/// `secrets` unwraps a stanza and the header MAC checks out under that key.
fn header_key(secrets: &[Secret], file: &[u8]) -> Option<(Zeroizing<Vec<u8>>, usize)> {
    let header = parse(file)?;
    let file_key = header.stanzas.iter().find_map(|stanza| unwrap(secrets, stanza))?;
    header_mac(file_key.as_ref(), &file[..header.mac_covers]).verify_slice(&header.mac).ok()?;
    Some((file_key, header.end))
}

/// The file key wrapped in `stanza`, if it is an X25519 stanza to one of `secrets`.
fn unwrap(secrets: &[Secret], stanza: &Stanza<'_>) -> Option<Zeroizing<Vec<u8>>> {
    if stanza.kind != X25519_STANZA || stanza.args.len() != 1 || stanza.body.len() != FILE_KEY + TAG {
        return None;
    }
    let share: [u8; 32] = STANDARD_NO_PAD.decode(stanza.args[0]).ok()?.try_into().ok()?;
    secrets.iter().find_map(|secret| {
        let shared = x25519_dalek::StaticSecret::from(*secret.secret)
            .diffie_hellman(&x25519_dalek::PublicKey::from(share));
        if !shared.was_contributory() {
            return None;
        }
        let wrap_key = x25519_wrap_key(&share, &secret.public, shared.as_bytes());
        open_chunk(&wrap_key, 0, false, &stanza.body).filter(|key| key.len() == FILE_KEY).map(Zeroizing::new)
    })
}

/// The header of `file`: the magic line, stanzas (`-> TYPE ARGS…` and Base64 body lines, full
/// ones of 64 characters, the last shorter), then `--- MAC`.
fn parse(file: &[u8]) -> Option<Header<'_>> {
    let mut at = AGE_MAGIC.len();
    if !file.starts_with(AGE_MAGIC) {
        return None;
    }
    let mut stanzas = Vec::new();
    loop {
        let line = next_line(file, at)?;
        if let Some(mac) = line.strip_prefix("--- ") {
            let mac = STANDARD_NO_PAD.decode(mac).ok()?;
            return Some(Header { stanzas, mac_covers: at + 3, mac, end: at + line.len() + 1 });
        }
        at += line.len() + 1;
        let mut args = line.strip_prefix("-> ")?.split(' ');
        let kind = args.next().filter(|kind| !kind.is_empty())?;
        let args: Vec<&str> = args.collect();
        let mut body = Vec::new();
        loop {
            let line = next_line(file, at)?;
            at += line.len() + 1;
            if line.len() > BODY_COLUMNS {
                return None;
            }
            body.extend(STANDARD_NO_PAD.decode(line).ok()?);
            if line.len() < BODY_COLUMNS {
                break;
            }
        }
        stanzas.push(Stanza { kind, args, body });
    }
}

/// The line of `file` that starts at `at` (without its `\n`), within [`MAX_HEADER`].
fn next_line(file: &[u8], at: usize) -> Option<&str> {
    let window = file.get(at..file.len().min(MAX_HEADER))?;
    let length = window.iter().position(|&byte| byte == b'\n')?;
    std::str::from_utf8(&window[..length]).ok()
}

/// Opens in place the STREAM payload of `file` from `at` (after the nonce) under `key`: chunks
/// of 64 KiB and a tag, the last one flagged, shorter, and empty only when it is the only one.
/// On success `file` holds the plaintext alone.
fn open_payload_in_place(key: &[u8; 32], file: &mut Vec<u8>, at: usize) -> Result<(), String> {
    let sealed_segment = usize::try_from(SEALED_SEGMENT).map_err(|_| "segment size")?;
    let segment = usize::try_from(SEGMENT).map_err(|_| "segment size")?;
    let body_len = file.len().saturating_sub(at);
    let chunks = body_len.div_ceil(sealed_segment);
    let last = body_len.saturating_sub(chunks.saturating_sub(1) * sealed_segment);
    if chunks == 0 || last < TAG || (last == TAG && chunks > 1) {
        return Err(format!("its payload of {body_len} bytes is not whole chunks (truncated?)"));
    }
    let opener = ChunkOpener::new(key).ok_or("the payload key is not a ChaCha20-Poly1305 key")?;
    let failed = file[at..]
        .par_chunks_mut(sealed_segment)
        .enumerate()
        .filter_map(|(index, sealed)| {
            let (ciphertext, tag) = sealed.split_at_mut(sealed.len() - TAG);
            let counter = u64::try_from(index).unwrap_or(u64::MAX);
            (!opener.open_in_place(counter, index + 1 == chunks, ciphertext, tag)).then_some(index)
        })
        .min();
    if let Some(index) = failed {
        return Err(format!("payload chunk {index} of {chunks} does not authenticate"));
    }
    // Each chunk's plaintext moves down over the header, nonce and earlier tags, in order (a
    // destination never overlaps a chunk not yet moved).
    for index in 0..chunks {
        let from = at + index * sealed_segment;
        let len = if index + 1 == chunks { last - TAG } else { segment };
        file.copy_within(from..from + len, index * segment);
    }
    file.truncate(body_len - chunks * TAG);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Crypto;

    fn secrets(identities: &[age::x25519::Identity]) -> Vec<Secret> {
        identities.iter().map(|identity| Secret::of(identity).unwrap()).collect()
    }

    /// What [`open`] made of `file`, as a word and the plaintext.
    fn outcome(secrets: &[Secret], file: &[u8]) -> (&'static str, Vec<u8>) {
        match open(secrets, file.to_vec()) {
            Opened::Plaintext(plaintext) => ("plaintext", plaintext),
            Opened::Declined(buffer) => {
                assert_eq!(buffer, file, "a declined file is handed back untouched");
                ("declined", Vec::new())
            }
            Opened::Damaged(_) => ("damaged", Vec::new()),
        }
    }

    #[test]
    fn files_of_the_age_crate_and_our_encoder_open_here_as_the_age_crate_opens_them() {
        let keyring = morsa_keys::Keyring::generate();
        let ours = secrets(&keyring.identities());
        let others = secrets(&[age::x25519::Identity::generate()]);
        let id = redstuff::BlobId::from_root(1, &[1; 32]);
        for crypto in [Crypto::from_keyring(&keyring), Crypto::convergent(&keyring)] {
            for len in [0usize, 1, 65_535, 65_536, 65_537, 131_072, 300_001] {
                let plaintext: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
                let sealed = crypto.seal(&plaintext).unwrap();
                assert_eq!(outcome(&ours, &sealed), ("plaintext", plaintext.clone()), "{len}");
                assert_eq!(crypto.open(&id, sealed.clone()).unwrap(), plaintext);
                assert_eq!(outcome(&others, &sealed).0, "declined", "{len}: a stranger's key");
                // A byte altered in the header: declined (the age crate names the failure);
                // in the payload: damaged, as the age crate also finds it.
                let start = parse(&sealed).unwrap().end;
                for at in [30, 100, start - 2, start + 3, sealed.len() / 2, sealed.len() - 1] {
                    let mut altered = sealed.clone();
                    altered[at] ^= 0x10;
                    let expected = if at < start { "declined" } else { "damaged" };
                    assert_eq!(outcome(&ours, &altered).0, expected, "{len}: byte {at} altered");
                    assert!(crypto.open(&id, altered).is_err(), "{len}: byte {at} altered");
                }
                // Cut at a chunk boundary (dropping the flagged last chunk), or one byte off.
                let body = sealed.len() - start - NONCE;
                if len > 65_536 {
                    let cut = sealed.len() - if body.is_multiple_of(65_552) { 65_552 } else { body % 65_552 };
                    assert_eq!(outcome(&ours, &sealed[..cut]).0, "damaged", "{len}: truncated");
                    assert!(crypto.open(&id, sealed[..cut].to_vec()).is_err());
                }
                assert_eq!(outcome(&ours, &sealed[..sealed.len() - 1]).0, "damaged", "{len}");
                assert_eq!(outcome(&ours, &[sealed.as_slice(), b"x"].concat()).0, "damaged", "{len}");
            }
        }
    }

    #[test]
    fn no_altered_or_cut_header_opens_or_panics() {
        let keyring = morsa_keys::Keyring::generate();
        let ours = secrets(&keyring.reading_identities());
        let sealed = Crypto::from_keyring(&keyring).seal(&[3u8; 70_000]).unwrap();
        let start = parse(&sealed).unwrap().end;
        for at in 0..start + NONCE {
            for bit in [0x01, 0x20, 0x80] {
                let mut altered = sealed.clone();
                altered[at] ^= bit;
                assert_ne!(outcome(&ours, &altered).0, "plaintext", "byte {at} ^ {bit:#x}");
            }
            assert_ne!(outcome(&ours, &sealed[..at]).0, "plaintext", "cut at {at}");
        }
    }

    fn payload(key: &[u8; 32], body: &[u8]) -> Option<Vec<u8>> {
        let mut file = [b"header".as_slice(), body].concat();
        open_payload_in_place(key, &mut file, 6).ok().map(|()| file)
    }

    #[test]
    fn a_payload_opens_only_in_age_s_shape() {
        use super::super::age_format::seal_chunk;
        let key = [9u8; 32];
        let full: Vec<u8> = (0..65_536u32).map(|i| u8::try_from(i % 249).unwrap()).collect();
        let chunk = |counter, last, plaintext: &[u8]| seal_chunk(&key, counter, last, plaintext).unwrap();
        let good = [chunk(0, false, &full), chunk(1, false, &full), chunk(2, true, b"end")].concat();
        assert_eq!(payload(&key, &good).unwrap(), [full.as_slice(), &full, b"end"].concat());
        // A full last chunk is fine; an empty one after a full one is not (age refuses it).
        assert_eq!(payload(&key, &chunk(0, true, &full)).unwrap(), full);
        assert_eq!(payload(&key, &[chunk(0, false, &full), chunk(1, true, b"")].concat()), None);
        // The empty file is one empty, flagged chunk; nothing at all is not a file.
        assert_eq!(payload(&key, &chunk(0, true, b"")), Some(Vec::new()));
        assert_eq!(payload(&key, &chunk(0, false, b"")), None);
        assert_eq!(payload(&key, b""), None);
        // Chunks swapped, or the flag on the wrong one: refused.
        assert_eq!(payload(&key, &[chunk(1, true, b"end"), chunk(0, false, &full)].concat()), None);
        assert_eq!(payload(&key, &[chunk(0, true, &full), chunk(1, true, b"end")].concat()), None);
    }
}
