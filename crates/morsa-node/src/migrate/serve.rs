//! The previous owner's side: pages of a locked shard, for its new owner only, and the
//! deletion of a locked shard once its grace is over.

use morsa_api::node::{
    MAX_SHARD_PAGE_BLOBS, SHARD_PAGE_TARGET_BYTES, ShardPage, ShardPageItem, ShardPageRequest,
};
use morsa_store::SliverKind;
use redstuff::BlobId;

use crate::blob_info::{BlobInfo, Status};
use crate::error::NodeError;
use crate::node::Node;

impl Node {
    /// Answers `request` if it comes from the node the current committee names as the
    /// shard's owner, signed with that node's key, for a shard this node keeps locked for it.
    /// Blocks (store reads).
    pub(crate) fn shard_page(&self, request: &ShardPageRequest) -> Result<ShardPage, NodeError> {
        if request.max_blobs == 0 || request.max_blobs > MAX_SHARD_PAGE_BLOBS {
            return Err(NodeError::PageSize { asked: request.max_blobs, max: MAX_SHARD_PAGE_BLOBS });
        }
        self.check_page_request(request)?;
        let shard = request.shard.0;
        let epoch = self.view().epoch();
        let limit = usize::try_from(request.max_blobs).unwrap_or(usize::MAX);
        // One more record than asked tells where the next page starts.
        let records = self.store().blob_infos_from(request.from.as_ref().map(|from| &from.0), limit + 1)?;
        let mut items = Vec::new();
        let mut bytes = 0usize;
        let mut next = None;
        for (index, (blob_id, record)) in records.into_iter().enumerate() {
            if index == limit || bytes >= SHARD_PAGE_TARGET_BYTES {
                next = Some(BlobId(blob_id));
                break;
            }
            let certified = bcs::from_bytes::<BlobInfo>(&record)
                .is_ok_and(|info| info.status(epoch) == Status::Certified);
            if !certified {
                continue;
            }
            let store = self.store();
            let item = ShardPageItem {
                blob_id: BlobId(blob_id),
                metadata: store.get_metadata(&blob_id)?,
                primary: store.get_sliver(&blob_id, shard, SliverKind::Primary)?,
                secondary: store.get_sliver(&blob_id, shard, SliverKind::Secondary)?,
            };
            bytes += [&item.metadata, &item.primary, &item.secondary]
                .iter()
                .flat_map(|piece| piece.as_ref())
                .map(Vec::len)
                .sum::<usize>();
            items.push(item);
        }
        Ok(ShardPage { items, next })
    }

    /// Whether `request` may be served: this node is in its epoch, keeps the shard locked
    /// for the requester, the committee names the requester as the shard's owner, and the
    /// signature is the requester's.
    fn check_page_request(&self, request: &ShardPageRequest) -> Result<(), NodeError> {
        let view = self.view();
        let (asked, current) = (request.epoch.0, view.epoch().0);
        if asked > current {
            return Err(NodeError::EpochNotReached { asked, current });
        }
        let refuse = |reason| NodeError::NotShardsNewOwner {
            shard: request.shard.0,
            requester: request.requester,
            epoch: asked,
            reason,
        };
        if asked < current {
            return Err(refuse("the epoch is over"));
        }
        let member = view
            .committee
            .member_by_node(&request.requester)
            .map(|member| &view.committee.members[member])
            .ok_or_else(|| refuse("the requester is not in the committee"))?;
        if !member.shards.contains(&request.shard) {
            return Err(refuse("the committee gives the shard to another node"));
        }
        if member.public_key.verify(&request.message(), &request.signature).is_err() {
            return Err(refuse("the signature is not the requester's"));
        }
        let kept = self
            .moves()
            .lock()
            .locked
            .get(&request.shard.0)
            .is_some_and(|locked| locked.to == request.requester);
        if !kept {
            return Err(refuse("this node does not keep the shard for it"));
        }
        Ok(())
    }

    /// Deletes the slivers of the locked shards whose grace is over and forgets them; answers
    /// the shards released. Blocks.
    pub(crate) fn release_locked_shards(&self) -> Result<Vec<u16>, NodeError> {
        let releasable = self.moves().lock().releasable(self.view().epoch());
        for shard in &releasable {
            let mut blobs = Vec::new();
            self.store().for_each_blob_info(|blob_id, _| {
                blobs.push(*blob_id);
                Ok(())
            })?;
            for blob_id in blobs {
                for kind in [SliverKind::Primary, SliverKind::Secondary] {
                    self.store().delete_slivers(&blob_id, *shard, kind)?;
                }
            }
            self.moves().update(self.store(), |moves| moves.locked.remove(shard))?;
            tracing::info!(shard, "deleted a moved shard after its grace epoch");
        }
        Ok(releasable)
    }
}
