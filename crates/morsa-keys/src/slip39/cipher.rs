//! The SLIP-39 encryption of the master secret with a passphrase: a four-round Feistel
//! network whose round function is PBKDF2-HMAC-SHA256.

use sha2::Sha256;

/// Rounds of the Feistel network.
const ROUNDS: u8 = 4;

/// PBKDF2 iterations of one round at iteration exponent 0 (10 000 over the four rounds).
const BASE_ITERATIONS: u32 = 2500;

/// What salts the rounds besides the right half: nothing for extendable backups, else
/// `"shamir"` followed by the identifier.
fn salt_prefix(identifier: u16, extendable: bool) -> Vec<u8> {
    match extendable {
        true => Vec::new(),
        false => [b"shamir".as_slice(), &identifier.to_be_bytes()].concat(),
    }
}

fn feistel(
    input: &[u8],
    passphrase: &[u8],
    exponent: u8,
    identifier: u16,
    extendable: bool,
    rounds: impl Iterator<Item = u8>,
) -> Vec<u8> {
    let half = input.len() / 2;
    let (mut left, mut right) = (input[..half].to_vec(), input[half..].to_vec());
    let prefix = salt_prefix(identifier, extendable);
    let iterations = BASE_ITERATIONS << exponent;
    for round in rounds {
        let password = [&[round][..], passphrase].concat();
        let salt = [prefix.as_slice(), &right].concat();
        let mut key = vec![0u8; half];
        pbkdf2::pbkdf2_hmac::<Sha256>(&password, &salt, iterations, &mut key);
        for (k, l) in key.iter_mut().zip(&left) {
            *k ^= l;
        }
        left = std::mem::replace(&mut right, key);
    }
    [right, left].concat()
}

/// Encrypts `master_secret` (an even number of bytes) into the encrypted master secret.
pub fn encrypt(
    master_secret: &[u8],
    passphrase: &[u8],
    exponent: u8,
    identifier: u16,
    extendable: bool,
) -> Vec<u8> {
    feistel(master_secret, passphrase, exponent, identifier, extendable, 0..ROUNDS)
}

/// Decrypts an encrypted master secret (the rounds in reverse order).
pub fn decrypt(
    encrypted: &[u8],
    passphrase: &[u8],
    exponent: u8,
    identifier: u16,
    extendable: bool,
) -> Vec<u8> {
    feistel(encrypted, passphrase, exponent, identifier, extendable, (0..ROUNDS).rev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decryption_inverts_encryption_and_the_passphrase_and_salt_matter() {
        let secret: Vec<u8> = (0..32).collect();
        for extendable in [false, true] {
            let encrypted = encrypt(&secret, b"TREZOR", 0, 7, extendable);
            assert_ne!(encrypted, secret);
            assert_eq!(decrypt(&encrypted, b"TREZOR", 0, 7, extendable), secret);
            assert_ne!(decrypt(&encrypted, b"TREZOR!", 0, 7, extendable), secret);
        }
        assert_ne!(encrypt(&secret, b"", 0, 7, false), encrypt(&secret, b"", 0, 8, false));
        assert_eq!(encrypt(&secret, b"", 0, 7, true), encrypt(&secret, b"", 0, 8, true));
    }
}
