//! What a stranger can no longer do to the coordinator: register nodes for free and without
//! bound, register an address that points clients at themselves, make it log a replayed
//! report again, flood it with reports of one node, or park polls without bound.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{CHAIN, EPOCH_MS, World};
use morsa_api::ErrorBody;
use morsa_api::coord::routes;
use morsa_coord::server::{MAX_PARKED_POLLS_PER_ADDRESS, REPORT_BURST, Shared, router};
use morsa_coord::{Command, Coordinator, Input, NodeReport, NodeReportKind, NodeRules, Transaction};
use morsa_core::{AccountKey, BlsSecretKey, NodeId};
use tower::ServiceExt;

const DEPOSIT: u64 = 5_000;

/// A world with a small node deposit and room for `max_inactive` inactive nodes.
fn world_with_rules(max_inactive: u32, allow_loopback: bool) -> World {
    let mut world = World::new(4, 10);
    world.genesis.node_rules = NodeRules {
        deposit: DEPOSIT,
        max_inactive_nodes: max_inactive,
        allow_loopback_addresses: allow_loopback,
        ..NodeRules::default()
    };
    if !allow_loopback {
        for (index, node) in world.genesis.nodes.iter_mut().enumerate() {
            node.address = format!("node{index}.example.org:9000");
        }
    }
    world.state = world.genesis.initial_state().unwrap();
    world
}

fn register_command(seed: u8, address: &str) -> Command {
    let key = BlsSecretKey::from_seed([seed; 32]);
    Command::RegisterNode {
        public_key: key.public_key(),
        proof_of_possession: key.proof_of_possession(),
        address: address.into(),
        capacity: 1 << 30,
    }
}

fn node_of(seed: u8) -> NodeId {
    NodeId::from_public_key(&BlsSecretKey::from_seed([seed; 32]).public_key())
}

#[test]
fn registering_a_node_takes_a_deposit_that_deregistering_refunds() {
    let mut world = world_with_rules(8, true);
    let operator = world.users[0].id();
    let before = world.state.account(&operator).balance;
    world.transact(0, register_command(50, "127.0.0.1:9100")).unwrap();
    assert_eq!(world.state.account(&operator).balance, before - DEPOSIT, "the deposit is taken");
    assert_eq!(world.state.nodes[&node_of(50)].deposit, DEPOSIT);
    // Someone else stakes with it; only the operator may deregister it, and the stake goes back
    // through a withdrawal, payable at once: the node never held a shard.
    let staker = world.users[1].id();
    let staker_before = world.state.account(&staker).balance;
    world.transact(1, Command::Stake { node: node_of(50), amount: 70 }).unwrap();
    let refused = world.transact(1, Command::DeregisterNode { node: node_of(50) }).unwrap_err();
    assert_eq!(refused.code(), "not_operator");
    world.transact(0, Command::DeregisterNode { node: node_of(50) }).unwrap();
    assert!(!world.state.nodes.contains_key(&node_of(50)));
    assert_eq!(world.state.account(&operator).balance, before, "the deposit is refunded");
    assert!(world.state.stakes_of(&staker).is_empty());
    assert_eq!(world.state.account(&staker).balance, staker_before - 70, "the stake waits to be withdrawn");
    world.transact(1, Command::Withdraw { node: node_of(50) }).unwrap();
    assert_eq!(world.state.account(&staker).balance, staker_before, "the stake is returned");
}

#[test]
fn an_account_without_the_deposit_cannot_register_a_node() {
    let mut world = world_with_rules(8, true);
    let nobody = AccountKey::from_seed([42; 32]);
    let command = register_command(51, "127.0.0.1:9101");
    let signed = Transaction { sender: nobody.id(), nonce: 0, command }.sign(&nobody, CHAIN);
    let refused = world.submit(Input::Transaction(signed)).unwrap_err();
    assert_eq!(refused.code(), "insufficient_balance", "{refused}");
    assert!(!world.state.nodes.contains_key(&node_of(51)));
}

#[test]
fn registered_nodes_outside_the_committees_are_bounded_and_a_deregistration_frees_a_slot() {
    let mut world = world_with_rules(3, true);
    for seed in 60..63 {
        world.transact(0, register_command(seed, &format!("127.0.0.1:{}", 9000 + u16::from(seed)))).unwrap();
    }
    let refused = world.transact(0, register_command(63, "127.0.0.1:9063")).unwrap_err();
    assert_eq!(refused.code(), "too_many_nodes", "{refused}");
    world.transact(0, Command::DeregisterNode { node: node_of(60) }).unwrap();
    world.transact(0, register_command(63, "127.0.0.1:9063")).unwrap();
    // A node that holds shards cannot leave.
    let member = world.state.committee.members[0].node_id;
    let operator = world.state.nodes[&member].operator;
    assert!(world.users.iter().all(|user| user.id() != operator), "genesis operators are not test users");
    let staked = node_of(61);
    world.transact(0, Command::Stake { node: staked, amount: 1_000 }).unwrap();
    world.advance(EPOCH_MS / 2);
    assert!(world.state.next_committee.as_ref().unwrap().member_by_node(&staked).is_some());
    let refused = world.transact(0, Command::DeregisterNode { node: staked }).unwrap_err();
    assert_eq!(refused.code(), "node_active", "{refused}");
}

#[test]
fn node_addresses_must_be_reachable_host_ports_unless_the_deployment_is_local() {
    let mut world = world_with_rules(8, false);
    for address in ["127.0.0.1:9000", "localhost:9000", "[::1]:9000", "169.254.169.254:80", "0.0.0.0:9000"] {
        let refused = world.transact(0, register_command(70, address)).unwrap_err();
        assert_eq!(refused.code(), "invalid_argument", "{address}: {refused}");
    }
    for address in ["node.example.org", "node.example.org:0", "not an address:1"] {
        let refused = world.transact(0, register_command(70, address)).unwrap_err();
        assert_eq!(refused.code(), "invalid_argument", "{address}: {refused}");
    }
    world.transact(0, register_command(70, "node70.example.org:9000")).unwrap();
    // Genesis nodes are held to the same rule.
    let mut genesis = world.genesis.clone();
    genesis.nodes[0].address = "127.0.0.1:9000".into();
    let refused = genesis.initial_state().unwrap_err();
    assert!(
        matches!(refused, morsa_coord::GenesisError::Field { field: "nodes.address", .. }),
        "a loopback genesis node needs allow_loopback_addresses: {refused:?}"
    );
    genesis.node_rules.allow_loopback_addresses = true;
    genesis.initial_state().unwrap();
}

struct Server {
    shared: Arc<Shared>,
    world: World,
    _dir: tempfile::TempDir,
}

/// A coordinator in real time whose first epoch ended a second ago: the first submission
/// starts the change to epoch 2, which no single member's report finishes.
fn server() -> Server {
    let mut world = World::new(4, 10);
    world.genesis.epoch_duration_ms = 3_600_000;
    world.genesis.genesis_time_ms = morsa_coord::server::now_ms() - 3_601_000;
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&world.genesis, &dir.path().join("log.redb")).unwrap();
    Server { shared: Shared::new(coordinator), world, _dir: dir }
}

async fn call(shared: &Arc<Shared>, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router(Arc::clone(shared)).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, body.to_vec())
}

fn post_json(path: &str, body: &impl serde::Serialize) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn get_from(path: &str, from: SocketAddr) -> Request<Body> {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(from));
    request
}

fn code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body).map(|error| error.code).unwrap_or_default()
}

fn log_entries(server: &Server) -> u64 {
    server.shared.log_len().unwrap()
}

/// A member's `EpochSyncDone` report for the current epoch, after the epoch has changed.
async fn sync_done_report(server: &Server) -> NodeReport {
    // The selection and the epoch change are due already: any submission ticks them in.
    let transfer = |nonce| {
        let command = Command::Transfer { to: server.world.users[2].id(), amount: 1 };
        Transaction { sender: server.world.users[0].id(), nonce, command }.sign(&server.world.users[0], CHAIN)
    };
    let (status, body) = call(&server.shared, post_json(routes::TRANSACTIONS, &transfer(0))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (_, body) = call(&server.shared, get_from(routes::COMMITTEE, "127.0.0.1:1".parse().unwrap())).await;
    let info: morsa_api::coord::CommitteeInfo = serde_json::from_slice(&body).unwrap();
    assert!(info.epoch.0 == 2 && !info.epoch_change_done, "an epoch change is under way: {info:?}");
    let member = info.current.members.iter().max_by_key(|member| member.shards.len()).unwrap();
    assert!(3 * member.shards.len() < 2 * 10 + 1, "one member alone does not finish the change");
    let key = &server.world.node_keys[server.world.node_index(&member.node_id)];
    let signature = key.sign(&morsa_core::epoch_sync_done_message(info.epoch, &member.node_id));
    NodeReport {
        node: member.node_id,
        report: NodeReportKind::EpochSyncDone { epoch: info.epoch },
        signature,
    }
}

#[tokio::test]
async fn a_replayed_report_is_answered_without_a_log_write() {
    let server = server();
    let report = sync_done_report(&server).await;
    let (status, body) = call(&server.shared, post_json(routes::NODE_REPORTS, &report)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let logged = log_entries(&server);
    for _ in 0..10 {
        let (status, body) = call(&server.shared, post_json(routes::NODE_REPORTS, &report)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a repeat is answered idempotently: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(log_entries(&server), logged, "repeats of a report are not logged");
    // A forged one is refused, and not logged either.
    let mut forged = report.clone();
    forged.signature = server.world.node_keys[0].sign(b"something else");
    let (status, body) = call(&server.shared, post_json(routes::NODE_REPORTS, &forged)).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::UNAUTHORIZED, "bad_node_signature"));
    assert_eq!(log_entries(&server), logged);
}

#[tokio::test]
async fn a_node_that_reports_too_often_is_turned_away() {
    let server = server();
    let report = sync_done_report(&server).await;
    let mut statuses = Vec::new();
    for _ in 0..REPORT_BURST + 4 {
        statuses.push(call(&server.shared, post_json(routes::NODE_REPORTS, &report)).await.0);
    }
    let limited = statuses.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(limited >= 1, "some reports past the burst are refused: {statuses:?}");
    assert!(
        statuses[..usize::try_from(REPORT_BURST).unwrap()].iter().all(|status| *status == StatusCode::OK)
    );
}

#[tokio::test]
async fn polls_beyond_the_head_are_refused() {
    let server = server();
    let from: SocketAddr = "10.1.2.3:4000".parse().unwrap();
    let (status, _) = call(&server.shared, get_from("/v1/events?after=0&wait_ms=10", from)).await;
    assert_eq!(status, StatusCode::OK, "after = count is the next event");
    let (status, body) = call(&server.shared, get_from("/v1/events?after=1000&wait_ms=20000", from)).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "after_beyond_head"));
}

#[tokio::test]
async fn parked_polls_are_bounded_per_client_address() {
    let server = server();
    let greedy: SocketAddr = "10.9.9.9:5000".parse().unwrap();
    let mut parked = Vec::new();
    for _ in 0..MAX_PARKED_POLLS_PER_ADDRESS {
        let shared = Arc::clone(&server.shared);
        parked.push(tokio::spawn(async move {
            call(&shared, get_from("/v1/events?after=0&wait_ms=30000", greedy)).await
        }));
    }
    // Once they are all parked (the metrics say so), one more from the same address is
    // refused, another's is not.
    let all_parked = format!("morsa_coord_parked_polls {MAX_PARKED_POLLS_PER_ADDRESS}\n");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8(call(&server.shared, get_from(routes::METRICS, greedy)).await.1)
        .unwrap()
        .contains(&all_parked)
    {
        assert!(tokio::time::Instant::now() < deadline, "the greedy client's polls never all parked");
        tokio::task::yield_now().await;
    }
    assert!(parked.iter().all(|poll| !poll.is_finished()));
    let (status, body) = call(&server.shared, get_from("/v1/events?after=0&wait_ms=1", greedy)).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::TOO_MANY_REQUESTS, "too_many_polls"));
    let other: SocketAddr = "10.9.9.10:5000".parse().unwrap();
    let (status, _) = call(&server.shared, get_from("/v1/events?after=0&wait_ms=1", other)).await;
    assert_eq!(status, StatusCode::OK);
    for poll in parked {
        poll.abort();
    }
}
