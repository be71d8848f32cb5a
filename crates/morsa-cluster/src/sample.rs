//! Sample data for trying and measuring a cluster: incompressible, reproducible bytes.

/// `len` pseudo-random bytes (xorshift64), the same for the same `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_are_reproducible_and_differ_by_seed() {
        assert_eq!(super::bytes(1000, 1), super::bytes(1000, 1));
        assert_ne!(super::bytes(1000, 1), super::bytes(1000, 2));
        assert_eq!(super::bytes(13, 5).len(), 13);
        assert_eq!(&super::bytes(100, 5)[..13], &super::bytes(13, 5)[..]);
    }
}
