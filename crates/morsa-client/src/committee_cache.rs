//! The last committee the client saw, kept on disk so that a later process can read blobs
//! when no coordinator answers. A cache, not a source of truth: a missing, unreadable or stale
//! file only means the nodes are asked (see `without_coordinator`), and every sliver is still
//! checked against the blob ID.

use std::path::PathBuf;

use morsa_core::Committee;
use morsa_plumbing::file::{self, Access};

/// Largest cache file read: a committee of 65535 shards is about 1 MiB of JSON.
const MAX_CACHE_BYTES: u64 = 4 << 20;

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
    pub(crate) fn load(&self) -> Option<Committee> {
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
    pub(crate) fn save(&self, committee: &Committee) {
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
        cache.save(&committee);
        assert_eq!(cache.load(), Some(committee));
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(cache.load(), None);
        assert_eq!(CommitteeCache::default().load(), None);
    }
}
