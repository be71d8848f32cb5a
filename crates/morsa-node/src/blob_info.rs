//! What the node knows of each blob from the coordinator's events: its objects, their end
//! epochs and certification, and whether the blob was proven invalid. Pure and idempotent, so
//! replaying an event after a crash changes nothing.

use std::collections::BTreeMap;

use morsa_api::coord::Event;
use morsa_core::{Epoch, ObjectId};
use serde::{Deserialize, Serialize};

/// One registration of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Whether its owner may delete it.
    pub deletable: bool,
    /// First epoch it is no longer stored in.
    pub end_epoch: Epoch,
    /// When it was certified, if it was.
    pub certified_epoch: Option<Epoch>,
}

/// The node's record of one blob ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    /// Unencoded size, from the registration.
    pub size: u64,
    /// Registrations by object.
    pub objects: BTreeMap<ObjectId, ObjectInfo>,
    /// Epoch in which the blob was proven invalid.
    pub invalid: Option<Epoch>,
}

/// The blob's status as the node sees it in some epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No live registration.
    Nonexistent,
    /// Registered, not certified.
    Registered,
    /// Certified.
    Certified,
    /// Proven inconsistently encoded.
    Invalid,
}

impl BlobInfo {
    /// Folds one coordinator event about this blob into the record.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::BlobRegistered { object, size, end_epoch, deletable, .. } => {
                self.size = *size;
                self.objects.entry(*object).or_insert(ObjectInfo {
                    deletable: *deletable,
                    end_epoch: *end_epoch,
                    certified_epoch: None,
                });
            }
            Event::BlobCertified { object, end_epoch, epoch, .. } => {
                if let Some(info) = self.objects.get_mut(object) {
                    info.certified_epoch.get_or_insert(*epoch);
                    info.end_epoch = info.end_epoch.max(*end_epoch);
                }
            }
            Event::BlobExtended { object, end_epoch, .. } => {
                if let Some(info) = self.objects.get_mut(object) {
                    info.end_epoch = info.end_epoch.max(*end_epoch);
                }
            }
            Event::BlobDeleted { object, .. } => {
                self.objects.remove(object);
            }
            Event::InvalidBlobId { epoch, .. } => {
                self.invalid.get_or_insert(*epoch);
            }
            _ => {}
        }
    }

    /// Registrations still live in `epoch`.
    pub fn live(&self, epoch: Epoch) -> impl Iterator<Item = (&ObjectId, &ObjectInfo)> {
        self.objects.iter().filter(move |(_, info)| info.end_epoch > epoch)
    }

    /// The status in `epoch`.
    pub fn status(&self, epoch: Epoch) -> Status {
        if self.invalid.is_some() {
            return Status::Invalid;
        }
        let mut live = self.live(epoch).peekable();
        if live.peek().is_none() {
            return Status::Nonexistent;
        }
        if live.any(|(_, info)| info.certified_epoch.is_some()) {
            Status::Certified
        } else {
            Status::Registered
        }
    }

    /// Whether the coordinator may challenge the blob in `epoch`: valid, and a live
    /// registration was certified before `epoch` (blobs certified in it have a grace period).
    pub fn challengeable(&self, epoch: Epoch) -> bool {
        self.invalid.is_none()
            && self
                .live(epoch)
                .any(|(_, info)| info.certified_epoch.is_some_and(|certified| certified < epoch))
    }

    /// Latest end epoch over the live registrations.
    pub fn end_epoch(&self, epoch: Epoch) -> Option<Epoch> {
        self.live(epoch).map(|(_, info)| info.end_epoch).max()
    }

    /// Whether a live permanent (not deletable) registration exists.
    pub fn has_permanent(&self, epoch: Epoch) -> bool {
        self.live(epoch).any(|(_, info)| !info.deletable)
    }

    /// Whether `object` is a live deletable registration.
    pub fn has_deletable(&self, object: &ObjectId, epoch: Epoch) -> bool {
        self.live(epoch).any(|(id, info)| id == object && info.deletable)
    }

    /// Whether nothing needs the blob's data any more in `epoch`: every registration expired
    /// or was deleted, or the blob is invalid.
    pub fn is_garbage(&self, epoch: Epoch) -> bool {
        self.invalid.is_some() || self.live(epoch).next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use redstuff::BlobId;

    use super::*;

    const BLOB: BlobId = BlobId([1; 32]);
    const OBJECT: ObjectId = ObjectId([2; 32]);

    fn registered(deletable: bool) -> Event {
        Event::BlobRegistered {
            blob_id: BLOB,
            object: OBJECT,
            size: 10,
            encoded_size: 100,
            end_epoch: Epoch(5),
            deletable,
            epoch: Epoch(1),
        }
    }

    #[test]
    fn a_blob_goes_from_registered_to_certified_to_expired() {
        let mut info = BlobInfo::default();
        assert_eq!(info.status(Epoch(1)), Status::Nonexistent);
        info.apply(&registered(false));
        assert_eq!(info.status(Epoch(1)), Status::Registered);
        assert!(info.has_permanent(Epoch(1)));
        let certified = Event::BlobCertified {
            blob_id: BLOB,
            object: OBJECT,
            end_epoch: Epoch(5),
            deletable: false,
            epoch: Epoch(2),
        };
        assert!(!info.challengeable(Epoch(2)), "not challenged before it is certified");
        info.apply(&certified);
        info.apply(&certified); // replayed after a crash: no change
        assert!(!info.challengeable(Epoch(2)), "grace in the epoch it was certified in");
        assert!(info.challengeable(Epoch(3)) && !info.challengeable(Epoch(5)));
        assert_eq!(info.status(Epoch(4)), Status::Certified);
        assert_eq!(info.end_epoch(Epoch(4)), Some(Epoch(5)));
        assert_eq!(info.status(Epoch(5)), Status::Nonexistent);
        assert!(info.is_garbage(Epoch(5)));
        info.apply(&Event::BlobExtended { blob_id: BLOB, object: OBJECT, end_epoch: Epoch(8) });
        assert_eq!(info.status(Epoch(5)), Status::Certified);
    }

    #[test]
    fn deletion_and_invalidation_make_the_data_garbage() {
        let mut info = BlobInfo::default();
        info.apply(&registered(true));
        assert!(info.has_deletable(&OBJECT, Epoch(1)));
        assert!(!info.has_permanent(Epoch(1)));
        info.apply(&Event::BlobDeleted { blob_id: BLOB, object: OBJECT, epoch: Epoch(1) });
        assert!(info.is_garbage(Epoch(1)));

        let mut info = BlobInfo::default();
        info.apply(&registered(false));
        info.apply(&Event::InvalidBlobId { blob_id: BLOB, epoch: Epoch(3) });
        assert_eq!(info.status(Epoch(3)), Status::Invalid);
        assert!(!info.challengeable(Epoch(3)));
        assert!(info.is_garbage(Epoch(3)));
    }
}
