//! Quorum arithmetic over shard weights, for `n` shards and `f = ⌊(n−1)/3⌋` faulty ones.

/// Whether `weight` shards form a quorum: `3w ≥ 2n + 1`. Certificates need this much.
pub fn is_quorum(weight: usize, n_shards: usize) -> bool {
    3 * weight > 2 * n_shards
}

/// Whether `weight` shards include at least one honest one: `3w ≥ n + 1`. Invalid-blob
/// attestations need this much.
pub fn is_validity(weight: usize, n_shards: usize) -> bool {
    3 * weight > n_shards
}

/// The smallest quorum weight for `n_shards`.
pub fn min_quorum(n_shards: usize) -> usize {
    (2 * n_shards) / 3 + 1
}

/// The smallest validity weight for `n_shards`.
pub fn min_validity(n_shards: usize) -> usize {
    n_shards / 3 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_match_the_spec_inequalities() {
        for n in 4..=1000 {
            let q = min_quorum(n);
            assert!(3 * q > 2 * n && 3 * (q - 1) <= 2 * n, "quorum for n = {n}");
            assert!(is_quorum(q, n) && !is_quorum(q - 1, n));
            let v = min_validity(n);
            assert!(3 * v > n && 3 * (v - 1) <= n, "validity for n = {n}");
            assert!(is_validity(v, n) && !is_validity(v - 1, n));
        }
    }

    #[test]
    fn table() {
        // n → (quorum, validity): with f = ⌊(n−1)/3⌋, a quorum is n − f and validity f + 1
        // when n = 3f + 1.
        for (n, quorum, validity) in [(4, 3, 2), (7, 5, 3), (10, 7, 4), (1000, 667, 334)] {
            assert_eq!((min_quorum(n), min_validity(n)), (quorum, validity), "n = {n}");
        }
    }
}
