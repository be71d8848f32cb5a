//! Keeping an account's blobs alive: which of its objects expire soon, and paying for more
//! epochs of each before it does, so that an archive never lapses because nobody renewed it.

use std::collections::BTreeMap;

use morsa_api::coord::OwnedBlob;
use morsa_core::Epoch;
use morsa_core::protocol::Command;
use redstuff::BlobId;

use crate::{Client, Error};

/// What became of one object a renewal pass looked at.
#[derive(Debug)]
pub struct Renewal {
    /// The object, as listed before the pass.
    pub blob: OwnedBlob,
    /// Its new end epoch, or why it could not be extended.
    pub outcome: Result<Epoch, Error>,
}

impl Client {
    /// The account's certified objects whose end epoch comes within `epochs` of the current
    /// epoch (the current epoch being `current`), soonest first.
    pub async fn expiring_within(&self, epochs: u32) -> Result<(Epoch, Vec<OwnedBlob>), Error> {
        let current = self.system().await?.epoch;
        let mut blobs: Vec<OwnedBlob> = self
            .list_blobs()
            .await?
            .into_iter()
            .filter(|blob| expires_within(blob, current, epochs))
            .collect();
        blobs.sort_by_key(|blob| (blob.end_epoch, blob.object));
        Ok((current, blobs))
    }

    /// Pays `epochs` more epochs for each of the account's certified objects that expire
    /// within `within` epochs (as many as the system sells ahead, if fewer). One object that
    /// cannot be extended does not stop the others: each outcome is answered.
    pub async fn renew_expiring(&self, within: u32, epochs: u32) -> Result<Vec<Renewal>, Error> {
        let max_ahead = self.system().await?.max_epochs_ahead;
        let (current, blobs) = self.expiring_within(within).await?;
        let mut renewals = Vec::with_capacity(blobs.len());
        for blob in blobs {
            renewals.push(self.extend_object(blob, epochs, current, max_ahead).await);
        }
        Ok(renewals)
    }

    /// Keeps each blob of `wanted` paid until (at least) its epoch: extends the account's
    /// longest-lived certified object of the blob that ends before it (as far as the system
    /// sells ahead, if less). Blobs already paid long enough, or not the account's, are left
    /// alone; each extension's outcome is answered. What a gateway calls to keep the blobs of
    /// retained objects stored until their retention ends.
    pub async fn keep_paid_until(&self, wanted: &BTreeMap<BlobId, Epoch>) -> Result<Vec<Renewal>, Error> {
        let system = self.system().await?;
        let mut longest: BTreeMap<BlobId, OwnedBlob> = BTreeMap::new();
        for blob in self.list_blobs().await? {
            if blob.certified_epoch.is_none() || blob.invalid || !wanted.contains_key(&blob.blob_id) {
                continue;
            }
            match longest.get(&blob.blob_id) {
                Some(kept) if kept.end_epoch >= blob.end_epoch => {}
                _ => {
                    longest.insert(blob.blob_id, blob);
                }
            }
        }
        let mut renewals = Vec::new();
        for (blob_id, blob) in longest {
            let until = wanted.get(&blob_id).map_or(0, |epoch| epoch.0);
            let short = until.saturating_sub(blob.end_epoch.0);
            if short > 0 {
                renewals.push(self.extend_object(blob, short, system.epoch, system.max_epochs_ahead).await);
            }
        }
        Ok(renewals)
    }

    /// Pays `epochs` more epochs of `blob` (as many as the system sells ahead, if fewer).
    async fn extend_object(&self, blob: OwnedBlob, epochs: u32, current: Epoch, max_ahead: u32) -> Renewal {
        let ahead = blob.end_epoch.0.saturating_sub(current.0);
        let add = epochs.min(max_ahead.saturating_sub(ahead));
        let outcome = match add {
            0 => Err(Error::PaidToTheLimit { end: blob.end_epoch.0, max_ahead }),
            add => self
                .submit(Command::ExtendBlob { object: blob.object, epochs: add }, "renewing a blob")
                .await
                .map(|_| Epoch(blob.end_epoch.0 + add)),
        };
        Renewal { blob, outcome }
    }
}

/// Whether `blob` is a certified, valid object that ends within `epochs` of `current`.
fn expires_within(blob: &OwnedBlob, current: Epoch, epochs: u32) -> bool {
    blob.certified_epoch.is_some() && !blob.invalid && blob.end_epoch.0 <= current.0.saturating_add(epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(end: u32, certified: bool, invalid: bool) -> OwnedBlob {
        OwnedBlob {
            object: morsa_core::ObjectId([u8::try_from(end).unwrap(); 32]),
            blob_id: redstuff::BlobId::from_root(1, &[1; 32]),
            size: 1,
            encoded_size: 1,
            deletable: true,
            registered_epoch: Epoch(1),
            end_epoch: Epoch(end),
            certified_epoch: certified.then_some(Epoch(1)),
            invalid,
        }
    }

    #[test]
    fn the_window_holds_certified_valid_objects_ending_by_its_last_epoch() {
        let current = Epoch(10);
        assert!(expires_within(&blob(11, true, false), current, 2));
        assert!(expires_within(&blob(12, true, false), current, 2));
        assert!(!expires_within(&blob(13, true, false), current, 2));
        assert!(!expires_within(&blob(11, false, false), current, 2), "not certified");
        assert!(!expires_within(&blob(11, true, true), current, 2), "invalid");
        assert!(expires_within(&blob(10, true, false), current, 0));
        assert!(!expires_within(&blob(11, true, false), current, 0));
    }
}
