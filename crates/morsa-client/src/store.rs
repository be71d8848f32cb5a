//! Storing one blob: encode, pay and register, upload to every node, certify with a quorum.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use morsa_api::coord::{BlobObjectSummary, BlobStatus, BlobStatusKind, Command, Event};
use morsa_api::node::{NodeErrorCode, SignedConfirmation};
use morsa_core::{AccountId, BlsSignature, Certificate, Epoch, ObjectId, PersistenceType, Threshold};
use redstuff::{BlobId, EncodedBlob, MetadataWithId, SliverType};
use tokio::task::JoinSet;

use crate::nodes::{NodeSet, Retry, is_transient};
use crate::{Client, Error, NodeFailure, Progress, ProgressSink};
use morsa_api::client::ClientError as ApiError;

/// Longest a store waits for the previous blob's uploads still running in the background.
const PREVIOUS_UPLOADS_LIMIT: Duration = Duration::from_secs(120);

/// Shortest wait for a stalled first wave before the other nodes are started.
const STALL_MIN: Duration = Duration::from_millis(100);

/// Most sliver bytes being sent to one node at a time.
const IN_FLIGHT_BYTES_PER_NODE: usize = 64 << 20;

/// Confirmations are asked again while a node is still committing.
const CONFIRMATION_RETRY: Retry =
    Retry { attempts: 8, first_pause: Duration::from_millis(20), max_pause: Duration::from_secs(1) };

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
}

impl Client {
    /// Stores `data` as one blob (at most [`redstuff::EncodingConfig::max_blob_size`] bytes;
    /// see [`Client::store_file`] for larger files).
    pub async fn store_blob(&self, data: Vec<u8>, options: &StoreOptions) -> Result<StoreOutcome, Error> {
        // The previous blob's last uploads hold its whole encoding: let them finish first, so
        // that storing many blobs (a file's chunks) holds one encoding at a time.
        self.settle_uploads(PREVIOUS_UPLOADS_LIMIT).await;
        let started = Instant::now();
        // Checked before the blob is encoded: a bad period is the caller's mistake.
        let system = self.coord.system().await.map_err(Error::coordinator("reading the epoch"))?;
        check_epochs(options.epochs, system.max_epochs_ahead)?;
        let epoch = system.epoch;
        let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let encoding = self.encoding;
        let encoded = tokio::task::spawn_blocking(move || redstuff::encode(encoding, &data))
            .await
            .map_err(|error| Error::Refused(format!("the encoder panicked: {error}")))??;
        let encode_time = started.elapsed();
        self.report(Progress::Encoded { bytes: size });
        tracing::debug!(size, elapsed = ?encode_time, "encoded");
        let blob_id = *encoded.metadata.blob_id();
        let encoded_size = encoding.encoded_size(size).map_err(redstuff::EncodeError::from)?;

        let status = self
            .coord
            .blob_status(&blob_id)
            .await
            .map_err(Error::coordinator("checking the blob's status"))?;
        let wanted_end = Epoch(epoch.0 + options.epochs);
        if !options.force
            && let Some(cover) = covering_object(&status, self.account(), wanted_end, options.permanent)
        {
            self.report(Progress::AlreadyStored { blob_id });
            return Ok(StoreOutcome {
                blob_id,
                size,
                encoded_size,
                how: StoredHow::AlreadyCertified { object: cover.object },
                end_epoch: cover.end_epoch,
                left_behind: Vec::new(),
                encode_time,
                total_time: started.elapsed(),
            });
        }
        // Certified through objects the caller cannot rely on (another account's deletable
        // ones): the caller gets an object of its own. The nodes most likely hold the slivers
        // already, so each is first asked for its confirmation and uploaded to only if it
        // lacks some.
        let probably_held = status.status == BlobStatusKind::Certified;

        let reserved = self
            .submit(
                Command::ReserveStorage { size: encoded_size, epochs: options.epochs },
                "reserving storage",
            )
            .await?;
        let storage = *reserved.created.first().ok_or_else(|| no_object("reserving storage"))?;
        let register = Command::RegisterBlob {
            storage,
            blob_id,
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

        tracing::debug!(%blob_id, elapsed = ?started.elapsed(), "registered");
        let nodes = self.refresh_nodes().await?;
        let encoded = Arc::new(encoded);
        let total = encoded
            .pairs
            .iter()
            .map(|pair| pair.primary.symbols.len() + pair.secondary.symbols.len())
            .sum::<usize>();
        self.report(Progress::UploadStarted { blob_id, total: u64::try_from(total).unwrap_or(u64::MAX) });
        // Nodes that together make a quorum get their slivers first; the others start once
        // the blob is certified, or as soon as one of the first fails or stalls. On a busy
        // machine this certifies after about two thirds of the work instead of all of it.
        let n = usize::from(nodes.committee().n_shards);
        let needed = Threshold::Quorum.min_weight(n);
        let (first, mut rest) = first_wave(&nodes, needed);
        let trouble = Arc::new(tokio::sync::Notify::new());
        let spawn = |uploads: &mut Uploads, member: usize| {
            let upload = Upload {
                nodes: Arc::clone(&nodes),
                member,
                encoded: Arc::clone(&encoded),
                persistence,
                concurrency: self.max_requests_per_node,
                progress: Arc::clone(&self.progress),
                trouble: Arc::clone(&trouble),
                probably_held,
            };
            uploads.spawn(upload.run());
        };
        let mut uploads = JoinSet::new();
        for member in first {
            spawn(&mut uploads, member);
        }
        let uploads_started = Instant::now();
        let mut start_rest_at: Option<tokio::time::Instant> = None;

        let (mut weight, mut parts, mut failures) = (0, Vec::new(), Vec::new());
        while weight < needed {
            if !rest.is_empty() && (uploads.is_empty() || !failures.is_empty()) {
                for member in rest.drain(..) {
                    spawn(&mut uploads, member);
                }
            }
            let stall = async {
                match start_rest_at {
                    Some(at) if !rest.is_empty() => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                result = uploads.join_next() => match result {
                    Some(result) => result,
                    None => break,
                },
                () = stall, if !rest.is_empty() => {
                    for member in rest.drain(..) {
                        spawn(&mut uploads, member);
                    }
                    continue;
                }
                () = trouble.notified(), if !rest.is_empty() => {
                    for member in rest.drain(..) {
                        spawn(&mut uploads, member);
                    }
                    continue;
                }
            };
            match result.map_err(|error| format!("upload task failed: {error}")) {
                Ok(Ok((member, signature))) => {
                    weight += nodes.weight(member);
                    parts.push((u16::try_from(member).unwrap_or(u16::MAX), signature));
                    self.report(Progress::Confirmation { weight, needed });
                    // The first wave finishes together: if it has not made the quorum a
                    // quarter of its time after its first node, a node is stalling.
                    start_rest_at.get_or_insert_with(|| {
                        tokio::time::Instant::now() + (uploads_started.elapsed() / 4).max(STALL_MIN)
                    });
                }
                Ok(Err(failure)) => failures.push(failure),
                Err(reason) => failures.push(NodeFailure { node: "?".into(), shards: 0, reason }),
            }
        }
        // After certification, every node gets its slivers.
        for member in rest.drain(..) {
            spawn(&mut uploads, member);
        }
        drop(encoded);
        if weight < needed {
            return Err(Error::NoQuorum { blob_id, weight, needed, failures });
        }
        tracing::debug!(%blob_id, elapsed = ?started.elapsed(), weight, "quorum of confirmations");
        let certificate = Certificate::aggregate(&parts)
            .map_err(|error| Error::Refused(format!("aggregating confirmations: {error}")))?;
        self.submit(Command::CertifyBlob { object, certificate }, "certifying the blob").await?;
        self.report(Progress::Certified { blob_id });
        tracing::debug!(%blob_id, elapsed = ?started.elapsed(), "certified");
        let total_time = started.elapsed();

        // Nodes still uploading finish in the background (see `Client::finish_uploads`).
        let done = |member: usize| {
            parts.iter().any(|(index, _)| usize::from(*index) == member)
                || failures.iter().any(|failure| failure.node == nodes.committee().members[member].address)
        };
        let pending = (0..nodes.len()).filter(|member| !done(*member)).collect();
        self.keep_uploading(Background { uploads, nodes: Arc::clone(&nodes), pending });
        Ok(StoreOutcome {
            blob_id,
            size,
            encoded_size,
            how: StoredHow::NewlyCertified { object },
            end_epoch,
            left_behind: failures,
            encode_time,
            total_time,
        })
    }
}

/// Refuses a storage period outside `1..=max` epochs (`max` is the system's
/// `max_epochs_ahead`, also the most an extension may reach past the current epoch).
pub(crate) fn check_epochs(epochs: u32, max: u32) -> Result<(), Error> {
    if epochs == 0 || epochs > max {
        return Err(Error::EpochsOutOfRange { asked: epochs, max });
    }
    Ok(())
}

fn no_object(during: &str) -> Error {
    Error::Refused(format!("the coordinator created no object while {during}"))
}

/// Everything one node gets, and its signed confirmation back.
struct Upload {
    nodes: Arc<NodeSet>,
    member: usize,
    encoded: Arc<EncodedBlob>,
    persistence: PersistenceType,
    concurrency: usize,
    progress: ProgressSink,
    /// Told when the node fails a first attempt, so that more nodes are started at once.
    trouble: Arc<tokio::sync::Notify>,
    /// The blob is already certified: ask for the confirmation before uploading anything.
    probably_held: bool,
}

impl Upload {
    async fn run(self) -> Result<(usize, BlsSignature), NodeFailure> {
        let Upload { nodes, member, encoded, persistence, concurrency, progress, trouble, probably_held } =
            self;
        let client = nodes.client(member);
        let blob_id = *encoded.metadata.blob_id();
        if probably_held && let Some(signature) = confirm_held(&nodes, member, &blob_id, &persistence).await {
            return Ok((member, signature));
        }
        // Each request body is a copy of its sliver: bound the bytes in flight per node.
        let sliver_len = encoded.pairs.first().map_or(1, |pair| pair.primary.symbols.len().max(1));
        let concurrency = concurrency.min(IN_FLIGHT_BYTES_PER_NODE / sliver_len).max(1);
        let fail = |what: String| {
            nodes.record_failure(member);
            nodes.failure(member, what)
        };
        let metadata = MetadataWithId { blob_id, metadata: encoded.metadata.metadata().clone() };
        let started = Instant::now();
        if let Err(error) = client.put_metadata(&blob_id, &metadata).await {
            // A node that cannot be reached: let the others start now (one that has not yet
            // seen the registration is normal and is just asked again).
            if matches!(error, ApiError::Transport(_) | ApiError::Timeout) {
                trouble.notify_one();
            }
            if !is_transient(&error) {
                return Err(fail(format!("metadata: {error}")));
            }
            Retry::UPLOAD
                .run(|| client.put_metadata(&blob_id, &metadata))
                .await
                .map_err(|error| fail(format!("metadata: {error}")))?;
        }
        nodes.record_latency(member, started.elapsed());

        let slivers: Vec<(usize, SliverType)> = nodes
            .pairs_of(&blob_id, member)
            .into_iter()
            .flat_map(|pair| [(pair, SliverType::Primary), (pair, SliverType::Secondary)])
            .collect();
        let mut sent = futures_util::stream::iter(slivers)
            .map(|(pair, kind)| {
                let encoded = &encoded;
                async move {
                    let sliver = match kind {
                        SliverType::Primary => &encoded.pairs[pair].primary,
                        SliverType::Secondary => &encoded.pairs[pair].secondary,
                    };
                    let index = u16::try_from(pair).unwrap_or(u16::MAX);
                    Retry::UPLOAD
                        .run(|| client.put_sliver(&blob_id, index, kind, sliver, false))
                        .await
                        .map(|()| sliver.symbols.len())
                        .map_err(|error| format!("{kind} sliver of pair {pair}: {error}"))
                }
            })
            .buffer_unordered(concurrency);
        while let Some(result) = sent.next().await {
            let bytes = result.map_err(&fail)?;
            progress(&Progress::SliverUploaded { bytes: u64::try_from(bytes).unwrap_or(u64::MAX) });
        }
        drop(sent);
        drop(encoded);

        let confirmation = CONFIRMATION_RETRY
            .run(|| ask_confirmation(&nodes, member, &blob_id, &persistence))
            .await
            .map_err(|error| fail(format!("confirmation: {error}")))?;
        check_confirmation(&nodes, member, &confirmation, &blob_id, &persistence).map_err(&fail)?;
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
    let mut pause = CONFIRMATION_RETRY.first_pause;
    for _ in 0..CONFIRMATION_RETRY.attempts {
        match ask_confirmation(nodes, member, blob_id, persistence).await {
            Ok(confirmation) => {
                return check_confirmation(nodes, member, &confirmation, blob_id, persistence)
                    .ok()
                    .map(|()| confirmation.signature);
            }
            Err(error) if error.node_code() == Some(NodeErrorCode::NotRegistered) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(CONFIRMATION_RETRY.max_pause);
            }
            Err(_) => return None,
        }
    }
    None
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

/// Uploads to the nodes of one blob.
pub(crate) type Uploads = JoinSet<Result<(usize, BlsSignature), NodeFailure>>;

/// Uploads still running after their blob was certified, and the members they are for.
pub(crate) struct Background {
    uploads: Uploads,
    nodes: Arc<NodeSet>,
    pending: std::collections::BTreeSet<usize>,
}

impl Client {
    fn keep_uploading(&self, background: Background) {
        if !background.uploads.is_empty() {
            self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(background);
        }
    }

    /// Waits up to `timeout` for the uploads that were still running when their blobs were
    /// certified; answers the nodes that failed or had not finished (those are stopped, and
    /// the nodes rebuild what they lack themselves), also those of earlier blobs whose
    /// uploads a later store waited for. Call it before the process exits, so that every node
    /// gets its slivers without needing repair.
    pub async fn finish_uploads(&self, timeout: Duration) -> Vec<NodeFailure> {
        self.settle_uploads(timeout).await;
        std::mem::take(&mut *self.late_failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Waits up to `timeout` for the background uploads, keeping their failures for
    /// [`Client::finish_uploads`]. A store calls it first, so that at most one blob's encoding
    /// is held by uploads at a time.
    async fn settle_uploads(&self, timeout: Duration) {
        let sets =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if sets.is_empty() {
            return;
        }
        let mut failures = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        for Background { mut uploads, nodes, mut pending } in sets {
            loop {
                match tokio::time::timeout_at(deadline, uploads.join_next()).await {
                    Ok(Some(Ok(Ok((member, _))))) => {
                        pending.remove(&member);
                    }
                    Ok(Some(Ok(Err(failure)))) => {
                        pending.retain(|member| nodes.committee().members[*member].address != failure.node);
                        failures.push(failure);
                    }
                    Ok(Some(Err(_))) => {}
                    Ok(None) => break,
                    Err(_) => {
                        uploads.abort_all();
                        let reason = format!("still uploading after {timeout:?}; stopped");
                        failures.extend(pending.iter().map(|member| nodes.failure(*member, reason.clone())));
                        break;
                    }
                }
            }
        }
        self.late_failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(failures);
    }
}

/// The nodes to upload to first: the fastest ones whose shards make a quorum (`needed`); and
/// the others.
fn first_wave(nodes: &NodeSet, needed: usize) -> (Vec<usize>, Vec<usize>) {
    let mut order = nodes.by_latency();
    let mut weight = 0;
    let split = order
        .iter()
        .position(|member| {
            weight += nodes.weight(*member);
            weight >= needed
        })
        .map_or(order.len(), |last| last + 1);
    let rest = order.split_off(split);
    (order, rest)
}

#[cfg(test)]
mod tests {
    use morsa_api::client::ClientOptions;
    use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ShardIndex};

    use super::*;

    #[test]
    fn the_first_wave_is_the_fewest_fastest_nodes_that_make_a_quorum() {
        // Ten nodes of ten shards: a quorum of n = 100 is 67 shards, so seven nodes.
        let members = (0..10u8)
            .map(|index| {
                let key = BlsSecretKey::from_seed([index + 1; 32]);
                CommitteeMember {
                    node_id: NodeId::from_public_key(&key.public_key()),
                    public_key: key.public_key(),
                    address: format!("127.0.0.1:{}", 1000 + u16::from(index)),
                    shards: (u16::from(index) * 10..u16::from(index) * 10 + 10).map(ShardIndex).collect(),
                }
            })
            .collect();
        let committee = Committee { epoch: Epoch(1), n_shards: 100, members };
        let config = redstuff::EncodingConfig::new(100).unwrap();
        let options = ClientOptions::default();
        let nodes = NodeSet::new(committee, config, &options.http_client().unwrap(), options).unwrap();
        nodes.record_failure(0);
        nodes.record_latency(9, Duration::from_micros(10));
        let needed = Threshold::Quorum.min_weight(100);
        let (first, rest) = first_wave(&nodes, needed);
        assert_eq!(first.len(), 7);
        assert_eq!(first[0], 9, "the fastest node first");
        assert!(rest.contains(&0), "a failing node last");
        assert_eq!(first.len() + rest.len(), 10);
        let (all, none) = first_wave(&nodes, 101);
        assert_eq!((all.len(), none.len()), (10, 0));
    }
}
