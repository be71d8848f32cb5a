//! Uploads that go on after their blob is certified, until every node has its slivers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use morsa_core::BlsSignature;
use tokio::task::JoinSet;

use crate::nodes::NodeSet;
use crate::{Client, NodeFailure};

/// Uploads to the nodes of one blob.
pub(super) type Uploads = JoinSet<Result<(usize, BlsSignature), NodeFailure>>;

/// Uploads still running after their blob was certified, and the members they are for.
pub(crate) struct Background {
    pub(super) uploads: Uploads,
    pub(super) nodes: Arc<NodeSet>,
    pub(super) pending: BTreeSet<usize>,
}

impl Background {
    /// Waits until `deadline` (`timeout` after the wait began) for these uploads; answers the
    /// nodes that failed or had not finished by then (those are stopped, and the nodes
    /// rebuild what they lack themselves).
    async fn settle(self, deadline: tokio::time::Instant, timeout: Duration) -> Vec<NodeFailure> {
        let Background { mut uploads, nodes, mut pending } = self;
        let mut failures = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, uploads.join_next()).await {
                Ok(Some(Ok(Ok((member, _))))) => {
                    pending.remove(&member);
                }
                Ok(Some(Ok(Err(failure)))) => {
                    pending.retain(|member| nodes.committee().members[*member].address != failure.node);
                    failures.push(failure);
                }
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    uploads.abort_all();
                    let reason = format!("still uploading after {timeout:?}; stopped");
                    failures.extend(pending.iter().map(|member| nodes.failure(*member, reason.clone())));
                    break;
                }
            }
        }
        failures
    }
}

/// The uploads of one blob stored by [`Client::store_blob_detached`] that were still running
/// when it was certified. They hold the blob's encoding until they end: wait for them with
/// [`DetachedUploads::finish`]; dropping this value stops them (the nodes left without their
/// slivers rebuild them themselves).
pub struct DetachedUploads {
    background: Option<Background>,
    late_failures: Arc<Mutex<Vec<NodeFailure>>>,
}

impl std::fmt::Debug for DetachedUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = self.background.as_ref().map_or(0, |background| background.pending.len());
        f.debug_struct("DetachedUploads").field("pending", &pending).finish()
    }
}

impl DetachedUploads {
    pub(super) fn new(background: Option<Background>, late_failures: Arc<Mutex<Vec<NodeFailure>>>) -> Self {
        Self { background, late_failures }
    }

    /// Waits up to `timeout` for the uploads; the nodes that failed or had not finished are
    /// kept for [`Client::finish_uploads`] of the client that stored the blob.
    pub async fn finish(self, timeout: Duration) {
        if let Some(background) = self.background {
            let failures = background.settle(tokio::time::Instant::now() + timeout, timeout).await;
            self.late_failures.lock().unwrap_or_else(PoisonError::into_inner).extend(failures);
        }
    }
}

impl Client {
    pub(super) fn keep_uploading(&self, background: Background) {
        if !background.uploads.is_empty() {
            self.background.lock().unwrap_or_else(PoisonError::into_inner).push(background);
        }
    }

    /// Waits up to `timeout` for the uploads that were still running when their blobs were
    /// certified; answers the nodes that failed or had not finished (those are stopped, and
    /// the nodes rebuild what they lack themselves), also those of earlier blobs whose
    /// uploads a later store waited for, and those of [`DetachedUploads`] finished before.
    /// Call it before the process exits, so that every node gets its slivers without needing
    /// repair.
    pub async fn finish_uploads(&self, timeout: Duration) -> Vec<NodeFailure> {
        self.settle_uploads(timeout).await;
        std::mem::take(&mut *self.late_failures.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits up to `timeout` for the background uploads, keeping their failures for
    /// [`Client::finish_uploads`]. A store calls it first, so that at most one blob's encoding
    /// is held by uploads at a time.
    pub(super) async fn settle_uploads(&self, timeout: Duration) {
        let sets = std::mem::take(&mut *self.background.lock().unwrap_or_else(PoisonError::into_inner));
        if sets.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut failures = Vec::new();
        for background in sets {
            failures.extend(background.settle(deadline, timeout).await);
        }
        self.late_failures.lock().unwrap_or_else(PoisonError::into_inner).extend(failures);
    }
}
