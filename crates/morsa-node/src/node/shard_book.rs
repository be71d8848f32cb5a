//! The shard book: what the node is doing with each shard that changed hands, persisted in
//! the store so that a restart resumes where it was.
//!
//! - A shard **gained** at an epoch change is pulled from its previous owner (`Sync`, the
//!   position is the blob ID the next page starts at), then is `Pulled`; or, if the pull made
//!   no progress for the set interval or there was nobody to pull from, it is left to
//!   recovery (`Recover`). Its entry goes once the node reported the epoch change done.
//! - A shard **lost** at an epoch change is `locked_to_move`: kept, and served to its new
//!   owner only, until the change to that epoch is done and a grace epoch has passed; then its
//!   slivers are deleted and the entry goes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use morsa_core::{Committee, Epoch, NodeId};
use morsa_store::NodeStore;
use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use morsa_api::node::ShardStatus;

use crate::error::NodeError;
use crate::node::Node;

/// The store's meta key of the book.
const BOOK_KEY: &str = "shard_moves";

/// Where a gained shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Gain {
    /// Being pulled from its previous owner.
    Sync,
    /// Pulled to the end; what the previous owner lacked is left to recovery.
    Pulled,
    /// Left to recovery as a whole.
    Recover,
}

/// A shard gained at an epoch change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Gained {
    /// The epoch in which this node owns it.
    pub epoch: Epoch,
    /// Its owner in the committee before, if another node: its ID and address.
    pub from: Option<(NodeId, String)>,
    /// Where it stands.
    pub state: Gain,
    /// The blob ID the next page starts at (`None`: from the first blob).
    pub position: Option<BlobId>,
}

/// A shard lost at an epoch change, kept for its new owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Locked {
    /// The epoch from which `to` owns it.
    pub epoch: Epoch,
    /// Its new owner.
    pub to: NodeId,
}

/// The persisted book.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Moves {
    /// Shards gained, by index.
    pub gained: BTreeMap<u16, Gained>,
    /// Shards lost and kept for their new owners, by index.
    pub locked: BTreeMap<u16, Locked>,
    /// The latest epoch whose change the coordinator declared done.
    pub change_done: Option<Epoch>,
    /// Pages pulled over the node's lifetime.
    pub pages_pulled: u64,
}

impl Moves {
    /// Records the shards `me` gains and loses going from `previous` to `current`. A shard
    /// already recorded for `current`'s epoch keeps its entry (and its position): applying the
    /// same change twice (a restart between the view and the event cursor) changes nothing.
    pub fn plan(&mut self, me: &NodeId, previous: &Committee, current: &Committee) {
        let before = shards_of(previous, me);
        let now = shards_of(current, me);
        self.gained.retain(|shard, _| now.contains(shard));
        self.locked.retain(|shard, _| !now.contains(shard));
        for shard in now.difference(&before) {
            if self.gained.get(shard).is_some_and(|gained| gained.epoch == current.epoch) {
                continue;
            }
            let from = owner_of(previous, *shard)
                .filter(|(owner, _)| owner != me)
                .map(|(owner, address)| (owner, address.to_string()));
            let state = if from.is_some() { Gain::Sync } else { Gain::Recover };
            self.gained.insert(*shard, Gained { epoch: current.epoch, from, state, position: None });
        }
        for shard in before.difference(&now) {
            if let Some((to, _)) = owner_of(current, *shard) {
                self.locked.insert(*shard, Locked { epoch: current.epoch, to });
            }
        }
    }

    /// The locked shards whose grace is over in `epoch`: the change to the epoch they moved
    /// at is done, and a whole epoch has begun since.
    pub fn releasable(&self, epoch: Epoch) -> Vec<u16> {
        self.locked
            .iter()
            .filter(|(_, locked)| {
                self.change_done.is_some_and(|done| done >= locked.epoch) && epoch.0 > locked.epoch.0
            })
            .map(|(shard, _)| *shard)
            .collect()
    }

    /// Shards being pulled now: the repair scan leaves them alone.
    pub fn syncing(&self) -> BTreeSet<u16> {
        self.gained.iter().filter(|(_, gained)| gained.state == Gain::Sync).map(|(shard, _)| *shard).collect()
    }
}

/// The shards `node` holds in `committee`.
fn shards_of(committee: &Committee, node: &NodeId) -> BTreeSet<u16> {
    committee
        .member_by_node(node)
        .map(|member| committee.members[member].shards.iter().map(|shard| shard.0).collect())
        .unwrap_or_default()
}

/// The node holding `shard` in `committee`, and its address.
fn owner_of(committee: &Committee, shard: u16) -> Option<(NodeId, &str)> {
    committee
        .members
        .iter()
        .find(|member| member.shards.iter().any(|held| held.0 == shard))
        .map(|member| (member.node_id, member.address.as_str()))
}

/// The book, in memory and in the store.
#[derive(Debug, Default)]
pub(crate) struct ShardBook {
    moves: Mutex<Moves>,
    /// Woken when shards start moving (the puller looks again).
    pub changed: tokio::sync::Notify,
    /// What migration has done since the process started.
    pub stats: super::migration_stats::MigrationStats,
}

impl ShardBook {
    /// The book saved in `store` (an unreadable one is logged and started afresh).
    pub fn load(store: &NodeStore) -> Self {
        let moves = match store.get_meta(BOOK_KEY) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::error!(%error, "the shard book in the store is unreadable: starting afresh");
                Moves::default()
            }),
            Ok(None) => Moves::default(),
            Err(error) => {
                tracing::error!(%error, "cannot read the shard book");
                Moves::default()
            }
        };
        Self { moves: Mutex::new(moves), changed: tokio::sync::Notify::new(), stats: Default::default() }
    }

    /// The book now.
    pub fn lock(&self) -> MutexGuard<'_, Moves> {
        self.moves.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the book with `change` and saves it durably before returning. Blocks.
    pub fn update<T>(&self, store: &NodeStore, change: impl FnOnce(&mut Moves) -> T) -> Result<T, NodeError> {
        let mut moves = self.lock();
        let answer = change(&mut moves);
        let bytes = serde_json::to_vec(&*moves).expect("the book serializes");
        store.put_meta(BOOK_KEY, &bytes)?;
        drop(moves);
        Ok(answer)
    }
}

impl Node {
    /// Records the shards this node gains and loses going from `previous` to `current`
    /// (durably), and wakes the puller.
    pub(crate) fn note_committee_change(
        &self,
        previous: &Committee,
        current: &Committee,
    ) -> Result<(), NodeError> {
        let id = self.id();
        self.moves().update(self.store(), |moves| moves.plan(&id, previous, current))?;
        self.moves().changed.notify_one();
        Ok(())
    }

    /// Records that the coordinator declared the change to `epoch` done.
    pub(crate) fn note_change_done(&self, epoch: morsa_core::Epoch) -> Result<(), NodeError> {
        self.moves().update(self.store(), |moves| moves.change_done = moves.change_done.max(Some(epoch)))
    }

    /// What the node does with `shard`, which it owns now or keeps for its new owner.
    pub(crate) fn shard_status(&self, shard: u16) -> ShardStatus {
        let moves = self.moves().lock();
        match moves.gained.get(&shard).map(|gained| gained.state) {
            Some(Gain::Sync) => ShardStatus::ActiveSync,
            Some(Gain::Recover) => ShardStatus::ActiveRecover,
            Some(Gain::Pulled) | None if moves.locked.contains_key(&shard) => ShardStatus::LockedToMove,
            Some(Gain::Pulled) | None => ShardStatus::Active,
        }
    }

    /// Every shard the node owns or keeps for its new owner, with its state, in index order.
    pub(crate) fn shard_states(&self) -> Vec<(u16, ShardStatus)> {
        let mut shards = self.owned_shards();
        shards.extend(self.moves().lock().locked.keys().copied());
        shards.into_iter().map(|shard| (shard, self.shard_status(shard))).collect()
    }

    /// Whether every gained shard is pulled or left to recovery (none is being pulled).
    pub(crate) fn pulls_finished(&self) -> bool {
        self.moves().lock().syncing().is_empty()
    }

    /// Forgets the gained shards of epochs up to `epoch`, once the change is reported done.
    pub(crate) fn forget_gains(&self, epoch: morsa_core::Epoch) -> Result<(), NodeError> {
        self.moves().update(self.store(), |moves| moves.gained.retain(|_, gained| gained.epoch > epoch))
    }
}

#[cfg(test)]
mod tests {
    use morsa_core::{BlsSecretKey, CommitteeMember, ShardIndex};

    use super::*;

    fn member(seed: u8, shards: &[u16]) -> CommitteeMember {
        let key = BlsSecretKey::from_seed([seed; 32]);
        CommitteeMember {
            node_id: NodeId::from_public_key(&key.public_key()),
            public_key: key.public_key(),
            address: format!("127.0.0.1:{seed}"),
            shards: shards.iter().copied().map(ShardIndex).collect(),
        }
    }

    fn committee(epoch: u32, members: Vec<CommitteeMember>) -> Committee {
        Committee { epoch: Epoch(epoch), n_shards: 6, members }
    }

    #[test]
    fn a_change_books_gains_from_their_previous_owners_and_locks_losses_for_their_new_ones() {
        let (a, b) = (member(1, &[0, 1, 2]), member(2, &[3, 4, 5]));
        let previous = committee(1, vec![a.clone(), b.clone()]);
        let current = committee(2, vec![member(1, &[0, 1, 2, 3, 4]), member(2, &[5])]);
        let mut moves = Moves::default();
        moves.plan(&a.node_id, &previous, &current);
        assert_eq!(moves.gained.keys().copied().collect::<Vec<_>>(), [3, 4]);
        assert_eq!(moves.gained[&3].from, Some((b.node_id, "127.0.0.1:2".to_string())));
        assert_eq!(moves.gained[&3].state, Gain::Sync);
        assert_eq!(moves.syncing(), BTreeSet::from([3, 4]));
        assert!(moves.locked.is_empty());

        let mut theirs = Moves::default();
        theirs.plan(&b.node_id, &previous, &current);
        assert!(theirs.gained.is_empty());
        assert_eq!(theirs.locked[&3], Locked { epoch: Epoch(2), to: a.node_id });
        assert_eq!(theirs.locked.len(), 2);

        // The same change again (a restart) keeps the position reached.
        moves.gained.get_mut(&3).unwrap().position = Some(BlobId([7; 32]));
        moves.plan(&a.node_id, &previous, &current);
        assert_eq!(moves.gained[&3].position, Some(BlobId([7; 32])));

        // A shard nobody held before is left to recovery.
        let orphan = committee(1, vec![member(1, &[0, 1, 2]), member(2, &[3, 4])]);
        let mut fresh = Moves::default();
        fresh.plan(&a.node_id, &orphan, &current);
        assert_eq!(fresh.gained[&4].state, Gain::Sync);
        let takes_five = committee(2, vec![member(1, &[0, 1, 2, 5]), member(2, &[3, 4])]);
        fresh.plan(&a.node_id, &orphan, &takes_five);
        assert_eq!(fresh.gained[&5].state, Gain::Recover);
        assert!(!fresh.gained.contains_key(&4), "a shard no longer owned is no longer synced");
    }

    #[test]
    fn a_locked_shard_is_released_a_grace_epoch_after_its_change_is_done() {
        let mut moves = Moves::default();
        moves.locked.insert(3, Locked { epoch: Epoch(5), to: NodeId([1; 32]) });
        assert!(moves.releasable(Epoch(5)).is_empty(), "the change is not done");
        moves.change_done = Some(Epoch(5));
        assert!(moves.releasable(Epoch(5)).is_empty(), "the grace epoch has not begun");
        assert_eq!(moves.releasable(Epoch(6)), [3]);
        moves.change_done = Some(Epoch(4));
        assert!(moves.releasable(Epoch(6)).is_empty(), "the change to epoch 5 is not done");
    }

    #[test]
    fn the_book_survives_a_reopen_of_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let store = NodeStore::open(&path).unwrap();
        let book = ShardBook::load(&store);
        book.update(&store, |moves| {
            moves.pages_pulled = 9;
            moves.gained.insert(
                4,
                Gained { epoch: Epoch(2), from: None, state: Gain::Sync, position: Some(BlobId([3; 32])) },
            );
        })
        .unwrap();
        drop(store);
        let reopened = ShardBook::load(&NodeStore::open(&path).unwrap());
        assert_eq!(*reopened.lock(), *book.lock());
    }
}
