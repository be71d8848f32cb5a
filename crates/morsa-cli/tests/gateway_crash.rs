//! The S3 gateway's crashes and lost disks, with real processes: SIGKILLed in the middle of a
//! PUT's body and of a multipart part's body (the kill comes once the gateway has certified
//! chunks of the unfinished body), it restarts with nothing half-written visible and every
//! completed object intact; its data directory deleted, `morsa gateway restore-namespace`
//! rebuilds it from the namespace snapshot stored on Morsa (taken at the interval, then at a
//! clean shutdown). A clean stop first lets the uploads of stored blobs to a slow node end.
//! Objects stored in plaintext before the gateway encrypted keep reading after,
//! and a gateway that should encrypt and has no keyring refuses to start. Clients: aws cli, and a raw HTTP client on presigned URLs (boto3 signs)
//! that sends part of a body and holds the connection open. Every process runs on 127.0.0.1
//! and is bounded in time.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use morsa_cluster::Cluster;

/// Chunk blobs of the test gateway: small, so a few MiB span several chunks.
const CHUNK: usize = 1 << 20;

/// How long a condition polled for may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// Signs a presigned URL: `python3 -c PRESIGN ENDPOINT KEY SECRET OPERATION BUCKET KEY [UPLOAD PART]`.
const PRESIGN: &str = r#"
import sys, boto3
from botocore.config import Config
endpoint, key, secret, operation, bucket, name = sys.argv[1:7]
client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
    aws_secret_access_key=secret, region_name="us-east-1",
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
params = {"Bucket": bucket, "Key": name}
if operation == "upload_part":
    params.update(UploadId=sys.argv[7], PartNumber=int(sys.argv[8]))
print(client.generate_presigned_url(operation, Params=params, ExpiresIn=3600))
"#;

/// A `morsa gateway run` process; SIGKILLed and reaped when dropped.
struct Gateway {
    child: Child,
    log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// SIGKILL, and wait until it is gone.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and wait for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "exits cleanly on SIGTERM: {exit:?}");
    }

    /// Waits until its log has a line holding every one of `words`.
    fn wait_for_log(&self, words: &[&str]) {
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.lines().any(|line| words.iter().all(|word| line.contains(word))) {
                return;
            }
            assert!(started.elapsed() < DEADLINE, "no log line with {words:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A local cluster, the gateway's configuration, a user, and the aws cli environment.
struct Setup {
    cluster: Cluster,
    dir: PathBuf,
    config: PathBuf,
    url: String,
    port: u16,
    /// The gateway's address, kept for it between its runs.
    _reserved: morsa_cluster::ports::ReservedAddress,
    env: HashMap<String, String>,
    starts: usize,
}

impl Setup {
    fn new(dir: &Path) -> Self {
        let cluster = common::local_cluster(dir, 4, 12);
        // The gateway encrypts objects with the keyring `morsa cluster` makes for it.
        cluster.ensure_gateway_keyring().unwrap();
        let reserved = morsa_cluster::ports::reserve_loopback_addresses(1).unwrap().remove(0);
        let config = cluster.dir().join("gw.toml");
        let mut setup = Setup {
            dir: dir.to_path_buf(),
            config,
            url: reserved.url(),
            port: reserved.address().port(),
            _reserved: reserved,
            env: HashMap::new(),
            cluster,
            starts: 0,
        };
        setup.write_config(0);
        let user = common::morsa_json_with(
            &setup.cluster.client_config_path(),
            &["gateway", "key", "create", "alice", "--json", "--config", setup.config.to_str().unwrap()],
        );
        let aws_config = dir.join("aws-config");
        std::fs::write(&aws_config, "[default]\n").unwrap();
        let env = [
            ("AWS_ACCESS_KEY_ID", user["access_key_id"].as_str().unwrap().to_string()),
            ("AWS_SECRET_ACCESS_KEY", user["secret_access_key"].as_str().unwrap().to_string()),
            ("AWS_ENDPOINT_URL", setup.url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", aws_config.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws-credentials").display().to_string()),
        ];
        setup.env = env.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        setup
    }

    /// Writes the gateway's configuration, with snapshots every `interval` seconds, encrypting
    /// with the cluster's gateway keyring.
    fn write_config(&self, interval: u64) {
        let encryption = morsa_gateway::encryption_toml(
            morsa_cluster::layout::GATEWAY_KEYRING,
            morsa_cluster::layout::GATEWAY_PASSPHRASE,
        );
        self.write_config_with(interval, &encryption);
    }

    /// Writes the gateway's configuration with `encryption` as its encryption settings.
    fn write_config_with(&self, interval: u64, encryption: &str) {
        let text = format!(
            "listen = \"127.0.0.1:{}\"\ndata_dir = \"gw\"\nclient_config = \"client.toml\"\nchunk_size = {CHUNK}\nsnapshot_interval = {interval}\n{encryption}",
            self.port,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn data_dir(&self) -> PathBuf {
        self.cluster.dir().join("gw")
    }

    /// Starts `morsa gateway run` (info logs to a file of its own) and waits until it listens.
    fn start(&mut self) -> Gateway {
        self.starts += 1;
        let log = self.dir.join(format!("gateway-{}.log", self.starts));
        let mut child = Command::new(env!("CARGO_BIN_EXE_morsa"))
            .args(["gateway", "run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let lines = common::stdout_lines(&mut child);
        let gateway = Gateway { child, log };
        let line = lines.recv_timeout(common::STARTUP).expect("the gateway announces its address");
        assert_eq!(line, format!("gateway listening on {}", self.url));
        gateway
    }

    /// `morsa ARGS` with the cluster's client configuration.
    fn morsa(&self, args: &[&str]) -> Output {
        common::morsa_with(&self.cluster.client_config_path(), args)
    }

    /// The account's certified blobs.
    fn certified_blobs(&self) -> usize {
        let listed = common::morsa_json_with(&self.cluster.client_config_path(), &["list-blobs", "--json"]);
        listed.as_array().unwrap().iter().filter(|blob| !blob["certified_epoch"].is_null()).count()
    }

    /// Waits until the account has at least `count` certified blobs.
    fn wait_for_blobs(&self, count: usize) {
        let started = Instant::now();
        while self.certified_blobs() < count {
            assert!(started.elapsed() < DEADLINE, "the gateway never stored {count} blobs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn aws_output(&self, args: &[&str]) -> Output {
        let mut command = Command::new("timeout");
        command.arg("120").arg("aws").args(args).envs(&self.env).current_dir(&self.dir);
        command.env_remove("AWS_CA_BUNDLE").env_remove("AWS_PROFILE").output().unwrap()
    }

    fn aws(&self, args: &[&str]) -> String {
        let output = self.aws_output(args);
        assert!(output.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Puts `data` as `bucket`/`key` with aws cli.
    fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        let file = self.dir.join("upload.bin");
        std::fs::write(&file, data).unwrap();
        let target = format!("s3://{bucket}/{key}");
        self.aws(&["s3", "cp", file.to_str().unwrap(), &target, "--only-show-errors"]);
    }

    /// Gets `bucket`/`key` with aws cli.
    fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let file = self.dir.join("download.bin");
        let _ = std::fs::remove_file(&file);
        let source = format!("s3://{bucket}/{key}");
        self.aws(&["s3", "cp", &source, file.to_str().unwrap(), "--only-show-errors"]);
        std::fs::read(&file).unwrap()
    }

    /// The keys of `bucket`, by ListObjectsV2.
    fn keys(&self, bucket: &str) -> Vec<String> {
        let listed: serde_json::Value =
            serde_json::from_str(&self.aws(&["s3api", "list-objects-v2", "--bucket", bucket]))
                .unwrap_or_default();
        let contents = listed["Contents"].as_array().cloned().unwrap_or_default();
        contents.iter().map(|object| object["Key"].as_str().unwrap().to_string()).collect()
    }

    /// A presigned URL of `operation` (boto3 signs it with the user's key).
    fn presign(&self, operation: &str, bucket: &str, key: &str, part: Option<(&str, u32)>) -> String {
        let mut command = Command::new("timeout");
        command.args(["60", "python3", "-c", PRESIGN, &self.url]);
        command.args([&self.env["AWS_ACCESS_KEY_ID"], &self.env["AWS_SECRET_ACCESS_KEY"]]);
        command.args([operation, bucket, key]);
        if let Some((upload, number)) = part {
            command.args([upload.to_string(), number.to_string()]);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "presigning: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// Opens a PUT of `declared` bytes to the presigned `url` and sends the first `sent` of
    /// `body`; answers the open connection (the rest is never sent).
    fn partial_put(&self, url: &str, body: &[u8], sent: usize) -> TcpStream {
        let target = url.strip_prefix(&self.url).unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        let head = format!(
            "PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body[..sent]).unwrap();
        stream.flush().unwrap();
        stream
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    morsa_cluster::sample::bytes(len, seed)
}

#[test]
fn a_gateway_killed_mid_put_and_mid_part_shows_nothing_half_written_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(dir.path());
    let gateway = setup.start();
    setup.aws(&["s3", "mb", "s3://backups"]);
    let done = data(3 * CHUNK + 5, 1);
    setup.put("backups", "done.bin", &done);
    let first_part = data(5 << 20, 2);
    let upload: serde_json::Value = serde_json::from_str(&setup.aws(&[
        "s3api",
        "create-multipart-upload",
        "--bucket",
        "backups",
        "--key",
        "parts.bin",
    ]))
    .unwrap();
    let upload_id = upload["UploadId"].as_str().unwrap().to_string();
    let part_file = dir.path().join("part1.bin");
    std::fs::write(&part_file, &first_part).unwrap();
    let part_args = ["--bucket", "backups", "--key", "parts.bin", "--upload-id", &upload_id];
    let uploaded: serde_json::Value = serde_json::from_str(
        &setup.aws(
            &[
                &["s3api", "upload-part"][..],
                &part_args,
                &["--part-number", "1", "--body", part_file.to_str().unwrap()],
            ]
            .concat(),
        ),
    )
    .unwrap();
    let first_etag = uploaded["ETag"].as_str().unwrap().to_string();

    // A PUT of 6 MiB cut off after 2.5 MiB: killed once two of its chunks are certified.
    let large = data(6 * CHUNK, 3);
    let url = setup.presign("put_object", "backups", "half.bin", None);
    let before = setup.certified_blobs();
    let connection = setup.partial_put(&url, &large, 2 * CHUNK + CHUNK / 2);
    setup.wait_for_blobs(before + 2);
    gateway.kill();
    drop(connection);

    let gateway = setup.start();
    assert_eq!(setup.keys("backups"), ["done.bin"], "only the completed object is listed");
    let head = setup.aws_output(&["s3api", "head-object", "--bucket", "backups", "--key", "half.bin"]);
    assert!(!head.status.success() && String::from_utf8_lossy(&head.stderr).contains("404"), "{head:?}");
    let got =
        setup.aws_output(&["s3api", "get-object", "--bucket", "backups", "--key", "half.bin", "/dev/null"]);
    assert!(String::from_utf8_lossy(&got.stderr).contains("NoSuchKey"), "{got:?}");
    assert!(setup.get("backups", "done.bin") == done, "the completed object reads back the same");

    // Part 2 of the upload cut off after 2.5 MiB: killed once two of its chunks are certified.
    let second_part = data(4 * CHUNK, 4);
    let url = setup.presign("upload_part", "backups", "parts.bin", Some((&upload_id, 2)));
    let before = setup.certified_blobs();
    let connection = setup.partial_put(&url, &second_part, 2 * CHUNK + CHUNK / 2);
    setup.wait_for_blobs(before + 2);
    gateway.kill();
    drop(connection);

    let gateway = setup.start();
    let parts: serde_json::Value =
        serde_json::from_str(&setup.aws(&[&["s3api", "list-parts"][..], &part_args].concat())).unwrap();
    let numbers: Vec<u64> =
        parts["Parts"].as_array().unwrap().iter().map(|part| part["PartNumber"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1], "the cut-off part is not recorded");
    assert_eq!(setup.keys("backups"), ["done.bin"], "the unfinished upload is no object");

    // The gateway goes on serving: part 2 again, the upload completed, read back.
    std::fs::write(&part_file, &second_part).unwrap();
    let uploaded: serde_json::Value = serde_json::from_str(
        &setup.aws(
            &[
                &["s3api", "upload-part"][..],
                &part_args,
                &["--part-number", "2", "--body", part_file.to_str().unwrap()],
            ]
            .concat(),
        ),
    )
    .unwrap();
    let second_etag = uploaded["ETag"].as_str().unwrap().to_string();
    let completion = serde_json::json!({ "Parts": [
        { "PartNumber": 1, "ETag": first_etag },
        { "PartNumber": 2, "ETag": second_etag },
    ]});
    let completion_file = dir.path().join("completion.json");
    std::fs::write(&completion_file, completion.to_string()).unwrap();
    let parts_file = format!("file://{}", completion_file.display());
    setup.aws(
        &[&["s3api", "complete-multipart-upload"][..], &part_args, &["--multipart-upload", &parts_file]]
            .concat(),
    );
    assert_eq!(setup.keys("backups"), ["done.bin", "parts.bin"]);
    assert!(
        setup.get("backups", "parts.bin") == [first_part, second_part].concat(),
        "the object reads back the same"
    );
    assert!(setup.get("backups", "done.bin") == done);
    gateway.stop();
}

#[test]
fn a_gateway_whose_disk_is_wiped_is_restored_from_its_namespace_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(dir.path());
    setup.write_config(1);
    let gateway = setup.start();
    setup.aws(&["s3", "mb", "s3://backups"]);
    let big = data(3 * CHUNK + 11, 5);
    let small = data(1000, 6);
    setup.put("backups", "dir/big.bin", &big);
    setup.put("backups", "small.txt", &small);

    // A periodic snapshot holds both objects; the gateway is then SIGKILLed (no shutdown
    // snapshot) and its disk lost.
    gateway.wait_for_log(&["namespace snapshot", " 2 objects"]);
    gateway.kill();
    std::fs::remove_dir_all(setup.data_dir()).unwrap();
    // A blob of the account that starts like a newer snapshot but was not sealed with the
    // account's key (anyone's object could) is passed over.
    let mut fake = b"MorsaGwNamespace".to_vec();
    fake.extend_from_slice(&1u16.to_le_bytes());
    fake.extend_from_slice(&u64::MAX.to_le_bytes());
    fake.extend_from_slice(&[0; 8 + 12]);
    fake.extend_from_slice(&100u64.to_le_bytes());
    fake.extend_from_slice(&[7; 100]);
    let fake_file = dir.path().join("fake-snapshot");
    std::fs::write(&fake_file, &fake).unwrap();
    assert!(setup.morsa(&["store", fake_file.to_str().unwrap()]).status.success());
    let config = setup.config.display().to_string();
    let restore = ["gateway", "restore-namespace", "--config", config.as_str()];
    let restored = setup.morsa(&restore);
    let printed = String::from_utf8_lossy(&restored.stdout).to_string();
    assert!(restored.status.success(), "{restored:?}");
    assert!(printed.contains("1 users, 1 buckets, 2 objects"), "{printed}");
    let warnings = String::from_utf8_lossy(&restored.stderr);
    assert!(warnings.contains("passed over blob") && warnings.contains("does not open"), "{warnings}");
    let again = setup.morsa(&restore);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("move it away"),
        "an existing database is kept: {again:?}"
    );

    // The same keys work; the objects list and read back the same.
    setup.write_config(0);
    let gateway = setup.start();
    assert_eq!(setup.keys("backups"), ["dir/big.bin", "small.txt"]);
    assert!(setup.get("backups", "dir/big.bin") == big, "the object reads back the same");
    assert!(setup.get("backups", "small.txt") == small);

    // With periodic snapshots off, a clean shutdown takes one.
    let later = data(2 * CHUNK, 7);
    setup.put("backups", "later.bin", &later);
    gateway.stop();
    std::fs::remove_dir_all(setup.data_dir()).unwrap();
    let restored = setup.morsa(&restore);
    let printed = String::from_utf8_lossy(&restored.stdout).to_string();
    assert!(restored.status.success() && printed.contains("3 objects"), "{restored:?}");
    let blob_id = printed.split("(blob ").nth(1).unwrap().split(')').next().unwrap().to_string();

    // The snapshot's blob holds neither the users' secrets nor the names in clear.
    let raw = setup.morsa(&["read", &blob_id, "--raw"]);
    assert!(raw.status.success(), "{raw:?}");
    let secret = setup.env["AWS_SECRET_ACCESS_KEY"].as_bytes();
    for clear in [secret, b"backups", b"later.bin"] {
        assert!(!raw.stdout.windows(clear.len()).any(|window| window == clear), "{:?} in clear", clear);
    }

    // Restoring a named snapshot blob works the same.
    std::fs::remove_dir_all(setup.data_dir()).unwrap();
    let named = setup.morsa(&[&restore[..], &["--blob", &blob_id]].concat());
    assert!(String::from_utf8_lossy(&named.stdout).contains("3 objects"), "{named:?}");
    let gateway = setup.start();
    assert_eq!(setup.keys("backups"), ["dir/big.bin", "later.bin", "small.txt"]);
    assert!(setup.get("backups", "later.bin") == later);
    gateway.stop();
}

#[test]
fn plaintext_objects_keep_reading_once_the_gateway_encrypts_and_a_missing_keyring_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(dir.path());
    setup.write_config_with(0, "encrypt = false\n");
    let gateway = setup.start();
    setup.aws(&["s3", "mb", "s3://backups"]);
    let old = data(2 * CHUNK + 5, 8);
    setup.put("backups", "old.bin", &old);
    gateway.stop();

    // A gateway told to encrypt with a keyring that is not there says so and does not start.
    setup.write_config_with(0, &morsa_gateway::encryption_toml("nowhere.keyring", "nowhere.passphrase"));
    let refused = Command::new("timeout")
        .args(["120", env!("CARGO_BIN_EXE_morsa"), "gateway", "run", "--config"])
        .arg(&setup.config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(said.contains("no keyring at") && said.contains("encrypt = false"), "{said}");

    setup.write_config(0);
    let gateway = setup.start();
    let new = data(CHUNK + 77, 9);
    setup.put("backups", "new.bin", &new);
    assert!(setup.get("backups", "old.bin") == old, "the plaintext object reads back the same");
    assert!(setup.get("backups", "new.bin") == new, "the encrypted object reads back the same");
    let range = setup.aws_output(&[
        "s3api",
        "get-object",
        "--bucket",
        "backups",
        "--key",
        "old.bin",
        "--range",
        "bytes=1048000-1049000",
        dir.path().join("old-range.bin").to_str().unwrap(),
    ]);
    assert!(range.status.success(), "{range:?}");
    assert!(std::fs::read(dir.path().join("old-range.bin")).unwrap() == old[1_048_000..=1_049_000]);
    gateway.stop();
}

/// SIGTERM right after a PUT: the gateway first lets the uploads of the stored blobs to the
/// nodes outside their first quorum end (here to a node frozen with SIGSTOP, which takes
/// connections and answers nothing until thawed), so that no node is left to rebuild its
/// slivers from its peers.
#[test]
fn a_stopped_gateway_first_lets_the_uploads_of_stored_blobs_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(dir.path());
    let mut gateway = setup.start();
    setup.aws(&["s3", "mb", "s3://backups"]);
    let slow = setup.cluster.nodes()[3].clone();
    let thaw = common::Frozen::new(setup.cluster.state().nodes[3].pid.unwrap());
    // One chunk: a PUT of several waits for the uploads of each chunk before the next.
    setup.put("backups", "db.dump", &data(CHUNK, 40));
    let listed = common::morsa_json_with(&setup.cluster.client_config_path(), &["list-blobs", "--json"]);
    let stored: Vec<String> =
        listed.as_array().unwrap().iter().map(|blob| blob["blob_id"].as_str().unwrap().to_string()).collect();
    assert!(!stored.is_empty(), "the object's chunk is stored: {listed}");

    let gateway_pid = gateway.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &gateway_pid]).status().unwrap().success());
    gateway.wait_for_log(&["waiting for the uploads of stored blobs to end"]);
    drop(thaw);
    let exit = gateway.child.wait().unwrap();
    assert!(exit.success(), "exits cleanly on SIGTERM: {exit:?}");
    let log = std::fs::read_to_string(&gateway.log).unwrap();
    assert!(!log.contains("did not end in time"), "{log}");

    // The thawed node holds every sliver of every blob it owns, none of them rebuilt.
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    for blob_id in &stored {
        let status: morsa_api::node::NodeBlobStatus =
            client.get(format!("{}/v1/blobs/{blob_id}/status", slow.url)).send().unwrap().json().unwrap();
        assert_eq!(status.stored_slivers, status.expected_slivers, "{blob_id} on the slow node: {status:?}");
    }
    let health: morsa_api::node::NodeHealth =
        client.get(format!("{}/v1/health", slow.url)).send().unwrap().json().unwrap();
    assert_eq!(health.repair.rebuilt_slivers, 0, "{:?}", health.repair);
}

/// A node that takes connections and answers nothing (frozen with SIGSTOP) holds a PUT of
/// several chunks up only for a few seconds a chunk: the uploads to it after each chunk is
/// certified are given up (it rebuilds them itself) instead of being waited for minutes
/// before the next chunk is stored.
#[test]
fn a_hung_node_does_not_hold_up_a_put_of_several_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(dir.path());
    let _gateway = setup.start();
    setup.aws(&["s3", "mb", "s3://backups"]);
    let _thaw = common::Frozen::new(setup.cluster.state().nodes[3].pid.unwrap());
    // Four chunks; aws cli gives up after 120 s (see `aws_output`).
    let body = data(4 * CHUNK, 41);
    setup.put("backups", "big.dump", &body);
    assert!(setup.get("backups", "big.dump") == body, "read back byte-identical");
}
