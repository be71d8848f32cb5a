//! Changing a running coordinator group with the real CLI: a fourth replica started on an
//! empty data directory is added after the log was compacted and catches up from a snapshot;
//! an original replica is removed and writes still commit; wrong or missing admin tokens and
//! impossible changes are refused and change nothing. And `morsa coord audit --url` of a
//! running replica, which fails on a replica serving an event its log did not produce.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::replicas::{ADMIN_TOKEN_FILE, Group, SETTLE, http};
use morsa_api::coord::{EventsPage, Membership, routes};

fn morsa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_morsa")).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `morsa coord add-replica|remove-replica ... --json` that must succeed; its membership.
fn change(args: &[&str]) -> Membership {
    let output = morsa(args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The membership replica `index` reports: (ID, voter) pairs.
fn members(group: &Group, index: usize) -> Vec<(u64, bool)> {
    let replica = group.system(index).unwrap().replica.unwrap();
    replica.replicas.iter().map(|member| (member.id, member.voter)).collect()
}

/// Every event replica `index` serves.
fn events(group: &Group, index: usize) -> Vec<morsa_api::coord::EventRecord> {
    let mut all = Vec::new();
    loop {
        let after = all.len().checked_sub(1).map(|last| format!("&after={last}")).unwrap_or_default();
        let url = format!("{}{}?limit=1000{after}", group.urls[index], routes::EVENTS);
        let page: EventsPage = http().get(url).send().unwrap().json().unwrap();
        if page.events.is_empty() {
            return all;
        }
        all.extend(page.events);
    }
}

/// Waits until replica `index` reports `expected` as the group.
fn wait_members(group: &Group, index: usize, expected: &[(u64, bool)]) {
    let deadline = Instant::now() + SETTLE;
    while members(group, index) != expected {
        assert!(Instant::now() < deadline, "replica {} reports {:?}", index + 1, members(group, index));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn token_file(dir: &Path) -> String {
    dir.join(ADMIN_TOKEN_FILE).display().to_string()
}

#[test]
fn a_replica_is_added_from_a_snapshot_and_an_original_one_removed() {
    let dir = tempfile::tempdir().unwrap();
    // A snapshot every 5 entries: the log the leader keeps soon no longer reaches the start,
    // so the new replica can only catch up from a snapshot.
    let mut group = Group::start(dir.path(), 3, 5);
    let before = 30;
    for nonce in 0..before {
        group.transfer(nonce);
    }
    group.next_epoch();
    group.agreed(1);
    let leader = group.leader();
    let purged = group.system(leader).unwrap().replica.unwrap().purged_index;
    assert!(purged.is_some_and(|index| index > 1), "the leader's log was compacted: {purged:?}");
    let follower = (leader + 1) % 3;
    let joining = group.start_joining();
    let (joining_id, joining_url) = (joining + 1, group.urls[joining].clone());
    let (id, url) = (joining_id.to_string(), joining_url.as_str());
    assert_eq!(members(&group, joining), Vec::new(), "a joining replica belongs to no group yet");

    // Wrong or missing credentials: refused, nothing changed.
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-admin-token-at-all").unwrap();
    let wrong = wrong.display().to_string();
    let follower_url = group.urls[follower].clone();
    let refused = morsa(&[
        "coord",
        "add-replica",
        "--coordinator",
        &follower_url,
        "--admin-token-file",
        &wrong,
        "--id",
        &id,
        "--url",
        url,
    ]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("bad_admin_token"), "{}", stderr(&refused));
    let anonymous = http()
        .post(format!("{follower_url}{}", routes::RAFT_MEMBERS))
        .json(&serde_json::json!({"id": joining_id, "url": url}))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(anonymous.json::<serde_json::Value>().unwrap()["code"], "admin_token_required");
    let anonymous_removal =
        http().delete(format!("{follower_url}{}", morsa_api::coord::member_path(1))).send().unwrap();
    assert_eq!(anonymous_removal.status().as_u16(), 401);
    let original = vec![(1, true), (2, true), (3, true)];
    assert_eq!(members(&group, leader), original, "the refusals changed nothing");

    // Added through a follower, which forwards to the leader; answered once it votes.
    let token = token_file(dir.path());
    let membership = change(&[
        "coord",
        "add-replica",
        "--json",
        "--coordinator",
        &follower_url,
        "--admin-token-file",
        &token,
        "--id",
        &id,
        "--url",
        url,
    ]);
    let four = vec![(1, true), (2, true), (3, true), (4, true)];
    let listed: Vec<(u64, bool)> =
        membership.replicas.iter().map(|member| (member.id, member.voter)).collect();
    assert_eq!(listed, four);
    assert_eq!(membership.leader, u64::try_from(leader + 1).unwrap());

    // It caught up: the same state, applied index and event chain as the others.
    let agreed = group.agreed(0);
    let applied = |index: usize| group.system(index).unwrap().replica.unwrap().applied_index;
    let deadline = Instant::now() + SETTLE;
    while applied(joining) != applied(leader) {
        assert!(Instant::now() < deadline, "applied index {:?} vs {:?}", applied(joining), applied(leader));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(group.system(joining).unwrap().state_hash, agreed.state_hash);
    let served = events(&group, joining);
    assert!(!served.is_empty());
    assert_eq!(served, events(&group, leader), "the same events, sequence numbers and hash chain");
    group.assert_transfers(before);

    // Adding it again, removing an unknown replica or the leader: refused, nothing changed.
    let again = morsa(&[
        "coord",
        "add-replica",
        "--coordinator",
        &follower_url,
        "--admin-token-file",
        &token,
        "--id",
        &id,
        "--url",
        url,
    ]);
    assert!(stderr(&again).contains("already_member"), "{}", stderr(&again));
    let unknown = morsa(&[
        "coord",
        "remove-replica",
        "--coordinator",
        &follower_url,
        "--admin-token-file",
        &token,
        "--id",
        "9",
    ]);
    assert!(stderr(&unknown).contains("unknown_replica"), "{}", stderr(&unknown));
    let leader_id = (leader + 1).to_string();
    let itself = morsa(&[
        "coord",
        "remove-replica",
        "--coordinator",
        &follower_url,
        "--admin-token-file",
        &token,
        "--id",
        &leader_id,
    ]);
    assert!(stderr(&itself).contains("is_leader"), "{}", stderr(&itself));
    assert_eq!(members(&group, leader), four);

    // An original follower removed, through the new replica: writes go on without it.
    let removed = (leader + 2) % 3;
    let removed_id = u64::try_from(removed + 1).unwrap();
    let membership = change(&[
        "coord",
        "remove-replica",
        "--json",
        "--coordinator",
        &joining_url,
        "--admin-token-file",
        &token,
        "--id",
        &removed_id.to_string(),
    ]);
    let remaining: Vec<(u64, bool)> = four.iter().copied().filter(|(id, _)| *id != removed_id).collect();
    let listed: Vec<(u64, bool)> =
        membership.replicas.iter().map(|member| (member.id, member.voter)).collect();
    assert_eq!(listed, remaining);
    group.kill(removed);
    for index in group.live() {
        wait_members(&group, index, &remaining);
    }
    let total = before + 10;
    for nonce in before..total {
        group.transfer(nonce);
    }
    group.agreed(0);
    group.assert_transfers(total);
}

/// Serves what the replica at `upstream` serves, except that event `tampered` carries another
/// time (its hash unchanged): a replica whose served events are not what its log produced.
/// Answers its URL and the runtime that serves it (drop it to stop).
fn tampering_proxy(upstream: String, tampered: u64) -> (String, tokio::runtime::Runtime) {
    use axum::extract::State;
    use axum::http::Uri;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let proxy = async move |State(upstream): State<String>, uri: Uri| {
        let answer = reqwest::get(format!("{upstream}{uri}")).await.unwrap();
        let status = answer.status().as_u16();
        let mut body = answer.bytes().await.unwrap().to_vec();
        if uri.path() == routes::EVENTS {
            let mut page: EventsPage = serde_json::from_slice(&body).unwrap();
            for record in &mut page.events {
                if record.seq == tampered {
                    record.time_ms += 1;
                }
            }
            body = serde_json::to_vec(&page).unwrap();
        }
        (axum::http::StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body)
    };
    let router = axum::Router::new().fallback(proxy).with_state(upstream);
    runtime.spawn(async move { axum::serve(listener, router).await });
    (url, runtime)
}

#[test]
fn a_running_replica_is_audited_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let group = Group::start(dir.path(), 3, 5);
    for nonce in 0..12 {
        group.transfer(nonce);
    }
    group.next_epoch();
    let agreed = group.agreed(1);
    let genesis = dir.path().join("genesis.json").display().to_string();
    let follower = (group.leader() + 1) % 3;
    let url = &group.urls[follower];

    let output = morsa(&["coord", "audit", "--json", "--url", url, "--genesis", &genesis]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["state_hash"].as_str(), Some(agreed.state_hash.as_str()));
    assert_eq!(report["state_compared"], true);
    assert!(report["entries"].as_u64().unwrap() >= 12, "{report}");
    let head = events(&group, follower)
        .last()
        .map(|record| record.hash.iter().map(|byte| format!("{byte:02x}")).collect::<String>());
    assert_eq!(report["event_head"].as_str(), head.as_deref());

    // Audited against another deployment's genesis: refused, naming the genesis.
    let other = dir.path().join("other-genesis.json");
    let user = morsa_core::AccountKey::from_seed([9; 32]);
    std::fs::write(&other, serde_json::to_vec(&common::coord_genesis("another-chain", &user)).unwrap())
        .unwrap();
    let output = morsa(&["coord", "audit", "--url", url, "--genesis", &other.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("written for genesis"), "{}", stderr(&output));

    // A replica serving an event its log did not produce: refused, naming the event.
    let (proxy, runtime) = tampering_proxy(url.clone(), 0);
    let output = morsa(&["coord", "audit", "--url", &proxy, "--genesis", &genesis]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("event 0 as served"), "{}", stderr(&output));
    drop(runtime);
}

#[test]
fn without_a_quorum_a_membership_change_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut group = Group::start(dir.path(), 3, 1000);
    group.transfer(0);
    group.agreed(0);
    let leader = group.leader();
    let survivor = (leader + 1) % 3;
    group.kill(leader);
    group.kill((leader + 2) % 3);

    let token = token_file(dir.path());
    let removed = (leader + 1).to_string();
    let output = morsa(&[
        "coord",
        "remove-replica",
        "--coordinator",
        &group.urls[survivor],
        "--admin-token-file",
        &token,
        "--id",
        &removed,
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no_quorum"), "{}", stderr(&output));
    assert_eq!(members(&group, survivor), vec![(1, true), (2, true), (3, true)]);
}
