//! One look at the system for the status page: the committee, every node's health, the
//! account's blobs nearing expiry and the latest drill. Every call is bounded in time and the
//! nodes are asked in parallel, so a node that is down (or hangs) costs one timeout, not a
//! stalled page.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use morsa_api::client::{ClientOptions, NodeClient};
use morsa_api::coord::{AvailabilityView, MemberZones};
use morsa_api::node::NodeHealth;
use morsa_client::Client;
use morsa_core::CommitteeMember;
use serde::Serialize;

use crate::drill::Report;

/// Longest a node's health may take to answer before the node is shown as down.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest connecting to a node may take (within [`NODE_TIMEOUT`]).
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest the coordinator's answers (system, committee, the account's blobs) may take.
const COORDINATOR_TIMEOUT: Duration = Duration::from_secs(5);

/// Most blobs nearing expiry listed (the count covers all of them).
const MAX_EXPIRING_LISTED: usize = 200;

/// What the status page shows, also served as `/status.json`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// When it was gathered (Unix seconds).
    pub generated_unix: u64,
    /// The account whose blobs are listed.
    pub account: String,
    /// The system as the coordinator reports it.
    pub system: SystemSummary,
    /// The committee's nodes, in committee order.
    pub nodes: Vec<NodeStatus>,
    /// How many of them did not answer.
    pub nodes_down: usize,
    /// The smallest availability margin the answering nodes report (shards above the
    /// `n − 2f` needed to read); none when no node knows of a blob it is repairing.
    pub lowest_margin_shards: Option<u32>,
    /// Slivers queued for repair, summed over the answering nodes.
    pub repair_backlog_slivers: u64,
    /// The coordinator's system-wide availability margin: blobs by margin, the blobs most at
    /// risk, the nodes reporting (`GET /v1/availability`).
    pub availability: Option<AvailabilityView>,
    /// Why it is missing.
    pub availability_error: Option<String>,
    /// Earlier snapshots' repair backlog, margin and nodes down, oldest first (the dashboard
    /// keeps a bounded ring of them; this snapshot is the last).
    pub history: Vec<Sample>,
    /// The account's blobs nearing expiry.
    pub expiring: Expiring,
    /// The latest drill, when a report file was given.
    pub drill: Option<DrillStatus>,
}

/// One point of the history.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// When (Unix seconds).
    pub unix: u64,
    /// Slivers queued for repair over the answering nodes.
    pub backlog_slivers: u64,
    /// The system-wide lowest margin, when the coordinator gave it.
    pub min_margin_shards: Option<u32>,
    /// Nodes that did not answer.
    pub nodes_down: usize,
}

impl Status {
    /// This snapshot's point of the history.
    pub fn sample(&self) -> Sample {
        Sample {
            unix: self.generated_unix,
            backlog_slivers: self.repair_backlog_slivers,
            min_margin_shards: self.availability.as_ref().and_then(|view| view.min_margin_shards),
            nodes_down: self.nodes_down,
        }
    }
}

/// The system's parameters, or why the coordinator did not give them.
#[derive(Debug, Serialize)]
pub struct SystemSummary {
    /// The current epoch.
    pub epoch: Option<u32>,
    /// Shards `n`.
    pub n_shards: usize,
    /// Shards whose loss the code tolerates, `f`.
    pub f: usize,
    /// The coordinator's error, when it did not answer (the committee then comes from the
    /// client's cache or the nodes).
    pub error: Option<String>,
}

/// One committee member and what it reported.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Its ID.
    pub node_id: String,
    /// Where it is reached.
    pub address: String,
    /// Its zone (failure domain), when its operator declared one.
    pub zone: Option<String>,
    /// The shards the committee gives it.
    pub shards: Vec<u16>,
    /// Whether it answered its health check in time.
    pub up: bool,
    /// Why not.
    pub error: Option<String>,
    /// Milliseconds its answer (or failure) took.
    pub latency_ms: f64,
    /// Its health, when it answered.
    pub health: Option<NodeHealth>,
}

/// The account's blobs that end within the window.
#[derive(Debug, Serialize)]
pub struct Expiring {
    /// The window, in epochs from the current one.
    pub within_epochs: u32,
    /// How many blobs end within it.
    pub count: usize,
    /// The soonest of them (at most 200).
    pub blobs: Vec<ExpiringBlob>,
    /// Why they could not be listed.
    pub error: Option<String>,
}

/// One blob nearing expiry.
#[derive(Debug, Serialize)]
pub struct ExpiringBlob {
    /// Its blob ID.
    pub blob_id: String,
    /// Unencoded size, bytes.
    pub size: u64,
    /// The first epoch in which it is no longer stored.
    pub end_epoch: u32,
    /// Whether the owner may delete it.
    pub deletable: bool,
}

/// The latest drill's report file and what it says.
#[derive(Debug, Serialize)]
pub struct DrillStatus {
    /// The report file.
    pub path: PathBuf,
    /// When it was last written (Unix seconds).
    pub modified_unix: Option<u64>,
    /// The report.
    pub report: Option<Report>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// Gathers a [`Status`]; every part is bounded in time, the nodes are asked in parallel.
pub async fn gather(client: &Client, within_epochs: u32, drill_report: Option<&Path>) -> Status {
    let (system, committee, expiring, availability) = tokio::join!(
        bounded(COORDINATOR_TIMEOUT, async { client.system().await.map_err(|error| error.to_string()) }),
        bounded(COORDINATOR_TIMEOUT, async {
            client.current_committee().await.map_err(|error| error.to_string())
        }),
        bounded(COORDINATOR_TIMEOUT, async {
            client.expiring_within(within_epochs).await.map_err(|error| error.to_string())
        }),
        bounded(COORDINATOR_TIMEOUT, async {
            client.coordinator().availability().await.map_err(|error| error.to_string())
        }),
    );
    let encoding = client.encoding();
    let (members, committee_error) = match committee {
        Ok(committee) => (committee.members, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    let nodes = node_statuses(client, members, &client.node_zones()).await;
    let answering = || nodes.iter().filter_map(|node| node.health.as_ref());
    Status {
        generated_unix: unix_seconds(SystemTime::now()),
        account: client.account().to_string(),
        system: SystemSummary {
            epoch: system.as_ref().ok().map(|system| system.epoch.0),
            n_shards: encoding.n_shards(),
            f: encoding.f(),
            error: system.err().or(committee_error),
        },
        nodes_down: nodes.iter().filter(|node| !node.up).count(),
        lowest_margin_shards: answering().filter_map(|health| health.repair.lowest_margin).min(),
        repair_backlog_slivers: answering().map(|health| health.repair.backlog_slivers).sum(),
        availability_error: availability.as_ref().err().cloned(),
        availability: availability.ok(),
        history: Vec::new(),
        nodes,
        expiring: expiring_summary(within_epochs, expiring),
        drill: drill_report.map(read_drill),
    }
}

/// Every member's health, asked in parallel, each bounded by [`NODE_TIMEOUT`].
async fn node_statuses(
    client: &Client,
    members: Vec<CommitteeMember>,
    zones: &MemberZones,
) -> Vec<NodeStatus> {
    let options = ClientOptions { timeout: NODE_TIMEOUT, connect_timeout: NODE_CONNECT_TIMEOUT };
    let http = options.http_client().ok();
    let mut checks = tokio::task::JoinSet::new();
    for (index, member) in members.iter().enumerate() {
        let node = http.clone().ok_or_else(|| "cannot build an HTTP client".to_owned()).and_then(|http| {
            NodeClient::with_http(http, &member.address, client.encoding(), options)
                .map_err(|error| error.to_string())
        });
        checks.spawn(async move {
            let started = std::time::Instant::now();
            let health = match node {
                Ok(node) => {
                    bounded(NODE_TIMEOUT, async { node.health().await.map_err(|error| error.to_string()) })
                        .await
                }
                Err(error) => Err(error),
            };
            (index, health, started.elapsed())
        });
    }
    let mut answers: Vec<Option<(Result<NodeHealth, String>, Duration)>> =
        members.iter().map(|_| None).collect();
    while let Some(joined) = checks.join_next().await {
        if let Ok((index, health, latency)) = joined {
            answers[index] = Some((health, latency));
        }
    }
    members
        .into_iter()
        .zip(answers)
        .map(|(member, answer)| {
            let (health, latency) =
                answer.unwrap_or_else(|| (Err("the health check failed".to_owned()), Duration::ZERO));
            NodeStatus {
                node_id: member.node_id.to_string(),
                address: member.address,
                zone: zones.of(&member.node_id).map(str::to_owned),
                shards: member.shards.iter().map(|shard| shard.0).collect(),
                up: health.is_ok(),
                latency_ms: latency.as_secs_f64() * 1e3,
                error: health.as_ref().err().cloned(),
                health: health.ok(),
            }
        })
        .collect()
}

fn expiring_summary(
    within_epochs: u32,
    listed: Result<(morsa_core::Epoch, Vec<morsa_api::coord::OwnedBlob>), String>,
) -> Expiring {
    match listed {
        Ok((_, blobs)) => Expiring {
            within_epochs,
            count: blobs.len(),
            blobs: blobs
                .into_iter()
                .take(MAX_EXPIRING_LISTED)
                .map(|blob| ExpiringBlob {
                    blob_id: blob.blob_id.to_string(),
                    size: blob.size,
                    end_epoch: blob.end_epoch.0,
                    deletable: blob.deletable,
                })
                .collect(),
            error: None,
        },
        Err(error) => Expiring { within_epochs, count: 0, blobs: Vec::new(), error: Some(error) },
    }
}

/// The largest drill report read (a report of every blob of a large account fits).
const MAX_DRILL_REPORT_BYTES: u64 = 64 << 20;

/// The drill report at `path`, or why it cannot be read.
fn read_drill(path: &Path) -> DrillStatus {
    let modified_unix =
        std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok().map(unix_seconds);
    let report = morsa_plumbing::config::read_limited(path, MAX_DRILL_REPORT_BYTES)
        .map_err(|error| error.to_string())
        .and_then(|text| {
            serde_json::from_str::<Report>(&text)
                .map_err(|error| format!("{} is not a drill report: {error}", path.display()))
        });
    let (report, error) = match report {
        Ok(report) => (Some(report), None),
        Err(error) => (None, Some(error)),
    };
    DrillStatus { path: path.to_path_buf(), modified_unix, report, error }
}

/// `work`, or an error saying it took longer than `limit`.
async fn bounded<T>(limit: Duration, work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", limit.as_millis())))
}

/// Seconds from the Unix epoch to `time` (0 before it).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_report_that_cannot_be_read_is_shown_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_drill(&dir.path().join("none.json"));
        assert!(missing.report.is_none() && missing.modified_unix.is_none());
        assert!(missing.error.unwrap().starts_with("cannot read"));
        let garbled = dir.path().join("garbled.json");
        std::fs::write(&garbled, b"{\"passed\": \"many\"}").unwrap();
        let garbled = read_drill(&garbled);
        assert!(garbled.report.is_none() && garbled.modified_unix.is_some());
        assert!(garbled.error.unwrap().contains("is not a drill report"));
        let report = dir.path().join("report.json");
        let json = r#"{"started_unix":1,"seed":2,"passed":1,"failed":0,"with_failures":null,"blobs":[]}"#;
        std::fs::write(&report, json).unwrap();
        let read = read_drill(&report);
        assert_eq!(read.report.map(|report| (report.passed, report.seed)), Some((1, 2)));
        assert_eq!(read.error, None);
    }
}
