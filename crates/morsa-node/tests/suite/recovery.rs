//! Recovery symbols, recovery batches and inconsistency proofs, through the recovery router:
//! what the node sends rebuilds real slivers, and what it attests proves a real inconsistency.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use morsa_api::ErrorBody;
use morsa_api::coord::{Event, EventRecord};
use morsa_api::node::{
    self as api, InvalidBlobAttestation, MAX_JSON_REQUEST_BYTES, MAX_RECOVERY_BATCH,
    MAX_RECOVERY_BATCH_RESPONSE_BYTES, RecoveryBatchRequest, RecoveryBatchResponse, RecoveryItem,
    RecoveryOutcome, RecoverySymbolsQuery,
};
use morsa_core::Epoch;
use morsa_node::Limits;
use redstuff::wire::{from_bcs, recovery_symbol_limit, to_bcs};
use redstuff::{
    BlobId, EncodedBlob, InconsistencyProof, Proofs, RecoveryError, RecoverySymbol, Sliver, SliverExpansion,
    SliverType,
};

use crate::common;

use common::*;

/// Sends `request` through the recovery routes of the fixture's node.
async fn recover(fixture: &Fixture, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    call(&fixture.served, request).await
}

fn symbols_path(blob_id: &BlobId, target: u16, kind: SliverType) -> String {
    let query = RecoverySymbolsQuery { target_sliver: target, target_type: kind };
    format!("{}?{}", api::recovery_symbols_path(blob_id), query.to_query_string())
}

fn post(path: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path).header("content-type", content_type).body(Body::from(body)).unwrap()
}

fn batch_request(request: &RecoveryBatchRequest) -> Request<Body> {
    post(api::routes::RECOVERY_SYMBOLS_BATCH, "application/json", serde_json::to_vec(request).unwrap())
}

/// The node's symbols towards sliver `target` of `kind` of `encoded`, through the router.
async fn node_symbols(
    fixture: &Fixture,
    encoded: &EncodedBlob,
    target: u16,
    kind: SliverType,
) -> Vec<RecoverySymbol> {
    let path = symbols_path(encoded.metadata.blob_id(), target, kind);
    let (status, body) = recover(fixture, get(&path)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    from_bcs(&body, api::recovery_symbols_limit(config(), encoded.metadata.symbol_size())).unwrap()
}

/// Sliver `index` of `kind` of `encoded`.
fn sliver(encoded: &EncodedBlob, kind: SliverType, index: u16) -> &Sliver {
    let pair = &encoded.pairs[usize::from(index_in_pair(kind, index))];
    match kind {
        SliverType::Primary => &pair.primary,
        SliverType::Secondary => &pair.secondary,
    }
}

/// The symbols towards sliver `target` of `kind` from every source sliver of `encoded` whose
/// index is not in `held`: what the other nodes would send.
fn other_symbols(encoded: &EncodedBlob, kind: SliverType, target: u16, held: &[u16]) -> Vec<RecoverySymbol> {
    let source_kind = kind.orthogonal();
    (0..N)
        .filter(|index| !held.contains(index))
        .map(|index| {
            let source = sliver(encoded, source_kind, index);
            let expansion = SliverExpansion::new(&encoded.metadata, source_kind, source).unwrap();
            expansion.recovery_symbol(usize::from(target)).unwrap()
        })
        .collect()
}

/// Indices of the `kind` slivers the node holds of `encoded`.
fn held(fixture: &Fixture, encoded: &EncodedBlob, kind: SliverType) -> Vec<u16> {
    let pairs = pairs_owned(&fixture.node, encoded.metadata.blob_id());
    let mut indices: Vec<u16> = pairs.iter().map(|pair| index_in_pair(kind, *pair)).collect();
    indices.sort_unstable();
    indices
}

/// The index of the `kind` sliver of pair `pair`, and of the pair holding `kind` sliver `pair`
/// (the map is its own inverse).
fn index_in_pair(kind: SliverType, pair: u16) -> u16 {
    match kind {
        SliverType::Primary => pair,
        SliverType::Secondary => N - 1 - pair,
    }
}

/// A sliver index of `kind` the node does not hold: a target it would be asked for.
fn foreign_target(fixture: &Fixture, encoded: &EncodedBlob, kind: SliverType) -> u16 {
    let held = held(fixture, encoded, kind);
    (0..N).find(|index| !held.contains(index)).unwrap()
}

fn registered(fixture: &Fixture, blob: &[u8], seq: u64) -> EncodedBlob {
    let encoded = redstuff::encode(config(), blob).unwrap();
    register_blob(&fixture.node, &encoded, seq, false);
    encoded
}

#[tokio::test]
async fn symbols_of_each_kind_verify_and_rebuild_the_lost_sliver() {
    let fixture = fixture(true);
    store_blob(&fixture.node, &fixture.encoded);
    let metadata = &fixture.encoded.metadata;
    for kind in [SliverType::Primary, SliverType::Secondary] {
        let target = foreign_target(&fixture, &fixture.encoded, kind);
        let symbols = node_symbols(&fixture, &fixture.encoded, target, kind).await;
        // One symbol from each held sliver of the other kind, each proven at leaf `target`.
        let held = held(&fixture, &fixture.encoded, kind.orthogonal());
        let mut sources: Vec<u16> = symbols.iter().map(|symbol| symbol.source_index).collect();
        sources.sort_unstable();
        assert_eq!(sources, held);
        for symbol in &symbols {
            metadata.verify_recovery_symbol(kind, usize::from(target), symbol).unwrap();
        }
        // The node's symbols first, then the other nodes': the rebuild uses all of the node's.
        let mut all = symbols.clone();
        all.extend(other_symbols(&fixture.encoded, kind, target, &held));
        let rebuilt = metadata.rebuild_sliver(kind, usize::from(target), &all, Proofs::Check).unwrap();
        assert_eq!(&rebuilt, sliver(&fixture.encoded, kind, target));
        // A symbol proven for another leaf does not pass as this one.
        let other_target = (target + 1) % N;
        let refused = metadata.verify_recovery_symbol(kind, usize::from(other_target), &symbols[0]);
        assert!(matches!(refused, Err(redstuff::RecoveryError::InvalidProof { .. })), "{refused:?}");
    }
}

#[tokio::test]
async fn bad_recovery_requests_are_refused_with_their_code() {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    // Registered, metadata stored, but no sliver held yet.
    fixture.node.store_metadata(&blob_id, &metadata_bytes(&fixture.encoded)).unwrap();
    let (status, body) = recover(&fixture, get(&symbols_path(&blob_id, 0, SliverType::Primary))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::NOT_FOUND, "not_found"));
    store_blob(&fixture.node, &fixture.encoded);

    // A target index of n is out of range (it is a sliver index, not a pair index).
    let (status, body) = recover(&fixture, get(&symbols_path(&blob_id, N, SliverType::Primary))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    // Unknown blob.
    let (status, body) =
        recover(&fixture, get(&symbols_path(&BlobId([7; 32]), 0, SliverType::Primary))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "not_registered"));
    // Malformed query and path: error bodies too.
    let path = format!("{}?target_sliver=1&target_type=diagonal", api::recovery_symbols_path(&blob_id));
    let (status, body) = recover(&fixture, get(&path)).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, body) =
        recover(&fixture, get("/v1/blobs/nope/recoverySymbols?target_sliver=1&target_type=primary")).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));

    // An invalid blob gets no more symbols.
    let invalid = Event::InvalidBlobId { blob_id, epoch: Epoch(1) };
    fixture.node.apply_events(&[EventRecord::new(1, 0, invalid, [0; 32])]).unwrap();
    let (status, body) = recover(&fixture, get(&symbols_path(&blob_id, 0, SliverType::Primary))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::GONE, "invalid_blob"));
}

#[tokio::test]
async fn a_batch_answers_several_blobs_in_order() {
    let fixture = fixture(true);
    store_blob(&fixture.node, &fixture.encoded);
    let second = registered(&fixture, b"a second blob, for the same batch", 1);
    store_blob(&fixture.node, &second);
    let first = *fixture.encoded.metadata.blob_id();
    let second_id = *second.metadata.blob_id();
    let item = |blob_id, target_sliver, target_type| RecoveryItem {
        blob_id,
        target_sliver,
        target_type,
        max_symbols: None,
    };
    let request = RecoveryBatchRequest {
        items: vec![
            item(first, 3, SliverType::Primary),
            item(second_id, 8, SliverType::Secondary),
            item(BlobId([7; 32]), 0, SliverType::Primary),
            item(first, 9, SliverType::Secondary),
            item(first, N, SliverType::Primary),
            item(second_id, 0, SliverType::Primary),
            item(first, 3, SliverType::Primary),
        ],
    };
    let (status, body) = recover(&fixture, batch_request(&request)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let response: RecoveryBatchResponse = from_bcs(&body, MAX_RECOVERY_BATCH_RESPONSE_BYTES).unwrap();
    assert!(response.answers(&request));
    for (answer, item) in response.items.iter().zip(&request.items) {
        let single = fixture.node.recovery_symbols(&item.blob_id, item.target_sliver, item.target_type);
        match (&answer.outcome, single) {
            (RecoveryOutcome::Symbols(symbols), Ok(expected)) => {
                assert_eq!(symbols, &expected, "{item:?}");
                assert_eq!(symbols.len(), 5);
            }
            (RecoveryOutcome::Error(body), Err(error)) => assert_eq!(body.code, error.code().as_str()),
            (outcome, single) => panic!("{item:?}: the batch answered {outcome:?}, alone {single:?}"),
        }
    }
    let codes: Vec<&str> = response
        .items
        .iter()
        .filter_map(|answer| match &answer.outcome {
            RecoveryOutcome::Error(body) => Some(body.code.as_str()),
            RecoveryOutcome::Symbols(_) | RecoveryOutcome::Block(_) => None,
        })
        .collect();
    assert_eq!(codes, ["not_registered", "bad_request"]);

    // Through the router, `blocks=true` without proofs answers each item's symbols as one block
    // (the lists' symbols, in order); with proofs it is ignored.
    let unproven = |query: &str| {
        let path = format!("{}?{query}", api::routes::RECOVERY_SYMBOLS_BATCH);
        post(&path, "application/json", serde_json::to_vec(&request).unwrap())
    };
    let mut answers = Vec::new();
    for query in ["proofs=false", "proofs=false&blocks=true", "proofs=true&blocks=true"] {
        let (status, body) = recover(&fixture, unproven(query)).await;
        assert_eq!(status, StatusCode::OK, "{query}: {}", String::from_utf8_lossy(&body));
        answers.push(from_bcs::<RecoveryBatchResponse>(&body, MAX_RECOVERY_BATCH_RESPONSE_BYTES).unwrap());
    }
    let symbol_size = |blob_id: &BlobId| {
        let encoded = if *blob_id == first { &fixture.encoded } else { &second };
        usize::from(encoded.metadata.symbol_size())
    };
    for (position, item) in request.items.iter().enumerate() {
        let outcomes: Vec<&RecoveryOutcome> =
            answers.iter().map(|answer| &answer.items[position].outcome).collect();
        match (outcomes[0], outcomes[1], outcomes[2], &response.items[position].outcome) {
            (
                RecoveryOutcome::Symbols(list),
                RecoveryOutcome::Block(block),
                RecoveryOutcome::Symbols(proven),
                RecoveryOutcome::Symbols(expected),
            ) => {
                let cells: Vec<_> = block.symbols(symbol_size(&item.blob_id)).unwrap().collect();
                assert_eq!(cells, list.iter().map(RecoverySymbol::cell).collect::<Vec<_>>(), "{item:?}");
                // And the cells of the proven symbols, which come from whole expansions.
                assert_eq!(cells, expected.iter().map(RecoverySymbol::cell).collect::<Vec<_>>(), "{item:?}");
                assert_eq!(proven, expected, "{item:?}");
            }
            (RecoveryOutcome::Error(a), RecoveryOutcome::Error(b), RecoveryOutcome::Error(c), _) => {
                assert!(a.code == b.code && b.code == c.code, "{item:?}");
            }
            other => panic!("{item:?}: {other:?}"),
        }
    }

    // An asker that needs only two more symbols gets two, from distinct sources the node holds.
    let capped = RecoveryBatchRequest {
        items: vec![RecoveryItem {
            blob_id: first,
            target_sliver: 3,
            target_type: SliverType::Primary,
            max_symbols: Some(2),
        }],
    };
    let (status, body) = recover(&fixture, batch_request(&capped)).await;
    assert_eq!(status, StatusCode::OK);
    let response: RecoveryBatchResponse = from_bcs(&body, MAX_RECOVERY_BATCH_RESPONSE_BYTES).unwrap();
    let RecoveryOutcome::Symbols(symbols) = &response.items[0].outcome else { panic!("{response:?}") };
    let all = fixture.node.recovery_symbols(&first, 3, SliverType::Primary).unwrap();
    assert_eq!(symbols[..], all[..2]);

    // One item over the limit is refused whole, through the router and the method.
    let too_many = RecoveryBatchRequest { items: vec![request.items[0]; MAX_RECOVERY_BATCH + 1] };
    let (status, body) = recover(&fixture, batch_request(&too_many)).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    assert!(matches!(
        fixture.node.recovery_batch(&too_many),
        Err(error) if error.code() == api::NodeErrorCode::BadRequest
    ));
    let oversized =
        post(api::routes::RECOVERY_SYMBOLS_BATCH, "application/json", vec![b' '; MAX_JSON_REQUEST_BYTES + 1]);
    let (status, body) = recover(&fixture, oversized).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let (status, body) = recover(
        &fixture,
        post(api::routes::RECOVERY_SYMBOLS_BATCH, "application/json", b"{\"items\": 3}".to_vec()),
    )
    .await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test]
async fn a_batch_stops_at_its_byte_budget_and_marks_the_rest() {
    let fixture = fixture(true);
    // 16 KiB symbols: one item's five symbols are about 80 KiB, so 1024 items cannot fit.
    let blob: Vec<u8> = (0..28 * 16384u32).map(|i| u8::try_from(i % 253).unwrap()).collect();
    let large = registered(&fixture, &blob, 1);
    store_blob(&fixture.node, &large);
    let blob_id = *large.metadata.blob_id();
    let items = (0..MAX_RECOVERY_BATCH)
        .map(|position| RecoveryItem {
            blob_id,
            target_sliver: u16::try_from(position).unwrap() % N,
            target_type: if position.is_multiple_of(2) { SliverType::Primary } else { SliverType::Secondary },
            max_symbols: None,
        })
        .collect();
    let request = RecoveryBatchRequest { items };
    let (status, body) = recover(&fixture, batch_request(&request)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(body.len() <= MAX_RECOVERY_BATCH_RESPONSE_BYTES);
    let response: RecoveryBatchResponse = from_bcs(&body, MAX_RECOVERY_BATCH_RESPONSE_BYTES).unwrap();
    assert!(response.answers(&request));
    let answered = response
        .items
        .iter()
        .take_while(|answer| matches!(answer.outcome, RecoveryOutcome::Symbols(_)))
        .count();
    assert!(answered > 0 && answered < MAX_RECOVERY_BATCH, "{answered} items answered");
    for answer in &response.items[answered..] {
        match &answer.outcome {
            RecoveryOutcome::Error(ErrorBody { code, .. }) => assert_eq!(code, "over_budget"),
            RecoveryOutcome::Symbols(_) | RecoveryOutcome::Block(_) => {
                panic!("symbols after the budget ran out")
            }
        }
    }
    // The answer fills its budget: counting each symbol at its largest size, as the node does,
    // not even two more items would have fit.
    let largest = recovery_symbol_limit(config(), large.metadata.symbol_size());
    let allowance: usize = response.items[..answered]
        .iter()
        .flat_map(|answer| match &answer.outcome {
            RecoveryOutcome::Symbols(symbols) => symbols.as_slice(),
            RecoveryOutcome::Block(_) | RecoveryOutcome::Error(_) => &[],
        })
        .map(|symbol| largest - to_bcs(symbol).len())
        .sum();
    let item_len = to_bcs(&response.items[0]).len();
    assert!(
        body.len() + allowance + 2 * item_len
            > usize::try_from(Limits::default().max_recovery_answer_bytes).unwrap(),
        "{} bytes, {allowance} bytes of allowance",
        body.len()
    );
    for answer in &response.items[..answered] {
        let RecoveryOutcome::Symbols(symbols) = &answer.outcome else { unreachable!() };
        assert_eq!(symbols.len(), 5);
        large
            .metadata
            .verify_recovery_symbol(answer.target_type, usize::from(answer.target_sliver), &symbols[4])
            .unwrap();
    }
}

/// Encodes `blob`, changes one byte of sliver `target` of `kind`, and registers and stores the
/// result under the metadata that commits to exactly those slivers: an inconsistently encoded
/// blob, as a faulty writer would store it.
fn inconsistent(fixture: &Fixture, blob: &[u8], kind: SliverType, target: u16, seq: u64) -> EncodedBlob {
    let mut encoded = redstuff::encode(config(), blob).unwrap();
    let pair = &mut encoded.pairs[usize::from(index_in_pair(kind, target))];
    let tampered = match kind {
        SliverType::Primary => &mut pair.primary,
        SliverType::Secondary => &mut pair.secondary,
    };
    assert_eq!(tampered.index, target);
    tampered.symbols[0] ^= 1;
    let length = encoded.metadata.unencoded_length();
    encoded.metadata = redstuff::metadata_for_pairs(config(), length, &encoded.pairs).unwrap();
    register_blob(&fixture.node, &encoded, seq, false);
    store_blob(&fixture.node, &encoded);
    encoded
}

#[tokio::test]
async fn an_inconsistency_proof_from_proven_symbols_is_attested() {
    let fixture = fixture(true);
    for (seq, kind) in [(1, SliverType::Primary), (2, SliverType::Secondary)] {
        let blob = format!("an inconsistently encoded blob, tampered in a {kind} sliver");
        // Any sliver will do: whoever holds it, the symbols of the other kind disagree with it.
        let target = 2;
        let encoded = inconsistent(&fixture, blob.as_bytes(), kind, target, seq);
        let blob_id = *encoded.metadata.blob_id();
        // Every symbol is proven, and they rebuild a sliver that is not the committed one.
        let mut symbols = node_symbols(&fixture, &encoded, target, kind).await;
        let held = held(&fixture, &encoded, kind.orthogonal());
        symbols.extend(other_symbols(&encoded, kind, target, &held));
        let Err(RecoveryError::Inconsistent { proof, .. }) =
            encoded.metadata.rebuild_sliver(kind, usize::from(target), &symbols, Proofs::Check)
        else {
            panic!("the tampered {kind} sliver {target} rebuilt consistently");
        };
        let path = api::inconsistency_proof_path(&blob_id, kind);
        let (status, body) =
            recover(&fixture, post(&path, "application/octet-stream", to_bcs(&*proof))).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let attestation: InvalidBlobAttestation = serde_json::from_slice(&body).unwrap();
        let public_key = fixture.node.key().public_key();
        attestation.verify(&blob_id, Epoch(1), &public_key).unwrap();
        let message = morsa_core::invalid_blob_message(Epoch(1), &blob_id);
        public_key.verify(&message, &attestation.signature).unwrap();
        // The same proof sent for the other kind is refused.
        let path = api::inconsistency_proof_path(&blob_id, kind.orthogonal());
        let (status, body) =
            recover(&fixture, post(&path, "application/octet-stream", to_bcs(&*proof))).await;
        assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    }
}

#[tokio::test]
async fn a_proof_against_a_consistent_blob_is_refused() {
    let fixture = fixture(true);
    store_blob(&fixture.node, &fixture.encoded);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let kind = SliverType::Primary;
    let target = foreign_target(&fixture, &fixture.encoded, kind);
    let held = held(&fixture, &fixture.encoded, kind.orthogonal());
    let mut symbols = node_symbols(&fixture, &fixture.encoded, target, kind).await;
    symbols.extend(other_symbols(&fixture.encoded, kind, target, &held));
    let proof = InconsistencyProof { target_kind: kind, target_index: target, symbols };
    let path = api::inconsistency_proof_path(&blob_id, kind);
    let (status, body) = recover(&fixture, post(&path, "application/octet-stream", to_bcs(&proof))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    let message = serde_json::from_slice::<ErrorBody>(&body).unwrap().message;
    assert!(message.contains("nothing is inconsistent"), "{message}");
    // Garbage, a body over any proof's size, and a proof for a blob whose metadata the node
    // does not have.
    let (status, body) = recover(&fixture, post(&path, "application/octet-stream", vec![0xff; 64])).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    let limit = api::inconsistency_proof_limit(config(), redstuff::MAX_SYMBOL_SIZE);
    let (status, body) = recover(&fixture, post(&path, "application/octet-stream", vec![0; limit + 1])).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let unknown = api::inconsistency_proof_path(&BlobId([7; 32]), kind);
    let (status, body) = recover(&fixture, post(&unknown, "application/octet-stream", to_bcs(&proof))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

/// The value of the metric line `name` of `served`'s node (without labels).
async fn metric(served: &std::sync::Arc<morsa_node::Served>, name: &str) -> String {
    let (status, text) = call(served, get(api::routes::METRICS)).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(text).unwrap();
    let line = text.lines().find(|line| line.split(' ').next() == Some(name));
    line.and_then(|line| line.split(' ').nth(1)).unwrap_or_else(|| panic!("no {name} in:\n{text}")).to_owned()
}

#[tokio::test]
async fn answers_to_recovery_requests_run_on_the_low_priority_pool_unless_a_read_waits_or_it_is_off() {
    let fixture = fixture(true);
    store_blob(&fixture.node, &fixture.encoded);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let one_item = RecoveryBatchRequest {
        items: vec![RecoveryItem {
            blob_id,
            target_sliver: 3,
            target_type: SliverType::Primary,
            max_symbols: None,
        }],
    };
    // By default (`background_nice = 19`) each answer is one job of the pool.
    assert_eq!(metric(&fixture.served, "morsa_node_background_nice").await, "19");
    assert_eq!(metric(&fixture.served, "morsa_node_background_jobs_total").await, "0");
    node_symbols(&fixture, &fixture.encoded, 3, SliverType::Primary).await;
    assert_eq!(metric(&fixture.served, "morsa_node_background_jobs_total").await, "1");
    let (status, _) = recover(&fixture, batch_request(&one_item)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metric(&fixture.served, "morsa_node_background_jobs_total").await, "2");
    // A batch a read waits for (an on-demand rebuild) is answered at normal priority: no job,
    // and the same answer.
    let path = |waiting| {
        let query = api::RecoveryBatchQuery { waiting, ..api::RecoveryBatchQuery::default() };
        format!("{}?{}", api::routes::RECOVERY_SYMBOLS_BATCH, query.to_query_string())
    };
    let json = || serde_json::to_vec(&one_item).unwrap();
    let (status, waited) = call(&fixture.served, post(&path(true), "application/json", json())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metric(&fixture.served, "morsa_node_background_jobs_total").await, "2");
    let (status, queued) = call(&fixture.served, post(&path(false), "application/json", json())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metric(&fixture.served, "morsa_node_background_jobs_total").await, "3");
    assert_eq!(waited, queued);

    // With the pool off the same answers run on blocking threads: no job.
    let mut limits = Limits::default();
    limits.repair.background_nice = 0;
    let off = morsa_node::Served::new(std::sync::Arc::clone(&fixture.node), &limits);
    let (status, _) = call(&off, batch_request(&one_item)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metric(&off, "morsa_node_background_nice").await, "0");
    assert_eq!(metric(&off, "morsa_node_background_jobs_total").await, "0");
}
