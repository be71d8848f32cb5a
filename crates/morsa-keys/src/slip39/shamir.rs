//! Shamir's secret sharing of byte strings as SLIP-39 does it: the secret at x = 255, its
//! digest at x = 254, shares at x = 0, 1, …

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::gf256;

/// The x value that holds the secret.
const SECRET_INDEX: u8 = 255;

/// The x value that holds the digest of the secret.
const DIGEST_INDEX: u8 = 254;

/// Bytes of the digest at the start of the digest share.
const DIGEST_BYTES: usize = 4;

fn digest(random: &[u8], secret: &[u8]) -> [u8; DIGEST_BYTES] {
    let mut mac = Hmac::<Sha256>::new_from_slice(random).expect("HMAC takes keys of any length");
    mac.update(secret);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(&full[..DIGEST_BYTES]);
    out
}

/// Splits `secret` into `count` shares (x = 0 … count − 1), any `threshold` of which give
/// it back. The callers check `1 ≤ threshold ≤ count ≤ 16` and the secret's length.
pub fn split(threshold: u8, count: u8, secret: &[u8], rng: &mut impl RngCore) -> Vec<(u8, Vec<u8>)> {
    if threshold == 1 {
        return (0..count).map(|x| (x, secret.to_vec())).collect();
    }
    let mut random_part = vec![0u8; secret.len() - DIGEST_BYTES];
    rng.fill_bytes(&mut random_part);
    let digest_share = [digest(&random_part, secret).as_slice(), &random_part].concat();
    let random_shares: Vec<(u8, Vec<u8>)> = (0..threshold - 2)
        .map(|x| {
            let mut value = vec![0u8; secret.len()];
            rng.fill_bytes(&mut value);
            (x, value)
        })
        .collect();
    let mut base: Vec<(u8, &[u8])> = random_shares.iter().map(|(x, value)| (*x, value.as_slice())).collect();
    base.push((DIGEST_INDEX, &digest_share));
    base.push((SECRET_INDEX, secret));
    let mut shares = random_shares.clone();
    shares.extend((threshold - 2..count).map(|x| (x, gf256::interpolate(&base, x))));
    shares
}

/// The secret of `threshold` shares with distinct x values, or `None` if the digest they
/// interpolate does not match the secret they interpolate.
pub fn recover(threshold: u8, shares: &[(u8, &[u8])]) -> Option<Vec<u8>> {
    if threshold == 1 {
        return shares.first().map(|(_, value)| value.to_vec());
    }
    let secret = gf256::interpolate(shares, SECRET_INDEX);
    let digest_share = gf256::interpolate(shares, DIGEST_INDEX);
    let (expected, random_part) = digest_share.split_at(DIGEST_BYTES);
    (digest(random_part, &secret) == expected).then_some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_shares_recover_and_a_changed_share_fails_the_digest() {
        let secret: Vec<u8> = (100..132).collect();
        let shares = split(3, 5, &secret, &mut rand::rng());
        assert_eq!(shares.len(), 5);
        for picked in [[0, 1, 2], [0, 2, 4], [4, 3, 1]] {
            let chosen: Vec<(u8, &[u8])> =
                picked.iter().map(|i| (shares[*i].0, shares[*i].1.as_slice())).collect();
            assert_eq!(recover(3, &chosen), Some(secret.clone()));
        }
        let mut altered = shares[1].1.clone();
        altered[0] ^= 1;
        let chosen = [
            (shares[0].0, shares[0].1.as_slice()),
            (shares[1].0, &altered),
            (shares[2].0, shares[2].1.as_slice()),
        ];
        assert_eq!(recover(3, &chosen), None);
    }
}
