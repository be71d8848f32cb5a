//! Transactions carrying a batch of commands: each command is checked and answered as if it
//! were sent alone, one refused changes nothing, and the batch is one transaction (one
//! signature over all of it, one nonce).

use crate::common;

use common::{CHAIN, World};
use morsa_coord::{
    Applied, Command, CommandApplied, CommandError, Input, MAX_BATCH_COMMANDS, State, Transaction,
    apply_prechecked,
};
use morsa_core::{ObjectId, PersistenceType};
use redstuff::{BlobId, EncodingConfig};

const N: u16 = 10;

fn encoded(size: u64) -> u64 {
    EncodingConfig::new(N).unwrap().encoded_size(size).unwrap()
}

fn register(storage: ObjectId, size: u64, seed: u8) -> (BlobId, Command) {
    let root_hash = [seed; 32];
    let blob_id = BlobId::from_root(size, &root_hash);
    (blob_id, Command::RegisterBlob { storage, blob_id, root_hash, size, encoding_type: 1, deletable: false })
}

fn confirmation(world: &World, blob_id: &BlobId) -> Vec<u8> {
    morsa_core::storage_confirmation_message(world.epoch(), blob_id, &PersistenceType::Permanent)
}

/// A certificate of members whose shards fall short of a quorum.
fn weak_certificate(world: &World, message: &[u8]) -> morsa_core::Certificate {
    let committee = world.state.committee.clone();
    let smallest = (0..committee.members.len()).min_by_key(|member| committee.weight(*member)).unwrap();
    world.certificate(&committee, &[smallest], message)
}

/// What a command did, as a batch answers it.
fn alone(result: Result<Applied, CommandError>) -> Result<CommandApplied, CommandError> {
    result.map(|applied| CommandApplied { events: applied.events, created: applied.created })
}

/// Two identical deployments: `batched` gets `commands` as one batch from user 0, `single`
/// gets them one transaction each. Checks that each command did the same in both (the same
/// events, numbered and chained the same, the same objects, the same refusals) and that the
/// batch took one nonce; answers the batch's results.
fn compare(
    batched: &mut World,
    single: &mut World,
    commands: Vec<Command>,
) -> Vec<Result<CommandApplied, CommandError>> {
    let user = batched.users[0].id();
    let nonce = batched.state.account(&user).nonce;
    let applied = batched.transact(0, Command::Batch { commands: commands.clone() }).unwrap();
    assert_eq!(batched.state.account(&user).nonce, nonce + 1, "a batch takes one nonce");
    let each: Vec<_> = commands.into_iter().map(|command| alone(single.transact(0, command))).collect();
    assert_eq!(applied.results, each);
    let events: Vec<_> = each.iter().flatten().flat_map(|done| done.events.clone()).collect();
    let created: Vec<_> = each.iter().flatten().flat_map(|done| done.created.clone()).collect();
    assert_eq!((applied.events, applied.created), (events, created));
    assert_same_apart_from_nonces(&batched.state, &single.state);
    applied.results
}

fn assert_same_apart_from_nonces(a: &State, b: &State) {
    let balances = |state: &State| state.accounts.values().map(|account| account.balance).collect::<Vec<_>>();
    assert_eq!(balances(a), balances(b));
    assert_eq!(a.storage, b.storage);
    assert_eq!(a.blobs, b.blobs);
    assert_eq!((a.event_count, a.event_head), (b.event_count, b.event_head));
}

fn code(result: &Result<CommandApplied, CommandError>) -> &'static str {
    result.as_ref().map_or_else(CommandError::code, |_| "applied")
}

#[test]
fn each_command_of_a_batch_is_checked_and_answered_as_if_sent_alone() {
    let (mut batched, mut single) = (World::new(4, N), World::new(4, N));
    let to = batched.users[1].id();

    // Reservations, one of them refused; a transfer beyond the balance.
    let results = compare(
        &mut batched,
        &mut single,
        vec![
            Command::ReserveStorage { size: encoded(5000), epochs: 3 },
            Command::ReserveStorage { size: 0, epochs: 3 },
            Command::ReserveStorage { size: encoded(300), epochs: 3 },
            Command::Transfer { to, amount: 1 << 40 },
            Command::Transfer { to, amount: 5 },
        ],
    );
    let codes: Vec<_> = results.iter().map(code).collect();
    assert_eq!(codes, ["applied", "invalid_argument", "applied", "insufficient_balance", "applied"]);
    let (first, second) = (results[0].as_ref().unwrap().created[0], results[2].as_ref().unwrap().created[0]);

    // Registrations, in order: the second use of a storage resource finds it consumed by the
    // first, and a blob ID that does not follow from its root is refused.
    let (blob_a, register_a) = register(first, 5000, 1);
    let (_, mut mismatched) = register(second, 300, 2);
    if let Command::RegisterBlob { blob_id, .. } = &mut mismatched {
        *blob_id = BlobId::from_root(300, &[3; 32]);
    }
    let (blob_b, register_b) = register(second, 300, 2);
    let (_, reused) = register(first, 5000, 4);
    let results = compare(&mut batched, &mut single, vec![register_a, mismatched, register_b, reused]);
    let codes: Vec<_> = results.iter().map(code).collect();
    assert_eq!(codes, ["applied", "blob_id_mismatch", "applied", "unknown_object"]);
    let (object_a, object_b) =
        (results[0].as_ref().unwrap().created[0], results[2].as_ref().unwrap().created[0]);

    // Certificates: a quorum's applies, one short of a quorum is refused, a second
    // certification of the same blob finds it certified by the first.
    let full = batched.full_certificate(&confirmation(&batched, &blob_a));
    let weak = weak_certificate(&batched, &confirmation(&batched, &blob_b));
    let results = compare(
        &mut batched,
        &mut single,
        vec![
            Command::CertifyBlob { object: object_a, certificate: full.clone() },
            Command::CertifyBlob { object: object_b, certificate: weak },
            Command::CertifyBlob { object: object_a, certificate: full },
        ],
    );
    let codes: Vec<_> = results.iter().map(code).collect();
    assert_eq!(codes, ["applied", "bad_certificate", "blob_state"]);
    assert!(batched.state.blobs[&object_a].certified.is_some());
    assert!(batched.state.blobs[&object_b].certified.is_none());
}

#[test]
fn a_batch_whose_commands_are_all_refused_still_takes_its_nonce() {
    let mut world = World::new(4, N);
    let user = world.users[0].id();
    let balance = world.state.account(&user).balance;
    let applied = world
        .transact(0, Command::Batch { commands: vec![Command::ReserveStorage { size: 0, epochs: 1 }] })
        .unwrap();
    assert!(matches!(applied.results.as_slice(), [Err(CommandError::InvalidArgument { .. })]));
    assert!(applied.events.is_empty() && applied.created.is_empty());
    assert_eq!(world.state.account(&user).nonce, 1);
    assert_eq!(world.state.account(&user).balance, balance);
    assert_eq!(world.accepted.len(), 1, "accepted, so logged");
}

#[test]
fn malformed_batches_are_refused_whole() {
    let mut world = World::new(4, N);
    let to = world.users[1].id();
    let transfer = Command::Transfer { to, amount: 1 };
    for commands in [
        Vec::new(),
        vec![transfer.clone(); MAX_BATCH_COMMANDS + 1],
        vec![transfer.clone(), Command::Batch { commands: vec![transfer.clone()] }],
    ] {
        // `World::submit` checks that a refusal leaves the state exactly as it was.
        let error = world.transact(0, Command::Batch { commands }).unwrap_err();
        assert_eq!(error.code(), "invalid_argument", "{error}");
        assert_eq!(world.state.account(&world.users[0].id()).nonce, 0);
    }
    let full = world.transact(0, Command::Batch { commands: vec![transfer; MAX_BATCH_COMMANDS] }).unwrap();
    assert_eq!(full.results.len(), MAX_BATCH_COMMANDS);
    assert!(full.results.iter().all(Result::is_ok));
}

#[test]
fn a_batch_is_signed_whole_and_replays_are_refused_by_its_nonce() {
    let mut world = World::new(4, N);
    let (sender, to) = (world.users[0].id(), world.users[1].id());
    let commands = vec![Command::Transfer { to, amount: 5 }, Command::Transfer { to, amount: 7 }];
    let signed =
        Transaction { sender, nonce: 0, command: Command::Batch { commands } }.sign(&world.users[0], CHAIN);

    // Any change to the batch after signing: a command altered, dropped or added.
    let altered = |change: &dyn Fn(&mut Vec<Command>)| {
        let mut forged = signed.clone();
        if let Command::Batch { commands } = &mut forged.transaction.command {
            change(commands);
        }
        forged
    };
    for forged in [
        altered(&|commands| commands[1] = Command::Transfer { to, amount: 700 }),
        altered(&|commands| {
            commands.pop();
        }),
        altered(&|commands| commands.push(Command::Transfer { to, amount: 1 })),
    ] {
        let error = world.submit(Input::Transaction(forged)).unwrap_err();
        assert!(matches!(error, CommandError::BadSignature(_)), "{error}");
    }
    // Signed by another account for this sender.
    let mut stolen = signed.clone();
    stolen.signature = stolen.transaction.clone().sign(&world.users[1], CHAIN).signature;
    assert!(matches!(world.submit(Input::Transaction(stolen)).unwrap_err(), CommandError::BadSignature(_)));

    world.submit(Input::Transaction(signed.clone())).unwrap();
    let replayed = world.submit(Input::Transaction(signed)).unwrap_err();
    assert!(matches!(replayed, CommandError::BadNonce { expected: 1, got: 0, .. }), "{replayed}");
    assert_eq!(world.state.account(&to).balance, 1_000_000 + 12);
}

#[test]
fn a_prechecked_batch_with_a_bad_certificate_refuses_only_that_command() {
    // The server verifies signatures before it applies (`State::precheck`); a certificate
    // of a batch's command that fails there must not refuse the whole batch.
    let mut world = World::new(4, N);
    let storage =
        world.transact(0, Command::ReserveStorage { size: encoded(300), epochs: 3 }).unwrap().created[0];
    let (blob_id, command) = register(storage, 300, 9);
    let object = world.transact(0, command).unwrap().created[0];
    let weak = weak_certificate(&world, &confirmation(&world, &blob_id));
    let to = world.users[1].id();
    let signed = Transaction {
        sender: world.users[0].id(),
        nonce: world.state.account(&world.users[0].id()).nonce,
        command: Command::Batch {
            commands: vec![
                Command::CertifyBlob { object, certificate: weak },
                Command::Transfer { to, amount: 3 },
            ],
        },
    }
    .sign(&world.users[0], CHAIN);
    let input = Input::Transaction(signed);
    let checks = world.state.precheck(&input).run().expect("the batch's own signature verifies");
    let entry = morsa_coord::LogEntry { time_ms: world.now, input };
    let applied = apply_prechecked(&mut world.state, &entry, &checks).unwrap();
    let codes: Vec<_> = applied.results.iter().map(code).collect();
    assert_eq!(codes, ["bad_certificate", "applied"]);
    assert!(world.state.blobs[&object].certified.is_none());

    // The same with a quorum's certificate: verified once, in the precheck, and applied.
    let full = world.full_certificate(&confirmation(&world, &blob_id));
    let signed = Transaction {
        sender: world.users[0].id(),
        nonce: world.state.account(&world.users[0].id()).nonce,
        command: Command::Batch { commands: vec![Command::CertifyBlob { object, certificate: full }] },
    }
    .sign(&world.users[0], CHAIN);
    let input = Input::Transaction(signed);
    let checks = world.state.precheck(&input).run().unwrap();
    let entry = morsa_coord::LogEntry { time_ms: world.now, input };
    let applied = apply_prechecked(&mut world.state, &entry, &checks).unwrap();
    assert!(applied.results[0].is_ok());
    assert!(world.state.blobs[&object].certified.is_some());
}

#[test]
fn a_log_with_batches_replays_to_the_same_state() {
    let (mut batched, mut single) = (World::new(4, N), World::new(4, N));
    let results = compare(
        &mut batched,
        &mut single,
        vec![
            Command::ReserveStorage { size: encoded(1000), epochs: 2 },
            Command::ReserveStorage { size: encoded(2000), epochs: 2 },
        ],
    );
    let storage = results[0].as_ref().unwrap().created[0];
    let (blob_id, command) = register(storage, 1000, 5);
    let object = compare(&mut batched, &mut single, vec![command])[0].as_ref().unwrap().created[0];
    let certificate = batched.full_certificate(&confirmation(&batched, &blob_id));
    compare(&mut batched, &mut single, vec![Command::CertifyBlob { object, certificate }]);

    let mut replayed = batched.genesis.initial_state().unwrap();
    for entry in &batched.accepted {
        morsa_coord::apply(&mut replayed, entry).unwrap();
    }
    assert_eq!(replayed.hash(), batched.state.hash());
}
