//! The storage node client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use morsa_core::ObjectId;
use redstuff::wire::to_bcs;
use redstuff::{
    BlobId, EncodingConfig, InconsistencyProof, MetadataWithId, RecoverySymbol, Sliver, SliverType,
};
use reqwest::Method;

use super::http::Endpoint;
use super::{ClientError, ClientOptions};
use crate::node::{
    self, InvalidBlobAttestation, MAX_COMMITTEE_BYTES, MAX_HEALTH_BYTES, MAX_RECOVERY_BATCH_RESPONSE_BYTES,
    MAX_SMALL_JSON_BYTES, NodeBlobStatus, NodeCommittee, NodeErrorCode, NodeHealth, ReadBatchDecoder,
    ReadBatchPart, RecoveryBatchQuery, RecoveryBatchRequest, RecoveryBatchResponse, RecoverySymbolsQuery,
    ShardPage, ShardPageRequest, SignedConfirmation, SliverReadBatchQuery, StoredStatus, UploadBatch,
    UploadBatchAnswer, routes,
};

/// A typed client of one storage node's API ([`crate::node::routes`]).
///
/// It knows the system's shard count so it can bound metadata answers; sliver and symbol
/// answers are bounded by the blob's symbol size, which the caller takes from the verified
/// metadata (`VerifiedMetadata::symbol_size`). Nothing it returns is verified: check
/// metadata against the blob ID and slivers and symbols against the metadata before use.
#[derive(Debug, Clone)]
pub struct NodeClient {
    endpoint: Endpoint,
    config: EncodingConfig,
    /// Set once the node answered that it has no batched read route (clones share it).
    no_read_batch: Arc<AtomicBool>,
}

impl NodeClient {
    /// A client of the node at `base_url` (`http://host:port`, or `host:port` as committees
    /// list addresses) in a system coded with `config`, with default options and its own
    /// connection pool.
    pub fn new(base_url: &str, config: EncodingConfig) -> Result<Self, ClientError> {
        let options = ClientOptions::default();
        Self::with_http(options.http_client()?, base_url, config, options)
    }

    /// A client sharing `http` (see [`ClientOptions::http_client`]) with timeouts `options`.
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        config: EncodingConfig,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            endpoint: Endpoint::new(http, base_url, options)?,
            config,
            no_read_batch: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        self.endpoint.base()
    }

    /// The load figure the node sent with its last answer (requests it was serving), if it
    /// sent one ([`crate::node::LOAD_HEADER`]); clones of this client share it.
    pub fn reported_load(&self) -> Option<u32> {
        self.endpoint.reported_load()
    }

    /// Uploads the blob's metadata (the node checks it hashes to `blob_id`).
    pub async fn put_metadata(&self, blob_id: &BlobId, metadata: &MetadataWithId) -> Result<(), ClientError> {
        let request =
            self.endpoint.with_bcs(Method::PUT, &node::metadata_path(blob_id), None, to_bcs(metadata))?;
        self.endpoint.call(request, MAX_SMALL_JSON_BYTES, Duration::ZERO).await.map(drop)
    }

    /// Downloads the blob's metadata, at most [`node::metadata_limit`] bytes. Not verified:
    /// call `metadata.verify(blob_id, config)` before trusting it.
    pub async fn get_metadata(&self, blob_id: &BlobId) -> Result<MetadataWithId, ClientError> {
        let request = self.endpoint.get(&node::metadata_path(blob_id), None)?;
        self.endpoint.call_bcs(request, node::metadata_limit(self.config)).await
    }

    /// Whether the node stores the blob's metadata.
    pub async fn metadata_status(&self, blob_id: &BlobId) -> Result<StoredStatus, ClientError> {
        self.small_json(&node::metadata_status_path(blob_id)).await
    }

    /// Uploads the `kind` sliver of pair `pair`; with `pending` the node may keep it before
    /// it has seen the blob registered.
    pub async fn put_sliver(
        &self,
        blob_id: &BlobId,
        pair: u16,
        kind: SliverType,
        sliver: &Sliver,
        pending: bool,
    ) -> Result<(), ClientError> {
        let path = node::sliver_path(blob_id, pair, kind);
        let query = pending.then_some("pending=true");
        let request = self.endpoint.with_bcs(Method::PUT, &path, query, to_bcs(sliver))?;
        self.endpoint.call(request, MAX_SMALL_JSON_BYTES, Duration::ZERO).await.map(drop)
    }

    /// Uploads a batch of the blob's slivers (and possibly its metadata) in one request
    /// ([`routes::SLIVER_BATCH`]); the answer lists each item's outcome, in order. A node
    /// without the route answers an error for which [`ClientError::is_missing_route`] holds.
    pub async fn put_sliver_batch(
        &self,
        blob_id: &BlobId,
        batch: UploadBatch,
    ) -> Result<UploadBatchAnswer, ClientError> {
        let length = batch.len();
        let (pieces, targets) = batch.into_pieces();
        // The slivers are sent from where they are (the pieces share them), not copied into
        // one body.
        let pieces = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
        let body = reqwest::Body::wrap_stream(pieces);
        let request = self
            .endpoint
            .with_bcs_body(Method::PUT, &node::sliver_batch_path(blob_id), None, body)?
            .header(reqwest::header::CONTENT_LENGTH, length);
        // Each outcome is a target and at most an error body.
        let limit =
            MAX_SMALL_JSON_BYTES.saturating_add(targets.len().saturating_mul(MAX_SMALL_JSON_BYTES / 64));
        let answer: UploadBatchAnswer = self.endpoint.call_json(request, limit, Duration::ZERO).await?;
        if !answer.answers(&targets) {
            return Err(ClientError::Decode(
                "the batch upload answer does not list the items in order".into(),
            ));
        }
        Ok(answer)
    }

    /// Downloads the `kind` sliver of pair `pair` of a blob with `symbol_size`, at most
    /// [`node::sliver_limit`] bytes. Not verified against the metadata.
    pub async fn get_sliver(
        &self,
        blob_id: &BlobId,
        pair: u16,
        kind: SliverType,
        symbol_size: u16,
    ) -> Result<Sliver, ClientError> {
        let request = self.endpoint.get(&node::sliver_path(blob_id, pair, kind), None)?;
        self.endpoint.call_bcs(request, node::sliver_limit(self.config, kind, symbol_size)).await
    }

    /// Downloads the `kind` slivers of `pairs` of a blob with `symbol_size` in one request
    /// ([`routes::SLIVER_READ_BATCH`], at most [`node::MAX_READ_BATCH_ITEMS`] pairs, no pair
    /// twice): one result per pair, in order, each what [`NodeClient::get_sliver`] would have
    /// answered (the whole call fails only if the request does, or the answer is malformed or
    /// over [`node::read_batch_limit`]). A node without the route is asked one request per
    /// sliver, from then on without trying the route again. Not verified against the metadata.
    pub async fn get_slivers(
        &self,
        blob_id: &BlobId,
        pairs: &[u16],
        kind: SliverType,
        symbol_size: u16,
    ) -> Result<Vec<Result<Sliver, ClientError>>, ClientError> {
        if !self.no_read_batch.load(Ordering::Relaxed) {
            match self.get_slivers_batched(blob_id, pairs, kind, symbol_size).await {
                Err(error) if error.is_missing_route() => {
                    tracing::debug!(node = self.base_url(), "no batched read route: one request per sliver");
                    self.no_read_batch.store(true, Ordering::Relaxed);
                }
                answer => return answer,
            }
        }
        let singles = pairs.iter().map(|pair| self.get_sliver(blob_id, *pair, kind, symbol_size));
        Ok(futures_util::future::join_all(singles).await)
    }

    async fn get_slivers_batched(
        &self,
        blob_id: &BlobId,
        pairs: &[u16],
        kind: SliverType,
        symbol_size: u16,
    ) -> Result<Vec<Result<Sliver, ClientError>>, ClientError> {
        let query = SliverReadBatchQuery::new(pairs).to_query_string();
        let request = self.endpoint.get(&node::sliver_read_batch_path(blob_id, kind), Some(&query))?;
        let limit = node::read_batch_limit(self.config, kind, symbol_size, pairs.len());
        // The answer is decoded as it comes: each sliver's symbols are copied once, from the
        // socket's pieces into the sliver.
        let mut decoder = ReadBatchDecoder::new(pairs, node::sliver_limit(self.config, kind, symbol_size));
        self.endpoint.call_into(request, limit, Duration::ZERO, &mut decoder).await?;
        let parts = decoder.finish().map_err(ClientError::Decode)?;
        Ok(parts
            .into_iter()
            .map(|part| match part {
                ReadBatchPart::Sliver(sliver) => {
                    sliver.map_err(|error| ClientError::Decode(error.to_string()))
                }
                ReadBatchPart::Refused(body) => {
                    let status = body
                        .code
                        .parse::<NodeErrorCode>()
                        .map_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR, NodeErrorCode::status);
                    Err(ClientError::Http { status, body })
                }
            })
            .collect())
    }

    /// Whether the node stores the `kind` sliver of pair `pair`.
    pub async fn sliver_status(
        &self,
        blob_id: &BlobId,
        pair: u16,
        kind: SliverType,
    ) -> Result<StoredStatus, ClientError> {
        self.small_json(&node::sliver_status_path(blob_id, pair, kind)).await
    }

    /// The node's storage confirmation for a permanent blob (signature not checked here).
    pub async fn permanent_confirmation(&self, blob_id: &BlobId) -> Result<SignedConfirmation, ClientError> {
        self.small_json(&node::permanent_confirmation_path(blob_id)).await
    }

    /// The node's storage confirmation for the deletable blob object `object_id`.
    pub async fn deletable_confirmation(
        &self,
        blob_id: &BlobId,
        object_id: &ObjectId,
    ) -> Result<SignedConfirmation, ClientError> {
        self.small_json(&node::deletable_confirmation_path(blob_id, object_id)).await
    }

    /// The node's recovery symbols towards sliver `target` of `kind` of a blob with
    /// `symbol_size`, at most [`node::recovery_symbols_limit`] bytes. Not verified.
    pub async fn recovery_symbols(
        &self,
        blob_id: &BlobId,
        target: u16,
        kind: SliverType,
        symbol_size: u16,
    ) -> Result<Vec<RecoverySymbol>, ClientError> {
        let query = RecoverySymbolsQuery { target_sliver: target, target_type: kind }.to_query_string();
        let request = self.endpoint.get(&node::recovery_symbols_path(blob_id), Some(&query))?;
        self.endpoint.call_bcs(request, node::recovery_symbols_limit(self.config, symbol_size)).await
    }

    /// Recovery symbols for many targets at once, at most
    /// [`MAX_RECOVERY_BATCH_RESPONSE_BYTES`]; the answer must list the asked items in order.
    /// `query` says in what form: with Merkle proofs (the default), or without them (the
    /// optimistic path of a rebuild: fewer bytes; check the rebuilt sliver against the
    /// metadata, and ask again with proofs if it does not match), then each item's as one
    /// block if `blocks` ([`RecoveryOutcome::Block`](crate::node::RecoveryOutcome::Block); a
    /// node that does not send blocks answers with lists); and whether a read waits for it.
    pub async fn recovery_batch(
        &self,
        request: &RecoveryBatchRequest,
        query: &RecoveryBatchQuery,
    ) -> Result<RecoveryBatchResponse, ClientError> {
        // The URL parser takes the query from the path.
        let path = format!("{}?{}", routes::RECOVERY_SYMBOLS_BATCH, query.to_query_string());
        let call = self.endpoint.post_json(&path, request)?;
        let response: RecoveryBatchResponse =
            self.endpoint.call_bcs(call, MAX_RECOVERY_BATCH_RESPONSE_BYTES).await?;
        if !response.answers(request) {
            return Err(ClientError::Decode(
                "the recovery batch answer does not list the asked items in order".into(),
            ));
        }
        Ok(response)
    }

    /// One page of the node's answers to its challenges of round `round` of `epoch`, from
    /// position `from` ([`routes::CHALLENGE_ANSWERS`]). Nothing in it is verified: check each
    /// answer with `ChallengeAnswer::verify`.
    pub async fn challenge_answers(
        &self,
        epoch: morsa_core::Epoch,
        round: u32,
        from: u32,
    ) -> Result<node::ChallengeAnswers, ClientError> {
        let query = format!("from={from}");
        let request = self.endpoint.get(&node::challenge_answers_path(epoch, round), Some(&query))?;
        self.endpoint.call_bcs(request, node::MAX_CHALLENGE_ANSWERS_BYTES).await
    }

    /// One page of a shard from its previous owner (shard migration), at most
    /// [`node::shard_page_limit`] bytes; the answer must list blobs in increasing ID order
    /// from the asked one, at most as many as asked. Nothing in it is verified against the
    /// blobs' IDs.
    pub async fn shard_page(&self, request: &ShardPageRequest) -> Result<ShardPage, ClientError> {
        let call = self.endpoint.post_json(&node::shard_page_path(request.shard.0), request)?;
        let page: ShardPage = self.endpoint.call_bcs(call, node::shard_page_limit(self.config)).await?;
        let ordered = page.items.windows(2).all(|pair| pair[0].blob_id < pair[1].blob_id);
        let from_on =
            page.items.first().is_none_or(|first| request.from.is_none_or(|from| first.blob_id >= from));
        let next_after = match (page.next, page.items.last()) {
            (Some(next), Some(last)) => next > last.blob_id,
            _ => true,
        };
        let within = u32::try_from(page.items.len()).is_ok_and(|len| len <= request.max_blobs);
        if !(ordered && from_on && next_after && within) {
            return Err(ClientError::Decode("the shard page is out of order or longer than asked".into()));
        }
        Ok(page)
    }

    /// Pauses (`true`) or resumes (`false`) the node's background repair and scrubbing. The
    /// node answers only callers on its loopback interface that send its admin token (the
    /// `admin.token` file in its data directory).
    pub async fn set_repair_paused(&self, paused: bool, admin_token: &str) -> Result<(), ClientError> {
        let path = if paused { routes::ADMIN_REPAIR_PAUSE } else { routes::ADMIN_REPAIR_RESUME };
        let request = self.endpoint.with_bcs(Method::POST, path, None, Vec::new())?.bearer_auth(admin_token);
        self.endpoint.call(request, MAX_SMALL_JSON_BYTES, Duration::ZERO).await.map(drop)
    }

    /// Sends an inconsistency proof whose target is a `kind` sliver; the node verifies it and
    /// answers its attestation that the blob is invalid.
    pub async fn inconsistency_proof(
        &self,
        blob_id: &BlobId,
        kind: SliverType,
        proof: &InconsistencyProof,
    ) -> Result<InvalidBlobAttestation, ClientError> {
        let path = node::inconsistency_proof_path(blob_id, kind);
        let request = self.endpoint.with_bcs(Method::POST, &path, None, to_bcs(proof))?;
        self.endpoint.call_json(request, MAX_SMALL_JSON_BYTES, Duration::ZERO).await
    }

    /// The node's view of a blob.
    pub async fn blob_status(&self, blob_id: &BlobId) -> Result<NodeBlobStatus, ClientError> {
        self.small_json(&node::blob_status_path(blob_id)).await
    }

    /// The committees the node follows. Unverified: one node's word (see
    /// [`NodeCommittee`]). A free function of the URL, since a client that has no
    /// committee yet does not know the shard count a [`NodeClient`] needs.
    pub async fn committee_at(
        http: &reqwest::Client,
        base_url: &str,
        options: ClientOptions,
    ) -> Result<NodeCommittee, ClientError> {
        let endpoint = Endpoint::new(http.clone(), base_url, options)?;
        let request = endpoint.get(routes::COMMITTEE, None)?;
        endpoint.call_json(request, MAX_COMMITTEE_BYTES, Duration::ZERO).await
    }

    /// The node's identity, epoch, shards and progress.
    pub async fn health(&self) -> Result<NodeHealth, ClientError> {
        let request = self.endpoint.get(routes::HEALTH, None)?;
        self.endpoint.call_json(request, MAX_HEALTH_BYTES, Duration::ZERO).await
    }

    /// Asks the node for `bytes` of filler ([`routes::PROBE`], at most
    /// [`node::MAX_PROBE_BYTES`]); answers the bytes that came and how long they took from the
    /// answer's head to its last byte: the transfer alone, without the round trip.
    pub async fn probe_transfer(&self, bytes: u64) -> Result<(u64, Duration), ClientError> {
        let query = node::ProbeQuery { bytes }.to_query_string();
        let request = self.endpoint.get(routes::PROBE, Some(&query))?;
        let (body, transfer) =
            self.endpoint.call_timed(request, node::MAX_PROBE_BYTES, Duration::ZERO).await?;
        Ok((morsa_core::convert::saturating_u64(body.len()), transfer))
    }

    async fn small_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let request = self.endpoint.get(path, None)?;
        self.endpoint.call_json(request, MAX_SMALL_JSON_BYTES, Duration::ZERO).await
    }
}
