//! A node's share of a blob in few requests: its slivers in batches of at most
//! [`UPLOAD_BATCH_BYTES`] through the node's batch route, with the metadata in the same
//! request when everything fits in one. A node without the batch route (an older node answers
//! 404) gets one request per item instead, as do slivers too large for a batch and items a
//! batch answered with an error worth retrying.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use morsa_api::client::{ClientError as ApiError, NodeClient};
use morsa_api::node::{
    MAX_UPLOAD_BATCH_BYTES, NodeErrorCode, UPLOAD_ITEM_HEADER, UploadBatch, UploadTarget, sliver_item_len,
};
use redstuff::{BlobId, MetadataWithId, Sliver, SliverType};

use super::shares::Share;
use crate::nodes::{Retry, is_transient};

/// Bytes of one batch request: several batches per node on large blobs keep the node's
/// verification threads and the connection busy at once.
pub(super) const UPLOAD_BATCH_BYTES: usize = 4 << 20;

/// Single requests in flight for the items of one batch sent one by one.
const SINGLES_IN_FLIGHT: usize = 16;

/// Sends items of one blob to one node.
pub(super) struct Sender<'a> {
    client: &'a NodeClient,
    blob_id: BlobId,
    share: &'a Share,
    metadata: &'a MetadataWithId,
    /// Bytes of the metadata's BCS form.
    metadata_len: usize,
    /// Set once the node answered that it has no batch route.
    no_batch_route: AtomicBool,
}

impl<'a> Sender<'a> {
    pub(super) fn new(client: &'a NodeClient, share: &'a Share, metadata: &'a MetadataWithId) -> Self {
        let metadata_len = redstuff::wire::to_bcs(metadata).len();
        Self {
            client,
            blob_id: metadata.blob_id,
            share,
            metadata,
            metadata_len,
            no_batch_route: AtomicBool::new(false),
        }
    }

    /// A sliver of the node's share: the items sent are only ever those of its own pairs.
    fn sliver(&self, pair: u16, kind: SliverType) -> &'a Sliver {
        self.share.sliver(pair, kind).expect("a node is sent only the slivers of its own share")
    }

    /// Bytes `target` takes in a batch.
    fn item_len(&self, target: UploadTarget) -> usize {
        match target {
            UploadTarget::Metadata => UPLOAD_ITEM_HEADER + self.metadata_len,
            UploadTarget::Sliver { pair, sliver_type } => sliver_item_len(self.sliver(pair, sliver_type)),
        }
    }

    /// Sliver bytes of `target` (none for the metadata), as progress counts them.
    pub(super) fn sliver_bytes(&self, target: UploadTarget) -> u64 {
        match target {
            UploadTarget::Metadata => 0,
            UploadTarget::Sliver { pair, sliver_type } => {
                morsa_core::convert::saturating_u64(self.sliver(pair, sliver_type).symbols.len())
            }
        }
    }

    /// Whether all of `targets` fit in one batch request.
    pub(super) fn fits_one_batch(&self, targets: &[UploadTarget]) -> bool {
        targets.iter().map(|target| self.item_len(*target)).sum::<usize>() <= UPLOAD_BATCH_BYTES
    }

    /// `targets` in batches of at most [`UPLOAD_BATCH_BYTES`], in order; an item larger than
    /// that is a batch of its own.
    pub(super) fn plan(&self, targets: Vec<UploadTarget>) -> Vec<Vec<UploadTarget>> {
        let mut batches: Vec<Vec<UploadTarget>> = Vec::new();
        let mut bytes = 0usize;
        for target in targets {
            let len = self.item_len(target);
            match batches.last_mut() {
                Some(batch) if bytes.saturating_add(len) <= UPLOAD_BATCH_BYTES => {
                    batch.push(target);
                    bytes += len;
                }
                _ => {
                    batches.push(vec![target]);
                    bytes = len;
                }
            }
        }
        batches
    }

    /// Sends `targets` (the metadata, if among them, first): one batch request, or one
    /// request each to a node without the batch route, for a lone metadata item, or for an
    /// item over the node's batch limit. Items a batch refused with an error worth retrying
    /// are sent again one by one; any other refusal fails the whole call.
    pub(super) async fn send(&self, targets: &[UploadTarget]) -> Result<(), ApiError> {
        let total: usize = targets.iter().map(|target| self.item_len(*target)).sum();
        let alone = targets == [UploadTarget::Metadata] || total > MAX_UPLOAD_BATCH_BYTES;
        if alone || self.no_batch_route.load(Ordering::Relaxed) {
            return self.send_singly(targets).await;
        }
        let mut batch = UploadBatch::new();
        for target in targets {
            match *target {
                UploadTarget::Metadata => batch.push_metadata(self.metadata),
                UploadTarget::Sliver { pair, sliver_type } => {
                    // The symbols are sent from the share, not copied into the body.
                    let sliver = self.sliver(pair, sliver_type);
                    match self.share.symbols(pair, sliver_type) {
                        Some(symbols) => batch.push_shared_sliver(
                            pair,
                            sliver_type,
                            symbols,
                            sliver.symbol_size,
                            sliver.index,
                        ),
                        None => batch.push_sliver(pair, sliver_type, sliver),
                    }
                }
            }
        }
        let answer = match self.client.put_sliver_batch(&self.blob_id, batch).await {
            Ok(answer) => answer,
            Err(error) if error.is_missing_route() => {
                tracing::debug!(
                    node = self.client.base_url(),
                    "no batch upload route: one request per sliver"
                );
                self.no_batch_route.store(true, Ordering::Relaxed);
                return self.send_singly(targets).await;
            }
            Err(error) => return Err(error),
        };
        let mut again = Vec::new();
        for outcome in answer.items {
            let Some(body) = outcome.refused else { continue };
            let status = body
                .code
                .parse::<NodeErrorCode>()
                .map_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR, NodeErrorCode::status);
            let error = ApiError::Http { status, body };
            if !is_transient(&error) {
                return Err(named(outcome.target, error));
            }
            again.push(outcome.target);
        }
        self.send_singly(&again).await
    }

    /// Sends `targets` one request each (the metadata first), each retried while worth it.
    async fn send_singly(&self, targets: &[UploadTarget]) -> Result<(), ApiError> {
        let (blob_id, client) = (&self.blob_id, self.client);
        if targets.contains(&UploadTarget::Metadata) {
            Retry::UPLOAD
                .run(|| client.put_metadata(blob_id, self.metadata))
                .await
                .map_err(|error| named(UploadTarget::Metadata, error))?;
        }
        let slivers: Vec<(u16, SliverType)> = targets
            .iter()
            .filter_map(|target| match *target {
                UploadTarget::Sliver { pair, sliver_type } => Some((pair, sliver_type)),
                UploadTarget::Metadata => None,
            })
            .collect();
        let mut sent = futures_util::stream::iter(slivers)
            .map(|(pair, kind)| async move {
                let sliver = self.sliver(pair, kind);
                Retry::UPLOAD
                    .run(|| client.put_sliver(blob_id, pair, kind, sliver, false))
                    .await
                    .map_err(|error| named(UploadTarget::Sliver { pair, sliver_type: kind }, error))
            })
            .buffer_unordered(SINGLES_IN_FLIGHT);
        while let Some(result) = sent.next().await {
            result?;
        }
        Ok(())
    }
}

/// `error` with the item it is about in its message.
fn named(target: UploadTarget, error: ApiError) -> ApiError {
    match error {
        ApiError::Http { status, mut body } => {
            body.message = format!("{target}: {}", body.message);
            ApiError::Http { status, body }
        }
        error => error,
    }
}
