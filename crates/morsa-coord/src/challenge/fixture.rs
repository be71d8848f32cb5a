//! A deployment for challenge tests: real genesis, real blobs (encoded with RedStuff, so
//! disputes carry genuine answers), entries applied through the real `apply`.

use morsa_core::challenge::{ChallengeAnswer, ChallengeItem, NO_ANSWER, answer_challenge, answer_digest};
use morsa_core::protocol::{Command, Input, LogEntry, NodeReport, NodeReportKind, Transaction};
use morsa_core::{AccountKey, BlsSecretKey, Certificate, NodeId, PersistenceType};
use std::collections::BTreeMap;
use std::sync::Arc;

use redstuff::{BlobId, EncodedBlob, EncodingConfig};

use super::ChallengeRules;
use crate::apply::{Applied, apply_with};
use crate::checks::Signatures;
use crate::error::CommandError;
use crate::genesis::{Genesis, GenesisAccount, GenesisNode, NodeRules};
use crate::state::State;

pub(super) const CHAIN: &str = "morsa-challenge-test";
pub(super) const EPOCH_MS: u64 = 10_000;
pub(super) const GENESIS_MS: u64 = 1_000_000;

/// A deployment under test.
pub(super) struct Fixture {
    pub state: State,
    pub node_keys: Vec<BlsSecretKey>,
    /// The nodes' IDs (deriving a public key is a curve multiplication: done once).
    pub node_ids: Vec<NodeId>,
    pub user: AccountKey,
    pub now: u64,
    /// The certified blobs, by blob ID (shared between forks: encodings are large).
    pub blobs: Arc<BTreeMap<BlobId, EncodedBlob>>,
    /// Skip signature checks (the simulation: thousands of runs); every test of refusals
    /// verifies them.
    pub trusted: bool,
    /// The signature trusted reports carry (signing each one would dominate a simulation).
    pub dummy_signature: morsa_core::BlsSignature,
}

impl Fixture {
    pub fn new(stakes: &[u64], n_shards: u16, rules: ChallengeRules, trusted: bool) -> Self {
        let node_keys: Vec<BlsSecretKey> = (0..stakes.len())
            .map(|index| BlsSecretKey::from_seed([u8::try_from(index).unwrap() + 1; 32]))
            .collect();
        let user = AccountKey::from_seed([99; 32]);
        let nodes = node_keys
            .iter()
            .zip(stakes)
            .enumerate()
            .map(|(index, (key, stake))| GenesisNode {
                public_key: key.public_key(),
                proof_of_possession: key.proof_of_possession(),
                address: format!("127.0.0.1:{}", 9000 + index),
                stake: *stake,
                capacity: 1 << 30,
                operator: AccountKey::from_seed([200 + u8::try_from(index).unwrap(); 32]).id(),
                zone: String::new(),
            })
            .collect();
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            n_shards,
            epoch_duration_ms: EPOCH_MS,
            genesis_time_ms: GENESIS_MS,
            storage_price_per_mib_epoch: 1000,
            write_price_per_mib: 10,
            max_epochs_ahead: 30,
            max_shards_per_node: n_shards,
            nodes,
            accounts: vec![GenesisAccount { id: user.id(), balance: 1 << 40 }],
            node_rules: NodeRules { challenges: rules, ..NodeRules::local() },
        };
        let state = genesis.initial_state().expect("a valid genesis");
        let dummy_signature = node_keys[0].sign(b"trusted");
        let node_ids = node_keys.iter().map(|key| NodeId::from_public_key(&key.public_key())).collect();
        let blobs = Default::default();
        Self { state, node_keys, node_ids, user, now: GENESIS_MS, blobs, trusted, dummy_signature }
    }

    /// A copy to run on independently (the blobs' encodings are shared).
    pub fn fork(&self) -> Self {
        Self {
            state: self.state.clone(),
            node_keys: self.node_keys.clone(),
            node_ids: self.node_ids.clone(),
            user: self.user.clone(),
            now: self.now,
            blobs: Arc::clone(&self.blobs),
            trusted: self.trusted,
            dummy_signature: self.dummy_signature.clone(),
        }
    }

    pub fn node_id(&self, index: usize) -> NodeId {
        self.node_ids[index]
    }

    pub fn node_index(&self, node: &NodeId) -> usize {
        self.node_ids.iter().position(|id| id == node).expect("a known node")
    }

    /// Applies `input` at the current time, ticking first if a deadline is due (as the
    /// coordinator does). A refusal must leave the state as it was.
    pub fn submit(&mut self, input: Input) -> Result<Applied, CommandError> {
        if !matches!(input, Input::Tick) && self.state.deadline_due(self.now).is_some() {
            self.submit(Input::Tick)?;
        }
        let entry = LogEntry { time_ms: self.now, input };
        let signatures = if self.trusted { Signatures::Trusted } else { Signatures::Verify };
        if self.trusted {
            return apply_with(&mut self.state, &entry, signatures);
        }
        let before = self.state.clone();
        let result = apply_with(&mut self.state, &entry, signatures);
        if result.is_err() {
            assert_eq!(self.state, before, "a refused entry changed the state");
        }
        result
    }

    pub fn transact(&mut self, command: Command) -> Result<Applied, CommandError> {
        let nonce = self.state.account(&self.user.id()).nonce;
        let signed = Transaction { sender: self.user.id(), nonce, command }.sign(&self.user, CHAIN);
        self.submit(Input::Transaction(signed))
    }

    /// A report of node `index`, signed over its message (or with any signature when trusted).
    pub fn report(&self, index: usize, report: NodeReportKind) -> NodeReport {
        let node = self.node_id(index);
        if self.trusted {
            return NodeReport { node, report, signature: self.dummy_signature.clone() };
        }
        let message = match &report {
            NodeReportKind::EpochSyncDone { epoch } => morsa_core::epoch_sync_done_message(*epoch, &node),
            other => other.challenge_message(&node).expect("a challenge report"),
        };
        NodeReport { node, report, signature: self.node_keys[index].sign(&message) }
    }

    /// Every member reports its epoch sync done.
    pub fn sync_all(&mut self) {
        let members: Vec<NodeId> = self.state.committee.members.iter().map(|member| member.node_id).collect();
        for node in members {
            if self.state.phase == crate::state::EpochPhase::Done {
                return;
            }
            let epoch = self.state.epoch;
            let report = self.report(self.node_index(&node), NodeReportKind::EpochSyncDone { epoch });
            self.submit(Input::Node(report)).expect("a member's sync report is accepted");
        }
    }

    /// Encodes, registers and certifies blobs of the given sizes, stored for `epochs` epochs.
    pub fn store_blobs(&mut self, sizes: &[usize], salt: u8, epochs: u32) {
        let config = EncodingConfig::new(self.state.params.n_shards).expect("a valid shard count");
        for (index, size) in sizes.iter().enumerate() {
            let bytes: Vec<u8> =
                (0..*size).map(|i| u8::try_from((i * 31 + index * 7) % 251).unwrap() ^ salt).collect();
            let encoded = redstuff::encode(config, &bytes).expect("encodes");
            let metadata = encoded.metadata.metadata();
            let encoded_size = config.encoded_size(metadata.unencoded_length).expect("a valid size");
            let applied =
                self.transact(Command::ReserveStorage { size: encoded_size, epochs }).expect("reserved");
            let storage = applied.created[0];
            let blob_id = *encoded.metadata.blob_id();
            let applied = self
                .transact(Command::RegisterBlob {
                    storage,
                    blob_id,
                    root_hash: metadata.root(),
                    size: metadata.unencoded_length,
                    encoding_type: redstuff::ENCODING_TYPE_RS2,
                    deletable: false,
                })
                .expect("registered");
            let object = applied.created[0];
            let certificate = self.certificate(&morsa_core::storage_confirmation_message(
                self.state.epoch,
                &blob_id,
                &PersistenceType::Permanent,
            ));
            self.transact(Command::CertifyBlob { object, certificate }).expect("certified");
            Arc::make_mut(&mut self.blobs).insert(blob_id, encoded);
        }
    }

    /// A certificate of the whole current committee over `message`.
    pub fn certificate(&self, message: &[u8]) -> Certificate {
        let parts: Vec<(u16, morsa_core::BlsSignature)> = self
            .state
            .committee
            .members
            .iter()
            .enumerate()
            .map(|(position, member)| {
                let key = &self.node_keys[self.node_index(&member.node_id)];
                (u16::try_from(position).unwrap(), key.sign(message))
            })
            .collect();
        Certificate::aggregate(&parts).expect("a committee is never empty")
    }

    /// The genuine answer to `item`.
    pub fn answer(&self, item: &ChallengeItem) -> ChallengeAnswer {
        let encoded = &self.blobs[&item.blob_id];
        answer_challenge(&encoded.metadata, &encoded.pairs[usize::from(item.pair.0)], item).expect("answers")
    }

    /// Node `index`'s answer commitment in `round` over `items`: the digest of the genuine answer
    /// where `answered(position)`, `NO_ANSWER` elsewhere.
    pub fn commit(
        &self,
        index: usize,
        round: &super::OpenRound,
        items: &[ChallengeItem],
        answered: impl Fn(usize) -> bool,
    ) -> Input {
        let digests = items
            .iter()
            .enumerate()
            .map(
                |(position, item)| {
                    if answered(position) { answer_digest(&self.answer(item)) } else { NO_ANSWER }
                },
            )
            .collect();
        let report = NodeReportKind::ChallengeCommit { epoch: round.epoch, round: round.round, digests };
        Input::Node(self.report(index, report))
    }

    /// Moves time to `time_ms` and ticks; answers what the tick did.
    pub fn advance_to(&mut self, time_ms: u64) -> Applied {
        self.now = self.now.max(time_ms);
        self.submit(Input::Tick).expect("ticks are always accepted")
    }
}
