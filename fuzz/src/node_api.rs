//! The storage node's HTTP contract (`morsa_api::node`): what a node decodes from any caller
//! (the JSON recovery batch, query strings, path texts) and what a client or a peer decodes
//! from a node (JSON status, confirmations, attestations, error bodies, and the BCS recovery
//! batch answer). Metadata, slivers, recovery symbols and inconsistency proofs are the
//! codec's wire values: the `wire_decode` target covers them.

use std::str::FromStr;

use morsa_api::ErrorBody;
use morsa_api::node::{
    InvalidBlobAttestation, MAX_RECOVERY_BATCH_RESPONSE_BYTES, NodeBlobStatus, NodeErrorCode, NodeHealth,
    PutSliverQuery, RecoveryBatchQuery, RecoveryBatchRequest, RecoveryBatchResponse, RecoveryItem,
    RecoveryOutcome, RecoverySymbolsQuery, SignedConfirmation, StoredStatus, parse_sliver_type,
};
use morsa_core::ObjectId;
use redstuff::BlobId;

use crate::check;

/// Feeds `data` to every decoder of the node's API.
pub fn run(data: &[u8]) {
    requests(data);
    responses(data);
    if let Some(text) = check::text(data) {
        path_texts(text);
    }
}

/// What a node decodes from any caller.
fn requests(data: &[u8]) {
    let _ = check::json::<RecoveryBatchRequest>(data);
    let _ = check::query::<PutSliverQuery>(data);
    let _ = check::query::<RecoveryBatchQuery>(data);
    if let Some(query) = check::query::<RecoverySymbolsQuery>(data) {
        // The client's own query string must read back as the same query.
        let text = query.to_query_string();
        let again: Option<RecoverySymbolsQuery> = serde_urlencoded::from_str(&text).ok();
        assert_eq!(again, Some(query), "the client's query string {text:?} reads back differently");
    }
}

/// What a client or a peer decodes from a node.
fn responses(data: &[u8]) {
    if let Some(response) = check::wire::<RecoveryBatchResponse>(data, MAX_RECOVERY_BATCH_RESPONSE_BYTES) {
        assert_eq!(response.encoded_len(), data.len(), "encoded_len disagrees with the bytes");
        let request = RecoveryBatchRequest {
            items: response
                .items
                .iter()
                .map(|item| RecoveryItem {
                    blob_id: item.blob_id,
                    target_sliver: item.target_sliver,
                    target_type: item.target_type,
                    max_symbols: None,
                })
                .collect(),
        };
        assert!(response.answers(&request), "an answer does not answer the request it lists");
        for item in &response.items {
            match &item.outcome {
                RecoveryOutcome::Error(body) => error_body(body),
                RecoveryOutcome::Block(block) => {
                    // A block that passed its check is whole symbols, one per source.
                    let size = block.symbols.len() / block.len().max(1);
                    let symbols = block.symbols(size).map(Iterator::count);
                    assert!(block.is_empty() || symbols == Some(block.len()), "a checked block is not whole");
                }
                RecoveryOutcome::Symbols(_) => {}
            }
        }
    }
    if let Some(confirmation) = check::json::<SignedConfirmation>(data) {
        let _ = confirmation.message();
    }
    if let Some(attestation) = check::json::<InvalidBlobAttestation>(data) {
        let _ = attestation.message();
    }
    if let Some(status) = check::json::<NodeBlobStatus>(data) {
        let _ = status.fully_stored();
    }
    let _ = check::json::<NodeHealth>(data);
    let _ = check::json::<StoredStatus>(data);
    if let Some(body) = check::json::<ErrorBody>(data) {
        error_body(&body);
    }
}

/// A client reads the error code of a refusal; a known code maps to its status.
pub(crate) fn error_body(body: &ErrorBody) {
    if let Ok(code) = NodeErrorCode::from_str(&body.code) {
        assert_eq!(code.as_str(), body.code, "a code parsed from another text");
        let _ = (code.status(), code.is_transient());
    }
}

/// Path parameters: blob IDs, object IDs and sliver types as text.
fn path_texts(text: &str) {
    if let Ok(blob_id) = BlobId::from_str(text) {
        assert_eq!(blob_id.to_string(), text, "two texts stand for one blob ID");
    }
    if let Ok(object) = ObjectId::from_str(text) {
        assert!(object.to_string().eq_ignore_ascii_case(text), "{object} parsed from {text:?}");
    }
    if let Some(kind) = parse_sliver_type(text) {
        assert_eq!(kind.as_str(), text, "a sliver type parsed from another text");
    }
}
