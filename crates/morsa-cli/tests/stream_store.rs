//! `morsa store -` and `morsa read ID > FILE` with the real binary: a pipe of unknown length,
//! larger than one chunk, is stored a chunk at a time and streams back byte for byte; a short
//! pipe gets the same blob ID as a file of the same bytes.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Chunk size of the test's client: small, so a few MiB span several chunks.
const CHUNK: usize = 1 << 20;

/// Pipes `data` into `morsa store - --json` (written from another thread, as a producer
/// would) and answers the JSON line about it.
fn store_stdin(config: &Path, data: Vec<u8>) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["store", "-", "--json"])
        .env("MORSA_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for piece in data.chunks(64 << 10) {
            stdin.write_all(piece).unwrap();
        }
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "store -: {}", String::from_utf8_lossy(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    json[0].clone()
}

#[test]
fn a_pipe_larger_than_a_chunk_is_stored_and_read_back_through_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::local_cluster(dir.path(), 4, 12);
    let config = cluster.client_config_path();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("chunk_size = {CHUNK}\n"));
    std::fs::write(&config, text).unwrap();

    let original = morsa_cluster::sample::bytes(3 * CHUNK + 12345, 7);
    let stored = store_stdin(&config, original.clone());
    assert_eq!(stored["size"], original.len());
    assert_eq!(stored["chunks"], 4, "{stored}");
    let blob_id = stored["blob_id"].as_str().unwrap().to_string();

    let out = std::fs::File::create(dir.path().join("back")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["read", &blob_id])
        .env("MORSA_CONFIG", &config)
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read(dir.path().join("back")).unwrap() == original, "the stream came back different");

    // A pipe that fits in one chunk is one blob, the same as the file of the same bytes.
    let small = morsa_cluster::sample::bytes(CHUNK, 8);
    let piped = store_stdin(&config, small.clone());
    assert_eq!(piped["chunks"], 0);
    let file = dir.path().join("small");
    std::fs::write(&file, &small).unwrap();
    let stored = common::morsa_json_with(&config, &["store", file.to_str().unwrap(), "--json"]);
    assert_eq!(stored[0]["blob_id"], piped["blob_id"]);
    assert_eq!(stored[0]["already_stored"], true);

    let twice = common::morsa_with(&config, &["store", "-", "-"]);
    assert_eq!(twice.status.code(), Some(2), "{twice:?}");
}
