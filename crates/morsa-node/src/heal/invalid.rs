//! A blob proven inconsistently encoded: the node builds the inconsistency proof from the
//! proven symbols that rebuilt a mismatching sliver, attests it itself, collects the peers'
//! attestations (each checked), aggregates them into a certificate once they carry validity
//! weight (`3w ≥ n + 1`: at least one honest signer) and sends the coordinator a node-signed
//! [`NodeReportKind::InvalidBlob`] report. The coordinator then emits `InvalidBlobId`, and
//! every node stops serving the blob and collects its data.

use std::sync::Arc;

use morsa_api::coord::{NodeReport, NodeReportKind};
use morsa_api::node::InvalidBlobAttestation;
use morsa_core::{BlsSignature, Certificate, Committee, Threshold};
use redstuff::wire::to_bcs;
use redstuff::{BlobId, InconsistencyProof};
use tokio::task::JoinSet;

use crate::fetch::Want;
use crate::repair::{Repairer, add, blocking};

/// What [`collect_certificate`] gathered.
#[derive(Debug)]
pub struct Invalidation {
    /// The aggregate of the attestations, with validity weight.
    pub certificate: Certificate,
    /// The committee members that attested, this node included.
    pub signers: usize,
}

/// Proves `want`'s blob inconsistent (its symbols were proven and rebuild a mismatching
/// sliver), certifies it and reports it. Failures are logged: the next scan tries again.
pub async fn report_inconsistent(repairer: &Repairer, want: &Want) {
    let blob_id = want.target.blob_id;
    add(&repairer.stats.inconsistent, 1);
    tracing::warn!(%blob_id, kind = %want.kind, index = want.index, "the blob is inconsistently encoded");
    let needed = want.needed.min(want.symbols.len());
    let proof = InconsistencyProof {
        target_kind: want.kind,
        target_index: want.index,
        symbols: want.symbols[..needed].to_vec(),
    };
    let invalidation = match collect_certificate(repairer, blob_id, &proof).await {
        Ok(invalidation) => invalidation,
        Err(error) => {
            tracing::warn!(%blob_id, %error, "cannot certify the inconsistency yet");
            return;
        }
    };
    let Some(coord) = repairer.coord.get() else {
        tracing::warn!(%blob_id, "no coordinator to report the invalid blob to");
        return;
    };
    let node = &repairer.node;
    let epoch = node.view().epoch();
    let report = NodeReport {
        node: node.id(),
        report: NodeReportKind::InvalidBlob { blob_id, certificate: invalidation.certificate },
        signature: node.key().sign(&morsa_core::invalid_blob_message(epoch, &blob_id)),
    };
    match coord.submit_node_report(&report).await {
        Ok(_) => {
            add(&repairer.stats.invalidations_reported, 1);
            tracing::warn!(%blob_id, signers = invalidation.signers, "reported the blob invalid");
        }
        Err(error) => tracing::warn!(%blob_id, %error, "the coordinator refused the invalid-blob report"),
    }
}

/// Attests `proof` and collects the committee's attestations until they carry validity
/// weight, then aggregates them.
pub async fn collect_certificate(
    repairer: &Repairer,
    blob_id: BlobId,
    proof: &InconsistencyProof,
) -> Result<Invalidation, String> {
    let node = Arc::clone(&repairer.node);
    let committee: Committee = node.view().committee.clone();
    let epoch = committee.epoch;
    let (kind, bytes) = (proof.target_kind, to_bcs(proof));
    let own = {
        let node = Arc::clone(&node);
        let bytes = bytes.clone();
        blocking(move || node.attest_inconsistency(&blob_id, kind, &bytes)).await
    }
    .map_err(|error| format!("this node does not accept its own proof: {error}"))?;
    let mut parts: Vec<(u16, BlsSignature)> = Vec::new();
    let mut weight = 0;
    if let Some(member) = committee.member_by_node(&node.id()) {
        parts.push((u16::try_from(member).map_err(|_| "too many members")?, own.signature));
        weight += committee.weight(member);
    }
    let mut calls: JoinSet<(u16, Option<InvalidBlobAttestation>)> = JoinSet::new();
    for peer in repairer.peers.ranked(&committee) {
        let (proof, peers) = (proof.clone(), Arc::clone(&repairer.peers));
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
        return Err(format!("attestations hold {weight} of {n} shards, short of validity"));
    }
    let signers = parts.len();
    let certificate = Certificate::aggregate(&parts).map_err(|error| error.to_string())?;
    let message = morsa_core::invalid_blob_message(epoch, &blob_id);
    committee
        .verify_certificate(&certificate, &message, Threshold::Validity)
        .map_err(|error| format!("the aggregated certificate does not verify: {error}"))?;
    Ok(Invalidation { certificate, signers })
}
