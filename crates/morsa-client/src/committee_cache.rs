//! The last committee the client saw, with the zones its members declared, kept on disk so
//! that a later process can read blobs when no coordinator answers. A cache, not a source of truth: a missing, unreadable or stale
//! file only means the nodes are asked (see `without_coordinator`), and every sliver is still
//! checked against the blob ID.

use std::path::PathBuf;

use morsa_api::coord::MemberZones;
use morsa_core::Committee;
use morsa_plumbing::file::{self, Access};
use serde::{Deserialize, Serialize};

/// Largest cache file read: a committee of 65535 shards is about 1 MiB of JSON.
const MAX_CACHE_BYTES: u64 = 4 << 20;

/// A committee and the zones its members declared, as the client knows them. On disk: the
/// committee's JSON with a `zones` field beside its own (absent from files written before
/// zones were kept, which read with none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KnownCommittee {
    /// The committee.
    #[serde(flatten)]
    pub committee: Committee,
    /// Its members' zones.
    #[serde(default, skip_serializing_if = "MemberZones::is_empty")]
    pub zones: MemberZones,
}

impl KnownCommittee {
    /// `committee` with its members' zones out of `zones`.
    pub(crate) fn new(committee: Committee, zones: &MemberZones) -> Self {
        let zones = zones.for_committee(&committee);
        Self { committee, zones }
    }
}

/// Where the committee is kept (nowhere if `None`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitteeCache {
    path: Option<PathBuf>,
}

impl CommitteeCache {
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        Self { path }
    }

    /// The cached committee, if there is a readable one.
    pub(crate) fn load(&self) -> Option<KnownCommittee> {
        let path = self.path.as_ref()?;
        let text = match morsa_plumbing::config::read_limited(path, MAX_CACHE_BYTES) {
            Ok(text) => text,
            Err(error) if error.is_not_found() => return None,
            Err(error) => {
                tracing::warn!(%error, "the cached committee is unreadable; ignoring it");
                return None;
            }
        };
        serde_json::from_str(&text)
            .inspect_err(|error| tracing::warn!(path = %path.display(), %error, "the cached committee does not parse; ignoring it"))
            .ok()
    }

    /// Keeps `committee` (durably, replacing the file) unless the file already holds it. A
    /// failure is logged, not returned: the cache only helps later reads.
    pub(crate) fn save(&self, committee: &KnownCommittee) {
        let Some(path) = &self.path else { return };
        if self.load().as_ref() == Some(committee) {
            return;
        }
        let text = serde_json::to_vec_pretty(committee).expect("a committee serializes");
        if let Err(error) = file::replace(path, &text, Access::Shared) {
            tracing::warn!(path = %path.display(), %error, "could not keep the committee for reads without a coordinator");
        }
    }
}

#[cfg(test)]
mod tests {
    use morsa_core::Epoch;

    use super::*;

    #[test]
    fn a_saved_committee_reads_back_and_a_damaged_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.committee.json");
        let cache = CommitteeCache::new(Some(path.clone()));
        assert_eq!(cache.load(), None);
        let committee = Committee { epoch: Epoch(4), n_shards: 7, members: Vec::new() };
        let known = KnownCommittee { committee: committee.clone(), zones: MemberZones::default() };
        cache.save(&known);
        assert_eq!(cache.load(), Some(known));
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(cache.load(), None);
        assert_eq!(CommitteeCache::default().load(), None);
    }

    #[test]
    fn zones_are_kept_with_the_committee_and_a_file_without_them_reads_with_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.committee.json");
        let cache = CommitteeCache::new(Some(path.clone()));
        let key = morsa_core::BlsSecretKey::from_seed([5; 32]);
        let member = morsa_core::CommitteeMember {
            node_id: morsa_core::NodeId::from_public_key(&key.public_key()),
            public_key: key.public_key(),
            address: "127.0.0.1:1".into(),
            shards: vec![morsa_core::ShardIndex(0)],
        };
        let committee = Committee { epoch: Epoch(2), n_shards: 1, members: vec![member.clone()] };
        let mut zones = MemberZones::default();
        zones.declare(member.node_id, "eu-west/dc2");
        zones.declare(morsa_core::NodeId([9; 32]), "not-a-member");
        let known = KnownCommittee::new(committee.clone(), &zones);
        assert_eq!(known.zones.of(&morsa_core::NodeId([9; 32])), None, "only the members' zones");
        cache.save(&known);
        assert_eq!(cache.load().unwrap().zones.of(&member.node_id), Some("eu-west/dc2"));
        // The file is the committee's JSON with zones beside: a committee reader still reads it.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(serde_json::from_str::<Committee>(&text).unwrap(), committee);
        // A file written before zones were kept: the committee alone.
        std::fs::write(&path, serde_json::to_vec(&committee).unwrap()).unwrap();
        assert_eq!(cache.load(), Some(KnownCommittee { committee, zones: MemberZones::default() }));
    }
}
