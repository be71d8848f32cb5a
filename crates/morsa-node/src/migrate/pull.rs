//! The new owner's side: every gained shard in `Sync` is pulled from its previous owner, page
//! after page in blob-ID order, each page's slivers verified against their blob's metadata and
//! stored in one transaction, then the position saved, so that a restart resumes at the next
//! page. What the previous owner lacks or sends wrong is left to recovery; a shard whose pull
//! makes no progress for `pull_stall_ms` (or that the previous owner refuses) is left to
//! recovery as a whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use morsa_api::client::{ClientError, ClientOptions, NodeClient};
use morsa_api::node::{ShardPage, ShardPageItem, ShardPageRequest};
use morsa_core::ShardIndex;
use morsa_store::{SliverKind, SliverWrite};
use redstuff::SliverType;
use tokio::sync::watch;

use crate::blocking::{Background, blocking};
use crate::config::RepairConfig;
use crate::error::NodeError;
use crate::node::migration_stats::add;
use crate::node::shard_book::{Gain, Gained};
use crate::node::{Node, kind_of};

/// Longest pause between two attempts while the previous owner fails.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Pulls the gained shards in `Sync`, one at a time, until `stop` turns true; pages are
/// verified and stored on `background`, the node's low-priority pool.
pub(crate) async fn run(
    node: Arc<Node>,
    config: RepairConfig,
    background: Arc<Background>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let next = node
            .moves()
            .lock()
            .gained
            .iter()
            .find(|(_, gained)| gained.state == Gain::Sync)
            .map(|(shard, gained)| (*shard, gained.clone()));
        match next {
            Some((shard, gained)) => pull_shard(&node, &config, &background, shard, gained, &mut stop).await,
            None => tokio::select! {
                () = node.moves().changed.notified() => {}
                _ = stop.changed() => return,
            },
        }
    }
}

/// A verified sliver of a page, to store: blob ID, kind, BCS bytes.
type PulledSliver = ([u8; 32], SliverKind, Vec<u8>);

/// What one page gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PageOutcome {
    /// Slivers verified and stored.
    pub slivers: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Slivers left to recovery (absent from the page, or failing verification).
    pub left: u64,
}

async fn pull_shard(
    node: &Arc<Node>,
    config: &RepairConfig,
    background: &Background,
    shard: u16,
    gained: Gained,
    stop: &mut watch::Receiver<bool>,
) {
    let Some((from, address)) = gained.from.clone() else {
        fall_back(node, shard, "nobody held it before").await;
        return;
    };
    let options =
        ClientOptions { timeout: Duration::from_millis(config.peer_timeout_ms.max(1)), ..Default::default() };
    let client = match options
        .http_client()
        .and_then(|http| NodeClient::with_http(http, &address, node.config(), options))
    {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, shard, "cannot reach the previous owner");
            fall_back(node, shard, "the previous owner's address is unusable").await;
            return;
        }
    };
    tracing::info!(shard, from = %from, position = ?gained.position, "pulling a gained shard from its previous owner");
    let stall = Duration::from_millis(config.pull_stall_ms);
    let mut last_progress = Instant::now();
    let mut pause = Duration::from_millis(200);
    let mut position = gained.position;
    loop {
        if *stop.borrow() {
            return;
        }
        let still_syncing = node
            .moves()
            .lock()
            .gained
            .get(&shard)
            .is_some_and(|now| now.state == Gain::Sync && now.epoch == gained.epoch);
        if !still_syncing {
            return;
        }
        let request = ShardPageRequest::signed(
            node.key(),
            gained.epoch,
            ShardIndex(shard),
            position,
            config.pull_page_blobs.max(1),
        );
        match client.shard_page(&request).await {
            Ok(page) => {
                let received = page_bytes(&page);
                let next = page.next;
                let stored = {
                    let node = Arc::clone(node);
                    background.run(move || node.store_page(shard, page, next)).await
                };
                match stored {
                    Ok(outcome) => {
                        let stats = &node.moves().stats;
                        add(&stats.pages_pulled, 1);
                        add(&stats.slivers_pulled, outcome.slivers);
                        add(&stats.bytes_pulled, outcome.bytes);
                        add(&stats.page_bytes_received, received);
                        add(&stats.slivers_left_to_recovery, outcome.left);
                    }
                    Err(error) => {
                        tracing::error!(%error, shard, "cannot store a pulled page");
                        fall_back(node, shard, "a page could not be stored").await;
                        return;
                    }
                }
                position = next;
                last_progress = Instant::now();
                pause = Duration::from_millis(200);
                if next.is_none() {
                    tracing::info!(shard, "pulled a gained shard to its end");
                    node.certified_inbox().request_scan();
                    return;
                }
                let wait = pace(received, config.pull_bytes_per_sec);
                if !wait.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
            Err(error) => {
                let refused = refused_for_good(&error);
                tracing::warn!(%error, shard, refused, "the previous owner did not serve a page");
                if refused || last_progress.elapsed() >= stall {
                    add(&node.moves().stats.shards_fallen_back, 1);
                    fall_back(
                        node,
                        shard,
                        if refused { "the previous owner refused" } else { "no progress" },
                    )
                    .await;
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => return,
                }
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }
}

/// How long to wait after `bytes` to keep under `bytes_per_sec` (0: no limit).
pub(crate) fn pace(bytes: u64, bytes_per_sec: u64) -> Duration {
    if bytes_per_sec == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(bytes.saturating_mul(1000) / bytes_per_sec)
}

/// Whether the previous owner refused the request itself (asking again will not help), as
/// opposed to being away, slow or not there yet.
pub(crate) fn refused_for_good(error: &ClientError) -> bool {
    match error {
        ClientError::Http { status, .. } => {
            status.is_client_error() && status.as_u16() != 409 && status.as_u16() != 429
        }
        ClientError::Decode(_) => true,
        _ => false,
    }
}

/// Bytes of a page's metadata and slivers.
fn page_bytes(page: &ShardPage) -> u64 {
    page.items
        .iter()
        .flat_map(|item| [&item.metadata, &item.primary, &item.secondary])
        .flatten()
        .map(|piece| morsa_core::convert::saturating_u64(piece.len()))
        .sum()
}

/// Leaves `shard` to recovery as a whole: the repair scan takes it from here.
async fn fall_back(node: &Arc<Node>, shard: u16, why: &'static str) {
    tracing::warn!(shard, why, "leaving a gained shard to recovery");
    let saving = Arc::clone(node);
    let saved = blocking(move || {
        saving.moves().update(saving.store(), |moves| {
            if let Some(gained) = moves.gained.get_mut(&shard) {
                gained.state = Gain::Recover;
            }
        })
    })
    .await;
    if let Err(error) = saved {
        tracing::error!(%error, shard, "cannot record a shard left to recovery");
    }
    node.certified_inbox().request_scan();
}

impl Node {
    /// Verifies and stores the slivers of `page` for `shard` in one transaction, then saves
    /// `next` as the shard's position (and the shard `Pulled` if `next` is `None`). A blob this
    /// node does not know as registered, whose metadata is absent or wrong, or whose sliver is
    /// absent or fails verification, is left to recovery. Blocks.
    pub(crate) fn store_page(
        &self,
        shard: u16,
        page: ShardPage,
        next: Option<redstuff::BlobId>,
    ) -> Result<PageOutcome, NodeError> {
        let mut outcome = PageOutcome::default();
        let mut verified = Vec::new();
        for item in page.items {
            let held = self.store().sliver_kinds_held(&item.blob_id.0, shard)?;
            let lacking = u64::from(!held.0) + u64::from(!held.1);
            match self.verify_item(shard, item, held) {
                Ok(slivers) => {
                    outcome.left += lacking - morsa_core::convert::saturating_u64(slivers.len());
                    verified.extend(slivers);
                }
                Err(error) => {
                    tracing::debug!(%error, shard, "a pulled blob is left to recovery");
                    outcome.left += lacking;
                }
            }
        }
        let writes: Vec<SliverWrite<'_>> = verified
            .iter()
            .map(|(blob_id, kind, bytes)| SliverWrite { blob_id: *blob_id, shard, kind: *kind, bytes })
            .collect();
        if !writes.is_empty() {
            self.store().put_slivers(&writes)?;
        }
        outcome.slivers = morsa_core::convert::saturating_u64(writes.len());
        outcome.bytes =
            writes.iter().map(|write| morsa_core::convert::saturating_u64(write.bytes.len())).sum();
        self.moves().update(self.store(), |moves| {
            moves.pages_pulled += 1;
            if let Some(gained) = moves.gained.get_mut(&shard) {
                gained.position = next;
                if next.is_none() {
                    gained.state = Gain::Pulled;
                }
            }
        })?;
        Ok(outcome)
    }

    /// The slivers of `item` this node lacks (`held`: primary, secondary), each verified
    /// against the blob's metadata (stored first if this node lacks it).
    pub(super) fn verify_item(
        &self,
        shard: u16,
        item: ShardPageItem,
        held: (bool, bool),
    ) -> Result<Vec<PulledSliver>, NodeError> {
        let ShardPageItem { blob_id, metadata, primary, secondary } = item;
        let metadata = if self.store().has_metadata(&blob_id.0)? {
            self.verified_metadata(&blob_id)?
        } else {
            let bytes = metadata.ok_or(NodeError::MetadataNotStored(blob_id))?;
            self.store_metadata(&blob_id, &bytes)?
        };
        let pair = u16::try_from(blob_id.pair_for_shard(usize::from(shard), self.config().n_shards()))
            .expect("pairs are below n, which is a u16");
        let mut slivers = Vec::new();
        for (kind, present, bytes) in
            [(SliverType::Primary, held.0, primary), (SliverType::Secondary, held.1, secondary)]
        {
            let Some(bytes) = bytes.filter(|_| !present) else { continue };
            match self.check_sliver(&metadata, pair, kind, &bytes) {
                Ok(_) => slivers.push((blob_id.0, kind_of(kind), bytes)),
                Err(error) => {
                    tracing::warn!(%error, %blob_id, shard, %kind, "a pulled sliver fails verification")
                }
            }
        }
        Ok(slivers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_keep_under_their_bandwidth() {
        assert_eq!(pace(1 << 20, 0), Duration::ZERO);
        assert_eq!(pace(1 << 20, 1 << 20), Duration::from_secs(1));
        assert_eq!(pace(512 << 10, 1 << 20), Duration::from_millis(500));
    }
}
