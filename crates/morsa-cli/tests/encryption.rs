//! Encryption end to end on a local cluster of real processes: files stored encrypted are
//! restored on a fresh machine (a new HOME) from three of five shares alone, whole and by
//! range; no storage node holds a 64-byte run of the plaintext; and blobs interoperate both
//! ways with the real `age` tool (installed by `.ci/install-tools`). The S3 gateway of `morsa
//! cluster` encrypts objects the same way: no node sees them, S3 reads give the plaintext
//! back, and a chunk read raw opens with `age` and the gateway's identity.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "gateway/s3_cluster.rs"]
mod s3_cluster;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::keys::{Machine, assert_fails};

const NODES: usize = 4;
const SHARDS: u16 = 10;

/// Bytes of a plaintext piece looked for in the nodes' files: any 64-byte run of the
/// plaintext contains one whole aligned piece of 32.
const PIECE: usize = 32;

fn data(len: usize, seed: u64) -> Vec<u8> {
    morsa_cluster::sample::bytes(len, seed)
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// Whether any file under `dir` holds a 64-byte run of `plaintext`.
fn holds_plaintext(dir: &Path, plaintext: &[u8]) -> bool {
    let pieces: HashSet<&[u8]> = plaintext.chunks_exact(PIECE).collect();
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files.iter().any(|file| {
        let bytes = std::fs::read(file).unwrap_or_default();
        bytes.windows(PIECE).any(|window| pieces.contains(window))
    })
}

fn store(machine: &Machine, path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["store", path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let stored: serde_json::Value = serde_json::from_str(&machine.ok(&args)).unwrap();
    stored[0]["blob_id"].as_str().unwrap().to_string()
}

fn read(machine: &Machine, blob_id: &str, extra: &[&str]) -> Vec<u8> {
    let out = machine.home.join(format!("read-{}", extra.join("")));
    let mut args = vec!["read", blob_id, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    machine.ok(&args);
    std::fs::read(&out).unwrap()
}

fn age(args: &[&str]) -> Vec<u8> {
    let output = Command::new("age")
        .args(args)
        .output()
        .expect("the age tool runs (.ci/install-tools installs it: apt-get install age)");
    assert!(output.status.success(), "age {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

#[test]
fn an_encrypted_file_is_restored_on_a_fresh_machine_from_three_shares_and_no_node_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::local_cluster(dir.path(), NODES, SHARDS);
    let config = cluster.client_config_path();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("chunk_size = 4194304\n");
    std::fs::write(&config, text).unwrap();

    let alice = Machine::new(&dir.path().join("alice"), &config);
    alice.ok(&["key", "init"]);
    assert!(std::fs::read_to_string(&config).unwrap().contains("encrypt = true"));
    let shares: Vec<String> =
        serde_json::from_str(&alice.ok(&["key", "split", "--shares", "5", "--threshold", "3", "--json"]))
            .unwrap();

    let original = data(10 << 20, 14);
    let path = dir.path().join("backup.tar");
    std::fs::write(&path, &original).unwrap();
    let blob_id = store(&alice, &path, &[]);
    assert_eq!(read(&alice, &blob_id, &[]), original);

    // A fresh machine: no keyring, so the file cannot be read, and says what to do.
    let fresh = Machine::new(&dir.path().join("fresh"), &config);
    let out = fresh.home.join("none");
    assert_fails(&fresh.run(&["read", &blob_id, "--out", out.to_str().unwrap()], ""), "morsa key recover");
    let recovered =
        fresh.run(&["key", "recover"], &[&shares[4], &shares[1], &shares[2]].map(String::as_str).join("\n"));
    assert!(recovered.status.success(), "{}", String::from_utf8_lossy(&recovered.stderr));
    assert_eq!(read(&fresh, &blob_id, &[]), original);
    // A range across a chunk boundary and several 64 KiB segments, one inside a segment, one
    // starting on a segment boundary, and the ends.
    for (start, end) in [
        (4_194_000usize, 4_400_123usize),
        (70_000, 70_100),
        (196_608, 196_708),
        (0, 1),
        ((10 << 20) - 5, 10 << 20),
    ] {
        let range = format!("{start}-{end}");
        assert_eq!(read(&fresh, &blob_id, &["--range", &range]), original[start..end], "{range}");
    }

    // No node's files hold a 64-byte run of the plaintext; a plaintext store shows the
    // check would see one.
    let nodes = dir.path().join("cluster");
    assert!(!holds_plaintext(&nodes, &original), "a node holds plaintext of the encrypted file");
    let plain = data(1 << 20, 15);
    let plain_path = dir.path().join("plain.bin");
    std::fs::write(&plain_path, &plain).unwrap();
    let plain_id = store(&alice, &plain_path, &["--no-encrypt"]);
    assert!(holds_plaintext(&nodes, &plain), "the check finds a file stored without encryption");
    assert_eq!(read(&fresh, &plain_id, &[]), plain);

    // With a wrong keyring passphrase: a plaintext blob still reads (nothing needs unlocking),
    // an encrypted one fails saying why.
    let wrong = |blob_id: &str| {
        let out = fresh.home.join("wrong-passphrase");
        let mut command = fresh.command(&["read", blob_id, "--out", out.to_str().unwrap()]);
        command.env("MORSA_KEY_PASSPHRASE", "not the passphrase");
        (common::keys::run_with_input(command, ""), out)
    };
    let (output, out) = wrong(&plain_id);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), plain);
    assert_fails(&wrong(&blob_id).0, "could not be unlocked");
}

#[test]
fn blobs_interoperate_with_the_age_tool_both_ways_and_only_convergent_stores_repeat_blob_ids() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::local_cluster(dir.path(), NODES, SHARDS);
    let config = cluster.client_config_path();
    let alice = Machine::new(&dir.path().join("alice"), &config);
    alice.ok(&["key", "init"]);
    let identity = alice.home.join("identity.txt");
    std::fs::write(&identity, alice.ok(&["key", "age-identity"])).unwrap();

    // Morsa to age: the stored blob, read raw, opens with `age -d`.
    let original = data(300_000, 21);
    let path = dir.path().join("notes.bin");
    std::fs::write(&path, &original).unwrap();
    let blob_id = store(&alice, &path, &[]);
    let raw = read(&alice, &blob_id, &["--raw"]);
    assert!(raw.starts_with(b"age-encryption.org/v1\n"));
    let raw_path = dir.path().join("raw.age");
    std::fs::write(&raw_path, &raw).unwrap();
    assert_eq!(age(&["-d", "-i", identity.to_str().unwrap(), raw_path.to_str().unwrap()]), original);

    // Identical plaintext stored again: another blob.
    assert_ne!(store(&alice, &path, &[]), blob_id);

    // Convergent: the same plaintext gives the same blob under one keyring (an age file all
    // the same), another blob under another keyring.
    let convergent_id = store(&alice, &path, &["--convergent"]);
    assert_ne!(convergent_id, blob_id);
    assert_eq!(store(&alice, &path, &["--convergent", "--force"]), convergent_id);
    let raw = read(&alice, &convergent_id, &["--raw"]);
    std::fs::write(&raw_path, &raw).unwrap();
    assert_eq!(age(&["-d", "-i", identity.to_str().unwrap(), raw_path.to_str().unwrap()]), original);
    assert_eq!(read(&alice, &convergent_id, &[]), original);
    let bob = Machine::new(&dir.path().join("bob"), &config);
    bob.ok(&["key", "init"]);
    assert_ne!(store(&bob, &path, &["--convergent"]), convergent_id);

    // age to Morsa: a file age encrypted to Morsa's recipient, stored as it is, reads back
    // decrypted.
    let recipient = alice.ok(&["key", "age-recipient"]);
    let sealed_path = dir.path().join("from-age.age");
    age(&["-r", recipient.trim(), "-o", sealed_path.to_str().unwrap(), path.to_str().unwrap()]);
    let sealed_id = store(&alice, &sealed_path, &["--no-encrypt"]);
    assert_eq!(read(&alice, &sealed_id, &[]), original);
    assert_eq!(read(&alice, &sealed_id, &["--range", "65530-65545"]), original[65530..65545]);
}

#[test]
fn the_gateway_encrypts_objects_so_no_node_sees_them_and_reads_give_the_plaintext_back() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = s3_cluster::S3Cluster::up(dir.path(), &[]);
    let chunk = s3_cluster::CHUNK;
    let original = data(3 * chunk + 70_001, 31);
    let path = dir.path().join("object.bin");
    std::fs::write(&path, &original).unwrap();
    s3.aws(&["s3", "mb", "s3://vault"]);
    s3.aws(&["s3", "cp", path.to_str().unwrap(), "s3://vault/object.bin", "--only-show-errors"]);

    // Whole, and ranges: across a chunk boundary, inside one 64 KiB age segment, starting on
    // a segment boundary, and the last byte.
    let back = dir.path().join("back.bin");
    s3.aws(&["s3", "cp", "s3://vault/object.bin", back.to_str().unwrap(), "--only-show-errors"]);
    assert!(std::fs::read(&back).unwrap() == original, "the object came back different");
    let last = original.len() - 1;
    for (start, end) in [
        (chunk - 1000, chunk + 200_000),
        (70_000, 70_100),
        (chunk + 131_072, chunk + 131_073),
        (last, last + 1),
    ] {
        let out = dir.path().join("range.bin");
        let range = format!("bytes={start}-{}", end - 1);
        s3.aws(&[
            "s3api",
            "get-object",
            "--bucket",
            "vault",
            "--key",
            "object.bin",
            "--range",
            &range,
            out.to_str().unwrap(),
        ]);
        assert!(std::fs::read(&out).unwrap() == original[start..end], "range {range} came back different");
    }
    // Size and ETag are the plaintext's (clients check them).
    let head: serde_json::Value =
        serde_json::from_str(&s3.aws(&["s3api", "head-object", "--bucket", "vault", "--key", "object.bin"]))
            .unwrap();
    assert_eq!(head["ContentLength"], original.len());
    let md5sum = Command::new("md5sum").arg(&path).output().unwrap();
    let md5 = String::from_utf8(md5sum.stdout).unwrap();
    assert_eq!(head["ETag"].as_str().unwrap().trim_matches('"'), md5.split_whitespace().next().unwrap());

    // No file of the cluster (nodes' slivers, the gateway's database) holds a 64-byte run of it.
    assert!(!holds_plaintext(s3.cluster.dir(), &original), "the cluster holds plaintext of the object");

    // Each chunk blob, read raw, is an age file that the age tool opens with the gateway's
    // identity into its part of the object; together they are the whole object.
    let identity = s3.gateway_identity_file();
    let config = s3.cluster.client_config_path();
    let blobs = common::morsa_json_with(&config, &["list-blobs", "--json"]);
    let mut parts = Vec::new();
    for blob in blobs.as_array().unwrap() {
        let blob_id = blob["blob_id"].as_str().unwrap();
        let raw = dir.path().join(format!("raw-{blob_id}"));
        let read = common::morsa_with(&config, &["read", "--raw", blob_id, "--out", raw.to_str().unwrap()]);
        assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
        if !std::fs::read(&raw).unwrap().starts_with(b"age-encryption.org/v1\n") {
            continue;
        }
        let plaintext = age(&["-d", "-i", identity.to_str().unwrap(), raw.to_str().unwrap()]);
        let index = gateway_chunks(&original, chunk).position(|part| part == plaintext.as_slice());
        parts.push(index.unwrap_or_else(|| panic!("chunk {blob_id} opens to no part of the object")));
    }
    parts.sort_unstable();
    assert_eq!(parts, (0..gateway_chunks(&original, chunk).count()).collect::<Vec<_>>());
}

/// How the gateway cuts a body of declared length into chunks (docs/GATEWAY.md, "Bounded
/// memory"): `chunk` bytes each, the last taking up to half a chunk more.
fn gateway_chunks(body: &[u8], chunk: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = if rest.len() <= chunk + chunk / 2 { rest.len() } else { chunk };
        let (piece, after) = rest.split_at(take);
        rest = after;
        Some(piece)
    })
}
