//! The batched read route: several slivers of one kind in one answer, each exactly what the
//! single route answers (its bytes, or its error), and its limits.

use axum::http::StatusCode;
use morsa_api::coord::{Event, EventRecord};
use morsa_api::node::{
    self as api, MAX_READ_BATCH_ITEMS, ReadBatchItem, SliverReadBatchQuery, parse_read_batch,
};
use morsa_core::{Epoch, ObjectId};
use redstuff::{BlobId, SliverType};

use crate::common::*;

fn batch_path(blob_id: &BlobId, kind: &str, pairs: &str) -> String {
    let path = api::routes::SLIVER_READ_BATCH.replace("{blob_id}", &blob_id.to_string());
    format!("{}?pairs={pairs}", path.replace("{sliver_type}", kind))
}

async fn read_batch(
    fixture: &Fixture,
    blob_id: &BlobId,
    kind: SliverType,
    pairs: &[u16],
) -> (StatusCode, Vec<u8>) {
    let query = SliverReadBatchQuery::new(pairs).to_query_string();
    let path = format!("{}?{query}", api::sliver_read_batch_path(blob_id, kind));
    call(&fixture.served, get(&path)).await
}

/// The fixture with the metadata and every owned sliver stored but those of `missing`.
async fn stored_but(missing: u16) -> Fixture {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let (status, _) =
        call(&fixture.served, put(&api::metadata_path(&blob_id), metadata_bytes(&fixture.encoded))).await;
    assert_eq!(status, StatusCode::OK);
    for pair in owned_pairs(&fixture).into_iter().filter(|pair| *pair != missing) {
        let slivers = &fixture.encoded.pairs[usize::from(pair)];
        for (kind, sliver) in
            [(SliverType::Primary, &slivers.primary), (SliverType::Secondary, &slivers.secondary)]
        {
            let body = redstuff::wire::to_bcs(sliver);
            let (status, _) = call(&fixture.served, put(&api::sliver_path(&blob_id, pair, kind), body)).await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    fixture
}

#[tokio::test]
async fn a_batch_answers_what_single_requests_answer() {
    let missing = owned_pairs(&fixture(false))[0];
    let fixture = stored_but(missing).await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    // Every pair, in an order of its own: stored ones, the missing one, other nodes' ones.
    let pairs: Vec<u16> = (0..N).rev().collect();
    let (mut served, mut not_found, mut wrong_shard) = (0, 0, 0);
    for kind in [SliverType::Primary, SliverType::Secondary] {
        let (status, body) = read_batch(&fixture, &blob_id, kind, &pairs).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let items = parse_read_batch(&body, &pairs).unwrap();
        for (pair, item) in pairs.iter().zip(items) {
            let (single_status, single) =
                call(&fixture.served, get(&api::sliver_path(&blob_id, *pair, kind))).await;
            match item {
                ReadBatchItem::Sliver(range) => {
                    assert_eq!(single_status, StatusCode::OK, "pair {pair}");
                    assert!(body[range] == single[..], "pair {pair} {kind}: the same bytes");
                    served += 1;
                }
                ReadBatchItem::Refused(error) => {
                    assert_ne!(single_status, StatusCode::OK, "pair {pair}");
                    assert_eq!(error.code, code(&single), "pair {pair} {kind}: the same error");
                    not_found += usize::from(error.code == "not_found");
                    wrong_shard += usize::from(error.code == "wrong_shard");
                }
            }
        }
    }
    assert_eq!(served, 2 * (owned_pairs(&fixture).len() - 1));
    assert_eq!(not_found, 2, "the missing pair's slivers");
    assert!(wrong_shard > 0, "other nodes' pairs");
    let (_, metrics) = call(&fixture.served, get(api::routes::METRICS)).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.lines().any(|line| line.starts_with("morsa_node_requests_total")
            && line.contains(api::routes::SLIVER_READ_BATCH)
            && line.contains("\"200\"")),
        "the batched read route is counted:\n{metrics}"
    );
    for (outcome, count) in
        [("served", served), ("refused", not_found + 2 * (usize::from(N) - owned_pairs(&fixture).len()))]
    {
        let line = format!("morsa_node_read_batch_slivers_total{{outcome=\"{outcome}\"}} {count}");
        assert!(metrics.lines().any(|text| text == line), "{line}:\n{metrics}");
    }
}

#[tokio::test]
async fn malformed_batches_are_refused_and_unknown_blobs_answered_as_the_single_route_answers() {
    let fixture = stored_but(u16::MAX);
    let fixture = fixture.await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    for (kind, pairs) in
        [("tertiary", "1"), ("primary", "1,1"), ("primary", "1,x"), ("primary", ""), ("primary", "70000")]
    {
        let (status, body) = call(&fixture.served, get(&batch_path(&blob_id, kind, pairs))).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{kind} {pairs:?}: {text}");
        assert!(text.contains("\"code\":\"bad_request\""), "{kind} {pairs:?}: {text}");
    }
    let path = api::sliver_read_batch_path(&blob_id, SliverType::Primary);
    let (status, body) = call(&fixture.served, get(&path)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::BAD_REQUEST, "no pairs: {text}");
    assert!(text.contains("\"code\":\"bad_request\""), "no pairs: {text}");
    let unknown = *redstuff::encode(config(), &[1u8; 100]).unwrap().metadata.blob_id();
    let (single_status, single) =
        call(&fixture.served, get(&api::sliver_path(&unknown, 1, SliverType::Primary))).await;
    let (status, body) = read_batch(&fixture, &unknown, SliverType::Primary, &[1, 2]).await;
    // Each sliver of an unknown blob is refused in its place, as the single route refuses it.
    assert_ne!(single_status, StatusCode::OK);
    assert_eq!(status, StatusCode::OK);
    for item in parse_read_batch(&body, &[1, 2]).unwrap() {
        assert!(matches!(&item, ReadBatchItem::Refused(error) if error.code == code(&single)), "{item:?}");
    }
}

#[tokio::test]
async fn a_batch_is_bounded_in_items_and_in_its_answer_bytes() {
    let fixture = stored_but(u16::MAX).await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    let too_many: Vec<String> = (0..=MAX_READ_BATCH_ITEMS).map(|pair| pair.to_string()).collect();
    let (status, body) =
        call(&fixture.served, get(&batch_path(&blob_id, "primary", &too_many.join(",")))).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_request".to_string()));
    assert!(String::from_utf8_lossy(&body).contains(&MAX_READ_BATCH_ITEMS.to_string()));

    // A registered blob of 1.8 MB, about the largest 10 shards code: each of its slivers is
    // up to about 450 kB, so a batch of 40 could answer more than the limit and is refused
    // before anything is read; one of 10 is served (nothing of it is stored here).
    let large = BlobId([7; 32]);
    let event = Event::BlobRegistered {
        blob_id: large,
        object: ObjectId([7; 32]),
        size: 1_800_000,
        encoded_size: 1,
        end_epoch: Epoch(5),
        deletable: false,
        epoch: Epoch(1),
    };
    fixture.node.apply_events(&[EventRecord::new(1, 0, event, [0; 32])]).unwrap();
    let before = fixture.served.answer_budget_available();
    let forty: Vec<u16> = (0..40).collect();
    let (status, body) = read_batch(&fixture, &large, SliverType::Secondary, &forty).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large".to_string()));
    assert!(String::from_utf8_lossy(&body).contains("ask for fewer"));
    let (status, body) = read_batch(&fixture, &large, SliverType::Secondary, &forty[..usize::from(N)]).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let items = parse_read_batch(&body, &forty[..usize::from(N)]).unwrap();
    assert!(items.iter().all(|item| matches!(item, ReadBatchItem::Refused(_))), "{items:?}");
    assert_eq!(fixture.served.answer_budget_available(), before, "the answers' budget is given back");
}
