//! Writes the committed seed corpus of the fuzz targets: genuine encodings of every body and
//! record they decode, built with the project's own types, fixed keys and a fixed blob, so
//! the output is the same on every run. Run it after a body or record changes shape:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example write_seeds
//! ```
//!
//! It replaces `fuzz/seeds/{wire_decode,node_api,coord_api,store_records}/`. The seeds of
//! `decode_slivers`, whose input is structured by `arbitrary`, are not encodings of anything
//! and are kept as the fuzzer minimised them (see fuzz/README.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use morsa_api::ErrorBody;
use morsa_api::coord::{
    AccountBlobs, AccountBlobsQuery, AccountInfo, BlobObjectSummary, BlobStatus, BlobStatusKind, Command,
    CommandResult, CommitteeInfo, Event, EventRecord, EventsPage, EventsQuery, Input, LogEntry, MemberZones,
    NodeReport, NodeReportKind, OwnedBlob, SubmitResponse, SystemInfo, Transaction,
};
use morsa_api::node::{
    DiskHealth, InvalidBlobAttestation, MigrationHealth, NodeBlobState, NodeBlobStatus, NodeErrorCode, NodeHealth,
    RecoveryBatchItem, RecoveryBatchRequest, RecoveryBatchResponse, RecoveryItem, RecoveryOutcome,
    RepairHealth, ShardHealth, ShardStatus, SignedConfirmation, StoredStatus,
};
use morsa_core::{
    AccountKey, BlsSecretKey, Certificate, Committee, CommitteeMember, Epoch, NodeId, ObjectId,
    PersistenceType, ShardIndex, epoch_sync_done_message, invalid_blob_message,
};
use morsa_node::{BlobInfo, ObjectInfo};
use redstuff::wire::to_bcs;
use redstuff::{
    EncodedBlob, EncodingConfig, InconsistencyProof, MetadataWithId, RecoverySymbol, SliverExpansion,
    SliverType, SymbolBlock,
};
use serde::Serialize;

const N: u16 = 7;
const BLOB: &[u8] =
    b"Morsa fuzz seed: a small blob, encoded for real, whose slivers and metadata seed the corpus.";
const CHAIN_ID: &str = "morsa-fuzz";

/// The seeds of one target, by file name.
#[derive(Default)]
struct Seeds(BTreeMap<String, Vec<u8>>);

impl Seeds {
    fn bytes(&mut self, name: &str, bytes: Vec<u8>) {
        assert!(self.0.insert(name.to_owned(), bytes).is_none(), "{name} twice");
    }

    fn json(&mut self, name: &str, value: &impl Serialize) {
        let text = serde_json::to_vec(value).expect("seeds encode");
        self.bytes(&format!("{name}.json"), text);
    }

    fn bcs(&mut self, name: &str, value: &impl Serialize) {
        self.bytes(&format!("{name}.bcs"), to_bcs(value));
    }

    fn query(&mut self, name: &str, value: &impl Serialize) {
        let text = serde_urlencoded::to_string(value).expect("queries encode");
        self.bytes(&format!("{name}.query"), text.into_bytes());
    }

    fn text(&mut self, name: &str, text: String) {
        self.bytes(&format!("{name}.txt"), text.into_bytes());
    }

    fn write(self, root: &Path, target: &str) {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("the old seeds can be removed");
        }
        fs::create_dir_all(&dir).expect("the seed directory can be created");
        let (count, mut total) = (self.0.len(), 0);
        for (name, bytes) in self.0 {
            total += bytes.len();
            fs::write(dir.join(name), bytes).expect("a seed can be written");
        }
        println!("{target}: {count} seeds, {total} bytes");
    }
}

/// A blob encoded for real, and what can be built from it.
struct Fixture {
    encoded: EncodedBlob,
    with_id: MetadataWithId,
}

impl Fixture {
    fn new() -> Self {
        let config = EncodingConfig::new(N).expect("n is at least 4");
        let encoded = redstuff::encode(config, BLOB).expect("the blob fits the code");
        let metadata = &encoded.metadata;
        let with_id = MetadataWithId { blob_id: *metadata.blob_id(), metadata: metadata.metadata().clone() };
        Self { encoded, with_id }
    }

    /// Every secondary sliver's recovery symbol towards primary sliver `target`.
    fn symbols_for_primary(&self, target: usize) -> Vec<RecoverySymbol> {
        self.encoded
            .pairs
            .iter()
            .map(|pair| {
                SliverExpansion::new(&self.encoded.metadata, SliverType::Secondary, &pair.secondary)
                    .expect("genuine slivers expand")
                    .recovery_symbol(target)
                    .expect("the target is below n")
            })
            .collect()
    }
}

/// Fixed identities: accounts and storage nodes.
struct Keys {
    accounts: Vec<AccountKey>,
    nodes: Vec<BlsSecretKey>,
}

impl Keys {
    fn new() -> Self {
        let seed = |index: u8, kind: u8| {
            let mut seed = [index; 32];
            seed[0] = kind;
            seed
        };
        Self {
            accounts: (1..=2).map(|index| AccountKey::from_seed(seed(index, b'a'))).collect(),
            nodes: (1..=3).map(|index| BlsSecretKey::from_seed(seed(index, b'n'))).collect(),
        }
    }

    fn node_id(&self, index: usize) -> NodeId {
        NodeId::from_public_key(&self.nodes[index].public_key())
    }

    /// Shards `0..7` over the three nodes: 3, 2 and 2.
    fn committee(&self, epoch: Epoch) -> Committee {
        let shards: [&[u16]; 3] = [&[0, 3, 6], &[1, 4], &[2, 5]];
        Committee {
            epoch,
            n_shards: N,
            members: self
                .nodes
                .iter()
                .zip(shards)
                .enumerate()
                .map(|(index, (key, shards))| CommitteeMember {
                    node_id: NodeId::from_public_key(&key.public_key()),
                    public_key: key.public_key(),
                    address: format!("127.0.0.1:{}", 9100 + index),
                    shards: shards.iter().copied().map(ShardIndex).collect(),
                })
                .collect(),
        }
    }

    /// A certificate of every node over `message`.
    fn certificate(&self, message: &[u8]) -> Certificate {
        let parts: Vec<(u16, _)> =
            (0_u16..).zip(&self.nodes).map(|(index, key)| (index, key.sign(message))).collect();
        Certificate::aggregate(&parts).expect("three distinct signers")
    }
}

fn object(byte: u8) -> ObjectId {
    ObjectId([byte; 32])
}

/// One event of each kind, about the fixture's blob.
fn events(fixture: &Fixture, keys: &Keys) -> Vec<EventRecord> {
    let blob_id = fixture.with_id.blob_id;
    let kinds = vec![
        Event::CommitteeSelected { committee: keys.committee(Epoch(1)) },
        Event::EpochChangeStart { epoch: Epoch(1) },
        Event::EpochChangeDone { epoch: Epoch(1) },
        Event::BlobRegistered {
            blob_id,
            object: object(1),
            size: 92,
            encoded_size: 4200,
            end_epoch: Epoch(5),
            deletable: true,
            epoch: Epoch(1),
        },
        Event::BlobCertified {
            blob_id,
            object: object(1),
            end_epoch: Epoch(5),
            deletable: true,
            epoch: Epoch(1),
        },
        Event::BlobExtended { blob_id, object: object(1), end_epoch: Epoch(9) },
        Event::RewardsPaid { epoch: Epoch(1), total: 700 },
        Event::BlobDeleted { blob_id, object: object(1), epoch: Epoch(2) },
        Event::InvalidBlobId { blob_id, epoch: Epoch(2) },
    ];
    let mut prev = [0; 32];
    (0_u64..)
        .zip(kinds)
        .map(|(seq, event)| {
            let record = EventRecord::new(seq, 1_000 + seq * 250, event, prev);
            prev = record.hash;
            record
        })
        .collect()
}

/// One signed transaction of each command.
fn transactions(fixture: &Fixture, keys: &Keys) -> Vec<(&'static str, morsa_api::coord::SignedTransaction)> {
    let with_id = &fixture.with_id;
    let blob_id = with_id.blob_id;
    let root_hash = with_id.metadata.root();
    let confirmation = morsa_core::storage_confirmation_message(
        Epoch(1),
        &blob_id,
        &PersistenceType::Deletable { object_id: object(1) },
    );
    let new_node = BlsSecretKey::from_seed([b'x'; 32]);
    let commands = vec![
        ("transfer", Command::Transfer { to: keys.accounts[1].id(), amount: 1_000 }),
        ("reserve_storage", Command::ReserveStorage { size: 1 << 20, epochs: 3 }),
        ("split_storage_by_size", Command::SplitStorageBySize { storage: object(2), size: 4096 }),
        ("split_storage_by_epoch", Command::SplitStorageByEpoch { storage: object(2), epoch: Epoch(2) }),
        ("merge_storage", Command::MergeStorage { first: object(2), second: object(3) }),
        (
            "register_blob",
            Command::RegisterBlob {
                storage: object(2),
                blob_id,
                root_hash,
                size: with_id.metadata.unencoded_length,
                encoding_type: with_id.metadata.encoding_type,
                deletable: true,
            },
        ),
        (
            "certify_blob",
            Command::CertifyBlob { object: object(1), certificate: keys.certificate(&confirmation) },
        ),
        ("extend_blob", Command::ExtendBlob { object: object(1), epochs: 4 }),
        ("delete_blob", Command::DeleteBlob { object: object(1) }),
        (
            "invalidate_blob",
            Command::InvalidateBlob {
                blob_id,
                certificate: keys.certificate(&invalid_blob_message(Epoch(2), &blob_id)),
            },
        ),
        ("stake", Command::Stake { node: keys.node_id(0), amount: 500 }),
        ("unstake", Command::Unstake { node: keys.node_id(0), amount: 200 }),
        (
            "register_node",
            Command::RegisterNode {
                public_key: new_node.public_key(),
                proof_of_possession: new_node.proof_of_possession(),
                address: "127.0.0.1:9200".to_owned(),
                capacity: 1 << 30,
            },
        ),
        ("set_node_zone", Command::SetNodeZone { node: keys.node_id(0), zone: "eu-west/dc2".to_owned() }),
        ("withdraw", Command::Withdraw { node: keys.node_id(0) }),
        ("retire_node", Command::RetireNode { node: keys.node_id(0) }),
    ];
    let sender = &keys.accounts[0];
    (0_u64..)
        .zip(commands)
        .map(|(nonce, (name, command))| {
            (name, Transaction { sender: sender.id(), nonce, command }.sign(sender, CHAIN_ID))
        })
        .collect()
}

fn node_reports(fixture: &Fixture, keys: &Keys) -> Vec<(&'static str, NodeReport)> {
    let blob_id = fixture.with_id.blob_id;
    let node = keys.node_id(1);
    let message = invalid_blob_message(Epoch(2), &blob_id);
    vec![
        (
            "epoch_sync_done",
            NodeReport {
                node,
                report: NodeReportKind::EpochSyncDone { epoch: Epoch(2) },
                signature: keys.nodes[1].sign(&epoch_sync_done_message(Epoch(2), &node)),
            },
        ),
        (
            "invalid_blob",
            NodeReport {
                node,
                report: NodeReportKind::InvalidBlob { blob_id, certificate: keys.certificate(&message) },
                signature: keys.nodes[1].sign(&message),
            },
        ),
    ]
}

fn wire_decode(fixture: &Fixture) -> Seeds {
    let mut seeds = Seeds::default();
    let pair = &fixture.encoded.pairs[2];
    seeds.bcs("sliver_primary", &pair.primary);
    seeds.bcs("sliver_secondary", &pair.secondary);
    seeds.bcs("metadata_with_id", &fixture.with_id);
    let symbols = fixture.symbols_for_primary(4);
    seeds.bcs("recovery_symbol", &symbols[0]);
    seeds.bcs("recovery_symbols", &symbols);
    let proof = InconsistencyProof { target_kind: SliverType::Primary, target_index: 4, symbols };
    seeds.bcs("inconsistency_proof", &proof);
    seeds
}

fn node_api(fixture: &Fixture, keys: &Keys) -> Seeds {
    let mut seeds = Seeds::default();
    let blob_id = fixture.with_id.blob_id;
    let items: Vec<RecoveryItem> = [(1, SliverType::Primary, None), (5, SliverType::Secondary, Some(3))]
        .into_iter()
        .map(|(target_sliver, target_type, max_symbols)| RecoveryItem {
            blob_id,
            target_sliver,
            target_type,
            max_symbols,
        })
        .collect();
    let request = RecoveryBatchRequest { items: items.clone() };
    seeds.json("recovery_batch_request", &request);
    let outcomes = [
        RecoveryOutcome::Symbols(fixture.symbols_for_primary(1)[..3].to_vec()),
        RecoveryOutcome::Error(NodeErrorCode::OverBudget.body("the answer is full: ask again")),
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
    assert!(response.answers(&request));
    seeds.bcs("recovery_batch_response", &response);
    // A block answer: the symbols of two sources, one after another, without framing.
    let block = RecoveryBatchResponse {
        items: vec![RecoveryBatchItem {
            blob_id,
            target_sliver: items[0].target_sliver,
            target_type: items[0].target_type,
            outcome: RecoveryOutcome::Block(SymbolBlock {
                source_indices: vec![4, 9],
                symbols: (0..8).collect(),
            }),
        }],
    };
    seeds.bcs("recovery_batch_response_block", &block);

    let key = &keys.nodes[0];
    let deletable = PersistenceType::Deletable { object_id: object(1) };
    seeds.json(
        "signed_confirmation_permanent",
        &SignedConfirmation::sign(key, Epoch(1), blob_id, PersistenceType::Permanent),
    );
    seeds.json("signed_confirmation_deletable", &SignedConfirmation::sign(key, Epoch(1), blob_id, deletable));
    seeds.json("invalid_blob_attestation", &InvalidBlobAttestation::sign(key, Epoch(2), blob_id));
    seeds.json(
        "node_blob_status",
        &NodeBlobStatus {
            status: NodeBlobState::Certified,
            end_epoch: Some(Epoch(5)),
            epoch: Epoch(1),
            metadata_stored: true,
            stored_slivers: 6,
            expected_slivers: 6,
        },
    );
    seeds.json(
        "node_health",
        &NodeHealth {
            node_id: keys.node_id(0),
            epoch: Epoch(1),
            public_key: key.public_key(),
            shards: [
                (0, ShardStatus::Active),
                (2, ShardStatus::ActiveSync),
                (3, ShardStatus::ActiveRecover),
                (6, ShardStatus::LockedToMove),
            ]
            .into_iter()
            .map(|(shard, status)| ShardHealth {
                shard: ShardIndex(shard),
                status,
                slivers: 4,
                bytes: 400,
                pull_position: (status == ShardStatus::ActiveSync).then_some(blob_id),
            })
            .collect(),
            blobs: 2,
            pending_uploads: 1,
            event_cursor: 9,
            uptime_secs: 60,
            repair: RepairHealth {
                scans: 3,
                backlog_slivers: 2,
                rebuilt_slivers: 5,
                lowest_margin: Some(1),
                suspected_peers: vec![keys.node_id(2)],
                ..RepairHealth::default()
            },
            migration: MigrationHealth {
                pages_pulled_total: 3,
                pages_pulled: 2,
                slivers_pulled: 8,
                bytes_pulled: 800,
                slivers_read_through: 1,
                ..MigrationHealth::default()
            },
            disk: Some(DiskHealth { free_bytes: 5 << 30, total_bytes: 100 << 30, reserve_bytes: 1 << 30 }),
        },
    );
    seeds.json("stored_status", &StoredStatus { stored: true });
    seeds.json("error_body", &NodeErrorCode::WrongShard.body("pair 3 is held by another node"));
    seeds.query("query_put_sliver", &morsa_api::node::PutSliverQuery { pending: true });
    seeds.query(
        "query_recovery_batch",
        &morsa_api::node::RecoveryBatchQuery { proofs: false, blocks: false, waiting: false },
    );
    seeds.query(
        "query_recovery_batch_blocks",
        &morsa_api::node::RecoveryBatchQuery { proofs: false, blocks: true, waiting: false },
    );
    seeds.query(
        "query_recovery_batch_waiting",
        &morsa_api::node::RecoveryBatchQuery { proofs: true, blocks: false, waiting: true },
    );
    let symbols_query =
        morsa_api::node::RecoverySymbolsQuery { target_sliver: 3, target_type: SliverType::Secondary };
    seeds.bytes("query_recovery_symbols.query", symbols_query.to_query_string().into_bytes());
    seeds.text("path_blob_id", blob_id.to_string());
    seeds.text("path_object_id", object(0xab).to_string());
    seeds.text("path_sliver_type", SliverType::Secondary.as_str().to_owned());
    seeds
}

fn coord_api(fixture: &Fixture, keys: &Keys) -> Seeds {
    let mut seeds = Seeds::default();
    let blob_id = fixture.with_id.blob_id;
    for (name, signed) in transactions(fixture, keys) {
        seeds.json(&format!("transaction_{name}"), &signed);
    }
    for (name, report) in node_reports(fixture, keys) {
        seeds.json(&format!("node_report_{name}"), &report);
    }
    let events = events(fixture, keys);
    seeds.json(
        "submit_response",
        &SubmitResponse {
            events: events[3..5].to_vec(),
            created: vec![object(1), object(4)],
            results: vec![
                CommandResult::Applied { events: events[3..5].to_vec(), created: vec![object(1), object(4)] },
                CommandResult::Refused {
                    status: 409,
                    error: ErrorBody::new("nonce_used", "nonce 12 was used"),
                },
            ],
        },
    );
    let count = u64::try_from(events.len()).expect("a few events");
    seeds.json("events_page", &EventsPage { events, count });
    seeds.json(
        "committee_info",
        &CommitteeInfo {
            epoch: Epoch(1),
            epoch_change_done: false,
            current: keys.committee(Epoch(1)),
            next: Some(keys.committee(Epoch(2))),
            zones: {
                let mut zones = MemberZones::default();
                zones.declare(keys.node_id(0), "eu-west/dc2");
                zones
            },
        },
    );
    seeds.json(
        "system_info",
        &SystemInfo {
            chain_id: CHAIN_ID.to_owned(),
            epoch: Epoch(1),
            n_shards: N,
            epoch_duration_ms: 60_000,
            epoch_start_ms: 1_000,
            storage_price_per_mib_epoch: 10,
            write_price_per_mib: 2,
            max_epochs_ahead: 52,
            capacity: 1 << 40,
            used: 4200,
            time_ms: 3_000,
            event_count: 9,
            state_hash: "ab".repeat(32),
            replica: None,
            domains: Some(morsa_api::coord::DomainsInfo {
                f: (N - 1) / 3,
                zones: vec![morsa_api::coord::DomainShards { name: "eu-west/dc2".to_owned(), shards: 3 }],
                operators: vec![morsa_api::coord::DomainShards {
                    name: keys.accounts[0].id().to_string(),
                    shards: 3,
                }],
                warning: None,
            }),
            nodes: Vec::new(),
        },
    );
    seeds.json(
        "account_info",
        &AccountInfo {
            id: keys.accounts[0].id(),
            balance: 1_000_000,
            nonce: 13,
            stakes: vec![(keys.node_id(0), 500)],
            withdrawals: vec![morsa_api::coord::PendingWithdrawal {
                node: keys.node_id(1),
                amount: 200,
                epoch: Epoch(3),
                payable: false,
            }],
        },
    );
    seeds.json(
        "account_blobs",
        &AccountBlobs {
            blobs: vec![OwnedBlob {
                object: object(1),
                blob_id,
                size: 92,
                encoded_size: 4200,
                deletable: true,
                registered_epoch: Epoch(1),
                end_epoch: Epoch(9),
                certified_epoch: Some(Epoch(1)),
                invalid: false,
            }],
            more: true,
        },
    );
    seeds.json(
        "blob_status",
        &BlobStatus {
            status: BlobStatusKind::Certified,
            end_epoch: Some(Epoch(9)),
            permanent: false,
            objects: vec![BlobObjectSummary {
                object: object(1),
                owner: keys.accounts[0].id(),
                deletable: true,
                end_epoch: Epoch(9),
                certified_epoch: Some(Epoch(1)),
            }],
        },
    );
    seeds.json("error_body", &ErrorBody::new("nonce_mismatch", "the account's next nonce is 14"));
    seeds.query("query_events", &EventsQuery { after: Some(4), wait_ms: Some(1_000), limit: Some(100) });
    seeds.query("query_account_blobs", &AccountBlobsQuery { after: Some(object(1)), limit: Some(10) });
    seeds.text("path_account_id", keys.accounts[0].id().to_string());
    seeds
}

fn store_records(fixture: &Fixture, keys: &Keys) -> Seeds {
    let mut seeds = Seeds::default();
    seeds.bcs("log_entry_tick", &LogEntry { time_ms: 5_000, input: Input::Tick });
    for (name, signed) in transactions(fixture, keys)
        .into_iter()
        .filter(|(name, _)| ["register_blob", "certify_blob", "register_node"].contains(name))
    {
        seeds.bcs(
            &format!("log_entry_{name}"),
            &LogEntry { time_ms: 6_000, input: Input::Transaction(signed) },
        );
    }
    for (name, report) in node_reports(fixture, keys) {
        seeds.bcs(&format!("log_entry_{name}"), &LogEntry { time_ms: 7_000, input: Input::Node(report) });
    }
    let mut info = BlobInfo::default();
    for event in events(fixture, keys).iter().take(6) {
        info.apply(&event.event);
    }
    info.objects
        .insert(object(7), ObjectInfo { deletable: false, end_epoch: Epoch(12), certified_epoch: None });
    seeds.bcs("blob_info", &info);
    info.invalid = Some(Epoch(3));
    seeds.bcs("blob_info_invalid", &info);
    seeds.bcs("metadata_with_id", &fixture.with_id);
    seeds.bytes("event_cursor.bin", 41_u64.to_le_bytes().to_vec());
    seeds
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let fixture = Fixture::new();
    let keys = Keys::new();
    wire_decode(&fixture).write(&root, "wire_decode");
    node_api(&fixture, &keys).write(&root, "node_api");
    coord_api(&fixture, &keys).write(&root, "coord_api");
    store_records(&fixture, &keys).write(&root, "store_records");
}
