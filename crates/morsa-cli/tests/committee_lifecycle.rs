//! A node joins and retires on real processes, through the real transactions: `add_node`
//! registers, zones and stakes a fifth node, which joins the committee at the next epoch and
//! takes its share; `morsa cluster retire` unstakes it; `morsa withdraw` is refused until the
//! epoch change that moves its shards away is done, and pays the stake after. A blob stored
//! before reads back at the end.
//!
//! Epochs end when the test asks (`[testing] manual_epochs`), so the course of the test does
//! not depend on how loaded the machine is.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::eventually;
use morsa_api::client::CoordClient;
use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::NODE_STAKE;

/// How long any one thing may take.
const WAIT: Duration = Duration::from_secs(40);

#[test]
fn a_node_added_joins_at_the_next_epoch_and_its_retirement_pays_the_stake_only_after_the_change() {
    let (_dir, mut cluster) = common::churn::manual_cluster(4, 12);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ClientConfig::load(&cluster.client_config_path()).unwrap();
    let client = runtime.block_on(Client::connect(&config)).unwrap();
    let data = morsa_cluster::sample::bytes(50_000, 7);
    let options = StoreOptions { epochs: 20, ..StoreOptions::default() };
    let stored = runtime.block_on(client.store_blob(data.clone(), &options)).unwrap();
    assert!(runtime.block_on(client.finish_uploads(Duration::from_secs(30))).is_empty());
    let coord = CoordClient::new(cluster.coordinator_url()).unwrap();

    // A fifth node, in a zone of its own: registered, staked and running, not yet a member.
    let index = cluster.add_node(Some("eu-west/dc9")).unwrap();
    let node = cluster.nodes()[index].node_id;
    let info = runtime.block_on(coord.committee()).unwrap();
    assert!(info.current.member_by_node(&node).is_none());
    runtime.block_on(coord.next_epoch()).unwrap();
    let shards = eventually("the new node holds shards and the epoch change is done", WAIT, || {
        let info = runtime.block_on(coord.committee()).ok()?;
        let member = info.current.member_by_node(&node)?;
        info.epoch_change_done.then(|| info.current.members[member].shards.len())
    });
    // Equal stakes over 12 shards: 3, 3, 2, 2, 2 (ties go by node ID).
    assert!((2..=3).contains(&shards), "{shards}");
    let info = common::morsa_with(&cluster.client_config_path(), &["info"]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("shards per zone") && text.contains(&format!("eu-west/dc9 {shards}")), "{text}");

    // Retire it with the real CLI; its operator's stake waits for the change.
    let dir_arg = cluster.dir().to_str().unwrap().to_string();
    let retire = std::process::Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["cluster", "retire", "--dir", &dir_arg, "--node", &index.to_string()])
        .output()
        .unwrap();
    assert!(retire.status.success(), "{}", String::from_utf8_lossy(&retire.stderr));
    let operator = morsa_cluster::operator_key(cluster.dir(), index).unwrap();
    let operator_config = cluster.dir().join("operator.toml");
    let key_file = cluster.dir().join(format!("node{index}.operator.key"));
    std::fs::write(
        &operator_config,
        format!("coordinator_url = \"{}\"\naccount_key_file = {:?}\n", cluster.coordinator_url(), key_file),
    )
    .unwrap();
    let balance = |coord: &CoordClient| runtime.block_on(coord.account(&operator.id())).unwrap();
    let before = balance(&coord);
    assert_eq!(before.withdrawals.len(), 1, "{before:?}");
    assert_eq!((before.withdrawals[0].amount, before.withdrawals[0].payable), (NODE_STAKE, false));
    let node_arg = node.to_string();
    let refused = common::morsa_with(&operator_config, &["withdraw", "--node", &node_arg]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("withdrawable once the change"), "{message}");
    assert_eq!(balance(&coord).balance, before.balance);

    // The next epoch moves its shards away; once that change is done, the stake is paid.
    runtime.block_on(coord.next_epoch()).unwrap();
    eventually("the retired node is out and the epoch change is done", WAIT, || {
        let info = runtime.block_on(coord.committee()).ok()?;
        (info.current.member_by_node(&node).is_none() && info.epoch_change_done).then_some(())
    });
    let paid = common::morsa_with(&operator_config, &["withdraw", "--node", &node_arg]);
    assert!(paid.status.success(), "{}", String::from_utf8_lossy(&paid.stderr));
    let after = balance(&coord);
    assert_eq!(after.balance, before.balance + NODE_STAKE);
    assert!(after.withdrawals.is_empty());
    let read = runtime.block_on(client.read_blob(&stored.blob_id)).unwrap();
    assert!(read.data == data);
}
