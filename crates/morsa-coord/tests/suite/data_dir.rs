//! A coordinator's data directory belongs to one genesis: opened with another it is refused,
//! and the refusal leaves the log as it was.

use crate::common;

use common::{CHAIN, GENESIS_MS, World};
use morsa_coord::{Command, Coordinator, CoordinatorError, Input, Transaction};

#[test]
fn a_log_written_for_another_genesis_is_refused_and_left_intact() {
    let world = World::new(4, 10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coord-log.redb");
    let mut coordinator = Coordinator::open(&world.genesis, &path).unwrap();
    let user = &world.users[0];
    let command = Command::Transfer { to: world.users[1].id(), amount: 5 };
    let signed = Transaction { sender: user.id(), nonce: 0, command }.sign(user, CHAIN);
    coordinator.submit(Input::Transaction(signed), GENESIS_MS).unwrap();
    let hash = coordinator.state().hash();
    drop(coordinator);

    // Any difference in the genesis (here a price, then the chain) is another deployment.
    let mut priced = world.genesis.clone();
    priced.write_price_per_mib += 1;
    let mut renamed = world.genesis.clone();
    renamed.chain_id = "another-chain".into();
    for other in [priced, renamed] {
        match Coordinator::open(&other, &path) {
            Err(CoordinatorError::GenesisMismatch) => {}
            Err(error) => panic!("expected a genesis mismatch, got {error}"),
            Ok(_) => panic!("a log of another genesis was opened"),
        }
    }
    let reopened = Coordinator::open(&world.genesis, &path).unwrap();
    assert_eq!(reopened.log_len().unwrap(), 1);
    assert_eq!(reopened.state().hash(), hash);
}
