//! Probes of the nodes reads stopped asking. Reads ask the best-scored nodes, so a node that
//! was slow once (or was never measured while others were) would never be asked again, and
//! could never be found to have recovered. Each read therefore asks the node the scores name
//! ([`NodeScores::stalest`]: heard from longest ago, over a few seconds ago) for the blob's
//! metadata, for its answer time alone: one small request beside the read, never waited for
//! by it. A process about to exit waits for its probes a little ([`Probes::finish`]) so that
//! what they learnt is saved with the other estimates.
//!
//! [`NodeScores::stalest`]: morsa_api::client::scoring::NodeScores::stalest

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redstuff::BlobId;
use tokio::task::JoinHandle;

use crate::nodes::NodeSet;
use crate::read::METADATA_BYTES_PER_SHARD;

/// How long [`Probes::finish`] waits for the probes still out.
pub(crate) const PROBE_GRACE: Duration = Duration::from_millis(250);

/// The probes a client has sent and not yet collected.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    running: Mutex<Vec<JoinHandle<()>>>,
}

impl Probes {
    /// Probes the readable node of `nodes` the scores name, if any, asking it for `blob_id`'s
    /// metadata in the background.
    pub(crate) fn probe_stalest(&self, nodes: &Arc<NodeSet>, blob_id: BlobId) {
        let readable = (0..nodes.len()).filter(|member| nodes.readable(*member));
        let Some(stalest) = nodes.scores().stalest(readable.clone().map(|member| nodes.node_id(member)))
        else {
            return;
        };
        let Some(member) = readable.into_iter().find(|member| nodes.node_id(*member) == stalest) else {
            return;
        };
        let bytes = METADATA_BYTES_PER_SHARD * u64::from(nodes.committee().n_shards);
        // Counted in flight now, before the read orders its own requests.
        let call = nodes.start(member);
        let nodes = Arc::clone(nodes);
        let probe = tokio::spawn(async move {
            match nodes.client(member).get_metadata(&blob_id).await {
                Ok(_) => call.answered(bytes),
                Err(_) => call.failed(),
            }
        });
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|probe| !probe.is_finished());
        running.push(probe);
    }

    /// Gives the probes still out until `grace` to answer, then cancels them, which counts as
    /// slower than the time they had: either way their estimates are in the scores.
    pub(crate) async fn finish(&self, grace: Duration) {
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = tokio::time::Instant::now() + grace;
        for mut probe in running {
            if tokio::time::timeout_at(deadline, &mut probe).await.is_err() {
                probe.abort();
                // The aborted task drops its call: counted as cancelled.
                let _ = probe.await;
            }
        }
    }
}
