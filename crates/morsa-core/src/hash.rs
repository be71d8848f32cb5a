//! Domain-separated BLAKE2b-256, for event chains, object IDs and the state hash.

/// A 32-byte digest.
pub type Digest = [u8; 32];

/// `H(len(domain) ‖ domain ‖ parts...)`.
pub fn domain_hash(domain: &[u8], parts: &[&[u8]]) -> Digest {
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    let mut state = params.to_state();
    state.update(&u64::try_from(domain.len()).expect("short domain").to_le_bytes());
    state.update(domain);
    for part in parts {
        state.update(part);
    }
    let mut digest = [0; 32];
    digest.copy_from_slice(state.finalize().as_bytes());
    digest
}
