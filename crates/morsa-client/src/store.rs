//! Storing one blob: encode, pay and register, upload to every node, certify with a quorum.

mod background;
mod batches;
mod shares;
mod timings;
mod trailing;
mod upload;
mod waves;

use std::sync::Arc;
use std::time::{Duration, Instant};

use morsa_api::coord::{BlobObjectSummary, BlobStatus, BlobStatusKind, Command, Event};
use morsa_core::{AccountId, BlsSignature, Certificate, Epoch, ObjectId, PersistenceType};
use redstuff::{BlobId, EncodedBlob};

use background::Background;
pub use background::DetachedUploads;
use shares::Encoding;
use timings::Clock;
pub use timings::StoreTimings;
pub(crate) use trailing::Trailing;
use upload::Common;
use waves::{Confirmed, Waves};

use crate::{Client, Error, InternalError, NodeFailure, Progress};

/// Most upload rounds of one store: a round whose epoch ended under it is retried with the
/// next committee.
const EPOCH_CHANGE_ATTEMPTS: u32 = 3;

/// How to store a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Epochs to pay for, starting with the current one.
    pub epochs: u32,
    /// Permanent blobs cannot be deleted before they expire; others can, by their owner.
    pub permanent: bool,
    /// Store again even if the blob is already certified for long enough.
    pub force: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { epochs: 5, permanent: false, force: false }
    }
}

/// What a store did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredHow {
    /// Uploaded and certified now, as blob object `object`.
    NewlyCertified {
        /// The new blob object.
        object: ObjectId,
    },
    /// Already certified until at least the asked end epoch by `object`, an object the caller
    /// owns or a permanent one (which nobody can delete); nothing was uploaded.
    AlreadyCertified {
        /// The certified object that keeps the blob stored long enough.
        object: ObjectId,
    },
}

/// The result of storing one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOutcome {
    /// The blob ID.
    pub blob_id: BlobId,
    /// Unencoded size.
    pub size: u64,
    /// Encoded size (what storage was paid for).
    pub encoded_size: u64,
    /// What happened.
    pub how: StoredHow,
    /// First epoch in which the blob is no longer stored.
    pub end_epoch: Epoch,
    /// Nodes that failed before the blob was certified; they rebuild their slivers on their
    /// own. Nodes still uploading then go on in the background ([`Client::finish_uploads`]).
    pub left_behind: Vec<NodeFailure>,
    /// Time spent encoding.
    pub encode_time: Duration,
    /// Time from the start to certification.
    pub total_time: Duration,
    /// Where that time went, phase by phase.
    pub timings: StoreTimings,
}

impl Client {
    /// Stores `data` as one blob (at most [`redstuff::EncodingConfig::max_blob_size`] bytes;
    /// see [`Client::store_file`] for larger files): encode, check whether it is stored
    /// already, register, upload in waves until a quorum confirms, certify.
    pub async fn store_blob(&self, data: Vec<u8>, options: &StoreOptions) -> Result<StoreOutcome, Error> {
        // The uploads that go on after certification hold the blob's whole encoding: stores
        // and those uploads together hold at most a bounded amount (see `Trailing`), so many
        // small blobs are stored at once and a large file's chunks one after the other.
        let queued = Instant::now();
        let room =
            self.trailing.room_for(self.encoding, morsa_core::convert::saturating_u64(data.len())).await;
        let queued = queued.elapsed();
        let (mut outcome, background) = self.store_now(data, options).await?;
        outcome.timings.queued = queued;
        if let Some(background) = background {
            self.trailing.keep(background, trailing::trailing_limit(outcome.total_time), room);
        }
        Ok(outcome)
    }

    /// [`Client::store_blob`] for callers that store several blobs at once on one client
    /// (the S3 gateway): it does not wait for the uploads of other blobs, and the uploads of
    /// this one still running when it is certified are handed back to the caller, who bounds
    /// the memory they hold (their blob's encoding) and waits for them
    /// ([`DetachedUploads::finish`]), instead of the next store on this client.
    pub async fn store_blob_detached(
        &self,
        data: Vec<u8>,
        options: &StoreOptions,
    ) -> Result<(StoreOutcome, DetachedUploads), Error> {
        let (outcome, background) = self.store_now(data, options).await?;
        let limit = trailing::trailing_limit(outcome.total_time);
        Ok((outcome, DetachedUploads::new(background, limit, Arc::clone(&self.trailing.late_failures))))
    }

    /// Stores `data` as one blob now; answers the uploads still running once it is certified.
    async fn store_now(
        &self,
        data: Vec<u8>,
        options: &StoreOptions,
    ) -> Result<(StoreOutcome, Option<Background>), Error> {
        let started = Instant::now();
        let mut clock = Clock::start();
        let mut timings = StoreTimings::default();
        // Checked before the blob is encoded: a bad period is the caller's mistake.
        check_epochs(options.epochs, self.genesis().await?.max_epochs_ahead)?;
        let size = morsa_core::convert::saturating_u64(data.len());
        let encoded_size = self.encoding.encoded_size(size).map_err(redstuff::EncodeError::from)?;
        // The epoch is read while the blob is encoded (the committee: `/v1/system` may wait
        // for its next state hash).
        let epoch = async {
            let mut read = Clock::start();
            let info = self.coord.committee().await.map_err(Error::coordinator("reading the epoch"));
            (info, read.lap())
        };
        let ((committee, read), encoded) = tokio::join!(epoch, self.encode(data));
        timings.epoch = read;
        let (committee, encoded) = (committee?, encoded?);
        timings.encode = clock.lap();
        let wanted_end = Epoch(committee.epoch.0 + options.epochs);
        let encode_time = started.elapsed();
        let blob_id = *encoded.metadata.blob_id();
        let outcome = |how, end_epoch, left_behind, timings| StoreOutcome {
            blob_id,
            size,
            encoded_size,
            how,
            end_epoch,
            left_behind,
            encode_time,
            total_time: started.elapsed(),
            timings,
        };

        let status = self
            .coord
            .blob_status(&blob_id)
            .await
            .map_err(Error::coordinator("checking the blob's status"))?;
        timings.status = clock.lap();
        if !options.force
            && let Some(cover) = covering_object(&status, self.account(), wanted_end, options.permanent)
        {
            self.report(Progress::AlreadyStored { blob_id });
            let how = StoredHow::AlreadyCertified { object: cover.object };
            return Ok((outcome(how, cover.end_epoch, Vec::new(), timings), None));
        }
        let registration = self.register(&encoded, size, encoded_size, options, wanted_end).await?;
        timings.register = clock.lap();
        tracing::debug!(%blob_id, elapsed = ?started.elapsed(), "registered");

        // Every pair is held until the blob is certified (a round the epoch ends under is done
        // again with the next committee); after that, only by the uploads still running.
        let encoding = Arc::new(Encoding::new(encoded));
        let held = status.status == BlobStatusKind::Certified;
        let mut attempts = 0;
        // The committee read with the epoch serves the first round.
        let mut committee =
            Some(crate::committee_cache::KnownCommittee::new(committee.current, &committee.zones));
        let (confirmed, waves) = loop {
            attempts += 1;
            let nodes = match committee.take() {
                Some(committee) => self.adopt_committee(committee)?,
                None => self.refresh_nodes().await?,
            };
            let epoch = nodes.committee().epoch;
            match self
                .upload_and_certify(
                    &registration,
                    Arc::clone(&encoding),
                    nodes,
                    held,
                    (&mut clock, &mut timings),
                )
                .await
            {
                Ok(done) => break done,
                // The epoch changed under the store: the shards moved and the confirmations
                // name the old epoch. The registration holds; upload to the new committee.
                Err(error) if attempts < EPOCH_CHANGE_ATTEMPTS && self.epoch_moved_from(epoch).await => {
                    tracing::info!(%blob_id, %error, "the epoch changed during the store; uploading again");
                }
                Err(error) => return Err(error),
            }
        };
        drop(encoding);
        self.report(Progress::Certified { blob_id });
        tracing::debug!(%blob_id, elapsed = ?started.elapsed(), "certified");
        let done = outcome(
            StoredHow::NewlyCertified { object: registration.object },
            registration.end_epoch,
            Vec::new(),
            timings,
        );
        // Nodes still uploading finish in the background (see `Client::finish_uploads`).
        let background = waves.into_background(&confirmed);
        Ok((StoreOutcome { left_behind: confirmed.failures, ..done }, Some(background)))
    }

    /// Uploads `encoded` to `nodes` in waves until a quorum confirms, and certifies the
    /// registered object with the confirmations; answers them with the waves still running.
    async fn upload_and_certify(
        &self,
        registration: &Registration,
        encoding: Arc<Encoding>,
        nodes: Arc<crate::nodes::NodeSet>,
        probably_held: bool,
        (clock, timings): (&mut Clock, &mut StoreTimings),
    ) -> Result<(Confirmed, Waves), Error> {
        let blob_id = encoding.blob_id();
        let total = encoding.symbol_bytes();
        self.report(Progress::UploadStarted { blob_id, total });
        let common = Common {
            nodes,
            persistence: registration.persistence,
            concurrency: self.max_requests_per_node,
            progress: Arc::clone(&self.progress),
            trouble: Arc::new(tokio::sync::Notify::new()),
            // Certified through objects the caller cannot rely on (another account's
            // deletable ones): the nodes most likely hold the slivers already, so each is
            // first asked for its confirmation and uploaded to only if it lacks some.
            probably_held,
        };
        let mut waves = Waves::start(common, encoding);
        let confirmed =
            waves.until_quorum(|weight, needed| self.report(Progress::Confirmation { weight, needed })).await;
        let Confirmed { weight, needed, .. } = confirmed;
        if weight < needed {
            return Err(Error::NoQuorum { blob_id, weight, needed, failures: confirmed.failures });
        }
        tracing::debug!(%blob_id, weight, "quorum of confirmations");
        timings.upload += clock.lap();
        self.certify(registration.object, &confirmed.parts).await?;
        timings.certify = clock.lap();
        Ok((confirmed, waves))
    }

    /// Whether the coordinator's current epoch is past `epoch` (false if it cannot be read).
    async fn epoch_moved_from(&self, epoch: Epoch) -> bool {
        self.coord.committee().await.is_ok_and(|info| info.current.epoch > epoch)
    }

    /// Encodes `data` on a blocking thread.
    async fn encode(&self, data: Vec<u8>) -> Result<EncodedBlob, Error> {
        let encoding = self.encoding;
        let size = morsa_core::convert::saturating_u64(data.len());
        let started = Instant::now();
        let encoded = tokio::task::spawn_blocking(move || redstuff::encode(encoding, &data))
            .await
            .map_err(Error::panicked("the encoder"))??;
        self.report(Progress::Encoded { bytes: size });
        tracing::debug!(size, elapsed = ?started.elapsed(), "encoded");
        Ok(encoded)
    }

    /// Pays for storage and registers a new blob object of the caller's.
    async fn register(
        &self,
        encoded: &EncodedBlob,
        size: u64,
        encoded_size: u64,
        options: &StoreOptions,
        wanted_end: Epoch,
    ) -> Result<Registration, Error> {
        let reserve = Command::ReserveStorage { size: encoded_size, epochs: options.epochs };
        let reserved = self.submit(reserve, "reserving storage").await?;
        let storage = *reserved.created.first().ok_or_else(|| no_object("reserving storage"))?;
        let register = Command::RegisterBlob {
            storage,
            blob_id: *encoded.metadata.blob_id(),
            root_hash: encoded.metadata.metadata().root(),
            size,
            encoding_type: redstuff::ENCODING_TYPE_RS2,
            deletable: !options.permanent,
        };
        let registered = self.submit(register, "registering the blob").await?;
        let object = *registered.created.first().ok_or_else(|| no_object("registering the blob"))?;
        let end_epoch = registered
            .events
            .iter()
            .find_map(|record| match &record.event {
                Event::BlobRegistered { end_epoch, object: registered, .. } if *registered == object => {
                    Some(*end_epoch)
                }
                _ => None,
            })
            .unwrap_or(wanted_end);
        let persistence = match options.permanent {
            true => PersistenceType::Permanent,
            false => PersistenceType::Deletable { object_id: object },
        };
        Ok(Registration { object, end_epoch, persistence })
    }

    /// Aggregates the confirmations into a certificate and submits it.
    async fn certify(&self, object: ObjectId, parts: &[(u16, BlsSignature)]) -> Result<(), Error> {
        let certificate = Certificate::aggregate(parts)
            .map_err(|error| Error::Internal(InternalError::Aggregate(error)))?;
        self.submit(Command::CertifyBlob { object, certificate }, "certifying the blob").await?;
        Ok(())
    }
}

/// A blob object registered for a store.
struct Registration {
    object: ObjectId,
    end_epoch: Epoch,
    persistence: PersistenceType,
}

/// A certified object of `status` that keeps the blob stored until `wanted_end` for the
/// caller `me`: one that `me` owns (deletable or not, as asked), or a permanent one, which
/// nobody can delete. Another account's deletable object does not count: its owner may
/// delete it at any time, and the nodes then drop the data.
fn covering_object(
    status: &BlobStatus,
    me: AccountId,
    wanted_end: Epoch,
    want_permanent: bool,
) -> Option<&BlobObjectSummary> {
    if status.status != BlobStatusKind::Certified {
        return None;
    }
    status
        .objects
        .iter()
        .filter(|object| object.certified_epoch.is_some() && object.end_epoch >= wanted_end)
        .find(|object| match (object.deletable, want_permanent) {
            (false, _) => true,
            (true, false) => object.owner == me,
            (true, true) => false,
        })
}

/// Refuses a storage period outside `1..=max` epochs (`max` is the system's
/// `max_epochs_ahead`, also the most an extension may reach past the current epoch).
pub(crate) fn check_epochs(epochs: u32, max: u32) -> Result<(), Error> {
    if epochs == 0 || epochs > max {
        return Err(Error::EpochsOutOfRange { asked: epochs, max });
    }
    Ok(())
}

fn no_object(during: &'static str) -> Error {
    Error::NoObjectCreated { during }
}
