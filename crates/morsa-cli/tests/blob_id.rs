//! `morsa blob-id` driven through the real binary, the way a user runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The official Walrus test vector: these 33 bytes at `n = 10`.
const VECTOR_BLOB: &[u8] = b"walrus blob id v1 regression test";
const VECTOR_BLOB_ID: &str = "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY";

/// Largest blob at `n = 4`: `kp · ks · 65534` with `kp = 2`, `ks = 3`.
const MAX_BLOB_AT_N4: usize = 2 * 3 * 65534;

fn morsa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_morsa")).args(args).output().expect("morsa starts")
}

fn morsa_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("morsa starts");
    child.stdin.take().expect("stdin is piped").write_all(stdin).expect("stdin is written");
    child.wait_with_output().expect("morsa finishes")
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("temp file is written");
    path.to_str().expect("temp paths are UTF-8").to_owned()
}

/// Asserts success and parses stdout as exactly one JSON object.
fn json_of(output: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "morsa failed: {stderr}");
    let stdout = std::str::from_utf8(&output.stdout).expect("stdout is UTF-8");
    assert_eq!(stdout.trim_end().lines().count(), 1, "one line of JSON expected, got {stdout:?}");
    let value: serde_json::Value = serde_json::from_str(stdout).expect("stdout is JSON");
    assert!(value.is_object(), "stdout is not a JSON object: {stdout}");
    value
}

/// Asserts a runtime failure (exit code 1) and returns its one-line error message.
fn one_line_error(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "expected a runtime error, got {:?}", output.status);
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    let stderr = String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8");
    assert_eq!(stderr.lines().count(), 1, "exactly one line on stderr expected, got {stderr:?}");
    assert!(stderr.starts_with("error: "), "stderr does not start with `error: `: {stderr:?}");
    stderr
}

fn assert_official_vector(json: &serde_json::Value) {
    assert_eq!(json["blob_id"], VECTOR_BLOB_ID);
    assert_eq!(json["unencoded_size"], 33);
    assert_eq!(json["symbol_size"], 2);
    assert_eq!(json["encoded_size"], 6940);
    assert_eq!(json["n_shards"], 10);
}

#[test]
fn official_vector_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "vector.txt", VECTOR_BLOB);
    let json = json_of(&morsa(&["blob-id", &path, "--n-shards", "10", "--json"]));
    assert_official_vector(&json);
    assert_eq!(json.as_object().unwrap().len(), 5, "exactly the five documented keys: {json}");
}

/// A file of many pages, mapped rather than read, and an empty one (nothing to map): their blob
/// IDs are the ones the codec computes in-process from their bytes.
#[test]
fn a_large_file_and_an_empty_one_have_the_blob_ids_of_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let len = (20 << 20) + 5;
    let bytes: Vec<u8> = (0..len).map(|i: usize| u8::try_from((i * 7 + i / 4093) % 251).unwrap()).collect();
    let path = write_file(dir.path(), "pieces.bin", &bytes);
    let json = json_of(&morsa(&["blob-id", &path, "--n-shards", "100", "--json"]));
    let config = redstuff::EncodingConfig::new(100).unwrap();
    let expected = redstuff::compute_metadata(config, &bytes).unwrap();
    assert_eq!(json["blob_id"], expected.blob_id().to_string());
    assert_eq!(json["unencoded_size"], len);

    let path = write_file(dir.path(), "empty.bin", b"");
    let json = json_of(&morsa(&["blob-id", &path, "--n-shards", "10", "--json"]));
    let expected = redstuff::compute_metadata(redstuff::EncodingConfig::new(10).unwrap(), b"").unwrap();
    assert_eq!(json["blob_id"], expected.blob_id().to_string());
    assert_eq!(json["unencoded_size"], 0);
}

/// A pseudo-file that reports a length of 0 and still has bytes is read, not taken for empty.
#[test]
#[cfg(target_os = "linux")]
fn a_file_reporting_no_length_is_read_for_its_bytes() {
    let path = "/proc/version";
    let bytes = std::fs::read(path).unwrap();
    assert!(!bytes.is_empty() && std::fs::metadata(path).unwrap().len() == 0, "a zero-length pseudo-file");
    let json = json_of(&morsa(&["blob-id", path, "--n-shards", "10", "--json"]));
    let expected = redstuff::compute_metadata(redstuff::EncodingConfig::new(10).unwrap(), &bytes).unwrap();
    assert_eq!(json["blob_id"], expected.blob_id().to_string());
    assert_eq!(json["unencoded_size"], bytes.len());
}

#[test]
fn official_vector_from_stdin() {
    let output = morsa_with_stdin(&["blob-id", "-", "--n-shards", "10", "--json"], VECTOR_BLOB);
    assert_official_vector(&json_of(&output));
}

#[test]
fn human_output_shows_the_blob_id_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "vector.txt", VECTOR_BLOB);
    let output = morsa(&["blob-id", &path, "--n-shards", "10"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let blob_id_line = stdout.lines().find(|line| line.starts_with("blob ID:")).expect("a blob ID line");
    assert!(blob_id_line.ends_with(VECTOR_BLOB_ID), "{stdout}");
    assert!(stdout.contains("6940 bytes (6.8 KiB)"), "encoded size in bytes and KiB: {stdout}");
}

#[test]
fn default_shard_count_is_1000() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "vector.txt", VECTOR_BLOB);
    let json = json_of(&morsa(&["blob-id", &path, "--json"]));
    assert_eq!(json["n_shards"], 1000);
    assert_eq!(json["unencoded_size"], 33);
    // A different code gives a different ID for the same bytes.
    assert_ne!(json["blob_id"], VECTOR_BLOB_ID);
}

#[test]
fn missing_file_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-file.bin");
    let path = path.to_str().unwrap();
    let error = one_line_error(&morsa(&["blob-id", path]));
    assert!(error.contains(path), "the error names the file: {error}");
}

#[test]
fn directory_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let error = one_line_error(&morsa(&["blob-id", path]));
    assert!(error.contains(path), "the error names the directory: {error}");
    assert!(error.contains("directory"), "{error}");
}

#[test]
fn blob_over_the_maximum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "big.bin", &vec![7; MAX_BLOB_AT_N4 + 1]);
    let error = one_line_error(&morsa(&["blob-id", &path, "--n-shards", "4"]));
    assert!(error.contains(&path), "the error names the file: {error}");
    assert!(error.contains("too large"), "{error}");
    assert!(error.contains("393204"), "the error gives the maximum: {error}");
}

/// A file's size is checked before any byte of it is read: an 8 GiB sparse file (no disk
/// space, but reading it would allocate and fill 8 GiB) is refused at once, and the message
/// gives the size the file system reports.
#[test]
fn a_huge_file_is_refused_before_it_is_read() {
    const HUGE: u64 = 8 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.bin");
    std::fs::File::create(&path).unwrap().set_len(HUGE).unwrap();
    let path = path.to_str().unwrap();
    let error = one_line_error(&morsa(&["blob-id", path, "--n-shards", "4"]));
    assert!(error.contains(path), "the error names the file: {error}");
    assert!(error.contains(&format!("too large ({HUGE} bytes)")), "the size from the file system: {error}");
    assert!(error.contains("393204"), "the error gives the maximum: {error}");
}

#[test]
fn blob_over_the_maximum_on_stdin_is_refused() {
    let output = morsa_with_stdin(&["blob-id", "-", "--n-shards", "4"], &vec![7; MAX_BLOB_AT_N4 + 1]);
    let error = one_line_error(&output);
    assert!(error.contains("standard input is too large"), "{error}");
}

#[test]
fn blob_exactly_at_the_maximum_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "max.bin", &vec![7; MAX_BLOB_AT_N4]);
    let json = json_of(&morsa(&["blob-id", &path, "--n-shards", "4", "--json"]));
    assert_eq!(json["unencoded_size"], 393_204);
    assert_eq!(json["symbol_size"], 65534, "the largest symbol size");
    assert_eq!(json["n_shards"], 4);
}

#[test]
fn fewer_than_four_shards_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "vector.txt", VECTOR_BLOB);
    let output = morsa(&["blob-id", &path, "--n-shards", "3"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage-error exit code");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--n-shards"), "the error names the option: {stderr}");
}
