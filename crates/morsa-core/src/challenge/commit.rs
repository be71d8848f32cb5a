//! What a challenged node commits to before a round's answer window closes: one digest per
//! challenge, of the answer it serves (or [`NO_ANSWER`]). A dispute later overturns a failure
//! only with an answer that hashes to its committed digest, so a node that rebuilt a blob
//! after the window cannot pass it off as an answer it had in time.

use super::answer::ChallengeAnswer;
use crate::hash::{Digest, domain_hash};

/// The digest committed for a challenge the node cannot answer.
pub const NO_ANSWER: Digest = [0; 32];

/// The digest of `answer` a node commits to: `H("morsa/challenge/answer" ‖ BCS(answer))`.
pub fn answer_digest(answer: &ChallengeAnswer) -> Digest {
    let bytes = bcs::to_bytes(answer).expect("answers serialize");
    domain_hash(b"morsa/challenge/answer", &[&bytes])
}
