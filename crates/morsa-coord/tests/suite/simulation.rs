//! Random command sequences, valid and invalid, over many epochs, with the state machine's
//! invariants checked after every step and a replay of the log at the end.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::{EPOCH_MS, World};
use morsa_coord::{Command, Event, Input, NodeReport, NodeReportKind, State, apply};
use morsa_core::{AccountId, BlsSecretKey, Committee, Epoch, NodeId, ObjectId, PersistenceType, Threshold};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redstuff::BlobId;

const N: u16 = 13;
const STEPS: usize = 400;
/// Registered nodes at most (5 at genesis).
const MAX_NODES: usize = 8;

struct Sim {
    world: World,
    rng: StdRng,
    committees: BTreeMap<Epoch, Committee>,
    supply: u128,
    accepted_by_kind: BTreeMap<&'static str, usize>,
    /// Transactions accepted per account: its nonce must equal this.
    transactions: BTreeMap<AccountId, u64>,
    /// Blob IDs an `InvalidBlobId` event was emitted for.
    invalidated: BTreeSet<BlobId>,
    /// Epoch changes seen (each checked against the rule).
    epoch_changes: usize,
    /// Secret keys of the nodes the generator asked to register.
    new_keys: Vec<BlsSecretKey>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let world = World::new(5, N);
        let mut committees = BTreeMap::new();
        committees.insert(world.epoch(), world.state.committee.clone());
        let supply = world.state.total_supply();
        Self {
            world,
            rng: StdRng::seed_from_u64(seed),
            committees,
            supply,
            accepted_by_kind: BTreeMap::new(),
            transactions: BTreeMap::new(),
            invalidated: BTreeSet::new(),
            epoch_changes: 0,
            new_keys: Vec::new(),
        }
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())].clone())
    }

    fn random_object(&mut self) -> ObjectId {
        let mut ids: Vec<ObjectId> = self.world.state.storage.keys().copied().collect();
        ids.extend(self.world.state.blobs.keys().copied());
        if self.rng.random_bool(0.1) {
            return ObjectId([self.rng.random(); 32]);
        }
        self.pick(&ids).unwrap_or(ObjectId([0; 32]))
    }

    /// A certificate over `message` from a random subset of the committee (often a quorum).
    fn certificate(&mut self, message: &[u8]) -> morsa_core::Certificate {
        let committee = self.world.state.committee.clone();
        let members = committee.members.len();
        let signers: Vec<usize> = if self.rng.random_bool(0.7) {
            (0..members).collect()
        } else {
            (0..members).filter(|_| self.rng.random_bool(0.5)).collect()
        };
        let signers = if signers.is_empty() { vec![0] } else { signers };
        self.world.certificate(&committee, &signers, message)
    }

    /// A storage resource of `owner` and, most of the time, one that merges with it.
    fn merge_pair(&mut self, owner: AccountId) -> (ObjectId, ObjectId) {
        let owned: Vec<(ObjectId, morsa_coord::StorageResource)> = self
            .world
            .state
            .storage
            .iter()
            .filter(|(_, resource)| resource.owner == owner)
            .map(|(id, resource)| (*id, resource.clone()))
            .collect();
        let Some((first, a)) = self.pick(&owned) else { return (self.random_object(), self.random_object()) };
        let fits: Vec<ObjectId> = owned
            .iter()
            .filter(|(id, b)| {
                *id != first
                    && ((a.start, a.end) == (b.start, b.end)
                        || (a.size == b.size && (a.end == b.start || b.end == a.start)))
            })
            .map(|(id, _)| *id)
            .collect();
        let second = match self.rng.random_bool(0.8) {
            true => self.pick(&fits).unwrap_or_else(|| self.random_object()),
            false => self.random_object(),
        };
        (first, second)
    }

    fn random_command(&mut self, user: usize) -> Command {
        match self.rng.random_range(0..14) {
            11 => {
                let (first, second) = self.merge_pair(self.world.users[user].id());
                Command::MergeStorage { first, second }
            }
            12 => {
                let storage = self.random_object();
                let start = self.world.state.storage.get(&storage).map_or(self.world.epoch(), |s| s.start);
                Command::SplitStorageByEpoch { storage, epoch: Epoch(start.0 + self.rng.random_range(0..4)) }
            }
            // A few nodes join (more would only make every certificate slower to sign).
            13 if self.world.state.nodes.len() < MAX_NODES => {
                let key = BlsSecretKey::from_seed([self.rng.random(); 32]);
                self.new_keys.push(key.clone());
                let proof_of_possession = match self.rng.random_bool(0.9) {
                    true => key.proof_of_possession(),
                    false => BlsSecretKey::from_seed([self.rng.random(); 32]).proof_of_possession(),
                };
                Command::RegisterNode {
                    public_key: key.public_key(),
                    proof_of_possession,
                    address: format!("127.0.0.1:{}", self.rng.random_range(10_000..20_000u16)),
                    capacity: self.rng.random_range(1u64 << 28..1 << 31),
                }
            }
            0 => Command::ReserveStorage {
                size: self.rng.random_range(0..(64u64 << 20)),
                epochs: self.rng.random_range(0..12),
            },
            1 | 2 => {
                let storage = self.random_object();
                let size = self.rng.random_range(0..(4u64 << 20));
                let root = [self.rng.random(); 32];
                let blob_id =
                    if self.rng.random_bool(0.9) { BlobId::from_root(size, &root) } else { BlobId([1; 32]) };
                Command::RegisterBlob {
                    storage,
                    blob_id,
                    root_hash: root,
                    size,
                    encoding_type: 1,
                    deletable: self.rng.random_bool(0.5),
                }
            }
            3 | 4 => {
                let object = self.random_object();
                let (blob_id, deletable) = self
                    .world
                    .state
                    .blobs
                    .get(&object)
                    .map(|blob| (blob.blob_id, blob.deletable))
                    .unwrap_or((BlobId([2; 32]), false));
                let persistence = match deletable ^ self.rng.random_bool(0.1) {
                    true => PersistenceType::Deletable { object_id: object },
                    false => PersistenceType::Permanent,
                };
                let message =
                    morsa_core::storage_confirmation_message(self.world.epoch(), &blob_id, &persistence);
                let certificate = self.certificate(&message);
                Command::CertifyBlob { object, certificate }
            }
            5 => Command::ExtendBlob { object: self.random_object(), epochs: self.rng.random_range(0..5) },
            6 => Command::DeleteBlob { object: self.random_object() },
            7 => {
                let object = self.random_object();
                let blob_id =
                    self.world.state.blobs.get(&object).map_or(BlobId([3; 32]), |blob| blob.blob_id);
                let message = morsa_core::invalid_blob_message(self.world.epoch(), &blob_id);
                let certificate = self.certificate(&message);
                Command::InvalidateBlob { blob_id, certificate }
            }
            8 => {
                let storage = self.random_object();
                Command::SplitStorageBySize { storage, size: self.rng.random_range(0..(8u64 << 20)) }
            }
            9 => {
                let nodes: Vec<_> = self.world.state.nodes.keys().copied().collect();
                let node = self.pick(&nodes).expect("nodes exist");
                match self.rng.random_range(0..5) {
                    0 | 1 => Command::Stake { node, amount: self.rng.random_range(0..500) },
                    2 | 3 => Command::Unstake { node, amount: self.rng.random_range(0..500) },
                    _ => Command::SetCommission { node, commission_ppm: self.rng.random_range(0..1_100_000) },
                }
            }
            _ => {
                let to = self.world.users[self.rng.random_range(0..3)].id();
                Command::Transfer { to, amount: self.rng.random_range(0..10_000) }
            }
        }
    }

    /// Applies a tick and remembers every committee it selects.
    fn tick(&mut self) {
        let before = (self.world.epoch(), self.world.state.phase.clone());
        let applied = self.world.submit(Input::Tick).expect("ticks are accepted");
        self.observe(&applied);
        let starts = applied
            .events
            .iter()
            .filter(|record| matches!(record.event, Event::EpochChangeStart { .. }))
            .count();
        let epoch = self.world.epoch();
        assert_eq!(u32::try_from(starts).unwrap(), epoch.0 - before.0.0, "one start event per epoch");
        if epoch != before.0 {
            // The epoch-change rule: only after the previous change was done, at most one epoch
            // at a time, never before the epoch's start time, and the new change waits for reports.
            assert_eq!(
                before.1,
                morsa_coord::EpochPhase::Done,
                "a change starts only after the last is done"
            );
            assert_eq!(epoch.0, before.0.0 + 1);
            assert!(self.world.now >= self.world.state.epoch_start_ms(epoch));
            assert!(
                matches!(&self.world.state.phase, morsa_coord::EpochPhase::Changing { done } if done.is_empty())
            );
            assert_eq!(
                self.committees.get(&epoch),
                Some(&self.world.state.committee),
                "the selected committee"
            );
            // Expiry: an epoch change drops every storage resource whose end has come. (Between
            // changes one can appear: a split at the current epoch leaves an ended first half,
            // which nothing can use and the next change drops.)
            let state = &self.world.state;
            for (id, resource) in &state.storage {
                assert!(resource.end > epoch, "storage {id} outlived its end epoch: {resource:?}");
            }
            self.epoch_changes += 1;
        }
    }

    fn step(&mut self) {
        // Whatever came due is ticked first, so that inputs see the epoch they will apply in.
        if self.world.state.deadline_due(self.world.now).is_some() {
            self.tick();
        }
        match self.rng.random_range(0..10) {
            0 | 1 => {
                self.world.now += self.rng.random_range(0..EPOCH_MS / 2);
                self.tick();
            }
            2 => self.node_report(),
            _ => {
                let user = self.rng.random_range(0..3);
                let command = self.random_command(user);
                let kind = command_kind(&command);
                let new_key = match &command {
                    Command::RegisterNode { public_key, .. } => Some(*public_key),
                    _ => None,
                };
                if let Ok(applied) = self.world.transact(user, command) {
                    *self.accepted_by_kind.entry(kind).or_default() += 1;
                    *self.transactions.entry(self.world.users[user].id()).or_default() += 1;
                    self.observe(&applied);
                    if let Some(public_key) = new_key {
                        self.learn_key(&public_key);
                    }
                }
            }
        }
        self.check_invariants();
    }

    /// Keeps the secret key of a node registered in the run, so that it can sign once staked
    /// into a committee.
    fn learn_key(&mut self, public_key: &morsa_core::BlsPublicKey) {
        let key =
            self.new_keys.iter().find(|key| key.public_key() == *public_key).expect("generated here").clone();
        self.world.node_keys.push(key);
    }

    /// Checks the rules on the events of an accepted entry.
    fn observe(&mut self, applied: &morsa_coord::Applied) {
        for record in &applied.events {
            match &record.event {
                Event::InvalidBlobId { blob_id, .. } => {
                    self.invalidated.insert(*blob_id);
                }
                Event::BlobCertified { blob_id, .. } => {
                    assert!(
                        !self.invalidated.contains(blob_id),
                        "{blob_id} certified after it was invalidated"
                    );
                }
                Event::CommitteeSelected { committee } => {
                    self.committees.insert(committee.epoch, committee.clone());
                }
                _ => {}
            }
        }
    }

    fn node_report(&mut self) {
        let members = self.world.state.committee.members.clone();
        let Some(member) = self.pick(&members) else { return };
        let epoch = self.world.epoch();
        let key_index = self.world.node_index(&member.node_id);
        let signer =
            if self.rng.random_bool(0.9) { key_index } else { (key_index + 1) % self.world.node_keys.len() };
        let signature =
            self.world.node_keys[signer].sign(&morsa_core::epoch_sync_done_message(epoch, &member.node_id));
        let report =
            NodeReport { node: member.node_id, report: NodeReportKind::EpochSyncDone { epoch }, signature };
        let before = self.world.state.phase.clone();
        let result = self.world.submit(Input::Node(report));
        assert_eq!(
            result.is_ok(),
            signer == key_index,
            "a report is accepted exactly when its signature is right"
        );
        let Ok(applied) = result else {
            assert_eq!(result.unwrap_err().code(), "bad_node_signature");
            return;
        };
        self.observe(&applied);
        let done_event =
            applied.events.iter().any(|record| matches!(record.event, Event::EpochChangeDone { .. }));
        // The change completes exactly when the reporters' shards first reach a quorum.
        if let morsa_coord::EpochPhase::Changing { done } = before {
            let mut reporters = done;
            reporters.insert(member.node_id);
            let reached = morsa_core::quorum::is_quorum(self.weight_of(&reporters), usize::from(N));
            assert_eq!(reached, done_event, "epoch change done exactly at a quorum of reports");
            assert_eq!(reached, self.world.state.phase == morsa_coord::EpochPhase::Done);
        } else {
            assert!(!done_event, "a late report changes nothing");
        }
    }

    /// Shards the current committee gives to `nodes`.
    fn weight_of(&self, nodes: &BTreeSet<NodeId>) -> usize {
        let committee = &self.world.state.committee;
        nodes
            .iter()
            .filter_map(|node| committee.member_by_node(node))
            .map(|member| committee.weight(member))
            .sum()
    }

    fn check_invariants(&self) {
        let state = &self.world.state;
        assert_eq!(state.total_supply(), self.supply, "balances, stakes and pools are conserved");
        state.committee.validate().expect("every shard has exactly one owner in the current epoch");
        if let Some(next) = &state.next_committee {
            next.validate().expect("every shard has exactly one owner in the next epoch");
        }
        // Reserved bytes per epoch equal what the live resources and blobs hold.
        let mut used: BTreeMap<Epoch, u64> = BTreeMap::new();
        let resources = state.storage.values().chain(state.blobs.values().map(|blob| &blob.storage));
        for resource in resources {
            for epoch in (resource.start.0.max(state.epoch.0)..resource.end.0).map(Epoch) {
                *used.entry(epoch).or_default() += resource.size;
            }
        }
        let booked: BTreeMap<Epoch, u64> = state
            .used
            .iter()
            .filter(|(_, bytes)| **bytes > 0)
            .map(|(epoch, bytes)| (*epoch, *bytes))
            .collect();
        assert_eq!(used, booked, "capacity accounting matches the live objects");
        // Expiry: nothing whose end epoch has come is kept, nor the accounting of past epochs.
        for (object, blob) in &state.blobs {
            assert!(blob.storage.end > state.epoch, "blob object {object} outlived its end epoch");
        }
        for (id, resource) in &state.storage {
            assert!(resource.start < resource.end, "storage {id} covers no epoch");
        }
        assert!(state.used.keys().chain(state.reward_pools.keys()).all(|epoch| *epoch >= state.epoch));
        // Nonces: each account's is the number of its accepted transactions.
        for user in &self.world.users {
            let count = self.transactions.get(&user.id()).copied().unwrap_or(0);
            assert_eq!(state.account(&user.id()).nonce, count, "nonce of {}", user.id());
        }
        // Never certified after invalid: an invalidated blob's objects carry no later certificate.
        for blob in state.blobs.values() {
            if let (Some(certification), Some(invalid)) =
                (&blob.certified, state.invalid_blobs.get(&blob.blob_id))
            {
                assert!(
                    certification.epoch <= *invalid,
                    "{} certified after it was invalidated",
                    blob.blob_id
                );
            }
        }
        // While a change is in progress, the nodes that reported do not yet hold a quorum.
        if let morsa_coord::EpochPhase::Changing { done } = &state.phase {
            assert!(!morsa_core::quorum::is_quorum(self.weight_of(done), usize::from(N)));
        }
        // Every certified blob carries a quorum certificate of the committee of its epoch.
        for (object, blob) in &state.blobs {
            let Some(certification) = &blob.certified else { continue };
            let committee = &self.committees[&certification.epoch];
            let persistence = match blob.deletable {
                true => PersistenceType::Deletable { object_id: *object },
                false => PersistenceType::Permanent,
            };
            let message =
                morsa_core::storage_confirmation_message(certification.epoch, &blob.blob_id, &persistence);
            committee
                .verify_certificate(&certification.certificate, &message, Threshold::Quorum)
                .expect("the stored certificate verifies against its epoch's committee");
        }
    }
}

fn command_kind(command: &Command) -> &'static str {
    match command {
        Command::Transfer { .. } => "transfer",
        Command::ReserveStorage { .. } => "reserve",
        Command::SplitStorageBySize { .. } => "split_by_size",
        Command::SplitStorageByEpoch { .. } => "split_by_epoch",
        Command::MergeStorage { .. } => "merge",
        Command::RegisterBlob { .. } => "register",
        Command::CertifyBlob { .. } => "certify",
        Command::ExtendBlob { .. } => "extend",
        Command::DeleteBlob { .. } => "delete",
        Command::InvalidateBlob { .. } => "invalidate",
        Command::Stake { .. } | Command::Unstake { .. } | Command::Withdraw { .. } => "stake",
        Command::RegisterNode { .. }
        | Command::DeregisterNode { .. }
        | Command::SetNodeZone { .. }
        | Command::RetireNode { .. }
        | Command::SetCommission { .. } => "register_node",
        Command::Batch { .. } => "batch",
    }
}

/// Replays the accepted entries from genesis and returns the state.
fn replay(world: &World) -> State {
    let mut state = world.genesis.initial_state().unwrap();
    for entry in &world.accepted {
        apply(&mut state, entry).expect("an accepted entry applies again");
    }
    state
}

#[test]
fn random_histories_keep_every_invariant_and_replay_to_the_same_state() {
    let mut epochs_seen = 0;
    let mut epoch_changes = 0;
    let mut accepted: BTreeMap<&'static str, usize> = BTreeMap::new();
    for seed in 0..12 {
        let mut sim = Sim::new(seed);
        for _ in 0..STEPS {
            sim.step();
        }
        let replayed = replay(&sim.world);
        assert_eq!(replayed.hash(), sim.world.state.hash(), "seed {seed}: replay gives the same state");
        assert_eq!(replayed, sim.world.state);
        epochs_seen = epochs_seen.max(sim.world.epoch().0);
        epoch_changes += sim.epoch_changes;
        for (kind, count) in sim.accepted_by_kind {
            *accepted.entry(kind).or_default() += count;
        }
    }
    // The generator must actually exercise the rules, not only produce refusals.
    assert!(epochs_seen >= 4, "histories span several epochs (saw {epochs_seen})");
    assert!(epoch_changes >= 12, "epoch changes were checked ({epoch_changes})");
    let kinds = [
        "reserve",
        "register",
        "certify",
        "extend",
        "delete",
        "invalidate",
        "stake",
        "transfer",
        "split_by_size",
        "split_by_epoch",
        "merge",
        "register_node",
    ];
    for kind in kinds {
        assert!(
            accepted.get(kind).copied().unwrap_or(0) > 0,
            "some {kind} commands were accepted: {accepted:?}"
        );
    }
}

#[test]
fn the_event_chain_is_dense_and_verifies() {
    let mut sim = Sim::new(99);
    for _ in 0..STEPS {
        sim.step();
    }
    let mut events = Vec::new();
    let mut state = sim.world.genesis.initial_state().unwrap();
    for entry in &sim.world.accepted {
        events.extend(apply(&mut state, entry).unwrap().events);
    }
    let mut prev = [0u8; 32];
    for (index, record) in events.iter().enumerate() {
        assert_eq!(record.seq, u64::try_from(index).unwrap());
        assert!(record.verifies_after(&prev), "event {index} follows its predecessor");
        prev = record.hash;
    }
    assert_eq!(state.event_head, prev);
    assert!(!events.is_empty());
}
