//! The zones committee members' operators declared (`morsa node set-zone`), served beside the
//! committee so that readers can assume a node in their own zone near before they have
//! measured it. A zone is what an operator says of its own node: readers use it as a prior
//! that the first measurement replaces, never for anything that must be true. It is not part
//! of the committee itself (whose bytes are hashed into the coordinator's event chain), so
//! declaring a zone changes what readers assume at once, not the committee.

use std::collections::BTreeMap;

use morsa_core::protocol::zone_is_valid;
use morsa_core::{Committee, NodeId};
use serde::{Deserialize, Serialize};

/// Declared zones by node ID; nodes without one (undeclared, or an answer from a coordinator
/// that did not send zones) are absent. As JSON, an object from node ID to zone.
///
/// Only zones that could have been declared are kept (at most
/// [`morsa_core::protocol::MAX_ZONE_LEN`] bytes, no control characters, not empty): whoever
/// sent the others, a reader does not take them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<NodeId, String>", into = "BTreeMap<NodeId, String>")]
pub struct MemberZones(BTreeMap<NodeId, String>);

impl MemberZones {
    /// The zones of the members of `committees`, as `zone_of` (the coordinator's node records)
    /// answers them.
    pub fn of_members<'a>(
        committees: impl IntoIterator<Item = &'a Committee>,
        zone_of: impl Fn(&NodeId) -> Option<&'a str>,
    ) -> Self {
        let mut zones = Self::default();
        for member in committees.into_iter().flat_map(|committee| &committee.members) {
            if let Some(zone) = zone_of(&member.node_id) {
                zones.declare(member.node_id, zone);
            }
        }
        zones
    }

    /// Records that `node` is in `zone`, unless the zone is empty or could not have been
    /// declared (then `node` has none).
    pub fn declare(&mut self, node: NodeId, zone: &str) {
        if zone.is_empty() || !zone_is_valid(zone) {
            self.0.remove(&node);
        } else {
            self.0.insert(node, zone.to_owned());
        }
    }

    /// The zone of `node`, if one was declared.
    pub fn of(&self, node: &NodeId) -> Option<&str> {
        self.0.get(node).map(String::as_str)
    }

    /// Whether no zone is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The zones of the members of `committee` alone.
    pub fn for_committee(&self, committee: &Committee) -> Self {
        Self::of_members([committee], |node| self.of(node))
    }
}

impl From<BTreeMap<NodeId, String>> for MemberZones {
    fn from(declared: BTreeMap<NodeId, String>) -> Self {
        let mut zones = Self::default();
        for (node, zone) in &declared {
            zones.declare(*node, zone);
        }
        zones
    }
}

impl From<MemberZones> for BTreeMap<NodeId, String> {
    fn from(zones: MemberZones) -> Self {
        zones.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::CommitteeInfo;

    #[test]
    fn zones_that_could_not_be_declared_are_dropped_on_reading() {
        let long = "z".repeat(morsa_core::protocol::MAX_ZONE_LEN + 1);
        let text = format!(
            r#"{{"{a}": "eu-west/dc2", "{b}": "{long}", "{c}": "bad\u0007zone", "{d}": ""}}"#,
            a = NodeId([1; 32]),
            b = NodeId([2; 32]),
            c = NodeId([3; 32]),
            d = NodeId([4; 32]),
        );
        let zones: MemberZones = serde_json::from_str(&text).unwrap();
        assert_eq!(zones.of(&NodeId([1; 32])), Some("eu-west/dc2"));
        for dropped in [2, 3, 4, 5] {
            assert_eq!(zones.of(&NodeId([dropped; 32])), None, "node {dropped}");
        }
        let again: MemberZones = serde_json::from_str(&serde_json::to_string(&zones).unwrap()).unwrap();
        assert_eq!(again, zones);
    }

    #[test]
    fn a_committee_answer_without_zones_reads_with_none_and_zones_round_trip() {
        let committee = Committee { epoch: morsa_core::Epoch(2), n_shards: 4, members: Vec::new() };
        // An answer from a coordinator that sends no zones.
        let old = serde_json::json!({
            "epoch": 2, "epoch_change_done": true, "current": committee, "next": null,
        });
        let info: CommitteeInfo = serde_json::from_value(old.clone()).unwrap();
        assert!(info.zones.is_empty());
        // No zones: the answer is as before, byte for byte.
        assert_eq!(serde_json::to_value(&info).unwrap(), old);
        let mut zones = MemberZones::default();
        zones.declare(NodeId([9; 32]), "zone-1");
        let info = CommitteeInfo { zones: zones.clone(), ..info };
        let text = serde_json::to_string(&info).unwrap();
        assert!(text.contains("\"zones\""), "{text}");
        let back: CommitteeInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(back.zones, zones);
    }
}
