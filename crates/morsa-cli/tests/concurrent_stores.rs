//! Many stores at once from one client, on real processes: every blob is certified and reads
//! back identical, and the stores' coordinator commands (three per store: reserve, register,
//! certify) shared transactions — the client's account sends one transaction at a time, and
//! the commands that wait meanwhile go together as one batch.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use morsa_api::client::CoordClient;
use morsa_client::{Client, ClientConfig, StoreOptions, StoredHow};

const SHARDS: u16 = 12;
const STORES: u64 = 16;

#[test]
fn concurrent_stores_from_one_client_share_transactions_and_all_certify() {
    // Manual epochs: no epoch ends during the stores.
    let (_dir, cluster) = common::churn::manual_cluster(4, SHARDS);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ClientConfig::load(&cluster.client_config_path()).unwrap();
    let client = Arc::new(runtime.block_on(Client::connect(&config)).unwrap());
    let coord = CoordClient::new(cluster.coordinator_url()).unwrap();
    let account = morsa_client::load_or_create_account_key(&cluster.account_key_path()).unwrap().0.id();
    let nonce_before = runtime.block_on(coord.account(&account)).unwrap().nonce;
    let sent_before = client.transaction_stats();

    let blobs: Vec<Vec<u8>> = (0..STORES).map(|seed| morsa_cluster::sample::bytes(20_000, seed)).collect();
    let stored = runtime.block_on(async {
        let mut stores = tokio::task::JoinSet::new();
        for (index, blob) in blobs.iter().enumerate() {
            let (client, blob) = (Arc::clone(&client), blob.clone());
            stores.spawn(async move { (index, client.store_blob(blob, &StoreOptions::default()).await) });
        }
        let bounded = tokio::time::timeout(Duration::from_secs(120), stores.join_all());
        bounded.await.expect("the stores finish within 2 minutes")
    });

    for (index, outcome) in &stored {
        let outcome = outcome.as_ref().unwrap_or_else(|error| panic!("store {index}: {error}"));
        assert!(matches!(outcome.how, StoredHow::NewlyCertified { .. }), "store {index}: {:?}", outcome.how);
        let read = runtime.block_on(client.read_blob(&outcome.blob_id)).unwrap();
        assert!(read.data == blobs[*index], "blob {index} reads back different");
    }
    assert!(runtime.block_on(client.finish_uploads(Duration::from_secs(60))).is_empty());

    let sent = client.transaction_stats();
    let transactions = sent.transactions - sent_before.transactions;
    let commands = sent.commands - sent_before.commands;
    assert_eq!(commands, 3 * STORES, "reserve, register and certify per store");
    assert!(transactions < commands, "{commands} commands went in {transactions} transactions");
    // The coordinator counted the same transactions: each took one nonce of the account.
    let nonce_after = runtime.block_on(coord.account(&account)).unwrap().nonce;
    assert_eq!(nonce_after - nonce_before, transactions);
}

/// Two clients on one account (a gateway and the CLI sharing a key, say): each one's nonces go
/// stale whenever the other commits between its read of the nonce and its transaction. Every
/// store of both still certifies, and the account's nonce moved by exactly the transactions
/// both sent: a stale nonce is read again and the transaction re-signed, never applied twice.
#[test]
fn two_clients_on_one_account_both_store() {
    let (_dir, cluster) = common::churn::manual_cluster(4, SHARDS);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ClientConfig::load(&cluster.client_config_path()).unwrap();
    let clients: Vec<Arc<Client>> =
        (0..2).map(|_| Arc::new(runtime.block_on(Client::connect(&config)).unwrap())).collect();
    let coord = CoordClient::new(cluster.coordinator_url()).unwrap();
    let account = morsa_client::load_or_create_account_key(&cluster.account_key_path()).unwrap().0.id();
    let nonce_before = runtime.block_on(coord.account(&account)).unwrap().nonce;

    let blobs: Vec<Vec<u8>> =
        (0..STORES).map(|seed| morsa_cluster::sample::bytes(5_000, 100 + seed)).collect();
    let stored = runtime.block_on(async {
        let mut stores = tokio::task::JoinSet::new();
        for (index, blob) in blobs.iter().enumerate() {
            let (client, blob) = (Arc::clone(&clients[index % 2]), blob.clone());
            stores.spawn(async move { (index, client.store_blob(blob, &StoreOptions::default()).await) });
        }
        let bounded = tokio::time::timeout(Duration::from_secs(120), stores.join_all());
        bounded.await.expect("the stores finish within 2 minutes")
    });
    for (index, outcome) in &stored {
        let outcome = outcome.as_ref().unwrap_or_else(|error| panic!("store {index}: {error}"));
        let read = runtime.block_on(clients[0].read_blob(&outcome.blob_id)).unwrap();
        assert!(read.data == blobs[*index], "blob {index} reads back different");
    }
    for client in &clients {
        assert!(runtime.block_on(client.finish_uploads(Duration::from_secs(60))).is_empty());
    }
    let transactions: u64 = clients.iter().map(|client| client.transaction_stats().transactions).sum();
    let nonce_after = runtime.block_on(coord.account(&account)).unwrap().nonce;
    assert_eq!(nonce_after - nonce_before, transactions);
}
