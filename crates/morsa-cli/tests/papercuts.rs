//! What a new user hits in the first hour, through the real `morsa` binary against a local
//! cluster of real processes: blob IDs that start with `-`, error messages that say each
//! cause once, "epoch" printed once, storage periods checked before anything is stored,
//! directories, shell completions and the manual page, binary data kept off a terminal, and
//! output to a reader that left early.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::morsa_with;
use morsa_cluster::Cluster;
use serde_json::Value;

const NODES: usize = 4;
const SHARDS: u16 = 10;

fn cluster(dir: &Path) -> Cluster {
    common::local_cluster(dir, NODES, SHARDS)
}

fn morsa(cluster: &Cluster, args: &[&str]) -> Output {
    morsa_with(&cluster.client_config_path(), args)
}

fn json(cluster: &Cluster, args: &[&str]) -> Value {
    common::morsa_json_with(&cluster.client_config_path(), args)
}

fn text(cluster: &Cluster, args: &[&str]) -> String {
    let output = morsa(cluster, args);
    assert!(output.status.success(), "morsa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// A failure: exit `code`, nothing on stdout, and one line on stderr that says each of its
/// `: `-separated parts once.
fn failure(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    assert!(output.stdout.is_empty(), "a failure prints nothing on stdout: {output:?}");
    let line =
        stderr.strip_suffix('\n').unwrap_or_else(|| panic!("one line ending in a newline: {stderr:?}"));
    assert!(!line.contains('\n'), "one line: {stderr:?}");
    let parts: Vec<&str> = line.split(": ").collect();
    for (index, part) in parts.iter().enumerate() {
        assert!(!parts[index + 1..].contains(part), "{part:?} is said twice in {line:?}");
    }
    line.to_string()
}

/// Contents whose blob ID (at `SHARDS` shards) starts with `-`.
fn dashed_contents() -> (Vec<u8>, String) {
    let config = redstuff::EncodingConfig::new(SHARDS).unwrap();
    for attempt in 0..100_000u32 {
        let contents = format!("a blob whose ID starts with a dash, attempt {attempt}").into_bytes();
        let id = redstuff::compute_metadata(config, &contents).unwrap().blob_id().to_string();
        if id.starts_with('-') {
            return (contents, id);
        }
    }
    panic!("no blob ID starting with '-' in 100000 attempts (1 in 64 expected)")
}

#[test]
fn every_command_that_takes_a_blob_id_accepts_one_starting_with_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    let (contents, id) = dashed_contents();
    let path = dir.path().join("dashed");
    std::fs::write(&path, &contents).unwrap();
    let stored = json(&cluster, &["store", path.to_str().unwrap(), "--json"]);
    assert_eq!(stored[0]["blob_id"], id.as_str());

    let out = dir.path().join("back");
    let out = out.to_str().unwrap();
    json(&cluster, &["read", &id, "--out", out, "--json"]);
    assert_eq!(std::fs::read(out).unwrap(), contents);
    // Options before the ID, and a range after it.
    std::fs::remove_file(out).unwrap();
    json(&cluster, &["read", "--out", out, &id, "--range", "2-9", "--json"]);
    assert_eq!(std::fs::read(out).unwrap(), contents[2..9]);
    let status = json(&cluster, &["blob-status", &id, "--json"]);
    assert_eq!(status["status"], "certified");
    let extended = json(&cluster, &["extend", &id, "--epochs", "2", "--json"]);
    assert_eq!(extended["blob_id"], id.as_str());
    let deleted = json(&cluster, &["delete", &id, "--json"]);
    assert_eq!(deleted["deleted_objects"].as_array().unwrap().len(), 1);
}

#[test]
fn errors_say_each_cause_once_and_epochs_once_and_bad_periods_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());

    let missing = dir.path().join("nonexistent");
    let line = failure(&morsa(&cluster, &["store", missing.to_str().unwrap()]), 1);
    assert_eq!(line, format!("error: storing {}: No such file or directory (os error 2)", missing.display()));

    // A coordinator refusal: an account with no balance cannot pay.
    let config = dir.path().join("poor.toml");
    let original = std::fs::read_to_string(cluster.client_config_path()).unwrap();
    let poor_key = dir.path().join("poor.key");
    let rewritten: String = original
        .lines()
        .map(|line| match line.starts_with("account_key_file") {
            true => format!("account_key_file = {:?}\n", poor_key.to_str().unwrap()),
            false => format!("{line}\n"),
        })
        .collect();
    assert_ne!(rewritten, original, "the client configuration names its key file");
    std::fs::write(&config, rewritten).unwrap();
    let file = dir.path().join("small");
    std::fs::write(&file, b"a small file").unwrap();
    // The first use creates the key (and says so); the store after it fails on its own.
    assert!(morsa_with(&config, &["info"]).status.success());
    let line = failure(&morsa_with(&config, &["store", file.to_str().unwrap()]), 1);
    assert!(line.starts_with("error: storing "), "{line}");
    assert!(line.contains("coordinator"), "{line}");

    // Storage periods: zero is refused by the parser, too many by the system's limit, and
    // neither stores anything.
    let info = json(&cluster, &["info", "--json"]);
    let max = info["system"]["max_epochs_ahead"].as_u64().unwrap();
    let file_arg = file.to_str().unwrap();
    let zero = morsa(&cluster, &["store", file_arg, "--epochs", "0"]);
    assert_eq!(zero.status.code(), Some(2), "{zero:?}");
    assert!(String::from_utf8_lossy(&zero.stderr).contains("1.."), "{zero:?}");
    let too_many = (max + 1).to_string();
    let line = failure(&morsa(&cluster, &["store", file_arg, "--epochs", &too_many]), 2);
    assert!(line.contains(&format!("1 to {max} epochs")), "{line}");
    assert_eq!(json(&cluster, &["list-blobs", "--json"]).as_array().unwrap().len(), 0, "nothing was stored");

    // "epoch" is printed once wherever an epoch is.
    let stored = json(&cluster, &["store", file_arg, "--json"]);
    let id = stored[0]["blob_id"].as_str().unwrap().to_string();
    let line = failure(&morsa(&cluster, &["extend", &id, "--epochs", &max.to_string()]), 2);
    assert!(line.contains("out of range"), "{line}");
    let mut printed = String::new();
    for args in [
        vec!["info"],
        vec!["blob-status", &id],
        vec!["list-blobs"],
        vec!["extend", &id, "--epochs", "1"],
        vec!["health"],
        vec!["store", file_arg],
    ] {
        let output = text(&cluster, &args);
        assert!(output.contains("epoch "), "morsa {args:?} names an epoch: {output}");
        printed.push_str(&output);
    }
    assert!(!printed.to_lowercase().contains("epoch epoch"), "{printed}");
    // Every node's disk: free, size, and the room it keeps.
    let health = text(&cluster, &["health"]);
    let disks: Vec<&str> = health.lines().filter(|line| line.trim_start().starts_with("disk: ")).collect();
    assert_eq!(disks.len(), NODES, "{health}");
    assert!(disks.iter().all(|line| line.contains(" free of ") && line.ends_with(" kept free")), "{health}");
}

#[test]
fn directories_are_refused_with_a_hint_and_stored_file_by_file_with_recursive() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    let files = [("a.txt", 10), ("sub/b.bin", 70_000), ("sub/deeper/c", 1), ("z-empty", 0)];
    for (name, len) in files {
        std::fs::write(tree.join(name), morsa_cluster::sample::bytes(len, u64::try_from(len).unwrap()))
            .unwrap();
    }
    let tree_arg = tree.to_str().unwrap();

    let line = failure(&morsa(&cluster, &["store", tree_arg]), 2);
    assert!(line.contains("is a directory") && line.contains("--recursive"), "{line}");
    assert_eq!(json(&cluster, &["list-blobs", "--json"]).as_array().unwrap().len(), 0);

    let table = text(&cluster, &["store", "--recursive", tree_arg]);
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("BLOB ID"), "a header first: {table}");
    assert_eq!(rows.len(), files.len() + 1, "{table}");
    for ((name, _), row) in files.iter().zip(&rows[1..]) {
        assert!(row.ends_with(&tree.join(name).display().to_string()), "in name order: {row} for {name}");
        assert!(row.contains("stored"), "{row}");
    }
    let stored = json(&cluster, &["store", "-r", tree_arg, "--json"]);
    for ((name, _), entry) in files.iter().zip(stored.as_array().unwrap()) {
        assert_eq!(entry["already_stored"], true, "{entry}");
        let out = dir.path().join("back");
        json(
            &cluster,
            &["read", entry["blob_id"].as_str().unwrap(), "--out", out.to_str().unwrap(), "--json"],
        );
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(tree.join(name)).unwrap(), "{name}");
    }
}

#[test]
fn completions_and_the_manual_page_cover_every_command() {
    let morsa = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_morsa")).args(args).output().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let output = morsa(&["completions", shell]);
        assert!(output.status.success(), "{output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        for command in ["store", "read", "blob-status", "cluster", "completions"] {
            assert!(script.contains(command), "the {shell} script completes {command}");
        }
        if shell == "bash" {
            let path = std::env::temp_dir().join(format!("morsa-completion-{}.bash", std::process::id()));
            std::fs::write(&path, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            std::fs::remove_file(&path).unwrap();
            assert!(check.status.success(), "the bash script parses: {check:?}");
        }
    }
    let output = morsa(&["completions", "tcsh-not-a-shell"]);
    assert_eq!(output.status.code(), Some(2));

    let output = morsa(&["man"]);
    assert!(output.status.success(), "{output:?}");
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "roff: {}", &page[..page.len().min(80)]);
    for command in ["morsa\\-store", "morsa\\-read", "morsa\\-health", "\\-\\-epochs", "\\-\\-recursive"] {
        assert!(page.contains(command), "the manual page has {command}");
    }
}

#[test]
fn read_refuses_to_write_binary_to_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    let file = dir.path().join("binary");
    std::fs::write(&file, [0u8, 1, 2, 27, b'[', b'2', b'J']).unwrap();
    let stored = json(&cluster, &["store", file.to_str().unwrap(), "--json"]);
    let id = stored[0]["blob_id"].as_str().unwrap().to_string();

    // `script` gives the command a terminal as its stdout.
    let command = format!(
        "MORSA_CONFIG={} {} read {id}",
        cluster.client_config_path().display(),
        env!("CARGO_BIN_EXE_morsa")
    );
    let output = Command::new("script").args(["-qec", &command, "/dev/null"]).output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{screen}");
    assert!(screen.contains("--out FILE"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "no byte of the blob reached the terminal: {screen:?}");

    // Redirected, the same command writes the bytes.
    let output = morsa(&cluster, &["read", &id]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, std::fs::read(&file).unwrap());
}

/// `morsa … | head -1`: a reader that leaves early ends the command quietly with status 141
/// (what a shell reports for a tool killed by `SIGPIPE`), however the command writes, before
/// it starts or in the middle of a blob; standard output failing otherwise (a full disk) is an
/// error with a message, never silence.
#[test]
fn a_closed_stdout_ends_commands_quietly_and_a_failing_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path());
    let file = dir.path().join("data");
    // Far more than a pipe holds, so that a read is still writing when its reader leaves.
    std::fs::write(&file, morsa_cluster::sample::bytes(3 << 20, 3)).unwrap();
    let stored = json(&cluster, &["store", file.to_str().unwrap(), "--json"]);
    let id = stored[0]["blob_id"].as_str().unwrap().to_string();
    let commands: [&[&str]; 6] = [
        &["read", &id],
        &["blob-status", &id],
        &["list-blobs"],
        &["blob-id", file.to_str().unwrap()],
        &["completions", "bash"],
        &["man"],
    ];
    let run = |args: &[&str], stdout: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args(args)
            .env("MORSA_CONFIG", cluster.client_config_path())
            .stdout(stdout)
            .output()
            .unwrap()
    };
    for args in commands {
        // A pipe whose reader is gone before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = run(args, writer.into());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "morsa {args:?}: {stderr}");
        assert!(stderr.is_empty(), "morsa {args:?} says nothing of it: {stderr}");

        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let output = run(args, full.into());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "morsa {args:?}: {stderr}");
        assert!(
            stderr
                .trim_end()
                .ends_with("error: cannot write to standard output: No space left on device (os error 28)"),
            "morsa {args:?}: {stderr}"
        );
    }

    // A command's work is done whatever became of its output: a store whose reader is gone
    // still stores (and ends 141), it does not stop at its first line.
    let other = dir.path().join("other");
    std::fs::write(&other, morsa_cluster::sample::bytes(200_000, 4)).unwrap();
    let blobs = || json(&cluster, &["list-blobs", "--json"]).as_array().unwrap().len();
    let before = blobs();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = run(&["store", other.to_str().unwrap()], writer.into());
    assert_eq!(output.status.code(), Some(141), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(blobs(), before + 1, "the file was stored");

    // The reader takes the first bytes of a blob, then leaves.
    let mut reading = Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["read", &id])
        .env("MORSA_CONFIG", cluster.client_config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 1000];
    std::io::Read::read_exact(reading.stdout.as_mut().unwrap(), &mut head).unwrap();
    assert_eq!(&head[..], &std::fs::read(&file).unwrap()[..1000]);
    drop(reading.stdout.take());
    let output = reading.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
