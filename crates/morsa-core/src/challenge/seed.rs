//! The seed of a challenge round, and the digest that chains one round's results into the
//! next round's seed.
//!
//! `seed(e, r) = H("morsa/challenge/seed" ‖ e ‖ r ‖ event head at the round's start ‖ result
//! digest of the previous round)`. Why no node can predict or grind it:
//! - the event head at the round's start covers every event the coordinator emitted before
//!   the round, in the order it chose; the round starts with a tick at a deadline, and the
//!   coordinator refuses every other entry once that deadline is due, so nothing can be
//!   appended after the head is known and before the seed is fixed;
//! - a node can change the head only by getting entries logged before the deadline, each a
//!   signed entry that consumes a nonce or a report slot, and it sees the head its entry
//!   produced only once it is logged, interleaved with everyone else's entries: at most it
//!   chooses between sending and withholding its last entries, a handful of candidate seeds,
//!   none of which it can compute in advance;
//! - the previous round's result digest covers the audit results every auditor reported, which
//!   no single node controls.
//!
//! What this does not exclude: the coordinator itself (the Raft leader orders entries) could
//! try orderings; it is run by the consortium and its log is audited. A commit–reveal across
//! replicas or a threshold VRF would remove that too (not done).

use crate::hash::{Digest, domain_hash};
use crate::index::Epoch;

/// The seed of round `round` of `epoch`, from the event head at the round's start and the
/// result digest of the round before it (zeros before the first round ever).
pub fn round_seed(epoch: Epoch, round: u32, event_head: &Digest, previous_result: &Digest) -> Digest {
    domain_hash(
        b"morsa/challenge/seed",
        &[&epoch.0.to_le_bytes(), &round.to_le_bytes(), event_head, previous_result],
    )
}

/// The digest a closed round leaves for the next seed: its seed and the BCS of its tallied
/// results (any serializable summary both sides agree on).
pub fn result_digest(seed: &Digest, results: &[u8]) -> Digest {
    domain_hash(b"morsa/challenge/result", &[seed, results])
}

/// How far after its slot's start round `round` begins, below `max_ms`: derived from the
/// previous round's seed, so the time of a round is known only once the round before it has
/// started.
pub fn round_jitter_ms(previous_seed: &Digest, round: u32, max_ms: u64) -> u64 {
    if max_ms == 0 {
        return 0;
    }
    let digest = domain_hash(b"morsa/challenge/jitter", &[previous_seed, &round.to_le_bytes()]);
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) % max_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_seed() {
        let base = round_seed(Epoch(2), 1, &[1; 32], &[2; 32]);
        assert_ne!(base, round_seed(Epoch(3), 1, &[1; 32], &[2; 32]));
        assert_ne!(base, round_seed(Epoch(2), 2, &[1; 32], &[2; 32]));
        assert_ne!(base, round_seed(Epoch(2), 1, &[9; 32], &[2; 32]));
        assert_ne!(base, round_seed(Epoch(2), 1, &[1; 32], &[9; 32]));
        assert_eq!(base, round_seed(Epoch(2), 1, &[1; 32], &[2; 32]));
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        for round in 0..200u32 {
            assert!(round_jitter_ms(&[round.to_le_bytes()[0]; 32], round, 1000) < 1000);
        }
        assert_eq!(round_jitter_ms(&[1; 32], 0, 0), 0);
    }
}
