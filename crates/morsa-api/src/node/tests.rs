//! Path builders, error codes and the JSON and BCS forms of every node API type.

use std::fmt::Debug;

use morsa_core::{BlsSecretKey, Epoch, NodeId, ObjectId, PersistenceType, ShardIndex};
use redstuff::merkle::MerkleProof;
use redstuff::wire::{WireValue, from_bcs, to_bcs};
use redstuff::{BlobId, RecoverySymbol, SliverType, SymbolBlock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

const BLOB: BlobId = BlobId([0xfb; 32]);

/// Round-trips `value` through JSON and BCS; returns the JSON.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> serde_json::Value {
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value, "JSON: {json}");
    let bytes = bcs::to_bytes(value).unwrap();
    assert_eq!(&bcs::from_bytes::<T>(&bytes).unwrap(), value, "BCS");
    serde_json::from_str(&json).unwrap()
}

/// Whether `path` is `route` with every `{parameter}` segment filled in.
fn fills(route: &str, path: &str) -> bool {
    let (route, path): (Vec<_>, Vec<_>) = (route.split('/').collect(), path.split('/').collect());
    route.len() == path.len()
        && route
            .iter()
            .zip(&path)
            .all(|(r, p)| if r.starts_with('{') { !p.is_empty() && !p.contains('{') } else { r == p })
}

#[test]
fn paths_fill_their_routes() {
    let text = BLOB.to_string();
    let object = ObjectId([0xab; 32]);
    let cases = [
        (routes::METADATA, metadata_path(&BLOB), format!("/v1/blobs/{text}/metadata")),
        (routes::METADATA_STATUS, metadata_status_path(&BLOB), format!("/v1/blobs/{text}/metadata/status")),
        (
            routes::SLIVER,
            sliver_path(&BLOB, 7, SliverType::Primary),
            format!("/v1/blobs/{text}/slivers/7/primary"),
        ),
        (routes::SLIVER_BATCH, sliver_batch_path(&BLOB), format!("/v1/blobs/{text}/slivers")),
        (
            routes::SLIVER_STATUS,
            sliver_status_path(&BLOB, 65535, SliverType::Secondary),
            format!("/v1/blobs/{text}/slivers/65535/secondary/status"),
        ),
        (
            routes::PERMANENT_CONFIRMATION,
            permanent_confirmation_path(&BLOB),
            format!("/v1/blobs/{text}/confirmation/permanent"),
        ),
        (
            routes::DELETABLE_CONFIRMATION,
            deletable_confirmation_path(&BLOB, &object),
            format!("/v1/blobs/{text}/confirmation/deletable/{}", "ab".repeat(32)),
        ),
        (routes::RECOVERY_SYMBOLS, recovery_symbols_path(&BLOB), format!("/v1/blobs/{text}/recoverySymbols")),
        (
            routes::INCONSISTENCY_PROOF,
            inconsistency_proof_path(&BLOB, SliverType::Secondary),
            format!("/v1/blobs/{text}/inconsistencyProof/secondary"),
        ),
        (routes::BLOB_STATUS, blob_status_path(&BLOB), format!("/v1/blobs/{text}/status")),
    ];
    for (route, built, expected) in cases {
        assert_eq!(built, expected);
        assert!(fills(route, &built), "{built} does not fill {route}");
    }
}

#[test]
fn error_codes_have_one_text_form_and_a_client_or_server_status() {
    for code in NodeErrorCode::ALL {
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
        assert_eq!(code.as_str().parse::<NodeErrorCode>(), Ok(code));
        assert!(code.status().is_client_error() || code.status().is_server_error(), "{code}");
        assert_eq!(code.body("do this").code, code.as_str());
        round_trip(&code);
    }
    let mut texts: Vec<_> = NodeErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), NodeErrorCode::ALL.len());
    assert!("no_such_code".parse::<NodeErrorCode>().is_err());
    assert_eq!(NodeErrorCode::NotRegistered.status().as_u16(), 409);
    assert!(NodeErrorCode::NotReady.is_transient() && !NodeErrorCode::HashMismatch.is_transient());
}

#[test]
fn sliver_types_read_as_lowercase_text_and_as_the_variant_index_in_bcs() {
    let item = RecoveryItem {
        blob_id: BLOB,
        target_sliver: 3,
        target_type: SliverType::Secondary,
        max_symbols: None,
    };
    let json = round_trip(&item);
    assert_eq!(json["target_type"], "secondary");
    assert_eq!(json["blob_id"], BLOB.to_string());
    assert_eq!(bcs::to_bytes(&item).unwrap()[32..], [3, 0, 1, 0]);
    // Askers that predate `max_symbols` still parse, asking for every symbol.
    let old =
        serde_json::json!({"blob_id": BLOB.to_string(), "target_sliver": 3, "target_type": "secondary"});
    assert_eq!(serde_json::from_value::<RecoveryItem>(old).unwrap(), item);
    let wrong =
        serde_json::json!({"blob_id": BLOB.to_string(), "target_sliver": 3, "target_type": "Secondary"});
    assert!(serde_json::from_value::<RecoveryItem>(wrong).is_err());
    assert_eq!(parse_sliver_type("primary"), Some(SliverType::Primary));
    assert_eq!(parse_sliver_type("PRIMARY"), None);
}

#[test]
fn path_and_query_parameters_round_trip() {
    round_trip(&BlobIdPath { blob_id: BLOB });
    let sliver =
        round_trip(&SliverPath { blob_id: BLOB, sliver_pair_index: 4, sliver_type: SliverType::Primary });
    assert_eq!(sliver["sliver_type"], "primary");
    round_trip(&DeletablePath { blob_id: BLOB, object_id: ObjectId([1; 32]) });
    round_trip(&InconsistencyProofPath { blob_id: BLOB, sliver_type: SliverType::Secondary });
    round_trip(&PutSliverQuery { pending: true });
    assert_eq!(serde_json::from_str::<PutSliverQuery>("{}").unwrap(), PutSliverQuery { pending: false });
    let query = RecoverySymbolsQuery { target_sliver: 9, target_type: SliverType::Primary };
    round_trip(&query);
    assert_eq!(query.to_query_string(), "target_sliver=9&target_type=primary");
}

#[test]
fn statuses_and_health_round_trip() {
    assert_eq!(round_trip(&StoredStatus { stored: true }), serde_json::json!({"stored": true}));
    for (state, text) in [
        (NodeBlobState::Nonexistent, "nonexistent"),
        (NodeBlobState::Registered, "registered"),
        (NodeBlobState::Certified, "certified"),
        (NodeBlobState::Invalid, "invalid"),
    ] {
        let status = NodeBlobStatus {
            status: state,
            end_epoch: (state != NodeBlobState::Nonexistent).then_some(Epoch(9)),
            epoch: Epoch(3),
            metadata_stored: true,
            stored_slivers: 4,
            expected_slivers: 4,
        };
        assert_eq!(round_trip(&status)["status"], text);
        assert!(status.fully_stored());
        assert!(!NodeBlobStatus { stored_slivers: 3, ..status }.fully_stored());
    }
    let key = BlsSecretKey::from_seed([3; 32]);
    let statuses =
        [ShardStatus::Active, ShardStatus::ActiveSync, ShardStatus::ActiveRecover, ShardStatus::LockedToMove];
    let health = NodeHealth {
        node_id: NodeId::from_public_key(&key.public_key()),
        epoch: Epoch(2),
        public_key: key.public_key(),
        shards: (0..4u16)
            .zip(statuses)
            .map(|(shard, status)| ShardHealth {
                shard: ShardIndex(shard),
                status,
                slivers: 10,
                bytes: 1 << 20,
                pull_position: (status == ShardStatus::ActiveSync).then_some(BlobId([9; 32])),
            })
            .collect(),
        blobs: 5,
        pending_uploads: 1,
        event_cursor: 77,
        uptime_secs: 3600,
        repair: RepairHealth { caught_up: true, lowest_margin: Some(2), ..RepairHealth::default() },
        migration: MigrationHealth { pages_pulled_total: 3, ..MigrationHealth::default() },
        disk: Some(DiskHealth { free_bytes: 7 << 30, total_bytes: 100 << 30, reserve_bytes: 1 << 30 }),
    };
    let json = round_trip(&health);
    assert_eq!(json["shards"][1]["status"], "active_sync");
    assert_eq!(json["shards"][2]["status"], "active_recover");
    assert_eq!(json["shards"][3]["status"], "locked_to_move");
    assert_eq!(json["migration"]["pages_pulled_total"], 3);
    // Answers of nodes that predate self-healing still parse.
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("repair");
    old.as_object_mut().unwrap().remove("disk");
    let parsed: NodeHealth = serde_json::from_value(old).unwrap();
    assert_eq!(parsed.repair, RepairHealth::default());
    assert_eq!(parsed.disk, None);
    assert_eq!(json["disk"]["reserve_bytes"], 1 << 30);
    let query: RecoveryBatchQuery = serde_json::from_str("{}").unwrap();
    assert!(query.proofs);
    assert_eq!(query, RecoveryBatchQuery::default());
    // The query string a client sends reads back as what it says.
    for (proofs, blocks, waiting) in [(true, false, false), (false, true, true), (false, false, true)] {
        let query = RecoveryBatchQuery { proofs, blocks, waiting };
        let uri: axum::http::Uri = format!("/x?{}", query.to_query_string()).parse().unwrap();
        let axum::extract::Query(parsed) =
            axum::extract::Query::<RecoveryBatchQuery>::try_from_uri(&uri).unwrap();
        assert_eq!(parsed, query);
    }
}

#[test]
fn confirmations_and_attestations_verify_and_round_trip() {
    let key = BlsSecretKey::from_seed([5; 32]);
    let public_key = key.public_key();
    let object_id = ObjectId([8; 32]);
    for persistence in [PersistenceType::Permanent, PersistenceType::Deletable { object_id }] {
        let confirmation = SignedConfirmation::sign(&key, Epoch(4), BLOB, persistence);
        round_trip(&confirmation);
        assert_eq!(confirmation.verify(&BLOB, &persistence, Epoch(4), &public_key), Ok(()));
        let other = PersistenceType::Deletable { object_id: ObjectId([9; 32]) };
        let mismatch = |what| Err(SignedMessageError::Mismatch(what));
        assert_eq!(confirmation.verify(&BLOB, &other, Epoch(4), &public_key), mismatch("persistence type"));
        assert_eq!(
            confirmation.verify(&BlobId([1; 32]), &persistence, Epoch(4), &public_key),
            mismatch("blob ID")
        );
        assert_eq!(confirmation.verify(&BLOB, &persistence, Epoch(5), &public_key), mismatch("epoch"));
        let stranger = BlsSecretKey::from_seed([6; 32]).public_key();
        assert_eq!(confirmation.verify(&BLOB, &persistence, Epoch(4), &stranger), mismatch("node"));
        let forged = SignedConfirmation { epoch: Epoch(5), ..confirmation };
        assert!(matches!(
            forged.verify(&BLOB, &persistence, Epoch(5), &public_key),
            Err(SignedMessageError::Signature(_))
        ));
    }
    let attestation = InvalidBlobAttestation::sign(&key, Epoch(4), BLOB);
    round_trip(&attestation);
    assert_eq!(attestation.verify(&BLOB, Epoch(4), &public_key), Ok(()));
    assert_eq!(attestation.verify(&BLOB, Epoch(3), &public_key), Err(SignedMessageError::Mismatch("epoch")));
}

fn symbol(source_index: u16) -> RecoverySymbol {
    RecoverySymbol { source_index, symbol: vec![7; 4], proof: MerkleProof { path: Vec::new() } }
}

#[test]
fn recovery_batches_round_trip_and_check_their_shape() {
    let items: Vec<_> = (0..4)
        .map(|target| RecoveryItem {
            blob_id: BLOB,
            target_sliver: target,
            target_type: SliverType::Primary,
            max_symbols: None,
        })
        .collect();
    let request = RecoveryBatchRequest { items: items.clone() };
    round_trip(&request);
    let outcomes = [
        RecoveryOutcome::Symbols(vec![symbol(1), symbol(2)]),
        RecoveryOutcome::Error(NodeErrorCode::NotFound.body("no such sliver")),
        RecoveryOutcome::Error(NodeErrorCode::OverBudget.body("ask again")),
        RecoveryOutcome::Block(SymbolBlock { source_indices: vec![4, 9], symbols: vec![3; 8] }),
    ];
    let response = RecoveryBatchResponse {
        items: items
            .iter()
            .zip(outcomes)
            .map(|(item, outcome)| RecoveryBatchItem {
                blob_id: item.blob_id,
                target_sliver: item.target_sliver,
                target_type: item.target_type,
                outcome,
            })
            .collect(),
    };
    round_trip(&response);
    assert!(response.answers(&request));
    let bytes = to_bcs(&response);
    assert_eq!(response.encoded_len(), bytes.len());
    assert_eq!(
        from_bcs::<RecoveryBatchResponse>(&bytes, MAX_RECOVERY_BATCH_RESPONSE_BYTES).unwrap(),
        response
    );
    let over = from_bcs::<RecoveryBatchResponse>(&bytes, bytes.len() - 1);
    assert!(matches!(over, Err(redstuff::WireError::TooLarge { .. })), "{over:?}");

    let mut reordered = response.clone();
    reordered.items.swap(0, 1);
    assert!(!reordered.answers(&request));
    let mut odd = response.clone();
    odd.items[0].outcome = RecoveryOutcome::Symbols(vec![RecoverySymbol { symbol: vec![1; 3], ..symbol(1) }]);
    assert_eq!(odd.check(), Err("symbol length is zero, odd or over 65534"));
    // A block's bytes must be whole symbols of an allowed length, one per source.
    for (sources, len, error) in [
        (vec![1, 2], 7, "its length is not a whole number of symbols"),
        (vec![1, 2], 6, "symbol length is zero, odd or over 65534"),
        (vec![], 2, "it has bytes but no sources"),
        (vec![1], 0, "symbol length is zero, odd or over 65534"),
    ] {
        let mut odd = response.clone();
        odd.items[3].outcome =
            RecoveryOutcome::Block(SymbolBlock { source_indices: sources, symbols: vec![0; len] });
        assert_eq!(odd.check(), Err(error), "{:?}", odd.items[3].outcome);
    }
}
