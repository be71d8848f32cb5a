//! Uploads that go on after their blob is certified, until every node has its slivers.

use std::collections::BTreeSet;
use std::sync::Arc;
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

impl Client {
    pub(super) fn keep_uploading(&self, background: Background) {
        if !background.uploads.is_empty() {
            self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(background);
        }
    }

    /// Waits up to `timeout` for the uploads that were still running when their blobs were
    /// certified; answers the nodes that failed or had not finished (those are stopped, and
    /// the nodes rebuild what they lack themselves), also those of earlier blobs whose
    /// uploads a later store waited for. Call it before the process exits, so that every node
    /// gets its slivers without needing repair.
    pub async fn finish_uploads(&self, timeout: Duration) -> Vec<NodeFailure> {
        self.settle_uploads(timeout).await;
        std::mem::take(&mut *self.late_failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Waits up to `timeout` for the background uploads, keeping their failures for
    /// [`Client::finish_uploads`]. A store calls it first, so that at most one blob's encoding
    /// is held by uploads at a time.
    pub(super) async fn settle_uploads(&self, timeout: Duration) {
        let sets =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if sets.is_empty() {
            return;
        }
        let mut failures = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        for Background { mut uploads, nodes, mut pending } in sets {
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
        }
        self.late_failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(failures);
    }
}
