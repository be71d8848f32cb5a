//! Reads during a move: a read that asks the new owner for a sliver of a gained shard still
//! being pulled (`active_sync`), before the pull reached its blob, is answered from the
//! shard's previous owner, which keeps the shard until the change is done plus a grace
//! epoch. The new owner asks it for a one-blob page of the shard (the signed page route the
//! pull uses), verifies the blob's slivers against their metadata, stores them and answers.
//!
//! Rebuilding the sliver from recovery symbols instead would cost `n − 2f` or `n − f` peers'
//! answers per sliver, and cannot work at all when more than `f` shards move to one node
//! (too few holders are left to answer). What the previous owner does not give (away,
//! refusing, lacking the blob, a sliver failing verification) is left to that rebuild.

use std::sync::Arc;
use std::time::Duration;

use morsa_api::client::{ClientOptions, NodeClient};
use morsa_api::node::ShardPageRequest;
use morsa_core::{Epoch, ShardIndex};
use morsa_store::SliverWrite;
use redstuff::{BlobId, SliverType};

use crate::blocking::blocking;
use crate::error::NodeError;
use crate::node::migration_stats::add;
use crate::node::shard_book::Gain;
use crate::node::{Node, kind_of};

impl Node {
    /// The epoch and the previous owner's address of `shard`, if it is a gained shard being
    /// pulled from another node.
    fn syncing_from(&self, shard: u16) -> Option<(Epoch, String)> {
        let moves = self.moves().lock();
        let gained = moves.gained.get(&shard).filter(|gained| gained.state == Gain::Sync)?;
        let (_, address) = gained.from.as_ref()?;
        Some((gained.epoch, address.clone()))
    }
}

/// Before a read of sliver `pair`/`kind` of `blob_id`: if it belongs to a shard being pulled
/// and is not stored yet, fetches it (with the blob's other sliver of the shard) from the
/// shard's previous owner, waiting at most `timeout`. What this does not store is left to
/// the read's on-demand rebuild (`heal::on_demand`).
pub(crate) async fn fetch_if_moving(
    node: &Arc<Node>,
    blob_id: BlobId,
    pair: u16,
    kind: SliverType,
    timeout: Duration,
) -> Result<(), NodeError> {
    let Ok(shard) = node.owned_shard_of(&blob_id, pair) else { return Ok(()) };
    if node.syncing_from(shard).is_none() || node.store().has_sliver(&blob_id.0, shard, kind_of(kind))? {
        return Ok(());
    }
    fetch_blob(node, blob_id, shard, timeout).await.map(|_| ())
}

/// Fetches `blob_id`'s slivers of `shard` from the shard's previous owner and stores those
/// that verify, if the shard is being pulled; answers how many were stored. Each call to the
/// previous owner times out after `timeout`.
async fn fetch_blob(
    node: &Arc<Node>,
    blob_id: BlobId,
    shard: u16,
    timeout: Duration,
) -> Result<u64, NodeError> {
    let Some((epoch, address)) = node.syncing_from(shard) else { return Ok(0) };
    let options = ClientOptions { timeout, connect_timeout: timeout.min(Duration::from_secs(3)) };
    let client = match options
        .http_client()
        .and_then(|http| NodeClient::with_http(http, &address, node.config(), options))
    {
        Ok(client) => client,
        Err(error) => {
            tracing::debug!(%error, shard, "cannot reach the previous owner for a read");
            return Ok(0);
        }
    };
    let request = ShardPageRequest::signed(node.key(), epoch, ShardIndex(shard), Some(blob_id), 1);
    let page = match client.shard_page(&request).await {
        Ok(page) => page,
        Err(error) => {
            tracing::debug!(%error, %blob_id, shard, "the previous owner did not serve a read");
            return Ok(0);
        }
    };
    let Some(item) = page.items.into_iter().find(|item| item.blob_id == blob_id) else { return Ok(0) };
    let storing = Arc::clone(node);
    let stored = blocking(move || {
        let held = storing.store().sliver_kinds_held(&blob_id.0, shard)?;
        let verified = storing.verify_item(shard, item, held)?;
        let writes: Vec<SliverWrite<'_>> = verified
            .iter()
            .map(|(blob_id, kind, bytes)| SliverWrite { blob_id: *blob_id, shard, kind: *kind, bytes })
            .collect();
        if !writes.is_empty() {
            storing.store().put_slivers(&writes)?;
        }
        Ok(morsa_core::convert::saturating_u64(writes.len()))
    })
    .await?;
    add(&node.moves().stats.slivers_read_through, stored);
    Ok(stored)
}
