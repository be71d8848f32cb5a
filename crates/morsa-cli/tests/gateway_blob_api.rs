//! The gateway's Walrus-style HTTP API (`PUT /v1/blobs`, `GET /v1/blobs/BLOB_ID` with ranges)
//! and its `/metrics`, driven over real HTTP against `morsa cluster`'s gateway: stores answer
//! Walrus's JSON, blobs and ranges read back byte for byte, bad input gets clear JSON errors,
//! a bearer token guards stores, and the metrics count what was done. Every request is bounded
//! by a client timeout; every process talks to 127.0.0.1 only.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "gateway/s3_cluster.rs"]
mod s3_cluster;

use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use s3_cluster::{CHUNK, S3Cluster};

const TOKEN: &str = "test-token-7f3a";

fn http() -> Client {
    Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
}

/// The JSON error's stable reason, checking the envelope says `status` too.
fn reason(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], status, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "{body}");
    body["error"]["details"][0]["reason"].as_str().unwrap().to_string()
}

/// The blob ID of `bytes`, derived by `morsa blob-id` on the cluster's 12 shards.
fn blob_id_of(dir: &Path, bytes: &[u8]) -> String {
    let path = dir.join("blob-id-input");
    std::fs::write(&path, bytes).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["blob-id", path.to_str().unwrap(), "--n-shards", "12", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["blob_id"].as_str().unwrap().to_string()
}

/// The value of the sample `name{labels}` in a Prometheus scrape (0 when absent).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn blobs_store_and_read_back_in_ranges_with_clear_errors_and_metrics_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, _) = S3Cluster::up_with(dir.path(), &[], &format!("[blob_api]\ntoken = \"{TOKEN}\"\n"));
    let (http, url) = (http(), s3.url());
    let blobs = format!("{url}/v1/blobs");
    let scrape = || http.get(format!("{url}/metrics")).send().unwrap().text().unwrap();
    let before = scrape();

    // Store: Walrus's newlyCreated answer, with the blob ID `morsa blob-id` derives.
    let data = morsa_cluster::sample::bytes(300_000, 5);
    let store = |query: &str, body: Vec<u8>, token: Option<&str>| {
        let request = http.put(format!("{blobs}{query}")).body(body);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .unwrap()
    };
    let created = store("?epochs=2&permanent=true", data.clone(), Some(TOKEN));
    assert_eq!(created.status().as_u16(), 200);
    let created: serde_json::Value = created.json().unwrap();
    let object = &created["newlyCreated"]["blobObject"];
    let blob_id = blob_id_of(dir.path(), &data);
    assert_eq!(object["blobId"], blob_id.as_str(), "{created}");
    assert_eq!(object["size"], data.len(), "{created}");
    assert_eq!(object["deletable"], false, "{created}");
    let storage = &object["storage"];
    assert_eq!(
        storage["endEpoch"].as_u64().unwrap() - storage["startEpoch"].as_u64().unwrap(),
        2,
        "{created}"
    );
    // The same bytes again: already certified, nothing uploaded.
    let again: serde_json::Value = store("?epochs=1", data.clone(), Some(TOKEN)).json().unwrap();
    assert_eq!(again["alreadyCertified"]["blobId"], blob_id.as_str(), "{again}");
    assert_eq!(again["alreadyCertified"]["endEpoch"], storage["endEpoch"], "{again}");
    // The object is the coordinator's: `morsa blob-status` sees it certified and permanent.
    let status =
        common::morsa_json_with(&s3.cluster.client_config_path(), &["blob-status", &blob_id, "--json"]);
    assert_eq!(status["permanent"], true, "{status}");

    // Read whole and in ranges.
    let read = |id: &str, range: Option<&str>| {
        let request = http.get(format!("{blobs}/{id}"));
        match range {
            Some(range) => request.header("Range", range),
            None => request,
        }
        .send()
        .unwrap()
    };
    let whole = read(&blob_id, None);
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.headers()["content-length"], data.len().to_string().as_str());
    assert!(whole.bytes().unwrap() == data, "the blob came back different");
    let len = data.len();
    for (header, start, end) in [
        ("bytes=0-0", 0, 1),
        ("bytes=1000-99999", 1000, 100_000),
        ("bytes=299000-", 299_000, len),
        ("bytes=-123", len - 123, len),
    ] {
        let part = read(&blob_id, Some(header));
        assert_eq!(part.status().as_u16(), 206, "{header}");
        let content_range = format!("bytes {start}-{}/{len}", end - 1);
        assert_eq!(part.headers()["content-range"], content_range.as_str(), "{header}");
        assert!(part.bytes().unwrap() == data[start..end], "{header} came back different");
    }
    let head = http.head(format!("{blobs}/{blob_id}")).send().unwrap();
    assert_eq!((head.status().as_u16(), head.headers()["content-length"].to_str().unwrap()), (200, "300000"));

    // A blob larger than the gateway's chunk (stored by the CLI) streams out in pieces.
    let large = morsa_cluster::sample::bytes(2 * CHUNK + 4321, 6);
    let large_path = dir.path().join("large.bin");
    std::fs::write(&large_path, &large).unwrap();
    let stored = common::morsa_json_with(
        &s3.cluster.client_config_path(),
        &["store", large_path.to_str().unwrap(), "--json"],
    );
    let large_id = blob_id_of(dir.path(), &large);
    assert!(stored.to_string().contains(&large_id), "stored as one blob: {stored}");
    assert!(read(&large_id, None).bytes().unwrap() == large, "the large blob came back different");
    let across = read(&large_id, Some(&format!("bytes={}-{}", CHUNK - 10, 2 * CHUNK + 10)));
    assert!(
        across.bytes().unwrap() == large[CHUNK - 10..2 * CHUNK + 11],
        "a range across pieces came back different"
    );

    // Bad input: clear JSON errors.
    assert_eq!(reason(read(&blob_id, Some(&format!("bytes={len}-"))), 416), "RANGE_NOT_SATISFIABLE");
    let unsatisfiable = read(&blob_id, Some("bytes=400000-400010"));
    assert_eq!(unsatisfiable.headers()["content-range"], format!("bytes */{len}").as_str());
    assert_eq!(reason(read(&blob_id, Some("bytes=9-2")), 416), "RANGE_NOT_SATISFIABLE");
    assert_eq!(reason(read("not-a-blob-id", None), 400), "INVALID_BLOB_ID");
    let never_stored = blob_id_of(dir.path(), b"bytes nobody stored");
    assert_eq!(reason(read(&never_stored, None), 404), "BLOB_NOT_FOUND");
    assert_eq!(reason(store("", vec![7; CHUNK + 1], Some(TOKEN)), 413), "BLOB_TOO_LARGE");
    assert_eq!(reason(store("?epochs=many", b"x".to_vec(), Some(TOKEN)), 400), "INVALID_PARAMETER");
    assert_eq!(reason(store("?send_object_to=0x1", b"x".to_vec(), Some(TOKEN)), 400), "INVALID_PARAMETER");
    assert_eq!(reason(store("", b"no token".to_vec(), None), 401), "BAD_TOKEN");
    assert_eq!(reason(store("", b"bad token".to_vec(), Some("guess")), 401), "BAD_TOKEN");
    assert_eq!(reason(http.post(&blobs).body("x").send().unwrap(), 405), "METHOD_NOT_ALLOWED");
    assert_eq!(reason(http.get(format!("{url}/v1/other")).send().unwrap(), 404), "NO_ROUTE");
    // Nothing refused was stored.
    for refused in [b"no token".as_slice(), b"bad token", b"x"] {
        let id = blob_id_of(dir.path(), refused);
        assert_eq!(reason(read(&id, None), 404), "BLOB_NOT_FOUND");
    }

    // S3 on the same port, then the metrics count both APIs. A bucket may be named `metrics`:
    // signed requests on `/metrics` are S3, only an unsigned GET is the metrics page.
    s3.aws(&["s3", "mb", "s3://metrics"]);
    let object_path = dir.path().join("object.bin");
    std::fs::write(&object_path, morsa_cluster::sample::bytes(200_000, 8)).unwrap();
    s3.aws(&["s3", "cp", object_path.to_str().unwrap(), "s3://metrics/object.bin", "--only-show-errors"]);
    let back = dir.path().join("object.back");
    s3.aws(&["s3", "cp", "s3://metrics/object.bin", back.to_str().unwrap(), "--only-show-errors"]);
    assert!(
        std::fs::read(&back).unwrap() == std::fs::read(&object_path).unwrap(),
        "the object came back different"
    );
    assert!(s3.aws(&["s3", "ls", "s3://metrics/"]).contains("object.bin"), "the bucket lists through S3");
    let after = scrape();
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(
        moved("morsa_gateway_requests_total{api=\"blob\",operation=\"StoreBlob\",status=\"200\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(
        moved("morsa_gateway_requests_total{api=\"blob\",operation=\"ReadBlob\",status=\"206\"}"),
        5.0,
        "{after}"
    );
    assert_eq!(
        moved("morsa_gateway_requests_total{api=\"blob\",operation=\"ReadBlob\",status=\"416\"}"),
        3.0,
        "{after}"
    );
    assert_eq!(
        moved("morsa_gateway_requests_total{api=\"s3\",operation=\"PutObject\",status=\"200\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved("morsa_gateway_requests_total{api=\"s3\",operation=\"GetObject\",status=\"200\"}"),
        1.0,
        "{after}"
    );
    assert!(
        moved("morsa_gateway_received_bytes_total{api=\"s3\",operation=\"PutObject\"}") >= 200_000.0,
        "{after}"
    );
    assert!(
        moved("morsa_gateway_received_bytes_total{api=\"blob\",operation=\"StoreBlob\"}") >= 600_000.0,
        "{after}"
    );
    assert!(
        moved("morsa_gateway_sent_bytes_total{api=\"s3\",operation=\"GetObject\"}") >= 200_000.0,
        "{after}"
    );
    let sent_blobs = morsa_core::convert::lossy_f64(u64::try_from(data.len() + large.len()).unwrap());
    assert!(
        moved("morsa_gateway_sent_bytes_total{api=\"blob\",operation=\"ReadBlob\"}") >= sent_blobs,
        "{after}"
    );
    // Every successful read had a first byte; whole ones a throughput.
    assert_eq!(
        moved("morsa_gateway_time_to_first_byte_seconds_count{operation=\"ReadBlob\"}"),
        7.0,
        "{after}"
    );
    assert_eq!(
        moved("morsa_gateway_time_to_first_byte_seconds_count{operation=\"GetObject\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved("morsa_gateway_restore_throughput_bytes_per_second_count{operation=\"ReadBlob\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(
        moved("morsa_gateway_restore_throughput_bytes_per_second_count{operation=\"GetObject\"}"),
        1.0,
        "{after}"
    );
    assert!(after.contains("# TYPE morsa_gateway_time_to_first_byte_seconds histogram"), "{after}");
    // Every metric the gateway exports is in docs/METRICS.md, with its type.
    let wrong = common::metrics_doc::mismatches(
        &common::metrics_doc::exported(&after),
        &common::metrics_doc::documented(),
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
