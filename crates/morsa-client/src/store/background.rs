//! Uploads that go on after their blob is certified, until every node has its slivers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use morsa_core::BlsSignature;
use tokio::task::JoinSet;

use crate::NodeFailure;
use crate::nodes::NodeSet;

/// Uploads to the nodes of one blob.
pub(super) type Uploads = JoinSet<Result<(usize, BlsSignature), NodeFailure>>;

/// Uploads still running after their blob was certified, and the members they are for.
pub(crate) struct Background {
    pub(super) uploads: Uploads,
    pub(super) nodes: Arc<NodeSet>,
    pub(super) pending: BTreeSet<usize>,
}

impl Background {
    /// Waits until `deadline` (`limit` after the wait began) for these uploads, or until
    /// `stop` answers how long its caller waited; answers the nodes that failed or had not
    /// finished by then (those are stopped, and the nodes rebuild what they lack themselves).
    pub(super) async fn settle(
        self,
        deadline: tokio::time::Instant,
        limit: Duration,
        stop: impl std::future::Future<Output = Duration>,
    ) -> Vec<NodeFailure> {
        let Background { mut uploads, nodes, mut pending } = self;
        let mut failures = Vec::new();
        let mut stop = std::pin::pin!(stop);
        loop {
            let waited = tokio::select! {
                // Uploads that have ended count even when the deadline has passed too.
                biased;
                next = uploads.join_next() => match next {
                    Some(Ok(Ok((member, _)))) => {
                        pending.remove(&member);
                        continue;
                    }
                    Some(Ok(Err(failure))) => {
                        pending.retain(|member| nodes.committee().members[*member].address != failure.node);
                        failures.push(failure);
                        continue;
                    }
                    Some(Err(_)) => continue,
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => limit,
                waited = &mut stop => waited,
            };
            uploads.abort_all();
            let reason = format!("still uploading after {waited:?}; stopped");
            failures.extend(pending.iter().map(|member| nodes.failure(*member, reason.clone())));
            break;
        }
        failures
    }
}

/// The uploads of one blob stored by [`crate::Client::store_blob_detached`] that were still running
/// when it was certified. They hold the blob's encoding until they end: wait for them with
/// [`DetachedUploads::finish`]; dropping this value stops them (the nodes left without their
/// slivers rebuild them themselves).
pub struct DetachedUploads {
    background: Option<Background>,
    /// How long they go on at most (`trailing_limit` of the store's time).
    limit: Duration,
    late_failures: Arc<Mutex<Vec<NodeFailure>>>,
}

impl std::fmt::Debug for DetachedUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = self.background.as_ref().map_or(0, |background| background.pending.len());
        f.debug_struct("DetachedUploads").field("pending", &pending).finish()
    }
}

impl DetachedUploads {
    pub(super) fn new(
        background: Option<Background>,
        limit: Duration,
        late_failures: Arc<Mutex<Vec<NodeFailure>>>,
    ) -> Self {
        Self { background, limit, late_failures }
    }

    /// Waits for the uploads, at most four times what the store took until the blob was
    /// certified (at least 5 s, at most 2 minutes: a hung node is then left to rebuild what it
    /// lacks instead of holding the encoding for minutes); the nodes that failed or had not
    /// finished are kept for [`crate::Client::finish_uploads`] of the client that stored it.
    pub async fn finish(self) {
        if let Some(background) = self.background {
            let deadline = tokio::time::Instant::now() + self.limit;
            let failures = background.settle(deadline, self.limit, std::future::pending()).await;
            self.late_failures.lock().unwrap_or_else(PoisonError::into_inner).extend(failures);
        }
    }
}
