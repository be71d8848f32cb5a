//! Chunk blobs nothing names any more are deleted by the gateway (overwritten and deleted
//! objects, aborted uploads), while a PUT in flight keeps every blob it stores: driven with
//! aws cli against `morsa cluster`'s gateway, the account's blobs read with `morsa list-blobs`.
//! Each client call is bounded with `timeout`; every process talks to 127.0.0.1 only.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "gateway/s3_cluster.rs"]
mod s3_cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use morsa_cluster::sample;
use s3_cluster::S3Cluster;

const DEADLINE: Duration = Duration::from_secs(120);

/// The blob IDs of the account's live blob objects.
fn account_blob_ids(s3: &S3Cluster) -> BTreeSet<String> {
    let list = common::morsa_json_with(&s3.cluster.client_config_path(), &["list-blobs", "--json"]);
    list.as_array().unwrap().iter().map(|blob| blob["blob_id"].as_str().unwrap().to_string()).collect()
}

/// The sealed size of each of the account's live blobs, by blob ID.
fn account_blob_sizes(s3: &S3Cluster) -> BTreeMap<String, u64> {
    let list = common::morsa_json_with(&s3.cluster.client_config_path(), &["list-blobs", "--json"]);
    let blobs = list.as_array().unwrap().iter();
    blobs
        .map(|blob| (blob["blob_id"].as_str().unwrap().to_string(), blob["size"].as_u64().unwrap()))
        .collect()
}

/// PUTs `body` as `bucket/key` with one `put-object`; answers the blobs it added.
fn put(s3: &S3Cluster, bucket: &str, key: &str, body: &[u8]) -> BTreeSet<String> {
    let before = account_blob_ids(s3);
    let file = s3.dir.join(format!("{key}.body"));
    std::fs::write(&file, body).unwrap();
    s3.aws(&["s3api", "put-object", "--bucket", bucket, "--key", key, "--body", file.to_str().unwrap()]);
    account_blob_ids(s3).difference(&before).cloned().collect()
}

/// Waits until none of `blobs` is a live blob of the account.
fn wait_deleted(s3: &S3Cluster, blobs: &BTreeSet<String>, what: &str) {
    let started = Instant::now();
    while !account_blob_ids(s3).is_disjoint(blobs) {
        assert!(started.elapsed() < DEADLINE, "the blobs of {what} were never deleted: {blobs:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// GETs `bucket/key` and compares it with `body`.
fn reads_back(s3: &S3Cluster, bucket: &str, key: &str, body: &[u8]) {
    let back = s3.dir.join(format!("{key}.back"));
    s3.aws(&["s3api", "get-object", "--bucket", bucket, "--key", key, back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == body, "{bucket}/{key} reads back byte-identical");
}

#[test]
fn blobs_nothing_names_are_deleted_and_a_put_in_flight_keeps_its_blobs() {
    let dir = tempfile::tempdir().unwrap();
    // No packing (each object has blobs of its own), no snapshot blob beside the chunks.
    let (s3, _) = S3Cluster::up_with(dir.path(), &[], "pack_threshold = 0\nsnapshot_interval = 0\n");
    s3.aws(&["s3", "mb", "s3://reclaim"]);

    // Overwritten: the first version's two chunk blobs go, the second's stay.
    let first = put(&s3, "reclaim", "doc.bin", &sample::bytes(2 * s3_cluster::CHUNK, 1));
    assert_eq!(first.len(), 2, "two chunks, two blobs: {first:?}");
    let second_body = sample::bytes(2 * s3_cluster::CHUNK + 5, 2);
    let second = put(&s3, "reclaim", "doc.bin", &second_body);
    wait_deleted(&s3, &first, "the overwritten object");
    assert!(second.is_subset(&account_blob_ids(&s3)), "the current object's blobs are kept");
    reads_back(&s3, "reclaim", "doc.bin", &second_body);

    // Deleted: its blob goes.
    let gone = put(&s3, "reclaim", "gone.bin", &sample::bytes(1000, 3));
    s3.aws(&["s3api", "delete-object", "--bucket", "reclaim", "--key", "gone.bin"]);
    wait_deleted(&s3, &gone, "the deleted object");

    // Aborted: the uploaded part's blob goes.
    let create = ["s3api", "create-multipart-upload", "--bucket", "reclaim", "--key", "part.bin"];
    let created: serde_json::Value = serde_json::from_str(&s3.aws(&create)).unwrap();
    let id = created["UploadId"].as_str().unwrap().to_string();
    let before = account_blob_ids(&s3);
    let part_file = dir.path().join("part.body");
    std::fs::write(&part_file, sample::bytes(6 << 20, 4)).unwrap();
    let upload = [
        "s3api",
        "upload-part",
        "--bucket",
        "reclaim",
        "--key",
        "part.bin",
        "--upload-id",
        &id,
        "--part-number",
        "1",
        "--body",
        part_file.to_str().unwrap(),
    ];
    s3.aws(&upload);
    let part: BTreeSet<String> = account_blob_ids(&s3).difference(&before).cloned().collect();
    assert!(!part.is_empty(), "the part stored blobs");
    s3.aws(&[
        "s3api",
        "abort-multipart-upload",
        "--bucket",
        "reclaim",
        "--key",
        "part.bin",
        "--upload-id",
        &id,
    ]);
    wait_deleted(&s3, &part, "the aborted upload");

    // A large PUT in flight while objects are put and deleted beside it (each a pass): every
    // blob it stores survives, and it reads back.
    let large_body = sample::bytes(8 * s3_cluster::CHUNK + 11, 5);
    let large_file = dir.path().join("large.body");
    std::fs::write(&large_file, &large_body).unwrap();
    std::thread::scope(|scope| {
        let large = scope.spawn(|| {
            let args = [
                "s3api",
                "put-object",
                "--bucket",
                "reclaim",
                "--key",
                "large.bin",
                "--body",
                large_file.to_str().unwrap(),
            ];
            s3.aws(&args);
        });
        let mut round = 0;
        while !large.is_finished() {
            round += 1;
            // Only the small blob is churn.bin's: the large PUT stores chunks meanwhile.
            let added = put(&s3, "reclaim", "churn.bin", &sample::bytes(3000, 100 + round));
            let sizes = account_blob_sizes(&s3);
            let churn: BTreeSet<String> = added
                .into_iter()
                .filter(|blob| sizes.get(blob).is_some_and(|size| *size < 100_000))
                .collect();
            assert_eq!(churn.len(), 1, "churn.bin is one blob");
            s3.aws(&["s3api", "delete-object", "--bucket", "reclaim", "--key", "churn.bin"]);
            wait_deleted(&s3, &churn, "a deleted object beside the large PUT");
        }
        large.join().unwrap();
    });
    reads_back(&s3, "reclaim", "large.bin", &large_body);
    reads_back(&s3, "reclaim", "doc.bin", &second_body);
    // Nothing the namespace names was deleted: doc.bin's and large.bin's blobs, and no more.
    let listed = s3.aws(&["s3api", "list-objects-v2", "--bucket", "reclaim"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let keys: Vec<&str> =
        listed["Contents"].as_array().unwrap().iter().map(|o| o["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["doc.bin", "large.bin"]);
    let started = Instant::now();
    // 2 chunks of doc.bin, 8 chunks and a larger last one of large.bin.
    while account_blob_ids(&s3).len() != 2 + 8 {
        assert!(started.elapsed() < DEADLINE, "blobs left: {:?}", account_blob_ids(&s3));
        std::thread::sleep(Duration::from_millis(200));
    }
}
