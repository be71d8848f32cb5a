//! A blob proven inconsistently encoded: the node builds the inconsistency proof from the
//! proven symbols that rebuilt a mismatching sliver, attests it itself, collects the peers'
//! attestations (each checked), aggregates them into a certificate once they carry validity
//! weight (`3w ≥ n + 1`: at least one honest signer) and sends the coordinator a node-signed
//! [`NodeReportKind::InvalidBlob`] report. The coordinator then emits `InvalidBlobId`, and
//! every node stops serving the blob and collects its data.

use std::sync::Arc;

use morsa_api::client::CoordClient;
use morsa_api::coord::{NodeReport, NodeReportKind};
use morsa_api::node::InvalidBlobAttestation;
use morsa_core::{BlsSignature, Certificate, CertificateError, Committee, Threshold};
use redstuff::wire::to_bcs;
use redstuff::{BlobId, InconsistencyProof};
use tokio::task::JoinSet;

use crate::blocking::blocking;
use crate::error::NodeError;
use crate::heal::fetch::Want;
use crate::heal::peers::Peers;
use crate::heal::stats::{RepairStats, add};
use crate::node::Node;

/// Why no certificate of a blob's invalidity could be built (yet).
#[derive(Debug, thiserror::Error)]
pub enum InvalidationError {
    /// This node's own check of the proof failed.
    #[error("this node does not accept its own proof: {0}")]
    OwnProofRefused(NodeError),
    /// The committee has more members than a certificate can name.
    #[error("the committee has more members than a certificate can name")]
    TooManyMembers,
    /// The attestations gathered do not carry validity weight (`3w ≥ n + 1`).
    #[error("attestations hold {weight} of {n_shards} shards, short of validity")]
    ShortOfValidity {
        /// Shards of the members that attested.
        weight: usize,
        /// Shards of the system.
        n_shards: usize,
    },
    /// The attestations do not aggregate into a certificate that verifies.
    #[error("the aggregated certificate does not verify: {0}")]
    Certificate(#[from] CertificateError),
}

/// What reporting an invalid blob needs: the node, its peers, where reports go, and the
/// counters to keep.
pub(crate) struct Reporter<'a> {
    /// The node that attests.
    pub node: &'a Arc<Node>,
    /// The peers asked for attestations.
    pub peers: &'a Arc<Peers>,
    /// Where the report goes, once known.
    pub coord: Option<&'a CoordClient>,
    /// The counters of self-healing.
    pub stats: &'a RepairStats,
}

/// What collecting the attestations of a proven inconsistency gathered.
#[derive(Debug)]
pub struct Invalidation {
    /// The aggregate of the attestations, with validity weight.
    pub certificate: Certificate,
    /// The committee members that attested, this node included.
    pub signers: usize,
}

/// Proves `want`'s blob inconsistent (its symbols were proven and rebuild a mismatching
/// sliver), certifies it and reports it. Failures are logged: the next scan tries again.
pub(crate) async fn report_inconsistent(reporter: &Reporter<'_>, want: &Want) {
    let blob_id = want.target.blob_id;
    add(&reporter.stats.inconsistent, 1);
    tracing::warn!(%blob_id, kind = %want.kind, index = want.index, "the blob is inconsistently encoded");
    let needed = want.needed.min(want.symbols.len());
    let proof = InconsistencyProof {
        target_kind: want.kind,
        target_index: want.index,
        symbols: want.symbols[..needed].to_vec(),
    };
    let invalidation = match collect_certificate(reporter.node, reporter.peers, blob_id, &proof).await {
        Ok(invalidation) => invalidation,
        Err(error) => {
            tracing::warn!(%blob_id, %error, "cannot certify the inconsistency yet");
            return;
        }
    };
    let Some(coord) = reporter.coord else {
        tracing::warn!(%blob_id, "no coordinator to report the invalid blob to");
        return;
    };
    let node = reporter.node;
    let epoch = node.view().epoch();
    let report = NodeReport {
        node: node.id(),
        report: NodeReportKind::InvalidBlob { blob_id, certificate: invalidation.certificate },
        signature: node.key().sign(&morsa_core::invalid_blob_message(epoch, &blob_id)),
    };
    match coord.submit_node_report(&report).await {
        Ok(_) => {
            add(&reporter.stats.invalidations_reported, 1);
            tracing::warn!(%blob_id, signers = invalidation.signers, "reported the blob invalid");
        }
        Err(error) => tracing::warn!(%blob_id, %error, "the coordinator refused the invalid-blob report"),
    }
}

/// Attests `proof` and collects the committee's attestations until they carry validity
/// weight, then aggregates them.
pub(crate) async fn collect_certificate(
    node: &Arc<Node>,
    peers: &Arc<Peers>,
    blob_id: BlobId,
    proof: &InconsistencyProof,
) -> Result<Invalidation, InvalidationError> {
    let node = Arc::clone(node);
    let (committee, zones): (Committee, _) = node.committee_and_zones();
    let epoch = committee.epoch;
    let (kind, bytes) = (proof.target_kind, to_bcs(proof));
    let own = {
        let node = Arc::clone(&node);
        let bytes = bytes.clone();
        blocking(move || node.attest_inconsistency(&blob_id, kind, &bytes)).await
    }
    .map_err(InvalidationError::OwnProofRefused)?;
    let mut parts: Vec<(u16, BlsSignature)> = Vec::new();
    let mut weight = 0;
    if let Some(member) = committee.member_by_node(&node.id()) {
        let index = u16::try_from(member).map_err(|_| InvalidationError::TooManyMembers)?;
        parts.push((index, own.signature));
        weight += committee.weight(member);
    }
    let mut calls: JoinSet<(u16, Option<InvalidBlobAttestation>)> = JoinSet::new();
    for peer in peers.ranked(&committee, &zones) {
        let (proof, peers) = (proof.clone(), Arc::clone(peers));
        calls.spawn(async move {
            let call = peers.start(&peer.node_id);
            let answer = peer.client.inconsistency_proof(&blob_id, kind, &proof).await;
            call.finish(answer.is_ok());
            (peer.member, answer.ok())
        });
    }
    let n = usize::from(committee.n_shards);
    while let Some(joined) = calls.join_next().await {
        let Ok((member, Some(attestation))) = joined else { continue };
        let index = usize::from(member);
        let Some(public_key) = committee.members.get(index).map(|member| &member.public_key) else {
            continue;
        };
        if attestation.verify(&blob_id, epoch, public_key).is_err() {
            tracing::warn!(member, "a peer's invalid-blob attestation does not verify");
            continue;
        }
        parts.push((member, attestation.signature));
        weight += committee.weight(index);
        if Threshold::Validity.is_met(weight, n) {
            break;
        }
    }
    calls.abort_all();
    if !Threshold::Validity.is_met(weight, n) {
        return Err(InvalidationError::ShortOfValidity { weight, n_shards: n });
    }
    let signers = parts.len();
    let certificate = Certificate::aggregate(&parts)?;
    let message = morsa_core::invalid_blob_message(epoch, &blob_id);
    committee.verify_certificate(&certificate, &message, Threshold::Validity)?;
    Ok(Invalidation { certificate, signers })
}
