//! Opening a whole age file at the speed of the cores: the header is parsed and checked here
//! (X25519 stanzas only), and the 64 KiB payload chunks, which age seals independently, are
//! opened in parallel, each straight into its place in the output.
//!
//! Restores read whole blobs, and the `age` crate's reader opens one chunk after another
//! through a copy; this path is several times faster. It is only ever a shortcut: whenever
//! anything here does not apply or does not check out, the caller opens the file with the
//! `age` crate instead, which accepts and refuses exactly what age does and names the failure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::Mac;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::age_format::{
    FILE_KEY, NONCE, TAG, X25519_STANZA, header_mac, open_chunk, open_chunk_in_place, payload_key,
    x25519_wrap_key,
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

/// The plaintext of the age file `file`, if one of `secrets` opens it and every part checks
/// out; `None` otherwise (then open it with the `age` crate).
pub fn open(secrets: &[Secret], file: &[u8]) -> Option<Vec<u8>> {
    let header = parse(file)?;
    let file_key = header.stanzas.iter().find_map(|stanza| unwrap(secrets, stanza))?;
    header_mac(file_key.as_ref(), &file[..header.mac_covers]).verify_slice(&header.mac).ok()?;
    let payload = &file[header.end..];
    let (nonce, body) = payload.split_at_checked(NONCE)?;
    open_payload(&payload_key(file_key.as_ref(), nonce), body)
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

/// The plaintext of the STREAM `body` (after the nonce) under `key`: chunks of 64 KiB and a
/// tag, the last one flagged, shorter, and empty only when it is the only one.
fn open_payload(key: &[u8; 32], body: &[u8]) -> Option<Vec<u8>> {
    let sealed_segment = usize::try_from(SEALED_SEGMENT).ok()?;
    let segment = usize::try_from(SEGMENT).ok()?;
    let chunks = body.len().div_ceil(sealed_segment);
    let last = body.len().checked_sub((chunks.checked_sub(1)?) * sealed_segment)?;
    if last < TAG || (last == TAG && chunks > 1) {
        return None;
    }
    let plaintext_len = body.len() - chunks * TAG;
    if plaintext_len == 0 {
        return open_chunk(key, 0, true, body).filter(Vec::is_empty);
    }
    let mut plaintext = vec![0u8; plaintext_len];
    let opened = plaintext.par_chunks_mut(segment).zip(body.par_chunks(sealed_segment)).enumerate().all(
        |(index, (out, sealed))| {
            let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG);
            out.copy_from_slice(ciphertext);
            let counter = u64::try_from(index).unwrap_or(u64::MAX);
            open_chunk_in_place(key, counter, index + 1 == chunks, out, tag)
        },
    );
    opened.then_some(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Crypto;

    fn secrets(identities: &[age::x25519::Identity]) -> Vec<Secret> {
        identities.iter().map(|identity| Secret::of(identity).unwrap()).collect()
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
                assert_eq!(open(&ours, &sealed).as_deref(), Some(plaintext.as_slice()), "{len}");
                assert_eq!(crypto.open(&id, sealed.clone()).unwrap(), plaintext);
                assert_eq!(open(&others, &sealed), None, "{len}: opened with a stranger's key");
                // Any byte altered, in the header or the payload, and the shortcut declines.
                for at in [30, 100, sealed.len() / 2, sealed.len() - 1] {
                    let mut altered = sealed.clone();
                    altered[at] ^= 0x10;
                    assert_eq!(open(&ours, &altered), None, "{len}: byte {at} altered");
                }
                // Cut at a chunk boundary (dropping the flagged last chunk): declined.
                if len > 65_536 {
                    let body = sealed.len() - header_end(&sealed) - NONCE;
                    let cut = sealed.len() - if body % 65_552 == 0 { 65_552 } else { body % 65_552 };
                    assert_eq!(open(&ours, &sealed[..cut]), None, "{len}: truncated");
                }
            }
        }
    }

    #[test]
    fn a_payload_opens_only_in_age_s_shape() {
        use super::super::age_format::seal_chunk;
        let key = [9u8; 32];
        let full = vec![5u8; 65_536];
        let chunk = |counter, last, plaintext: &[u8]| seal_chunk(&key, counter, last, plaintext).unwrap();
        let good = [chunk(0, false, &full), chunk(1, true, b"end")].concat();
        assert_eq!(open_payload(&key, &good).unwrap().len(), 65_539);
        // A full last chunk is fine; an empty one after a full one is not (age refuses it).
        assert_eq!(open_payload(&key, &chunk(0, true, &full)).unwrap(), full);
        assert_eq!(open_payload(&key, &[chunk(0, false, &full), chunk(1, true, b"")].concat()), None);
        // The empty file is one empty, flagged chunk; nothing at all is not a file.
        assert_eq!(open_payload(&key, &chunk(0, true, b"")), Some(Vec::new()));
        assert_eq!(open_payload(&key, &chunk(0, false, b"")), None);
        assert_eq!(open_payload(&key, b""), None);
        // Chunks swapped, or the flag on the wrong one: refused.
        assert_eq!(open_payload(&key, &[chunk(1, true, b"end"), chunk(0, false, &full)].concat()), None);
        assert_eq!(open_payload(&key, &[chunk(0, true, &full), chunk(1, true, b"end")].concat()), None);
    }

    fn header_end(file: &[u8]) -> usize {
        parse(file).unwrap().end
    }
}
