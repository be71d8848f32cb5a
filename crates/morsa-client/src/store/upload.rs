//! One node's share of a store: its metadata and slivers (in batches, see `batches`), then its
//! signed confirmation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use morsa_api::client::ClientError as ApiError;
use morsa_api::node::UploadTarget;
use morsa_api::node::{NodeErrorCode, SignedConfirmation};
use morsa_core::{BlsSignature, PersistenceType};
use redstuff::{BlobId, MetadataWithId, SliverType};

use super::batches::{Sender, UPLOAD_BATCH_BYTES};
use super::shares::Share;
use crate::nodes::{NodeSet, Retry, is_transient};
use crate::{NodeFailure, Progress, ProgressSink};

/// Most sliver bytes being sent to one node at a time.
const IN_FLIGHT_BYTES_PER_NODE: usize = 64 << 20;

/// The metadata is sent right after the registration commits, often before the node has
/// applied it: asked again soon, then less often (about 5 s in all).
const REGISTRATION_RETRY: Retry =
    Retry { attempts: 11, first_pause: Duration::from_millis(5), max_pause: Duration::from_secs(2) };

/// Confirmations are asked again while a node is still committing.
const CONFIRMATION_RETRY: Retry =
    Retry { attempts: 8, first_pause: Duration::from_millis(20), max_pause: Duration::from_secs(1) };

/// What the uploads of one blob to its nodes share.
#[derive(Clone)]
pub(super) struct Common {
    pub(super) nodes: Arc<NodeSet>,
    pub(super) persistence: PersistenceType,
    pub(super) concurrency: usize,
    pub(super) progress: ProgressSink,
    /// Told when a node fails a first attempt, so that more nodes are started at once.
    pub(super) trouble: Arc<tokio::sync::Notify>,
    /// The blob is already certified: ask for the confirmation before uploading anything.
    pub(super) probably_held: bool,
}

/// Everything one node gets, and its signed confirmation back.
pub(super) struct Upload {
    pub(super) common: Common,
    /// The committee member uploaded to.
    pub(super) member: usize,
    pub(super) metadata: Arc<MetadataWithId>,
    /// The member's sliver pairs, dropped once they are sent (`super::shares`).
    pub(super) share: Share,
}

impl Upload {
    pub(super) async fn run(self) -> Result<(usize, BlsSignature), NodeFailure> {
        let Upload { common, member, metadata, share } = self;
        let Common { nodes, persistence, concurrency, progress, trouble, probably_held } = common;
        let client = nodes.client(member);
        let blob_id = metadata.blob_id;
        if probably_held && let Some(signature) = confirm_held(&nodes, member, &blob_id, &persistence).await {
            return Ok((member, signature));
        }
        // Each request body is a copy of its slivers: bound the bytes in flight per node.
        let concurrency = concurrency.clamp(1, IN_FLIGHT_BYTES_PER_NODE / UPLOAD_BATCH_BYTES);
        let fail = |what: String| {
            nodes.record_failure(member);
            nodes.failure(member, what)
        };
        let sender = Sender::new(client, &share, &metadata);
        let mut slivers: Vec<UploadTarget> = share
            .pairs()
            .map(morsa_core::convert::saturating_u16)
            .flat_map(|pair| {
                [SliverType::Primary, SliverType::Secondary]
                    .map(|sliver_type| UploadTarget::Sliver { pair, sliver_type })
            })
            .collect();
        // The first request carries the metadata, and all the slivers too if they fit in it
        // (small blobs: one request per node); it is asked again while the node has not yet
        // seen the registration.
        let mut opening = vec![UploadTarget::Metadata];
        opening.extend_from_slice(&slivers);
        if sender.fits_one_batch(&opening) {
            slivers.clear();
        } else {
            opening.truncate(1);
        }
        let started = Instant::now();
        if let Err(error) = sender.send(&opening).await {
            // A node that cannot be reached: let the others start now (one that has not yet
            // seen the registration is normal and is just asked again).
            if matches!(error, ApiError::Connect(_) | ApiError::Transport(_) | ApiError::Timeout) {
                trouble.notify_one();
            }
            if !is_transient(&error) {
                return Err(fail(format!("metadata: {error}")));
            }
            REGISTRATION_RETRY
                .run(|| sender.send(&opening))
                .await
                .map_err(|error| fail(format!("metadata: {error}")))?;
        }
        let metadata_time = started.elapsed();
        nodes.record_latency(member, metadata_time);
        for target in opening.iter().filter(|target| **target != UploadTarget::Metadata) {
            progress(&Progress::SliverUploaded { bytes: sender.sliver_bytes(*target) });
        }

        let mut sent = futures_util::stream::iter(sender.plan(slivers))
            .map(|batch| {
                let sender = &sender;
                async move {
                    Retry::UPLOAD
                        .run(|| sender.send(&batch))
                        .await
                        .map(|()| batch)
                        .map_err(|error| error.to_string())
                }
            })
            .buffer_unordered(concurrency);
        while let Some(result) = sent.next().await {
            for target in result.map_err(&fail)? {
                progress(&Progress::SliverUploaded { bytes: sender.sliver_bytes(target) });
            }
        }
        drop(sent);
        // This node's slivers are sent: they are freed now unless the store still needs them.
        drop(share);
        let slivers_time = started.elapsed() - metadata_time;

        let confirmation = CONFIRMATION_RETRY
            .run(|| ask_confirmation(&nodes, member, &blob_id, &persistence))
            .await
            .map_err(|error| fail(format!("confirmation: {error}")))?;
        check_confirmation(&nodes, member, &confirmation, &blob_id, &persistence).map_err(&fail)?;
        tracing::debug!(
            %blob_id,
            member,
            metadata = ?metadata_time,
            slivers = ?slivers_time,
            confirmation = ?(started.elapsed() - metadata_time - slivers_time),
            "a node confirmed"
        );
        Ok((member, confirmation.signature))
    }
}

async fn ask_confirmation(
    nodes: &NodeSet,
    member: usize,
    blob_id: &BlobId,
    persistence: &PersistenceType,
) -> Result<SignedConfirmation, ApiError> {
    let client = nodes.client(member);
    match persistence {
        PersistenceType::Permanent => client.permanent_confirmation(blob_id).await,
        PersistenceType::Deletable { object_id } => client.deletable_confirmation(blob_id, object_id).await,
    }
}

/// The node's confirmation for a blob it should already hold, or `None` if it does not hold
/// everything (or does not answer): then it gets the full upload.
async fn confirm_held(
    nodes: &NodeSet,
    member: usize,
    blob_id: &BlobId,
    persistence: &PersistenceType,
) -> Option<BlsSignature> {
    // Asked again only while the node has not yet seen the new registration.
    let not_registered = |error: &ApiError| error.node_code() == Some(NodeErrorCode::NotRegistered);
    let confirmation = CONFIRMATION_RETRY
        .run_while(|| ask_confirmation(nodes, member, blob_id, persistence), not_registered)
        .await
        .ok()?;
    check_confirmation(nodes, member, &confirmation, blob_id, persistence).ok()?;
    Some(confirmation.signature)
}

fn check_confirmation(
    nodes: &NodeSet,
    member: usize,
    confirmation: &SignedConfirmation,
    blob_id: &BlobId,
    persistence: &PersistenceType,
) -> Result<(), String> {
    let committee = nodes.committee();
    confirmation
        .verify(blob_id, persistence, committee.epoch, &committee.members[member].public_key)
        .map_err(|error| format!("its confirmation does not verify: {error}"))
}
