//! A batch replayed without signature checks (the state-hash replica's `Signatures::Trusted`)
//! ends in the same state as with them: an accepted batch may hold a command refused for its
//! certificate.

use morsa_core::{AccountKey, BlsSecretKey, Certificate, PersistenceType};
use redstuff::{BlobId, EncodingConfig};

use super::{Applied, apply, apply_with};
use crate::checks::Signatures;
use crate::{Command, Genesis, GenesisAccount, GenesisNode, Input, LogEntry, NodeRules, State, Transaction};

const CHAIN: &str = "batch-test";
const N: u16 = 10;
const T0: u64 = 1_000_000;

fn genesis(node_keys: &[BlsSecretKey], user: &AccountKey) -> Genesis {
    let nodes = (0_u8..)
        .zip(node_keys)
        .map(|(index, key)| GenesisNode {
            public_key: key.public_key(),
            proof_of_possession: key.proof_of_possession(),
            address: format!("127.0.0.1:{}", 9000 + u16::from(index)),
            stake: 100 * (u64::from(index) + 1),
            capacity: 1 << 30,
            operator: AccountKey::from_seed([200 + index; 32]).id(),
            zone: String::new(),
        })
        .collect();
    Genesis {
        chain_id: CHAIN.into(),
        n_shards: N,
        epoch_duration_ms: 10_000,
        genesis_time_ms: T0,
        storage_price_per_mib_epoch: 7,
        write_price_per_mib: 3,
        max_epochs_ahead: 10,
        max_shards_per_node: N,
        nodes,
        accounts: vec![GenesisAccount { id: user.id(), balance: 1_000_000 }],
        node_rules: NodeRules::local(),
    }
}

fn transact(state: &mut State, user: &AccountKey, command: Command) -> Applied {
    let nonce = state.account(&user.id()).nonce;
    let signed = Transaction { sender: user.id(), nonce, command }.sign(user, CHAIN);
    apply(state, &LogEntry { time_ms: T0, input: Input::Transaction(signed) }).unwrap()
}

#[test]
fn a_batch_with_a_bad_certificate_replays_to_the_same_state_without_signature_checks() {
    let node_keys: Vec<BlsSecretKey> = (1..=4).map(|seed| BlsSecretKey::from_seed([seed; 32])).collect();
    let user = AccountKey::from_seed([42; 32]);
    let mut state = genesis(&node_keys, &user).initial_state().unwrap();
    let size = 300;
    let encoded = EncodingConfig::new(N).unwrap().encoded_size(size).unwrap();
    let storage =
        transact(&mut state, &user, Command::ReserveStorage { size: encoded, epochs: 2 }).created[0];
    let root_hash = [5; 32];
    let blob_id = BlobId::from_root(size, &root_hash);
    let register =
        Command::RegisterBlob { storage, blob_id, root_hash, size, encoding_type: 1, deletable: false };
    let object = transact(&mut state, &user, register).created[0];

    // Signed over another blob: it does not verify for this one.
    let message = morsa_core::storage_confirmation_message(
        state.epoch,
        &BlobId::from_root(1, &[6; 32]),
        &PersistenceType::Permanent,
    );
    let parts: Vec<_> = (0_u16..).zip(&node_keys).map(|(index, key)| (index, key.sign(&message))).collect();
    let certificate = Certificate::aggregate(&parts).unwrap();
    let commands =
        vec![Command::CertifyBlob { object, certificate }, Command::Transfer { to: user.id(), amount: 1 }];
    let nonce = state.account(&user.id()).nonce;
    let signed =
        Transaction { sender: user.id(), nonce, command: Command::Batch { commands } }.sign(&user, CHAIN);
    let entry = LogEntry { time_ms: T0, input: Input::Transaction(signed) };

    let mut trusted = state.clone();
    let checked = apply(&mut state, &entry).unwrap();
    assert!(checked.results[0].is_err() && checked.results[1].is_ok(), "{:?}", checked.results);
    let replayed = apply_with(&mut trusted, &entry, Signatures::Trusted).unwrap();
    assert_eq!(replayed, checked);
    assert!(trusted.blobs[&object].certified.is_none());
    assert_eq!(trusted.hash(), state.hash());
}
