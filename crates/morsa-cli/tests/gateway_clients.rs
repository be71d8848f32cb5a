//! The S3 gateway of `morsa cluster` driven by the clients people run: aws cli (multipart
//! upload, ranged get, head), boto3 (every checksum algorithm, wrong checksums refused,
//! paginated listings, small objects packed several to a blob), restic (init, backup, check
//! --read-data, restore, again with nodes holding f shards SIGKILLed), rclone (copy, check, sync
//! with deletions, cat of ranges), versions, copies and Object Lock (boto3 and aws cli, with the
//! retained blobs' renewal), and bad input (wrong secret, unknown key, another user's bucket;
//! malformed XML, truncated and overlong bodies on raw sockets). Each client call is bounded
//! with `timeout`; every process talks to 127.0.0.1 only.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "gateway/s3_cluster.rs"]
mod s3_cluster;

use std::path::Path;
use std::process::Command;

use s3_cluster::S3Cluster;

#[test]
fn aws_cli_uploads_in_parts_reads_ranges_and_bad_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, users) = S3Cluster::up(dir.path(), &["bob"]);
    // Parts of 5 MiB (S3's smallest), so 12 MiB go up as a three-part upload.
    s3.aws(&["configure", "set", "default.s3.multipart_threshold", "5MB"]);
    s3.aws(&["configure", "set", "default.s3.multipart_chunksize", "5MB"]);
    let original = morsa_cluster::sample::bytes(12 << 20, 11);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &original).unwrap();
    s3.aws(&["s3", "mb", "s3://backups"]);
    s3.aws(&["s3", "cp", file.to_str().unwrap(), "s3://backups/dir/big.bin", "--only-show-errors"]);
    let back = dir.path().join("back.bin");
    s3.aws(&["s3", "cp", "s3://backups/dir/big.bin", back.to_str().unwrap(), "--only-show-errors"]);
    assert!(std::fs::read(&back).unwrap() == original, "the object came back different");

    let head: serde_json::Value = serde_json::from_str(&s3.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "backups",
        "--key",
        "dir/big.bin",
    ]))
    .unwrap();
    assert_eq!(head["ContentLength"], original.len());
    let etag = head["ETag"].as_str().unwrap();
    assert!(etag.ends_with("-3\""), "a three-part upload's ETag: {etag}");

    // A range across a chunk boundary (1 MiB chunks) and a part boundary (5 MiB parts).
    let range_out = dir.path().join("range.bin");
    let (start, end) = ((5 << 20) - 1000, (5 << 20) + (1 << 20) + 1000);
    s3.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "backups",
        "--key",
        "dir/big.bin",
        "--range",
        &format!("bytes={start}-{}", end - 1),
        range_out.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&range_out).unwrap() == original[start..end], "the range came back different");

    // Bad credentials: clear S3 errors, nothing stored, and the gateway keeps serving.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "nope").unwrap();
    let wrong_secret = s3.run(
        "aws",
        &["s3", "cp", small.to_str().unwrap(), "s3://backups/wrong-secret"],
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret-0000000000000000000000000")],
    );
    assert!(!wrong_secret.status.success());
    assert!(
        String::from_utf8_lossy(&wrong_secret.stderr).contains("SignatureDoesNotMatch"),
        "{wrong_secret:?}"
    );
    let unknown = s3.run(
        "aws",
        &["s3", "cp", small.to_str().unwrap(), "s3://backups/unknown-key"],
        &[("AWS_ACCESS_KEY_ID", "MKNOSUCHKEY000000000")],
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("InvalidAccessKeyId"), "{unknown:?}");
    // Another user may not touch the bucket.
    let bob = &users[0];
    let bob_env = [
        ("AWS_ACCESS_KEY_ID", bob["access_key_id"].as_str().unwrap()),
        ("AWS_SECRET_ACCESS_KEY", bob["secret_access_key"].as_str().unwrap()),
    ];
    let denied = s3.run("aws", &["s3", "cp", small.to_str().unwrap(), "s3://backups/bob"], &bob_env);
    assert!(String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"), "{denied:?}");
    let listing = s3.aws(&["s3", "ls", "s3://backups", "--recursive"]);
    let keys: Vec<&str> = listing.lines().filter_map(|line| line.split_whitespace().last()).collect();
    assert_eq!(keys, ["dir/big.bin"], "only the good upload is stored");
    let bob_buckets = s3.ok("aws", &["s3", "ls"], &bob_env);
    assert!(!bob_buckets.contains("backups"), "bob sees only his buckets: {bob_buckets}");
}

#[test]
fn boto3_checksums_are_verified_and_listings_paginate() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = S3Cluster::up(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/boto3_checks.py");
    let out = s3.ok("python3", &[script.to_str().unwrap()], &[]);
    assert!(out.contains("boto3 checks passed"), "{out}");
}

#[test]
fn small_objects_put_together_are_packed_several_to_a_blob_and_read_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s3, _) = S3Cluster::up(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/pack_checks.py");
    let out = s3.ok("python3", &[script.to_str().unwrap()], &[]);
    assert!(out.contains("pack checks passed"), "{out}");
    // The gateway says what it packed: all 48 objects, some blobs holding several.
    let log_path = s3.cluster.state().gateway.unwrap().log;
    let log = without_colours(&std::fs::read_to_string(s3.cluster.dir().join(log_path)).unwrap());
    let packs: Vec<u64> = log
        .lines()
        .filter(|line| line.contains("small objects packed into one blob"))
        .filter_map(|line| line.split("pieces=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(packs.iter().sum::<u64>() >= 48, "every small object went into a pack: {packs:?}");
    assert!(packs.iter().any(|pieces| *pieces > 1), "some blob holds several objects: {packs:?}");
}

/// `text` without its ANSI colour sequences (`ESC [ ... m`).
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(next) = chars.next() {
        match next {
            '\u{1b}' => {
                for skipped in chars.by_ref() {
                    if skipped == 'm' {
                        break;
                    }
                }
            }
            other => plain.push(other),
        }
    }
    plain
}

#[test]
fn restic_backs_up_checks_and_restores_a_tree_byte_for_byte_also_with_nodes_holding_f_shards_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s3, _) = S3Cluster::up(dir.path(), &[]);
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("small/deeper")).unwrap();
    for index in 0..200u64 {
        let sub = if index % 3 == 0 { "small/deeper" } else { "small" };
        let len = usize::try_from(index * 97 % 5000).unwrap();
        std::fs::write(tree.join(sub).join(format!("f{index}")), morsa_cluster::sample::bytes(len, index))
            .unwrap();
    }
    std::fs::write(tree.join("large.bin"), morsa_cluster::sample::bytes(6 << 20, 99)).unwrap();
    let repository = format!("s3:{}/restic", s3.env["AWS_ENDPOINT_URL"]);
    let cache = dir.path().join("restic-cache");
    let env = [("RESTIC_PASSWORD", "test"), ("RESTIC_REPOSITORY", repository.as_str())];
    let cache_arg = format!("--cache-dir={}", cache.display());
    s3.ok("restic", &["init", &cache_arg], &env);
    s3.ok("restic", &["backup", "--quiet", &cache_arg, tree.to_str().unwrap()], &env);
    let check_and_restore = |s3: &S3Cluster, target: &Path, when: &str| {
        s3.ok("restic", &["check", "--read-data", &cache_arg], &env);
        s3.ok(
            "restic",
            &["restore", "latest", "--quiet", &cache_arg, "--target", target.to_str().unwrap()],
            &env,
        );
        let restored = target.join(tree.strip_prefix("/").unwrap());
        let diff = Command::new("diff").arg("-r").arg(&tree).arg(&restored).output().unwrap();
        assert!(
            diff.status.success(),
            "the tree restored {when} differs: {}",
            String::from_utf8_lossy(&diff.stdout)
        );
    };
    check_and_restore(&s3, &dir.path().join("restored"), "with every node up");

    // Nodes holding up to f shards crash: every pack is still read (and checked) from the
    // others, and restic's lock files are still stored.
    let down = nodes_holding_up_to_f_shards(&s3.cluster);
    for index in &down {
        s3.cluster.kill(*index).unwrap();
    }
    for index in &down {
        assert!(!s3.cluster.is_running(*index), "node {index} was killed");
    }
    check_and_restore(&s3, &dir.path().join("restored-degraded"), "with nodes holding f shards killed");
}

/// Nodes whose shards add up to at most f of the cluster's (at least one node).
fn nodes_holding_up_to_f_shards(cluster: &morsa_cluster::Cluster) -> Vec<usize> {
    let shards: usize = cluster.nodes().iter().map(|node| node.shards.len()).sum();
    let f = redstuff::EncodingConfig::new(u16::try_from(shards).unwrap()).unwrap().f();
    let mut chosen = Vec::new();
    let mut weight = 0;
    for node in cluster.nodes() {
        if weight + node.shards.len() <= f {
            weight += node.shards.len();
            chosen.push(node.index);
        }
    }
    assert!(!chosen.is_empty(), "some node holds at most f = {f} shards");
    chosen
}

/// rclone's configuration for the cluster's gateway: a remote `morsa` given by environment
/// variables, and an empty configuration file of the test's own (never the user's).
fn rclone_env(s3: &S3Cluster) -> Vec<(String, String)> {
    let config = s3.dir.join("rclone.conf");
    std::fs::write(&config, "").unwrap();
    [
        ("RCLONE_CONFIG", config.display().to_string()),
        ("RCLONE_CONFIG_MORSA_TYPE", "s3".into()),
        ("RCLONE_CONFIG_MORSA_PROVIDER", "Other".into()),
        ("RCLONE_CONFIG_MORSA_ACCESS_KEY_ID", s3.env["AWS_ACCESS_KEY_ID"].clone()),
        ("RCLONE_CONFIG_MORSA_SECRET_ACCESS_KEY", s3.env["AWS_SECRET_ACCESS_KEY"].clone()),
        ("RCLONE_CONFIG_MORSA_ENDPOINT", s3.url()),
        ("RCLONE_CONFIG_MORSA_REGION", s3.env["AWS_REGION"].clone()),
        ("RCLONE_CONFIG_MORSA_FORCE_PATH_STYLE", "true".into()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The files under `root`, as sorted relative paths.
fn files_under(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            match path.is_dir() {
                true => pending.push(path),
                false => files.push(path.strip_prefix(root).unwrap().display().to_string()),
            }
        }
    }
    files.sort();
    files
}

#[test]
fn rclone_copies_checks_syncs_deletions_and_cats_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = S3Cluster::up(dir.path(), &[]);
    let env = rclone_env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let rclone = |args: &[&str]| s3.run("rclone", args, &env);
    let rclone_ok = |args: &[&str]| s3.ok("rclone", args, &env);

    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("docs/old")).unwrap();
    for index in 0..30u64 {
        let sub = if index % 2 == 0 { "docs" } else { "docs/old" };
        let len = usize::try_from(index * 131 % 3000).unwrap();
        std::fs::write(
            tree.join(sub).join(format!("f{index}.txt")),
            morsa_cluster::sample::bytes(len, index),
        )
        .unwrap();
    }
    // Larger than a chunk (1 MiB), so it spans three chunk blobs.
    let large = morsa_cluster::sample::bytes((2 << 20) + 12345, 77);
    std::fs::write(tree.join("large.bin"), &large).unwrap();
    let tree_arg = tree.to_str().unwrap();

    rclone_ok(&["copy", tree_arg, "morsa:rclone/tree"]);
    rclone_ok(&["check", tree_arg, "morsa:rclone/tree"]);
    let listed = |remote: &str| {
        let mut names: Vec<String> =
            rclone_ok(&["lsf", "-R", "--files-only", remote]).lines().map(String::from).collect();
        names.sort();
        names
    };
    assert_eq!(listed("morsa:rclone/tree"), files_under(&tree));

    // A local change that is not synced: check must notice it.
    std::fs::write(tree.join("docs/f0.txt"), "changed, and longer than before").unwrap();
    std::fs::remove_file(tree.join("docs/old/f1.txt")).unwrap();
    std::fs::remove_file(tree.join("docs/f2.txt")).unwrap();
    std::fs::write(tree.join("docs/new.txt"), "a new file").unwrap();
    let stale = rclone(&["check", tree_arg, "morsa:rclone/tree"]);
    assert!(!stale.status.success(), "check passed on a tree that differs: {stale:?}");

    // Sync uploads the change and the new file and deletes what is gone locally.
    rclone_ok(&["sync", tree_arg, "morsa:rclone/tree"]);
    rclone_ok(&["check", tree_arg, "morsa:rclone/tree"]);
    let remote = listed("morsa:rclone/tree");
    assert_eq!(remote, files_under(&tree));
    assert!(!remote.iter().any(|name| name == "docs/old/f1.txt" || name == "docs/f2.txt"), "{remote:?}");
    let listing = s3.aws(&["s3", "ls", "s3://rclone/tree/docs/"]);
    assert!(!listing.contains("f2.txt") && listing.contains("new.txt"), "aws sees the sync too: {listing}");

    // cat with --offset/--count: ranges of the large file, across chunk boundaries.
    for (offset, count) in
        [(0usize, 10usize), ((1 << 20) - 7, 100), ((2 << 20) - 5, 12345), (large.len() - 3, 3)]
    {
        let output = rclone(&[
            "cat",
            "--offset",
            &offset.to_string(),
            "--count",
            &count.to_string(),
            "morsa:rclone/tree/large.bin",
        ]);
        assert!(output.status.success(), "cat {offset}+{count}: {output:?}");
        assert!(output.stdout == large[offset..offset + count], "cat {offset}+{count} came back different");
    }
    let whole = rclone(&["cat", "morsa:rclone/tree/large.bin"]);
    assert!(whole.status.success() && whole.stdout == large, "the whole file came back different");
}

#[test]
fn malformed_xml_truncated_and_overlong_bodies_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = S3Cluster::up(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/bad_input.py");
    let out = s3.ok("python3", &[script.to_str().unwrap()], &[]);
    assert!(out.contains("bad input checks passed"), "{out}");
}

/// The account's blobs as `morsa list-blobs --json` prints them: (deletable, end epoch) of each.
fn account_blobs(s3: &S3Cluster) -> Vec<(bool, u64)> {
    let list = common::morsa_json_with(&s3.cluster.client_config_path(), &["list-blobs", "--json"]);
    list.as_array()
        .unwrap()
        .iter()
        .map(|blob| (blob["deletable"].as_bool().unwrap(), blob["end_epoch"].as_u64().unwrap()))
        .collect()
}

/// The blob IDs of the account's live blob objects.
fn account_blob_ids(s3: &S3Cluster) -> std::collections::BTreeSet<String> {
    let list = common::morsa_json_with(&s3.cluster.client_config_path(), &["list-blobs", "--json"]);
    list.as_array().unwrap().iter().map(|blob| blob["blob_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn versions_copies_and_object_lock_work_for_boto3_and_aws_cli_and_locked_blobs_are_renewed() {
    let dir = tempfile::tempdir().unwrap();
    // Chunks paid for one epoch, and retention passes every second: a retained object's blobs
    // must be extended to outlive the others.
    let (s3, _) = S3Cluster::up_with(dir.path(), &[], "epochs = 1\nretention_renew_interval = 1\n");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/boto3_versions.py");
    let out = s3.ok("python3", &[script.to_str().unwrap()], &[]);
    assert!(out.contains("boto3 version checks passed"), "{out}");

    // aws cli: a COMPLIANCE object's deletes, overwrites of its version and shortened
    // retention are refused with AccessDenied, bypass or not.
    s3.aws(&["s3api", "create-bucket", "--bucket", "vault", "--object-lock-enabled-for-bucket"]);
    let file = dir.path().join("record.txt");
    std::fs::write(&file, "keep me").unwrap();
    // aws cli takes timestamps as Unix seconds.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let until = (now + 7200).to_string();
    let put: serde_json::Value = serde_json::from_str(&s3.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        "vault",
        "--key",
        "record.txt",
        "--body",
        file.to_str().unwrap(),
        "--object-lock-mode",
        "COMPLIANCE",
        "--object-lock-retain-until-date",
        &until,
    ]))
    .unwrap();
    let version = put["VersionId"].as_str().unwrap();
    let refused = |args: &[&str]| {
        let output = s3.run("aws", args, &[]);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(stderr.contains("AccessDenied"), "{args:?}: {stderr}");
    };
    let delete =
        ["s3api", "delete-object", "--bucket", "vault", "--key", "record.txt", "--version-id", version];
    refused(&delete);
    refused(&[&delete[..], &["--bypass-governance-retention"]].concat());
    let shorter = now + 3600;
    refused(&[
        "s3api",
        "put-object-retention",
        "--bucket",
        "vault",
        "--key",
        "record.txt",
        "--version-id",
        version,
        "--retention",
        &format!("Mode=COMPLIANCE,RetainUntilDate={shorter}"),
        "--bypass-governance-retention",
    ]);
    let retention: serde_json::Value = serde_json::from_str(&s3.aws(&[
        "s3api",
        "get-object-retention",
        "--bucket",
        "vault",
        "--key",
        "record.txt",
        "--version-id",
        version,
    ]))
    .unwrap();
    assert_eq!(retention["Retention"]["Mode"], "COMPLIANCE");
    // Deleting without a version adds a delete marker; the locked version still reads.
    s3.aws(&["s3", "rm", "s3://vault/record.txt"]);
    let back = dir.path().join("back.txt");
    s3.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "vault",
        "--key",
        "record.txt",
        "--version-id",
        version,
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "keep me");
    // A legal hold refuses deletes too, until it is lifted.
    let held: serde_json::Value = serde_json::from_str(&s3.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        "vault",
        "--key",
        "held.txt",
        "--body",
        file.to_str().unwrap(),
        "--object-lock-legal-hold-status",
        "ON",
    ]))
    .unwrap();
    let held_version = held["VersionId"].as_str().unwrap();
    let delete_held =
        ["s3api", "delete-object", "--bucket", "vault", "--key", "held.txt", "--version-id", held_version];
    refused(&delete_held);
    s3.aws(&[
        "s3api",
        "put-object-legal-hold",
        "--bucket",
        "vault",
        "--key",
        "held.txt",
        "--legal-hold",
        "Status=OFF",
    ]);
    s3.aws(&delete_held);

    // The COMPLIANCE objects' chunks (this one's, and boto3's multipart one's part) are
    // permanent blobs, and the retention pass pays for them past the one epoch a blob gets.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let blobs = account_blobs(&s3);
        // Blobs of objects without retention end one epoch after their store (GOVERNANCE
        // ones are extended too, so the earliest end is the one-epoch one).
        let others = blobs.iter().filter(|(deletable, _)| *deletable).map(|(_, end)| *end).min().unwrap();
        let permanent: Vec<u64> =
            blobs.iter().filter(|(deletable, _)| !deletable).map(|(_, end)| *end).collect();
        assert!(!permanent.is_empty(), "the COMPLIANCE object's chunk is not permanent: {blobs:?}");
        if permanent.iter().all(|end| *end > others) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "retained blobs were not extended: {blobs:?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn multipart_uploads_are_listed_and_parts_copied_for_boto3_and_aws_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = S3Cluster::up(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/boto3_multipart.py");
    let out = s3.ok("python3", &[script.to_str().unwrap()], &[]);
    assert!(out.contains("boto3 multipart checks passed"), "{out}");

    // aws cli: a whole object stored by one PUT, copied as a part, names the source's chunk
    // blobs: no blob is stored for the part, and the object reads back.
    // aws cli prints nothing for an answer without fields.
    let json = |text: String| -> serde_json::Value {
        if text.trim().is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap() }
    };
    let body = morsa_cluster::sample::bytes((5 << 20) + 77, 0x2545_f491_4f6c_dd1d);
    let file = dir.path().join("source.bin");
    std::fs::write(&file, &body).unwrap();
    s3.aws(&["s3", "mb", "s3://shared"]);
    let put = ["s3api", "put-object", "--bucket", "shared", "--key", "source.bin", "--body"];
    s3.aws(&[&put[..], &[file.to_str().unwrap()]].concat());
    let source_etag =
        json(s3.aws(&["s3api", "head-object", "--bucket", "shared", "--key", "source.bin"]))["ETag"].clone();
    let create = ["s3api", "create-multipart-upload", "--bucket", "shared", "--key", "copy.bin"];
    let id = json(s3.aws(&create))["UploadId"].as_str().unwrap().to_string();
    let listed = json(s3.aws(&["s3api", "list-multipart-uploads", "--bucket", "shared"]));
    assert_eq!(listed["Uploads"][0]["UploadId"], id.as_str(), "{listed}");
    assert_eq!(listed["Uploads"][0]["Key"], "copy.bin", "{listed}");
    // Compared by ID: blobs the script's objects no longer name may be deleted meanwhile.
    let blobs_before = account_blob_ids(&s3);
    let copied = json(s3.aws(&[
        "s3api",
        "upload-part-copy",
        "--bucket",
        "shared",
        "--key",
        "copy.bin",
        "--upload-id",
        &id,
        "--part-number",
        "1",
        "--copy-source",
        "shared/source.bin",
    ]));
    let etag = copied["CopyPartResult"]["ETag"].clone();
    assert_eq!(etag, source_etag, "a copied whole object's part ETag is its MD5: {copied}");
    assert!(account_blob_ids(&s3).is_subset(&blobs_before), "the part names the source's blobs");
    let parts = serde_json::json!({"Parts": [{"PartNumber": 1, "ETag": etag}]}).to_string();
    s3.aws(&[
        "s3api",
        "complete-multipart-upload",
        "--bucket",
        "shared",
        "--key",
        "copy.bin",
        "--upload-id",
        &id,
        "--multipart-upload",
        &parts,
    ]);
    let back = dir.path().join("back.bin");
    s3.aws(&["s3api", "get-object", "--bucket", "shared", "--key", "copy.bin", back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == body, "the copy reads back byte-identical");
    let listed = json(s3.aws(&["s3api", "list-multipart-uploads", "--bucket", "shared"]));
    let uploads = listed.get("Uploads").and_then(serde_json::Value::as_array).map_or(0, Vec::len);
    assert_eq!(uploads, 0, "the completed upload is no longer listed: {listed}");
}

#[test]
fn blobs_of_objects_without_retention_are_renewed_while_named_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    // Chunks paid for one epoch, passes every second, no packing (one object, own blobs).
    let extra = "epochs = 1\nretention_renew_interval = 1\npack_threshold = 0\nsnapshot_interval = 0\n";
    let (s3, _) = S3Cluster::up_with(dir.path(), &[], extra);
    // A blob of the gateway's account that no object names, stored for one epoch too.
    let other = dir.path().join("other.bin");
    std::fs::write(&other, vec![9u8; 1000]).unwrap();
    let config = s3.cluster.client_config_path();
    common::morsa_json_with(&config, &["store", other.to_str().unwrap(), "--epochs", "1", "--json"]);
    s3.aws(&["s3", "mb", "s3://plain"]);
    let kept = dir.path().join("kept.bin");
    std::fs::write(&kept, vec![7u8; 2 * s3_cluster::CHUNK]).unwrap();
    s3.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        "plain",
        "--key",
        "kept.bin",
        "--body",
        kept.to_str().unwrap(),
    ]);
    // The object's two chunk blobs are paid one epoch past what they were stored for; the
    // blob no object names is not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let mut ends: Vec<u64> = account_blobs(&s3).into_iter().map(|(_, end)| end).collect();
        ends.sort_unstable();
        if ends.len() == 3 && ends[0] + 1 == ends[1] && ends[1] == ends[2] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the named object's blobs were not renewed: {ends:?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
