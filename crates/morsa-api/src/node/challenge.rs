//! A challenged node's answers to the open storage-challenge round, as its auditor fetches
//! them: a page at a time, each answer naming its challenge by position among the node's
//! challenges of the round (see `GET /v1/challenges` on the coordinator).

use morsa_core::challenge::ChallengeAnswer;
use redstuff::wire::WireValue;
use serde::{Deserialize, Serialize};

/// Most answers one page holds.
pub const MAX_CHALLENGE_ANSWERS_PAGE: usize = 64;
/// Largest BCS page of answers a node sends (and an auditor reads).
pub const MAX_CHALLENGE_ANSWERS_BYTES: usize = 8 << 20;

/// Query of [`super::routes::CHALLENGE_ANSWERS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeAnswersQuery {
    /// Position of the first challenge to answer (0 if absent).
    #[serde(default)]
    pub from: u32,
}

/// One page of a node's answers, BCS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeAnswers {
    /// Answers in position order, from the asked position.
    pub answers: Vec<ChallengeReply>,
    /// Where the next page starts; `None` once every challenge was answered.
    pub next: Option<u32>,
}

/// The node's answer to one challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeReply {
    /// Position of the challenge among the node's challenges of the round.
    pub item: u32,
    /// The answer, or `None`: the node does not hold the challenged slivers.
    pub answer: Option<ChallengeAnswer>,
}

impl WireValue for ChallengeAnswers {
    const WHAT: &'static str = "page of challenge answers";

    fn check(&self) -> Result<(), &'static str> {
        if self.answers.len() > MAX_CHALLENGE_ANSWERS_PAGE {
            return Err("it holds more answers than a page may");
        }
        if self.answers.windows(2).any(|pair| pair[0].item >= pair[1].item) {
            return Err("its answers are not in increasing position order");
        }
        Ok(())
    }
}
