//! Everything besides storing and reading: status, listing, deleting, extending, and the
//! state of the system and of every node.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use morsa_api::coord::{BlobStatus, BlobStatusKind, Command, CommitteeInfo, OwnedBlob, SystemInfo};
use morsa_api::node::NodeHealth;
use morsa_core::{Epoch, ObjectId};
use redstuff::BlobId;

use crate::{Client, Error, Refusal};

/// How one storage node answered a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node's address.
    pub address: String,
    /// Shards the committee gives it.
    pub shards: usize,
    /// Its health, or why it could not be had.
    pub health: Result<NodeHealth, String>,
    /// How long it took to answer.
    pub latency: Duration,
}

impl Client {
    /// The coordinator's view of a blob.
    pub async fn blob_status(&self, blob_id: &BlobId) -> Result<BlobStatus, Error> {
        self.coord.blob_status(blob_id).await.map_err(Error::coordinator("reading the blob's status"))
    }

    /// Every live blob object of the account, in object-ID order.
    pub async fn list_blobs(&self) -> Result<Vec<OwnedBlob>, Error> {
        let mut blobs: Vec<OwnedBlob> = Vec::new();
        loop {
            let after = blobs.last().map(|blob| blob.object);
            let page = self
                .coord
                .account_blobs(&self.account(), after.as_ref(), morsa_api::coord::MAX_ACCOUNT_BLOBS_PAGE)
                .await
                .map_err(Error::coordinator("listing the account's blobs"))?;
            blobs.extend(page.blobs);
            if !page.more {
                return Ok(blobs);
            }
        }
    }

    /// Deletes every deletable object of `blob_id` the account owns; answers them. The
    /// blob stays readable while other objects keep it.
    pub async fn delete(&self, blob_id: &BlobId) -> Result<Vec<ObjectId>, Error> {
        let status = self.blob_status(blob_id).await?;
        let mine: Vec<ObjectId> = status
            .objects
            .iter()
            .filter(|object| object.owner == self.account() && object.deletable)
            .map(|object| object.object)
            .collect();
        if mine.is_empty() {
            return Err(Error::Refused(Refusal::NothingToDelete {
                blob_id: *blob_id,
                objects: status.objects.len(),
            }));
        }
        for object in &mine {
            self.submit(Command::DeleteBlob { object: *object }, "deleting the blob").await?;
        }
        Ok(mine)
    }

    /// Pays for `epochs` more epochs of `blob_id`, on the account's own certified object that
    /// lives longest, or else on a permanent one; answers the new end epoch. Another account's
    /// deletable object is never extended (its owner could delete it).
    pub async fn extend(&self, blob_id: &BlobId, epochs: u32) -> Result<Epoch, Error> {
        let status = self.blob_status(blob_id).await?;
        if status.status != BlobStatusKind::Certified {
            return Err(Error::NotAvailable { blob_id: *blob_id, status: status.status });
        }
        // Only an object nobody else can delete is worth paying for: the account's own, or
        // a permanent one. Another account's deletable object may be deleted by its owner,
        // and with it the data, whatever was paid.
        let object = status
            .objects
            .iter()
            .filter(|object| object.certified_epoch.is_some())
            .filter(|object| object.owner == self.account() || !object.deletable)
            .max_by_key(|object| (object.owner == self.account(), object.end_epoch))
            .ok_or_else(|| Error::Refused(Refusal::OnlyOthersDeletable(*blob_id)))?;
        let system = self.system().await?;
        let left = system.max_epochs_ahead.saturating_sub(object.end_epoch.0.saturating_sub(system.epoch.0));
        crate::store::check_epochs(epochs, left)?;
        self.submit(Command::ExtendBlob { object: object.object, epochs }, "extending the blob").await?;
        Ok(Epoch(object.end_epoch.0 + epochs))
    }

    /// The system's parameters and counters.
    pub async fn system(&self) -> Result<SystemInfo, Error> {
        self.coord.system().await.map_err(Error::coordinator("reading the system"))
    }

    /// The current and next committees.
    pub async fn committee(&self) -> Result<CommitteeInfo, Error> {
        self.coord.committee().await.map_err(Error::coordinator("reading the committee"))
    }

    /// The health of every node of the current committee, asked in parallel.
    pub async fn health(&self) -> Result<Vec<NodeReport>, Error> {
        let nodes = self.refresh_nodes().await?;
        let checks = (0..nodes.len()).map(|member| {
            let nodes = &nodes;
            async move {
                let started = Instant::now();
                let health = nodes.client(member).health().await.map_err(|error| error.to_string());
                NodeReport {
                    address: nodes.committee().members[member].address.clone(),
                    shards: nodes.weight(member),
                    health,
                    latency: started.elapsed(),
                }
            }
        });
        Ok(join_all(checks).await)
    }
}
