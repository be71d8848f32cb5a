//! Every route of the node through its router: good and bad input.

use axum::http::StatusCode;
use morsa_api::coord::{Event, EventRecord};
use morsa_api::node::{
    self as api, NodeBlobState, NodeBlobStatus, NodeHealth, SignedConfirmation, StoredStatus,
};
use morsa_core::{Epoch, ObjectId, PersistenceType};
use redstuff::wire::to_bcs;
use redstuff::{BlobId, EncodingConfig, MetadataWithId, SliverType};

use crate::common;

use common::*;

#[tokio::test]
async fn a_full_upload_is_served_back_and_confirmed() {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    // Before the slivers are in, no confirmation.
    let (status, body) = call(&fixture.served, get(&api::permanent_confirmation_path(&blob_id))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "not_ready"));

    upload_everything(&fixture).await;
    let (status, body) = call(&fixture.served, get(&api::metadata_path(&blob_id))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, metadata_bytes(&fixture.encoded));
    let pair = owned_pairs(&fixture)[0];
    let (status, body) =
        call(&fixture.served, get(&api::sliver_path(&blob_id, pair, SliverType::Secondary))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, to_bcs(&fixture.encoded.pairs[usize::from(pair)].secondary));

    let (status, body) = call(&fixture.served, get(&api::permanent_confirmation_path(&blob_id))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let confirmation: SignedConfirmation = serde_json::from_slice(&body).unwrap();
    // The signature is over the exact storage-confirmation bytes, with the node's key.
    let message = morsa_core::storage_confirmation_message(Epoch(1), &blob_id, &PersistenceType::Permanent);
    fixture.node.key().public_key().verify(&message, &confirmation.signature).unwrap();
    assert_eq!(confirmation.node, fixture.node.id());

    let (_, body) = call(&fixture.served, get(&api::blob_status_path(&blob_id))).await;
    let status: NodeBlobStatus = serde_json::from_slice(&body).unwrap();
    assert_eq!(status.status, NodeBlobState::Registered);
    assert_eq!(status.stored_slivers, status.expected_slivers);
    let (_, body) = call(&fixture.served, get(api::routes::HEALTH)).await;
    let health: NodeHealth = serde_json::from_slice(&body).unwrap();
    assert_eq!(health.shards.len(), 5);
    assert_eq!(health.blobs, 1);
}

#[tokio::test]
async fn uploads_for_unregistered_blobs_are_refused() {
    let fixture = fixture(false);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let (status, body) =
        call(&fixture.served, put(&api::metadata_path(&blob_id), metadata_bytes(&fixture.encoded))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "not_registered"));
    let (status, body) = call(&fixture.served, get(&api::metadata_status_path(&blob_id))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!serde_json::from_slice::<StoredStatus>(&body).unwrap().stored);
}

#[tokio::test]
async fn bad_metadata_and_slivers_are_refused_with_their_reason() {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    // Metadata of another blob under this ID.
    let other = redstuff::encode(EncodingConfig::new(N).unwrap(), b"another blob").unwrap();
    let mut wrong = MetadataWithId { blob_id, metadata: other.metadata.metadata().clone() };
    let (status, body) = call(&fixture.served, put(&api::metadata_path(&blob_id), to_bcs(&wrong))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"));
    wrong.blob_id = *other.metadata.blob_id();
    let (status, body) = call(&fixture.served, put(&api::metadata_path(&blob_id), to_bcs(&wrong))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"));
    // Garbage BCS.
    let (status, body) = call(&fixture.served, put(&api::metadata_path(&blob_id), vec![0xff; 40])).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));

    let (status, _) =
        call(&fixture.served, put(&api::metadata_path(&blob_id), metadata_bytes(&fixture.encoded))).await;
    assert_eq!(status, StatusCode::OK);
    let pair = owned_pairs(&fixture)[0];
    let path = api::sliver_path(&blob_id, pair, SliverType::Primary);
    let mut sliver = fixture.encoded.pairs[usize::from(pair)].primary.clone();
    sliver.symbols[3] ^= 1;
    let (status, body) = call(&fixture.served, put(&path, to_bcs(&sliver))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"));
    sliver.symbols.truncate(usize::from(sliver.symbol_size)); // one whole symbol: well formed, too short
    let (status, body) = call(&fixture.served, put(&path, to_bcs(&sliver))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "size_mismatch"));
    let (status, body) = call(&fixture.served, put(&path, b"garbage".to_vec())).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    // The secondary sliver of the pair sent as its primary.
    let secondary = fixture.encoded.pairs[usize::from(pair)].secondary.clone();
    let (status, body) = call(&fixture.served, put(&path, to_bcs(&secondary))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    // A pair of a shard the node does not own.
    let foreign = (0..N).find(|pair| !owned_pairs(&fixture).contains(pair)).unwrap();
    let sliver = &fixture.encoded.pairs[usize::from(foreign)].primary;
    let path = api::sliver_path(&blob_id, foreign, SliverType::Primary);
    let (status, body) = call(&fixture.served, put(&path, to_bcs(sliver))).await;
    assert_eq!((status.as_u16(), code(&body).as_str()), (421, "wrong_shard"));
    // An oversized body (for a pair the node owns: others are refused before the body is read).
    let limit = EncodingConfig::new(N).unwrap().ks() * 65534 + 2048;
    let owned = api::sliver_path(&blob_id, owned_pairs(&fixture)[0], SliverType::Primary);
    let (status, _) = call(&fixture.served, put(&owned, vec![0; limit])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown blob, malformed ID.
    let (status, body) = call(&fixture.served, get(&api::metadata_path(&BlobId([9; 32])))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _) = call(&fixture.served, get("/v1/blobs/nope/metadata")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_deletable_confirmation_names_its_object_and_invalid_blobs_are_refused() {
    let fixture = fixture(false);
    register_blob(&fixture.node, &fixture.encoded, 0, true);
    upload_everything(&fixture).await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    let object = ObjectId([0; 32]);
    let (status, _) = call(&fixture.served, get(&api::permanent_confirmation_path(&blob_id))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a deletable registration gets no permanent confirmation");
    let (status, body) =
        call(&fixture.served, get(&api::deletable_confirmation_path(&blob_id, &object))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let confirmation: SignedConfirmation = serde_json::from_slice(&body).unwrap();
    assert_eq!(confirmation.persistence, PersistenceType::Deletable { object_id: object });

    let invalid = Event::InvalidBlobId { blob_id, epoch: Epoch(1) };
    fixture.node.apply_events(&[EventRecord::new(1, 0, invalid, [0; 32])]).unwrap();
    let (status, body) =
        call(&fixture.served, put(&api::metadata_path(&blob_id), metadata_bytes(&fixture.encoded))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::GONE, "invalid_blob"));
}

#[tokio::test]
async fn expired_and_invalid_blobs_are_collected() {
    let fixture = fixture(true); // registered until epoch 5
    upload_everything(&fixture).await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    assert_eq!(fixture.node.collect_garbage().unwrap().blobs, 0, "a live blob is kept");
    let epoch_five = Event::EpochChangeStart { epoch: Epoch(5) };
    fixture.node.apply_events(&[EventRecord::new(1, 0, epoch_five, [0; 32])]).unwrap();
    let (stats, more) = fixture.node.collect_garbage_batch(0).unwrap();
    assert_eq!((stats.blobs, more), (0, true), "an empty batch removes nothing and says more remain");
    let stats = fixture.node.collect_garbage().unwrap();
    assert_eq!((stats.blobs, stats.slivers), (1, 10));
    assert!(!fixture.node.collect_garbage_batch(1).unwrap().1, "nothing remains");
    let (status, _) = call(&fixture.served, get(&api::metadata_path(&blob_id))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(fixture.node.store().stats().unwrap().blobs, 0);

    let fixture = self::fixture(true);
    upload_everything(&fixture).await;
    let invalid = Event::InvalidBlobId { blob_id, epoch: Epoch(1) };
    fixture.node.apply_events(&[EventRecord::new(1, 0, invalid, [0; 32])]).unwrap();
    assert_eq!(fixture.node.collect_garbage().unwrap().blobs, 1);
    let (_, body) = call(&fixture.served, get(&api::blob_status_path(&blob_id))).await;
    let status: NodeBlobStatus = serde_json::from_slice(&body).unwrap();
    assert_eq!((status.status, status.stored_slivers), (NodeBlobState::Invalid, 0));
}

/// Slivers (primary and secondary) the store holds, over every shard.
fn slivers_held(node: &morsa_node::Node) -> u64 {
    let stats = node.store().stats().unwrap();
    stats.shards.values().map(|shard| shard.primary_slivers + shard.secondary_slivers).sum()
}

fn object_id(seq: u64) -> [u8; 32] {
    let mut id = [0; 32];
    id[..8].copy_from_slice(&seq.to_le_bytes());
    id
}

#[test]
fn one_gc_pass_removes_exactly_its_batch_of_garbage_blobs() {
    // The follower's passes take 32 blobs each; 40 expired blobs and 3 live ones.
    const BATCH: usize = 32;
    const EXPIRED: u64 = 40;
    const LIVE: u64 = 3;
    let fixture = fixture(false);
    let node = &fixture.node;
    let mut live = Vec::new();
    for seq in 0..EXPIRED + LIVE {
        let data: Vec<u8> = (0..700u64).map(|i| u8::try_from((i * 7 + seq) % 251).unwrap()).collect();
        let encoded = redstuff::encode(config(), &data).unwrap();
        let end_epoch = if seq < EXPIRED { Epoch(5) } else { Epoch(9) };
        let event = Event::BlobRegistered {
            blob_id: *encoded.metadata.blob_id(),
            object: ObjectId(object_id(seq)),
            size: encoded.metadata.unencoded_length(),
            encoded_size: 1,
            end_epoch,
            deletable: false,
            epoch: Epoch(1),
        };
        node.apply_events(&[EventRecord::new(seq, 0, event, [0; 32])]).unwrap();
        store_blob(node, &encoded);
        if seq >= EXPIRED {
            live.push(encoded);
        }
    }
    // 5 of the 10 shards are the node's: 10 slivers per blob.
    assert_eq!(slivers_held(node), (EXPIRED + LIVE) * 10);
    let epoch_five = Event::EpochChangeStart { epoch: Epoch(5) };
    node.apply_events(&[EventRecord::new(EXPIRED + LIVE, 0, epoch_five, [0; 32])]).unwrap();

    let (stats, more) = node.collect_garbage_batch(BATCH).unwrap();
    assert_eq!((stats.blobs, stats.slivers, more), (32, 320, true));
    assert_eq!(node.store().stats().unwrap().blobs, EXPIRED + LIVE - 32);
    assert_eq!(slivers_held(node), (EXPIRED + LIVE - 32) * 10);

    let (stats, more) = node.collect_garbage_batch(BATCH).unwrap();
    assert_eq!((stats.blobs, stats.slivers, more), (EXPIRED - 32, (EXPIRED - 32) * 10, false));
    assert_eq!(node.store().stats().unwrap().blobs, LIVE);
    assert_eq!(slivers_held(node), LIVE * 10);
    // What is left is the live blobs, whole.
    for encoded in &live {
        let blob_id = encoded.metadata.blob_id();
        assert!(node.store().has_metadata(&blob_id.0).unwrap());
    }
    let (stats, more) = node.collect_garbage_batch(BATCH).unwrap();
    assert_eq!((stats.blobs, stats.slivers, more), (0, 0, false));
}

#[tokio::test]
async fn metrics_count_requests_and_stored_slivers() {
    let fixture = fixture(true);
    upload_everything(&fixture).await;
    let (status, body) = call(&fixture.served, get(api::routes::METRICS)).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    let sliver_route = api::routes::SLIVER;
    assert!(
        text.contains(&format!("morsa_node_requests_total{{route=\"{sliver_route}\",status=\"200\"}} 10")),
        "{text}"
    );
    assert!(text.contains("morsa_node_blobs 1"), "{text}");
    let shard = fixture.node.owned_shards().into_iter().next().unwrap();
    assert!(text.contains(&format!("morsa_node_shard_slivers{{shard=\"{shard}\"}} 2")), "{text}");
}

#[tokio::test]
async fn two_nodes_in_one_process_report_their_own_requests() {
    let (first, second) = (fixture(false), fixture(false));
    for _ in 0..3 {
        assert_eq!(call(&first.served, get(api::routes::HEALTH)).await.0, StatusCode::OK);
    }
    assert_eq!(call(&second.served, get(api::routes::HEALTH)).await.0, StatusCode::OK);
    let health_requests = |served| async move {
        let (_, body) = call(served, get(api::routes::METRICS)).await;
        let text = String::from_utf8(body).unwrap();
        let prefix =
            format!("morsa_node_requests_total{{route=\"{}\",status=\"200\"}} ", api::routes::HEALTH);
        let line = text.lines().find_map(|line| line.strip_prefix(prefix.as_str()).map(str::to_string));
        line.unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
    };
    assert_eq!(health_requests(&first.served).await, "3");
    assert_eq!(health_requests(&second.served).await, "1");
}

#[tokio::test]
async fn pending_uploads_are_stored_once_the_registration_arrives() {
    let fixture = fixture(false);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let pending = |path: String| format!("{path}?pending=true");
    let (status, _) =
        call(&fixture.served, put(&pending(api::metadata_path(&blob_id)), metadata_bytes(&fixture.encoded)))
            .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let pair = owned_pairs(&fixture)[0];
    let sliver = to_bcs(&fixture.encoded.pairs[usize::from(pair)].primary);
    let path = api::sliver_path(&blob_id, pair, SliverType::Primary);
    let (status, _) = call(&fixture.served, put(&pending(path.clone()), sliver.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, body) = call(&fixture.served, get(api::routes::HEALTH)).await;
    assert_eq!(serde_json::from_slice::<NodeHealth>(&body).unwrap().pending_uploads, 2);
    // Without ?pending=true the same upload is refused.
    let (status, _) = call(&fixture.served, put(&path, sliver.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT);

    register_blob(&fixture.node, &fixture.encoded, 0, false);
    morsa_node::testing::store_ready_uploads(&fixture.served);
    assert_eq!(fixture.served.pending_uploads(), 0);
    let (status, body) = call(&fixture.served, get(&path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, sliver);
}

#[tokio::test]
async fn recovery_symbols_are_served_by_the_main_router() {
    let fixture = fixture(true);
    upload_everything(&fixture).await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    let path = format!("{}?target_sliver=0&target_type=primary", api::recovery_symbols_path(&blob_id));
    let (status, body) = call(&fixture.served, get(&path)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let symbols: Vec<redstuff::RecoverySymbol> = bcs::from_bytes(&body).unwrap();
    assert_eq!(symbols.len(), 5, "one symbol per secondary sliver the node holds");
    for symbol in &symbols {
        fixture.encoded.metadata.verify_recovery_symbol(SliverType::Primary, 0, symbol).unwrap();
    }
}

/// What a client without any coordinator asks a node: the committee it follows (moving on
/// with the events' epoch change) and whether a blob is certified and until when.
#[tokio::test]
async fn the_committee_and_a_blobs_certification_are_served_as_the_events_say() {
    let fixture = fixture(true); // registered until epoch 5, in epoch 1
    let blob_id = *fixture.encoded.metadata.blob_id();
    let committee = |served| async move {
        let (status, body) = call(served, get(api::routes::COMMITTEE)).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice::<api::NodeCommittee>(&body).unwrap()
    };
    let first = committee(&fixture.served).await;
    assert_eq!((first.epoch, first.current.epoch, first.next), (Epoch(1), Epoch(1), None));
    assert_eq!(first.current, fixture.node.view().committee);

    let mut second = first.current.clone();
    second.epoch = Epoch(2);
    second.members.swap(0, 1);
    let certified = Event::BlobCertified {
        blob_id,
        object: ObjectId([0; 32]),
        end_epoch: Epoch(7),
        deletable: false,
        epoch: Epoch(1),
    };
    let events = [
        EventRecord::new(1, 0, certified, [0; 32]),
        EventRecord::new(2, 0, Event::CommitteeSelected { committee: second.clone() }, [0; 32]),
    ];
    fixture.node.apply_events(&events).unwrap();
    let selected = committee(&fixture.served).await;
    assert_eq!((selected.epoch, selected.next.as_ref()), (Epoch(1), Some(&second)));
    let (_, body) = call(&fixture.served, get(&api::blob_status_path(&blob_id))).await;
    let status: NodeBlobStatus = serde_json::from_slice(&body).unwrap();
    assert_eq!((status.status, status.end_epoch), (NodeBlobState::Certified, Some(Epoch(7))));

    let start = Event::EpochChangeStart { epoch: Epoch(2) };
    fixture.node.apply_events(&[EventRecord::new(3, 0, start, [0; 32])]).unwrap();
    let changed = committee(&fixture.served).await;
    assert_eq!((changed.epoch, &changed.current, changed.next), (Epoch(2), &second, None));
}

/// The answer to `request`: status, `Allow` header and body as an [`ErrorBody`](morsa_api::ErrorBody);
/// fails the test if the body is not one in JSON (with a JSON content type).
async fn refusal(
    served: &std::sync::Arc<morsa_node::Served>,
    request: axum::http::Request<axum::body::Body>,
) -> (StatusCode, Option<String>, morsa_api::ErrorBody) {
    use tower::ServiceExt as _;
    let what = format!("{} {}", request.method(), request.uri());
    let router = morsa_node::router(std::sync::Arc::clone(served), &morsa_node::Limits::default());
    let response = router.oneshot(request).await.unwrap();
    let (morsa_api::server::refusal::Refusal(status, error), allow) =
        morsa_api::server::refusal::read_refusal(response)
            .await
            .unwrap_or_else(|why| panic!("{what}: {why}"));
    (status, allow, error)
}

fn request(method: &axum::http::Method, uri: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder().method(method).uri(uri).body(axum::body::Body::empty()).unwrap()
}

#[tokio::test]
async fn malformed_paths_to_every_route_are_refused_in_json_with_a_code() {
    use axum::http::Method;
    let fixture = fixture(true);
    let routes = [
        api::routes::METADATA,
        api::routes::METADATA_STATUS,
        api::routes::SLIVER,
        api::routes::SLIVER_BATCH,
        api::routes::SLIVER_READ_BATCH,
        api::routes::SLIVER_STATUS,
        api::routes::PERMANENT_CONFIRMATION,
        api::routes::DELETABLE_CONFIRMATION,
        api::routes::RECOVERY_SYMBOLS,
        api::routes::INCONSISTENCY_PROOF,
        api::routes::CHALLENGE_ANSWERS,
        api::routes::BLOB_STATUS,
        api::routes::SHARD_PAGE,
    ];
    for route in routes {
        // Every `{parameter}` of the route a value no parameter takes.
        let path: String = route
            .split('/')
            .map(|part| if part.starts_with('{') { "not-a-value" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let mut refused_as_malformed = 0;
        for method in [Method::GET, Method::PUT, Method::POST] {
            let (status, allow, error) = refusal(&fixture.served, request(&method, &path)).await;
            match error.code.as_str() {
                "bad_request" => {
                    assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {error}");
                    assert!(error.message.contains("not-a-value"), "{method} {path}: {error}");
                    refused_as_malformed += 1;
                }
                "method_not_allowed" => {
                    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                    assert!(allow.is_some_and(|allow| !allow.contains(method.as_str())), "{method} {path}");
                }
                other => panic!("{method} {path}: {other}: {error}"),
            }
        }
        assert!(refused_as_malformed > 0, "{route}: no method of the route reached its parameters");
    }
}

#[tokio::test]
async fn malformed_queries_unknown_routes_and_methods_are_refused_in_json_with_a_code() {
    use axum::http::Method;
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let pair = owned_pairs(&fixture)[0];
    let malformed_queries = [
        (
            Method::GET,
            format!(
                "{}?pairs=0,x",
                api::routes::SLIVER_READ_BATCH
                    .replace("{blob_id}", &blob_id.to_string())
                    .replace("{sliver_type}", "primary")
            ),
        ),
        (
            Method::GET,
            format!(
                "{}?pair=0",
                api::routes::SLIVER_READ_BATCH
                    .replace("{blob_id}", &blob_id.to_string())
                    .replace("{sliver_type}", "primary")
            ),
        ),
        (Method::PUT, format!("{}?pending=maybe", api::metadata_path(&blob_id))),
        (Method::PUT, format!("{}?pending=maybe", api::sliver_path(&blob_id, pair, SliverType::Primary))),
        (
            Method::GET,
            format!(
                "{}?target_sliver=x&target_type=primary",
                api::routes::RECOVERY_SYMBOLS.replace("{blob_id}", &blob_id.to_string())
            ),
        ),
        (Method::POST, format!("{}?proofs=maybe", api::routes::RECOVERY_SYMBOLS_BATCH)),
        (Method::GET, format!("{}?bytes=many", api::routes::PROBE)),
        (
            Method::GET,
            format!(
                "{}?from=x",
                api::routes::CHALLENGE_ANSWERS.replace("{epoch}", "1").replace("{round}", "0")
            ),
        ),
    ];
    for (method, uri) in malformed_queries {
        let (status, _, error) = refusal(&fixture.served, request(&method, &uri)).await;
        assert_eq!(
            (status, error.code.as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{method} {uri}: {error}"
        );
    }
    // A shard page asked under another shard's path.
    let key = morsa_core::BlsSecretKey::from_seed([1; 32]);
    let asked = api::ShardPageRequest::signed(&key, morsa_core::Epoch(1), morsa_core::ShardIndex(4), None, 1);
    let post = axum::http::Request::post(api::shard_page_path(3))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(&asked).unwrap()))
        .unwrap();
    let (status, _, error) = refusal(&fixture.served, post).await;
    assert_eq!((status, error.code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(error.message.contains("shard 3") && error.message.contains("shard 4"), "{error}");
    let (status, allow, error) =
        refusal(&fixture.served, request(&Method::DELETE, &api::metadata_path(&blob_id))).await;
    assert_eq!((status, error.code.as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let allow = allow.expect("a 405 names the route's methods");
    assert!(allow.contains("GET") && allow.contains("PUT"), "{allow}");
    let (status, _, error) = refusal(&fixture.served, request(&Method::GET, "/v1/nothing/here")).await;
    assert_eq!((status, error.code.as_str()), (StatusCode::NOT_FOUND, "unknown_route"));
    assert!(error.message.contains("/v1/nothing/here"), "{error}");
    // A client takes it for a route the node does not have (as it takes an older node's 404).
    let unknown = morsa_api::client::ClientError::Http { status, body: error };
    assert!(unknown.is_missing_route());
}
