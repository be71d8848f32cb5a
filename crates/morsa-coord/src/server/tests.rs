//! What must not wait for the coordinator's lock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use morsa_api::coord::{SystemInfo, routes};
use morsa_core::{AccountKey, BlsSecretKey};
use tower::ServiceExt;

use super::{Shared, router};
use crate::{Coordinator, Genesis, GenesisAccount, GenesisNode, NodeRules};

fn genesis() -> Genesis {
    let user = AccountKey::from_seed([9; 32]);
    let nodes = (1..=4u8)
        .map(|seed| {
            let key = BlsSecretKey::from_seed([seed; 32]);
            GenesisNode {
                public_key: key.public_key(),
                proof_of_possession: key.proof_of_possession(),
                address: format!("127.0.0.1:{}", 9000 + u16::from(seed)),
                stake: 100,
                capacity: 1 << 30,
                operator: user.id(),
            }
        })
        .collect();
    Genesis {
        chain_id: "server-test".into(),
        n_shards: 10,
        epoch_duration_ms: 3_600_000,
        genesis_time_ms: super::now_ms(),
        storage_price_per_mib_epoch: 1,
        write_price_per_mib: 1,
        max_epochs_ahead: 5,
        max_shards_per_node: 10,
        nodes,
        accounts: vec![GenesisAccount { id: user.id(), balance: 1000 }],
        node_rules: NodeRules::local(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // holding the coordinator's lock over the request is the test
async fn the_system_is_answered_while_the_coordinator_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis();
    let coordinator = Coordinator::open(&genesis, &dir.path().join("log.redb")).unwrap();
    let expected = genesis.initial_state().unwrap().hash();
    let shared = Shared::new(coordinator);
    // A long commit holds the lock: the system answer must not wait for it.
    let busy = shared.lock();
    let request = Request::get(routes::SYSTEM).body(Body::empty()).unwrap();
    // On a worker thread: this thread holds the lock.
    let call = tokio::spawn(router(Arc::clone(&shared)).oneshot(request));
    let answer = tokio::time::timeout(Duration::from_secs(20), call).await;
    drop(busy);
    let response =
        answer.expect("the system was answered while the coordinator's lock was held").unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let system: SystemInfo = serde_json::from_slice(&body).unwrap();
    assert_eq!(system.state_hash, hex::encode(expected));
}
