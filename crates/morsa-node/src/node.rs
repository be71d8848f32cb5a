//! The node's core, without HTTP: every request handler and the event follower call into it.
//! Methods that verify slivers are CPU-heavy and block: call them from a blocking thread.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use axum::body::Bytes;
use morsa_api::coord::{Event, EventRecord, MemberZones};
use morsa_core::{BlsSecretKey, Committee, Epoch, NodeId, PersistenceType, ShardIndex};
use morsa_store::{NodeStore, SliverKind};
use redstuff::wire::{from_bcs, metadata_limit, sliver_limit};
use redstuff::{BlobId, EncodingConfig, MetadataWithId, Sliver, SliverType, VerifiedMetadata};

use crate::blob_info::{BlobInfo, Status};
use crate::error::{MetadataDamage, NodeError};
use crate::ingest::{GroupCommitter, IngestLimits, IngestStats, QueuedSliver};
use inbox::{CertifiedInbox, RegisteredInbox};
use metadata_cache::MetadataCache;

mod attestation;
pub(crate) mod gc;
pub(crate) mod inbox;
mod metadata_cache;
pub(crate) mod migration_stats;
mod missing;
mod recovery_batch;
pub use recovery_batch::SymbolForm;
mod recovery_symbols;
mod saved_view;
pub(crate) mod shard_book;
mod status;

pub(crate) use saved_view::saved_view;

/// Meta key of the last applied event's sequence number.
const CURSOR_KEY: &str = "event_cursor";

/// Which epoch it is and who owns which shard, as the coordinator's events say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Committee of the current epoch (its `epoch` field is the current epoch).
    pub committee: Committee,
    /// Committee of the next epoch, once selected.
    pub next: Option<Committee>,
    /// The zones their members declared, as the coordinator last told (events carry none):
    /// the prior the repair fetcher ranks peers with before it has measured them.
    pub zones: MemberZones,
}

impl View {
    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.committee.epoch
    }
}

/// A storage node's state and store.
pub struct Node {
    key: BlsSecretKey,
    id: NodeId,
    config: EncodingConfig,
    store: Arc<NodeStore>,
    view: RwLock<View>,
    /// Commits verified slivers in groups (see `ingest.rs`).
    ingest: GroupCommitter,
    /// Blobs certified by applied events, for the sync loop (see `missing.rs`).
    certified: CertifiedInbox,
    /// Recently used verified metadata.
    metadata_cache: MetadataCache,
    /// Blobs registered by applied events, for the pending-upload buffer.
    registered: RegisteredInbox,
    /// Metadata records written (identical re-uploads write nothing).
    metadata_writes: std::sync::atomic::AtomicU64,
    /// Shards moving to or from this node (see `migrate`).
    moves: shard_book::ShardBook,
    /// Counts applied events that start or close a challenge round (see `challenge`).
    challenge_signal: tokio::sync::watch::Sender<u64>,
}

/// The stored kind of a sliver type.
pub(crate) fn kind_of(kind: SliverType) -> SliverKind {
    match kind {
        SliverType::Primary => SliverKind::Primary,
        SliverType::Secondary => SliverKind::Secondary,
    }
}

/// The sliver type of a stored kind.
pub(crate) fn type_of(kind: SliverKind) -> SliverType {
    match kind {
        SliverKind::Primary => SliverType::Primary,
        SliverKind::Secondary => SliverType::Secondary,
    }
}

impl Node {
    /// A node with `key`, its data in `store`, starting from the coordinator's `view`.
    pub fn new(key: BlsSecretKey, store: NodeStore, view: View) -> Result<Self, NodeError> {
        let config = EncodingConfig::new(view.committee.n_shards).map_err(NodeError::Committee)?;
        let id = NodeId::from_public_key(&key.public_key());
        let moves = shard_book::ShardBook::load(&store);
        let store = Arc::new(store);
        let committing = Arc::clone(&store);
        let ingest =
            GroupCommitter::spawn(IngestLimits::default(), move |writes| committing.put_slivers(writes))?;
        let certified = CertifiedInbox::default();
        Ok(Self {
            key,
            id,
            config,
            store,
            view: RwLock::new(view),
            ingest,
            certified,
            metadata_cache: Default::default(),
            registered: Default::default(),
            metadata_writes: Default::default(),
            moves,
            challenge_signal: tokio::sync::watch::channel(0).0,
        })
    }

    /// This node's ID.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's signing key.
    pub fn key(&self) -> &BlsSecretKey {
        &self.key
    }

    /// The code of the system.
    pub fn config(&self) -> EncodingConfig {
        self.config
    }

    /// The store.
    pub fn store(&self) -> &NodeStore {
        &self.store
    }

    /// The shards moving to or from this node.
    pub(crate) fn moves(&self) -> &shard_book::ShardBook {
        &self.moves
    }

    /// What the sliver committer has done so far: commits, slivers, bytes.
    pub fn ingest_stats(&self) -> IngestStats {
        self.ingest.stats()
    }

    /// Blobs certified by the events applied since the sync loop last looked.
    pub fn certified_inbox(&self) -> &CertifiedInbox {
        &self.certified
    }

    /// Blobs registered by the events applied since the pending-upload buffer last looked.
    pub(crate) fn registered_inbox(&self) -> &RegisteredInbox {
        &self.registered
    }

    /// Metadata records written so far; identical re-uploads write nothing.
    pub fn metadata_writes(&self) -> u64 {
        self.metadata_writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores many verified slivers through the group committer, queued at once so that they
    /// share commits; one answer per sliver, in order.
    pub(crate) fn ingest_submit_all(&self, slivers: Vec<QueuedSliver>) -> Vec<Result<(), NodeError>> {
        self.ingest.submit_all(slivers).into_iter().map(|result| result.map_err(NodeError::from)).collect()
    }

    /// The current view.
    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current committee and the zones its members declared (for ranking peers).
    pub fn committee_and_zones(&self) -> (Committee, MemberZones) {
        let view = self.view();
        (view.committee.clone(), view.zones.for_committee(&view.committee))
    }

    /// Shards this node owns in the current epoch.
    pub fn owned_shards(&self) -> BTreeSet<u16> {
        let view = self.view();
        view.committee
            .member_by_node(&self.id)
            .map(|member| view.committee.members[member].shards.iter().map(|shard| shard.0).collect())
            .unwrap_or_default()
    }

    /// Changes whenever an applied event starts a challenge round or changes the epoch.
    pub(crate) fn challenge_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.challenge_signal.subscribe()
    }

    /// Sequence number of the last applied event, if any.
    pub(crate) fn cursor(&self) -> Result<Option<u64>, NodeError> {
        let bytes = self.store.get_meta(CURSOR_KEY)?;
        Ok(bytes.and_then(|bytes| bytes.try_into().ok()).map(u64::from_le_bytes))
    }

    /// Folds coordinator events into the node's records, skipping those already applied, and
    /// advances the cursor. Blob records are written before the cursor, and applying an event
    /// twice changes nothing, so a crash in between is harmless.
    pub fn apply_events(&self, events: &[EventRecord]) -> Result<(), NodeError> {
        let cursor = self.cursor()?;
        for record in events.iter().filter(|record| cursor.is_none_or(|cursor| record.seq > cursor)) {
            match &record.event {
                // The view may come from a newer committee than these events (a restart fetches
                // the coordinator's current committee): never go back in epochs.
                Event::CommitteeSelected { committee } => {
                    let mut view = self.write_view();
                    if committee.epoch > view.epoch() {
                        view.next = Some(committee.clone());
                        drop(view);
                        self.save_view();
                    }
                }
                Event::EpochChangeStart { epoch } => {
                    let mut view = self.write_view();
                    if *epoch > view.epoch() {
                        let previous = view.committee.clone();
                        match view.next.take().filter(|next| next.epoch == *epoch) {
                            Some(next) => view.committee = next,
                            None => view.committee.epoch = *epoch,
                        }
                        let current = view.committee.clone();
                        drop(view);
                        // Before the view is saved: a restart in between plans again.
                        self.note_committee_change(&previous, &current)?;
                        self.save_view();
                    }
                }
                Event::EpochChangeDone { epoch } => self.note_change_done(*epoch)?,
                event => {
                    if let Some(blob_id) = blob_of(event) {
                        let mut info = self.blob_info(&blob_id)?;
                        info.apply(event);
                        self.store
                            .put_blob_info(&blob_id.0, &bcs::to_bytes(&info).expect("records serialize"))?;
                        match event {
                            Event::BlobCertified { .. } => self.certified.push(blob_id, record.time_ms),
                            Event::BlobRegistered { .. } => self.registered.push(blob_id),
                            _ => {}
                        }
                    }
                }
            }
            self.store.put_meta(CURSOR_KEY, &record.seq.to_le_bytes())?;
            if matches!(record.event, Event::ChallengeRoundStarted { .. } | Event::EpochChangeStart { .. }) {
                self.challenge_signal.send_modify(|count| *count = count.wrapping_add(1));
            }
        }
        Ok(())
    }

    /// Replaces the view with one fetched from the coordinator, unless it is older.
    pub(crate) fn set_view(&self, view: View) {
        let mut current = self.write_view();
        if view.epoch() >= current.epoch() && *current != view {
            let previous = (view.epoch() > current.epoch()).then(|| current.committee.clone());
            *current = view;
            let now = current.committee.clone();
            drop(current);
            if let Some(previous) = previous
                && let Err(error) = self.note_committee_change(&previous, &now)
            {
                tracing::error!(%error, "cannot record the shards moving at an epoch change");
            }
            self.save_view();
        }
    }

    fn write_view(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node's record of `blob_id` (empty if it never heard of it).
    pub(crate) fn blob_info(&self, blob_id: &BlobId) -> Result<BlobInfo, NodeError> {
        Ok(match self.store.get_blob_info(&blob_id.0)? {
            Some(bytes) => bcs::from_bytes(&bytes)
                .map_err(|source| NodeError::CorruptBlobInfo { blob_id: *blob_id, source })?,
            None => BlobInfo::default(),
        })
    }

    /// Refuses uploads for blobs that are not registered and live.
    pub(crate) fn require_live(&self, blob_id: &BlobId) -> Result<BlobInfo, NodeError> {
        let info = self.blob_info(blob_id)?;
        match info.status(self.view().epoch()) {
            Status::Registered | Status::Certified => Ok(info),
            Status::Invalid => Err(NodeError::Invalid(*blob_id)),
            Status::Nonexistent if info.objects.is_empty() => Err(NodeError::NotRegistered(*blob_id)),
            Status::Nonexistent => Err(NodeError::Expired(*blob_id)),
        }
    }

    /// Checks that the BCS `MetadataWithId` in `bytes` is `blob_id`'s: it decodes within the
    /// limit and hashes to the ID. Needs no registration.
    pub(crate) fn check_metadata(
        &self,
        blob_id: &BlobId,
        bytes: &[u8],
    ) -> Result<VerifiedMetadata, NodeError> {
        let with_id: MetadataWithId =
            from_bcs(bytes, metadata_limit(self.config)).map_err(NodeError::Malformed)?;
        if with_id.blob_id != *blob_id {
            return Err(NodeError::MetadataOfOtherBlob { body: with_id.blob_id, blob_id: *blob_id });
        }
        with_id.metadata.verify(blob_id, self.config).map_err(NodeError::MetadataMismatch)
    }

    /// Checks and stores the BCS `MetadataWithId` of a registered blob; answers it verified
    /// (and keeps it in the cache of verified metadata). The same bytes stored already are not
    /// written again.
    pub fn store_metadata(&self, blob_id: &BlobId, bytes: &[u8]) -> Result<VerifiedMetadata, NodeError> {
        self.require_live(blob_id)?;
        let verified = self.check_metadata(blob_id, bytes)?;
        if self.store.get_metadata(&blob_id.0)?.as_deref() != Some(bytes) {
            self.store.put_metadata(&blob_id.0, bytes)?;
            self.metadata_writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.metadata_cache.insert(std::sync::Arc::new(verified.clone()));
        Ok(verified)
    }

    /// The stored metadata, verified against the blob ID.
    pub fn verified_metadata(&self, blob_id: &BlobId) -> Result<VerifiedMetadata, NodeError> {
        if let Some(cached) = self.metadata_cache.get(blob_id) {
            return Ok((*cached).clone());
        }
        let verified = self.read_verified_metadata(blob_id)?;
        self.metadata_cache.insert(std::sync::Arc::new(verified.clone()));
        Ok(verified)
    }

    /// Forgets the cached metadata of a blob whose metadata is being deleted.
    pub(crate) fn forget_metadata(&self, blob_id: &BlobId) {
        self.metadata_cache.remove(blob_id);
    }

    fn read_verified_metadata(&self, blob_id: &BlobId) -> Result<VerifiedMetadata, NodeError> {
        let bytes = self.store.get_metadata(&blob_id.0)?.ok_or(NodeError::MetadataNotStored(*blob_id))?;
        let corrupt = |damage| NodeError::CorruptMetadata { blob_id: *blob_id, damage };
        let with_id: MetadataWithId = from_bcs(&bytes, metadata_limit(self.config))
            .map_err(|error| corrupt(MetadataDamage::Undecodable(error)))?;
        if with_id.blob_id != *blob_id {
            return Err(corrupt(MetadataDamage::OtherBlob(with_id.blob_id)));
        }
        with_id
            .metadata
            .verify(blob_id, self.config)
            .map_err(|error| corrupt(MetadataDamage::Mismatch(error)))
    }

    /// The stored BCS metadata.
    pub(crate) fn metadata_bytes(&self, blob_id: &BlobId) -> Result<Vec<u8>, NodeError> {
        self.store.get_metadata(&blob_id.0)?.ok_or(NodeError::MetadataNotStored(*blob_id))
    }

    /// The shard storing pair `pair` of `blob_id`, if this node owns it now.
    pub(crate) fn owned_shard_of(&self, blob_id: &BlobId, pair: u16) -> Result<u16, NodeError> {
        let n = self.config.n_shards();
        if usize::from(pair) >= n {
            return Err(NodeError::PairOutOfRange { pair, n_shards: n });
        }
        let shard = u16::try_from(blob_id.shard_for_pair(usize::from(pair), n)).expect("shards are below n");
        if !self.owned_shards().contains(&shard) {
            return Err(NodeError::WrongShard { pair, shard: ShardIndex(shard) });
        }
        Ok(shard)
    }

    /// The largest body an upload of the `kind` sliver of pair `pair` of `blob_id` may have:
    /// refuses blobs that are not live and pairs of shards this node does not own, before the
    /// body is read.
    pub(crate) fn sliver_upload_limit(
        &self,
        blob_id: &BlobId,
        pair: u16,
        kind: SliverType,
    ) -> Result<usize, NodeError> {
        let info = self.require_live(blob_id)?;
        self.owned_shard_of(blob_id, pair)?;
        Ok(match self.config.symbol_size(info.size) {
            Ok(symbol_size) => sliver_limit(self.config, kind, symbol_size),
            Err(_) => max_sliver_body(self.config),
        })
    }

    /// The largest body a batch upload of `blob_id` may have
    /// ([`morsa_api::node::routes::SLIVER_BATCH`]): its metadata and both slivers of every
    /// pair this node owns, framed, at most [`morsa_api::node::MAX_UPLOAD_BATCH_BYTES`].
    /// Refuses blobs that are not live, as the single-sliver route does, before the body is read.
    pub(crate) fn batch_upload_limit(&self, blob_id: &BlobId) -> Result<usize, NodeError> {
        use morsa_api::node::{MAX_UPLOAD_BATCH_BYTES, UPLOAD_ITEM_HEADER};
        let info = self.require_live(blob_id)?;
        let pair_limit = match self.config.symbol_size(info.size) {
            Ok(symbol_size) => sliver_limit(self.config, SliverType::Primary, symbol_size)
                .saturating_add(sliver_limit(self.config, SliverType::Secondary, symbol_size)),
            Err(_) => max_sliver_body(self.config).saturating_mul(2),
        };
        let limit = self
            .owned_shards()
            .len()
            .saturating_mul(pair_limit.saturating_add(2 * UPLOAD_ITEM_HEADER))
            .saturating_add(metadata_limit(self.config) + UPLOAD_ITEM_HEADER);
        Ok(limit.min(MAX_UPLOAD_BATCH_BYTES))
    }

    /// Checks one uploaded sliver (BCS) against the stored metadata and stores it durably:
    /// returns once the group commit that holds it has returned (see `ingest.rs`), so the
    /// slivers of concurrent uploads share one transaction and one fsync. Blocks.
    pub fn store_sliver(
        &self,
        blob_id: &BlobId,
        pair: u16,
        kind: SliverType,
        bytes: Bytes,
    ) -> Result<(), NodeError> {
        let sliver = self.checked_sliver(blob_id, pair, kind, bytes)?;
        self.ingest.submit(sliver)?;
        Ok(())
    }

    /// Checks one uploaded sliver (BCS) as [`Node::store_sliver`] does and returns it ready for
    /// the group committer, without storing it. Blocks.
    pub(crate) fn checked_sliver(
        &self,
        blob_id: &BlobId,
        pair: u16,
        kind: SliverType,
        bytes: Bytes,
    ) -> Result<QueuedSliver, NodeError> {
        self.checked_slivers(blob_id, vec![(pair, kind, bytes)]).pop().expect("one answer per sliver")
    }

    /// [`Node::checked_sliver`] for several uploaded slivers `(pair, kind, bytes)` of `blob_id`,
    /// one answer each, in order. Their hashes are checked together
    /// ([`VerifiedMetadata::verify_slivers`]): for a small blob's slivers a fraction of the
    /// cost of checking them one by one. Blocks.
    pub(crate) fn checked_slivers(
        &self,
        blob_id: &BlobId,
        items: Vec<(u16, SliverType, Bytes)>,
    ) -> Vec<Result<QueuedSliver, NodeError>> {
        let mut answers = Vec::with_capacity(items.len());
        let mut metadata = None;
        let mut decoded = Vec::new();
        for (pair, kind, bytes) in items {
            let checked = self.require_live(blob_id).and_then(|_| {
                let shard = self.owned_shard_of(blob_id, pair)?;
                let metadata = match &metadata {
                    Some(metadata) => metadata,
                    None => metadata.insert(self.verified_metadata(blob_id)?),
                };
                Ok((shard, self.decoded_sliver(metadata, pair, kind, &bytes)?))
            });
            match checked {
                Ok((shard, sliver)) => {
                    decoded.push((answers.len(), kind, sliver));
                    // The request's own buffer goes to the committer: no copy.
                    answers.push(Ok(QueuedSliver { blob_id: blob_id.0, shard, kind: kind_of(kind), bytes }));
                }
                Err(error) => answers.push(Err(error)),
            }
        }
        let Some(metadata) = metadata else { return answers };
        for kind in [SliverType::Primary, SliverType::Secondary] {
            let of_kind: Vec<&(usize, SliverType, Sliver)> =
                decoded.iter().filter(|item| item.1 == kind).collect();
            let slivers: Vec<&Sliver> = of_kind.iter().map(|(_, _, sliver)| sliver).collect();
            for ((position, _, _), verdict) in of_kind.iter().zip(metadata.verify_slivers(kind, &slivers)) {
                if let Err(error) = verdict {
                    answers[*position] = Err(verification_error(error));
                }
            }
        }
        answers
    }

    /// Decodes and verifies the sliver of `kind` in pair `pair`.
    pub(crate) fn check_sliver(
        &self,
        metadata: &VerifiedMetadata,
        pair: u16,
        kind: SliverType,
        bytes: &[u8],
    ) -> Result<Sliver, NodeError> {
        let sliver = self.decoded_sliver(metadata, pair, kind, bytes)?;
        metadata.verify_sliver(kind, &sliver).map_err(verification_error)?;
        Ok(sliver)
    }

    /// Decodes the sliver of `kind` in pair `pair` and checks its index and shape, not yet its
    /// hash.
    fn decoded_sliver(
        &self,
        metadata: &VerifiedMetadata,
        pair: u16,
        kind: SliverType,
        bytes: &[u8],
    ) -> Result<Sliver, NodeError> {
        let limit = sliver_limit(self.config, kind, metadata.symbol_size());
        let sliver: Sliver = from_bcs(bytes, limit).map_err(|error| match error {
            redstuff::WireError::TooLarge { .. } => NodeError::SliverTooLarge(error),
            error => NodeError::Malformed(error),
        })?;
        let expected_index = match kind {
            SliverType::Primary => usize::from(pair),
            SliverType::Secondary => {
                redstuff::secondary_index_of_pair(usize::from(pair), self.config.n_shards())
            }
        };
        if sliver.index() != expected_index {
            return Err(NodeError::WrongSliverIndex {
                pair,
                kind,
                expected: expected_index,
                got: sliver.index,
            });
        }
        metadata.check_sliver_shape(kind, &sliver).map_err(verification_error)?;
        Ok(sliver)
    }

    /// The stored BCS sliver.
    pub fn sliver_bytes(&self, blob_id: &BlobId, pair: u16, kind: SliverType) -> Result<Vec<u8>, NodeError> {
        let shard = self.owned_shard_of(blob_id, pair)?;
        self.store.get_sliver(&blob_id.0, shard, kind_of(kind))?.ok_or(NodeError::SliverNotStored {
            blob_id: *blob_id,
            pair,
            kind,
        })
    }

    /// Whether the node holds both slivers of every shard it owns for `blob_id`.
    pub(crate) fn holds_everything(&self, blob_id: &BlobId) -> Result<bool, NodeError> {
        for shard in self.owned_shards() {
            if self.store.sliver_kinds_held(&blob_id.0, shard)? != (true, true) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Signs a storage confirmation for `persistence`, if the blob is registered that way and
    /// the node holds every sliver it owns of it.
    pub(crate) fn confirmation(
        &self,
        blob_id: &BlobId,
        persistence: PersistenceType,
    ) -> Result<morsa_api::node::SignedConfirmation, NodeError> {
        let info = self.require_live(blob_id)?;
        let epoch = self.view().epoch();
        let registered = match &persistence {
            PersistenceType::Permanent => info.has_permanent(epoch),
            PersistenceType::Deletable { object_id } => info.has_deletable(object_id, epoch),
        };
        if !registered {
            return Err(NodeError::NotRegisteredAs(*blob_id));
        }
        if !self.holds_everything(blob_id)? {
            return Err(NodeError::NotHeldYet(*blob_id));
        }
        let message = morsa_core::storage_confirmation_message(epoch, blob_id, &persistence);
        Ok(morsa_api::node::SignedConfirmation {
            epoch,
            blob_id: *blob_id,
            persistence,
            signature: self.key.sign(&message),
            node: self.id,
        })
    }
}

/// The blob an event is about.
fn blob_of(event: &Event) -> Option<BlobId> {
    match event {
        Event::BlobRegistered { blob_id, .. }
        | Event::BlobCertified { blob_id, .. }
        | Event::BlobExtended { blob_id, .. }
        | Event::BlobDeleted { blob_id, .. }
        | Event::InvalidBlobId { blob_id, .. } => Some(*blob_id),
        _ => None,
    }
}

/// Largest sliver body of any blob: the largest sliver of the system.
pub(crate) fn max_sliver_body(config: EncodingConfig) -> usize {
    config.ks() * usize::from(redstuff::MAX_SYMBOL_SIZE) + 1024
}

/// The node's error for a sliver that fails its check against the metadata.
fn verification_error(error: redstuff::SliverVerificationError) -> NodeError {
    match error {
        redstuff::SliverVerificationError::HashMismatch { .. } => NodeError::SliverHashMismatch(error),
        error => NodeError::SliverShape(error),
    }
}
