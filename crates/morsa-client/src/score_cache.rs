//! What reads learnt of the nodes' speed, kept on disk between processes so that the next
//! `morsa read` starts informed (a small JSON file in the user's cache directory, at most
//! [`MAX_SAVED_NODES`] nodes, each estimate aged when loaded: see
//! `morsa_api::client::scoring`). A cache: a missing or damaged file only means starting
//! from the topology prior.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use morsa_api::client::scoring::{MAX_SAVED_NODES, NodeScores, SavedScores};
use morsa_plumbing::file::{self, Access};
use tokio::task::JoinHandle;

/// Largest file read (4096 nodes of about 200 bytes each, with room).
const MAX_FILE_BYTES: u64 = 2 << 20;
/// A read saves the estimates at most this often (the gateway reads all day).
const SAVE_EVERY: Duration = Duration::from_secs(10);

/// `$XDG_CACHE_HOME/morsa/node-scores.json`, else `~/.cache/morsa/node-scores.json`.
pub(crate) fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("morsa").join("node-scores.json"))
}

/// Where the estimates are kept (nowhere if `None`), when they were last saved, and the save
/// running in the background.
#[derive(Debug, Default)]
pub(crate) struct ScoreCache {
    path: Option<PathBuf>,
    saved: Mutex<Option<Instant>>,
    /// Held while the file is written: a save in the background and a final one take turns
    /// (they share the temporary file).
    writing: Arc<Mutex<()>>,
    /// The save reads last started, if not waited for yet.
    background: Mutex<Option<JoinHandle<()>>>,
}

impl ScoreCache {
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        Self { path, ..Self::default() }
    }

    /// Loads the saved estimates into `scores`.
    pub(crate) fn load_into(&self, scores: &NodeScores) {
        if let Some(saved) = self.path.as_deref().and_then(read) {
            scores.absorb(saved, morsa_plumbing::now_ms());
        }
    }

    /// Saves `scores` in the background (merged with what the file holds: other processes'
    /// nodes are kept), unless that was done less than [`SAVE_EVERY`] ago. The read that
    /// calls it does not wait for the disk: the file is read, written and fsync'd on a
    /// blocking thread ([`ScoreCache::settle`] waits for it). A failure is logged.
    pub(crate) fn save_now_and_then(&self, scores: &NodeScores) {
        let Some(path) = self.path.clone() else { return };
        {
            let mut saved = lock(&self.saved);
            if saved.is_some_and(|at| at.elapsed() < SAVE_EVERY) {
                return;
            }
            *saved = Some(Instant::now());
        }
        let snapshot = scores.snapshot();
        let writing = Arc::clone(&self.writing);
        let save = move || write_merged(&path, snapshot, &writing);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn_blocking(save);
                // A save still running is not lost: it goes on, and the next one takes turns with it.
                *lock(&self.background) = Some(task);
            }
            Err(_) => save(),
        }
    }

    /// Waits for the save running in the background, if any.
    pub(crate) async fn settle(&self) {
        let task = lock(&self.background).take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::debug!(%error, "saving the node scores panicked");
        }
    }

    /// Saves `scores` now, merged with what the file holds.
    pub(crate) fn save(&self, scores: &NodeScores) {
        let Some(path) = &self.path else { return };
        write_merged(path, scores.snapshot(), &self.writing);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The estimates saved at `path`, if it holds readable ones.
fn read(path: &Path) -> Option<SavedScores> {
    let text = match morsa_plumbing::config::read_limited(path, MAX_FILE_BYTES) {
        Ok(text) => text,
        Err(error) if error.is_not_found() => return None,
        Err(error) => {
            tracing::debug!(%error, "the saved node scores are unreadable; ignoring them");
            return None;
        }
    };
    serde_json::from_str(&text)
        .inspect_err(|error| tracing::debug!(path = %path.display(), %error, "the saved node scores do not parse; ignoring them"))
        .ok()
}

/// Writes `snapshot` to `path`, merged with what the file holds (the newer estimate of each
/// node wins), holding `writing` meanwhile.
fn write_merged(path: &Path, snapshot: SavedScores, writing: &Mutex<()>) {
    let _turn = lock(writing);
    let mut merged: HashMap<_, _> =
        read(path).map(|file| file.nodes).unwrap_or_default().into_iter().collect();
    for (node, estimate) in snapshot.nodes {
        let newer = merged.get(&node).is_none_or(|known| known.updated_ms <= estimate.updated_ms);
        if newer {
            merged.insert(node, estimate);
        }
    }
    let mut nodes: Vec<_> = merged.into_iter().collect();
    nodes.sort_by_key(|(node, estimate)| (std::cmp::Reverse(estimate.updated_ms), *node));
    nodes.truncate(MAX_SAVED_NODES);
    let text = match serde_json::to_vec(&SavedScores { version: 1, nodes }) {
        Ok(text) => text,
        Err(error) => {
            tracing::debug!(%error, "the node scores do not serialize");
            return;
        }
    };
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(|error| error.to_string())
        .and_then(|()| file::replace(path, &text, Access::Shared).map_err(|error| error.to_string()));
    if let Err(error) = written {
        tracing::debug!(path = %path.display(), %error, "could not keep the node scores");
    }
}

#[cfg(test)]
mod tests {
    use morsa_core::NodeId;

    use super::*;

    #[test]
    fn estimates_survive_a_new_process_and_a_damaged_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/morsa/node-scores.json");
        let (slow, fast) = (NodeId([1; 32]), NodeId([2; 32]));
        let first = NodeScores::new(None);
        for _ in 0..5 {
            first.record(&slow, Duration::from_millis(240), 100);
            first.record(&fast, Duration::from_millis(2), 100);
        }
        ScoreCache::new(Some(path.clone())).save_now_and_then(&first);
        let second = NodeScores::new(None);
        ScoreCache::new(Some(path.clone())).load_into(&second);
        assert!(
            second.score(&slow, None, 0) > second.score(&fast, None, 0) * 10,
            "the next process starts informed"
        );
        std::fs::write(&path, "{ not json").unwrap();
        let third = NodeScores::new(None);
        ScoreCache::new(Some(path)).load_into(&third);
        assert_eq!(third.score(&slow, None, 0), third.score(&fast, None, 0), "back to the prior");
    }

    #[test]
    fn a_save_during_reads_does_not_wait_for_the_disk() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("morsa/node-scores.json");
        let cache = Arc::new(ScoreCache::new(Some(path.clone())));
        let scores = Arc::new(NodeScores::new(None));
        scores.record(&NodeId([1; 32]), Duration::from_millis(5), 100);
        // The file cannot be written until this turn is given up: a disk that does not answer.
        let disk_busy = lock(&*cache.writing);
        let (returned, returns) = std::sync::mpsc::channel();
        let saver = {
            let (cache, scores, handle) = (Arc::clone(&cache), Arc::clone(&scores), runtime.handle().clone());
            std::thread::spawn(move || {
                let _in_runtime = handle.enter();
                cache.save_now_and_then(&scores);
                returned.send(()).unwrap();
            })
        };
        // A bound for a failing test (an inline save never returns here), not a timing.
        assert!(returns.recv_timeout(Duration::from_secs(60)).is_ok(), "the save waited for the disk");
        assert!(!path.exists(), "nothing was written yet");
        drop(disk_busy);
        runtime.block_on(cache.settle());
        saver.join().unwrap();
        let loaded = NodeScores::new(None);
        ScoreCache::new(Some(path)).load_into(&loaded);
        assert_eq!(loaded.snapshot().nodes.len(), 1, "the save in the background wrote the estimate");
    }
}
