//! `morsa dashboard` on a local cluster of real processes: `/status.json` and the page list
//! every node up, the latest drill and the blobs nearing expiry; a node SIGKILLed shows as
//! down (the others still up, the page still answering); and a real headless Chromium renders
//! the page: a screenshot of the requested size that is not blank, and a DOM naming every node
//! with the killed one marked down. The page also shows the shard map by zone, the system-wide
//! availability margin (blobs by margin; the killed node's shards lost, the blob at risk) and
//! the repair backlog over time. A node that hangs is shown down too, without stalling the
//! page.
#![allow(clippy::unwrap_used)]

#[path = "dashboard/browser.rs"]
mod browser;
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Process, local_cluster, morsa_with};
use serde_json::Value;

const NODES: usize = 4;
const SHARDS: u16 = 8;
/// The longest any condition below is waited for.
const DEADLINE: Duration = Duration::from_secs(30);
/// The screenshot's size.
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 1600;

fn get(url: &str) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder().timeout(DEADLINE).build().unwrap();
    let response = client.get(url).send().unwrap();
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response
}

fn status(dashboard: &str) -> Value {
    get(&format!("{dashboard}/status.json")).json().unwrap()
}

/// Polls `/status.json` until `done` holds, failing after [`DEADLINE`].
fn wait_status(dashboard: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = status(dashboard);
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {status:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn node<'a>(status: &'a Value, address: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["address"] == address)
        .unwrap_or_else(|| panic!("{address} is not listed: {status:#}"))
}

#[test]
fn the_status_page_shows_the_cluster_and_a_killed_node_as_down_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = local_cluster(dir.path(), NODES, SHARDS);
    let config = cluster.client_config_path();

    // A blob paid for one epoch (so it nears expiry) and a drill report of it.
    let file = dir.path().join("blob.bin");
    std::fs::write(&file, b"a backup worth restoring".repeat(100)).unwrap();
    let stored = morsa_with(&config, &["store", file.to_str().unwrap(), "--epochs", "1", "--json"]);
    assert!(stored.status.success(), "{stored:?}");
    let stored: Value = serde_json::from_slice(&stored.stdout).unwrap();
    let blob_id = stored[0]["blob_id"].as_str().unwrap().to_string();
    let report = dir.path().join("drill.json");
    let drill =
        morsa_with(&config, &["drill", "--all", "--ranges", "1", "--report", report.to_str().unwrap()]);
    assert!(drill.status.success(), "{drill:?}");

    let dashboard = Process::start(
        &[
            "dashboard",
            "--listen",
            "127.0.0.1:0",
            "--refresh",
            "2",
            "--expiring-within",
            "3",
            "--drill-report",
        ]
        .into_iter()
        .chain([report.to_str().unwrap()])
        .collect::<Vec<_>>(),
        &config,
    );
    let url = dashboard.url.clone();

    // Every node up, with its shards; the blob nearing expiry; the drill.
    // The committee lists nodes by `host:port`; the cluster knows them by base URL.
    let addresses: Vec<String> =
        cluster.nodes().iter().map(|node| node.url.trim_start_matches("http://").to_owned()).collect();
    let healthy = wait_status(&url, "every node up", |status| status["nodes_down"] == 0);
    assert_eq!(healthy["nodes"].as_array().unwrap().len(), NODES, "{healthy:#}");
    for (info, address) in cluster.nodes().iter().zip(&addresses) {
        let listed = node(&healthy, address);
        assert_eq!(listed["up"], true, "{listed:#}");
        assert_eq!(listed["node_id"], info.node_id.to_string());
        let shards: Vec<u64> = info.shards.iter().map(|shard| u64::from(shard.0)).collect();
        assert_eq!(listed["shards"], serde_json::json!(shards), "{listed:#}");
    }
    let expiring: Vec<&Value> = healthy["expiring"]["blobs"].as_array().unwrap().iter().collect();
    assert!(expiring.iter().any(|blob| blob["blob_id"] == blob_id.as_str()), "{healthy:#}");
    assert_eq!(healthy["drill"]["report"]["passed"], 1, "{healthy:#}");
    assert_eq!(healthy["drill"]["report"]["failed"], 0, "{healthy:#}");
    let page = get(&url).text().unwrap();
    for address in &addresses {
        assert!(
            page.contains(&format!("data-address=\"{address}\" data-state=\"up\"")),
            "{address} up: {page}"
        );
    }
    assert!(page.contains(&blob_id) && page.contains("1 passed, 0 failed"), "{page}");

    // The system-wide margin: every node reporting, nothing lacking (n = 8, kp = 4: a full
    // margin of 4 shards); a history of more than one sample.
    let full =
        u64::from(SHARDS) - u64::try_from(redstuff::EncodingConfig::new(SHARDS).unwrap().kp()).unwrap();
    let whole = wait_status(&url, "every node reporting, the blob at the full margin", |status| {
        let view = &status["availability"];
        view["min_margin_shards"] == full
            && view["nodes"]
                .as_array()
                .is_some_and(|nodes| nodes.iter().all(|node| node["reporting"] == true))
            && status["history"].as_array().is_some_and(|samples| samples.len() >= 2)
    });
    assert_eq!(whole["availability"]["histogram"], serde_json::json!([{"margin_shards": full, "blobs": 1}]));
    let page = get(&url).text().unwrap();
    for section in
        ["id=\"zones\"", "none declared", "id=\"margin-histogram\"", "id=\"backlog-history\"", "<polyline"]
    {
        assert!(page.contains(section), "{section}: {page}");
    }

    // A node crashes: it shows as down, with its error; the others stay up.
    let killed = 1;
    cluster.kill(killed).unwrap();
    let down =
        wait_status(&url, "the killed node down", |status| node(status, &addresses[killed])["up"] == false);
    assert_eq!(down["nodes_down"], 1, "{down:#}");
    assert!(
        node(&down, &addresses[killed])["error"].as_str().is_some_and(|error| !error.is_empty()),
        "{down:#}"
    );
    for (index, address) in addresses.iter().enumerate().filter(|(index, _)| *index != killed) {
        assert_eq!(node(&down, address)["up"], true, "node {index}: {down:#}");
    }
    // Its shards are lost for the blob, which is now at risk.
    let lost = u64::try_from(cluster.nodes()[killed].shards.len()).unwrap();
    let risky = wait_status(&url, "the killed node's shards lost", |status| {
        status["availability"]["min_margin_shards"] == full - lost
    });
    assert_eq!(risky["availability"]["at_risk"][0]["blob_id"], blob_id.as_str(), "{risky:#}");

    // A real browser: a screenshot of the page, not blank, and the DOM it rendered.
    let profile = dir.path().join("chromium");
    let screenshot = dir.path().join("status.png");
    let shot = browser::chromium(
        &profile,
        &[
            &format!("--screenshot={}", screenshot.display()),
            &format!("--window-size={WIDTH},{HEIGHT}"),
            &url,
        ],
    );
    assert!(shot.status.success(), "chromium --screenshot: {shot:?}");
    let image = browser::decode_png(&std::fs::read(&screenshot).unwrap());
    assert_eq!((image.width, image.height), (WIDTH, HEIGHT));
    assert!(image.distinct_colours(16) >= 16, "the screenshot is (nearly) a single colour");
    let dom = browser::chromium(&profile, &["--dump-dom", &url]);
    assert!(dom.status.success(), "chromium --dump-dom: {dom:?}");
    let dom = String::from_utf8(dom.stdout).unwrap();
    for (index, address) in addresses.iter().enumerate() {
        let state = if index == killed { "down" } else { "up" };
        assert!(
            dom.contains(&format!("data-address=\"{address}\" data-state=\"{state}\"")),
            "{address} is not shown {state} in the rendered DOM:\n{dom}"
        );
    }
    assert!(dom.contains("<b>3</b> of 4 nodes up"), "{dom}");
    for section in
        ["id=\"zones\"", "id=\"margin-histogram\"", "id=\"at-risk\"", "id=\"backlog-history\"", "<polyline"]
    {
        assert!(dom.contains(section), "{section} is not in the rendered DOM:\n{dom}");
    }
    assert!(dom.contains(&format!("<code>{blob_id}</code></td><td>{} shards</td>", full - lost)), "{dom}");

    // A node that hangs (SIGSTOPped: the kernel still accepts its connections, nothing
    // answers) costs the page one bounded wait: it still answers, with that node down too.
    let hung = 2;
    let pid = cluster.state().nodes[hung].pid.unwrap().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let stalled =
        wait_status(&url, "the hung node down", |status| node(status, &addresses[hung])["up"] == false);
    assert_eq!(stalled["nodes_down"], 2, "{stalled:#}");
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    wait_status(&url, "the hung node back up", |status| node(status, &addresses[hung])["up"] == true);

    dashboard.stop();
}
