//! The view (current and next committee) kept in the node's own store, so that a node
//! restarted while no coordinator answers still knows its committee and serves its slivers.
//! It is rewritten whenever the view changes; the coordinator's view replaces it as soon as
//! one answers again.

use morsa_api::coord::MemberZones;
use morsa_core::Committee;
use morsa_store::NodeStore;
use serde::{Deserialize, Serialize};

use super::{Node, View};

/// The store's meta key of the saved view.
const VIEW_KEY: &str = "view";

/// [`View`] as JSON in the store.
#[derive(Serialize, Deserialize)]
struct SavedView {
    committee: Committee,
    next: Option<Committee>,
    /// Absent from views saved before zones were kept.
    #[serde(default)]
    zones: MemberZones,
}

impl Node {
    /// Writes the current view to the store. A failure is logged, not returned: the saved
    /// view only matters on a start while no coordinator answers, and a stale one is replaced
    /// by the coordinator's as soon as it answers.
    pub(crate) fn save_view(&self) {
        let saved = {
            let view = self.view();
            SavedView {
                committee: view.committee.clone(),
                next: view.next.clone(),
                zones: view.zones.clone(),
            }
        };
        let result = serde_json::to_vec(&saved)
            .map_err(|error| error.to_string())
            .and_then(|bytes| self.store.put_meta(VIEW_KEY, &bytes).map_err(|error| error.to_string()));
        if let Err(error) = result {
            tracing::warn!(%error, "cannot save the committee in the store");
        }
    }
}

/// The view the node saved in `store` on its last run, if any (an unreadable one is logged
/// and treated as absent).
pub(crate) fn saved_view(store: &NodeStore) -> Option<View> {
    let bytes = match store.get_meta(VIEW_KEY) {
        Ok(bytes) => bytes?,
        Err(error) => {
            tracing::warn!(%error, "cannot read the committee saved in the store");
            return None;
        }
    };
    match serde_json::from_slice::<SavedView>(&bytes) {
        Ok(saved) => Some(View { committee: saved.committee, next: saved.next, zones: saved.zones }),
        Err(error) => {
            tracing::warn!(%error, "the committee saved in the store is unreadable");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use morsa_core::{BlsSecretKey, CommitteeMember, Epoch, NodeId, ShardIndex};

    use super::*;

    #[test]
    fn the_view_survives_a_reopen_of_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let key = BlsSecretKey::from_seed([3; 32]);
        let member_id = NodeId::from_public_key(&key.public_key());
        let member = CommitteeMember {
            node_id: member_id,
            public_key: key.public_key(),
            address: "127.0.0.1:1".into(),
            shards: (0..10).map(ShardIndex).collect(),
        };
        let committee = Committee { epoch: Epoch(4), n_shards: 10, members: vec![member] };
        let mut zones = MemberZones::default();
        zones.declare(member_id, "eu-west/dc2");
        let view = View {
            committee: committee.clone(),
            next: Some(Committee { epoch: Epoch(5), ..committee.clone() }),
            zones,
        };
        let store = NodeStore::open(&path).unwrap();
        assert_eq!(saved_view(&store), None, "nothing saved yet");
        // A view saved before zones were kept reads back, with none.
        let before_zones = serde_json::json!({ "committee": committee, "next": null });
        store.put_meta(VIEW_KEY, &serde_json::to_vec(&before_zones).unwrap()).unwrap();
        assert_eq!(saved_view(&store).map(|view| view.zones), Some(MemberZones::default()));
        let node = Node::new(key, store, view.clone()).unwrap();
        node.save_view();
        drop(node);
        assert_eq!(saved_view(&NodeStore::open(&path).unwrap()), Some(view));
    }
}
