//! Shared fixtures: a small deployment with deterministic keys.
#![allow(dead_code, missing_docs)]

use morsa_coord::{
    Applied, Command, CommandError, Genesis, GenesisAccount, GenesisNode, Input, LogEntry, NodeReport,
    NodeReportKind, State, Transaction, apply,
};
use morsa_core::{AccountKey, BlsSecretKey, Certificate, Committee, Epoch, NodeId};

pub const CHAIN: &str = "morsa-test";
pub const EPOCH_MS: u64 = 10_000;
pub const GENESIS_MS: u64 = 1_000_000;

/// A deployment under test: its keys, state, and the log of accepted entries.
pub struct World {
    pub genesis: Genesis,
    pub state: State,
    pub node_keys: Vec<BlsSecretKey>,
    pub users: Vec<AccountKey>,
    pub accepted: Vec<LogEntry>,
    pub now: u64,
}

pub fn node_key(index: u8) -> BlsSecretKey {
    BlsSecretKey::from_seed([index + 1; 32])
}

pub fn user_key(index: u8) -> AccountKey {
    AccountKey::from_seed([100 + index; 32])
}

pub fn genesis(n_nodes: u8, n_shards: u16, stakes: &[u64]) -> (Genesis, Vec<BlsSecretKey>, Vec<AccountKey>) {
    let node_keys: Vec<BlsSecretKey> = (0..n_nodes).map(node_key).collect();
    let users: Vec<AccountKey> = (0..3).map(user_key).collect();
    let nodes = node_keys
        .iter()
        .enumerate()
        .map(|(index, key)| GenesisNode {
            public_key: key.public_key(),
            proof_of_possession: key.proof_of_possession(),
            address: format!("127.0.0.1:{}", 9000 + index),
            stake: stakes[index % stakes.len()],
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
        storage_price_per_mib_epoch: 7,
        write_price_per_mib: 3,
        max_epochs_ahead: 10,
        max_shards_per_node: n_shards,
        nodes,
        accounts: users.iter().map(|user| GenesisAccount { id: user.id(), balance: 1_000_000 }).collect(),
        node_rules: morsa_coord::NodeRules::local(),
    };
    (genesis, node_keys, users)
}

impl World {
    pub fn new(n_nodes: u8, n_shards: u16) -> Self {
        let (genesis, node_keys, users) = genesis(n_nodes, n_shards, &[100, 200, 300, 400]);
        let state = genesis.initial_state().expect("valid genesis");
        Self { genesis, state, node_keys, users, accepted: Vec::new(), now: GENESIS_MS }
    }

    /// Applies `input` at the current time; keeps it if accepted. Checks that a refusal
    /// leaves the state untouched.
    pub fn submit(&mut self, input: Input) -> Result<Applied, CommandError> {
        // As the coordinator does: a deadline that has come due is ticked first.
        if !matches!(input, Input::Tick) && self.state.deadline_due(self.now).is_some() {
            self.submit(Input::Tick)?;
        }
        let entry = LogEntry { time_ms: self.now, input };
        let before = self.state.hash();
        match apply(&mut self.state, &entry) {
            Ok(applied) => {
                self.accepted.push(entry);
                Ok(applied)
            }
            Err(error) => {
                assert_eq!(self.state.hash(), before, "refused entry changed the state: {error}");
                Err(error)
            }
        }
    }

    pub fn transact(&mut self, user: usize, command: Command) -> Result<Applied, CommandError> {
        let key = &self.users[user];
        let nonce = self.state.account(&key.id()).nonce;
        let signed = Transaction { sender: key.id(), nonce, command }.sign(key, CHAIN);
        self.submit(Input::Transaction(signed))
    }

    /// Moves time forward and applies a tick.
    pub fn advance(&mut self, ms: u64) -> Applied {
        self.now += ms;
        self.submit(Input::Tick).expect("ticks are always accepted")
    }

    pub fn node_index(&self, node: &NodeId) -> usize {
        self.node_keys
            .iter()
            .position(|key| NodeId::from_public_key(&key.public_key()) == *node)
            .expect("a known node")
    }

    /// Members of the current committee report their epoch sync done until the change is done.
    pub fn finish_epoch_change(&mut self) {
        self.report_sync_done(true);
    }

    /// Every member of the current committee reports its epoch sync done (or, with
    /// `until_done`, only until the change is done): a member that never reports is taken
    /// for dead at the next selection but one.
    pub fn report_sync_done(&mut self, until_done: bool) {
        if self.state.deadline_due(self.now).is_some() {
            self.submit(Input::Tick).expect("ticks are always accepted");
        }
        let members: Vec<NodeId> = self.state.committee.members.iter().map(|member| member.node_id).collect();
        for node in members {
            if until_done && self.state.phase == morsa_coord::EpochPhase::Done {
                return;
            }
            if self.state.lifecycle.synced.contains(&node) {
                continue;
            }
            if self.state.deadline_due(self.now).is_some() {
                return; // the change is done and the next epoch overdue: reports are moot
            }
            let epoch = self.state.epoch;
            let key = &self.node_keys[self.node_index(&node)];
            let signature = key.sign(&morsa_core::epoch_sync_done_message(epoch, &node));
            let report = NodeReport { node, report: NodeReportKind::EpochSyncDone { epoch }, signature };
            self.submit(Input::Node(report)).expect("a member's report is accepted");
        }
    }

    /// A certificate over `message` signed by the given committee members.
    pub fn certificate(&self, committee: &Committee, signers: &[usize], message: &[u8]) -> Certificate {
        let parts: Vec<(u16, morsa_core::BlsSignature)> = signers
            .iter()
            .map(|member| {
                let node = committee.members[*member].node_id;
                let key = &self.node_keys[self.node_index(&node)];
                (u16::try_from(*member).unwrap(), key.sign(message))
            })
            .collect();
        Certificate::aggregate(&parts).expect("non-empty")
    }

    /// All members sign.
    pub fn full_certificate(&self, message: &[u8]) -> Certificate {
        let all: Vec<usize> = (0..self.state.committee.members.len()).collect();
        self.certificate(&self.state.committee, &all, message)
    }

    pub fn epoch(&self) -> Epoch {
        self.state.epoch
    }
}
