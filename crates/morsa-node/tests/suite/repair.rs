//! Self-healing across real HTTP servers of several nodes: blob sync rebuilds every missing
//! sliver at about one sliver of traffic each, reads of missing slivers are served at once, a
//! damaged sliver is found and repaired (and its blob declared lost to the coordinator
//! meanwhile), a lying peer is caught without poisoning the repair, and an inconsistently
//! encoded blob is proven, attested and reported.

use morsa_api::coord::NodeReportKind;
use morsa_core::Threshold;
use morsa_core::challenge::loss_declaration_message;
use morsa_node::RepairConfig;
use morsa_store::{SliverKind, SliverWrite};
use redstuff::wire::to_bcs;
use redstuff::{EncodedBlob, SliverType};

use crate::common;

use common::cluster::{Cluster, Mode, blob, pairs_of, test_repair};
use common::{N, config};

/// Node `member`'s stored slivers of `encoded` equal the genuine ones, every one of them.
fn holds_genuine(cluster: &Cluster, member: usize, encoded: &EncodedBlob) {
    let blob_id = *encoded.metadata.blob_id();
    let node = &cluster.members[member].node;
    for pair in pairs_of(cluster, member, &blob_id) {
        let genuine = &encoded.pairs[usize::from(pair)];
        assert_eq!(node.sliver_bytes(&blob_id, pair, SliverType::Primary).unwrap(), to_bcs(&genuine.primary));
        assert_eq!(
            node.sliver_bytes(&blob_id, pair, SliverType::Secondary).unwrap(),
            to_bcs(&genuine.secondary)
        );
    }
}

fn serve_all(count: usize, repair: RepairConfig) -> Vec<Mode> {
    vec![Mode::Serve(repair); count]
}

/// Five nodes of two shards each, background repair paused on node 0: only a read can bring
/// its missing slivers back.
async fn node_0_paused() -> Cluster {
    let mut modes = serve_all(5, test_repair());
    modes[0] = Mode::Serve(RepairConfig { paused: true, ..test_repair() });
    Cluster::start(&[2, 2, 2, 2, 2], &modes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_missing_everything_rebuilds_its_slivers_from_about_one_sliver_each() {
    let mut cluster = Cluster::start(&[2, 2, 2, 2, 2], &serve_all(5, test_repair())).await;
    let blobs = [blob(60_000, 1), blob(20_000, 2)];
    for encoded in &blobs {
        cluster.write(encoded, &[0]);
    }
    let health = cluster
        .wait_health(0, "node 0 to rebuild its slivers", |health| {
            health.repair.caught_up && health.repair.rebuilt_slivers == 8
        })
        .await;
    for encoded in &blobs {
        holds_genuine(&cluster, 0, encoded);
    }
    let repair = &health.repair;
    // Two slivers per shard, two shards, two blobs: eight rebuilt, nothing left.
    assert_eq!((repair.backlog_slivers, repair.in_flight_slivers, repair.failed_attempts), (0, 0, 0));
    let rebuilt: u64 = blobs
        .iter()
        .map(|encoded| {
            let pair = &encoded.pairs[0];
            2 * u64::try_from(to_bcs(&pair.primary).len() + to_bcs(&pair.secondary).len()).unwrap()
        })
        .sum();
    assert_eq!(repair.rebuilt_bytes, rebuilt);
    // About one sliver of symbols per rebuilt sliver: the peers asked hold just enough shards
    // (one symbol over for a primary sliver), and the optimistic path sends no proofs.
    assert!(repair.fetched_bytes >= rebuilt * 9 / 10, "{} fetched for {rebuilt}", repair.fetched_bytes);
    assert!(repair.fetched_bytes <= rebuilt * 5 / 4, "{} fetched for {rebuilt}", repair.fetched_bytes);
    // The same in the metrics, and the node now confirms the blob.
    let metrics = reqwest_text(&format!("http://{}/metrics", cluster.members[0].address)).await;
    assert!(metrics.contains("morsa_node_repair_caught_up 1"), "{metrics}");
    assert!(metrics.contains(&format!("morsa_node_repair_rebuilt_bytes_total {rebuilt}")));
    // Its background work ran on the low-priority pool (on by default).
    assert!(metrics.contains("morsa_node_background_nice 19"), "{metrics}");
    let jobs = metrics.lines().find_map(|line| line.strip_prefix("morsa_node_background_jobs_total "));
    assert!(jobs.is_some_and(|jobs| jobs.parse::<u64>().unwrap() > 0), "{metrics}");
    let blob_id = *blobs[0].metadata.blob_id();
    cluster.members[0].client.permanent_confirmation(&blob_id).await.unwrap();
}

/// A GET of `url`'s text.
async fn reqwest_text(url: &str) -> String {
    let (host, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_a_missing_sliver_rebuilds_it_at_once() {
    let mut cluster = node_0_paused().await;
    let encoded = blob(30_000, 3);
    let blob_id = *encoded.metadata.blob_id();
    cluster.write(&encoded, &[0]);
    let member = &cluster.members[0];
    let pair = pairs_of(&cluster, 0, &blob_id)[0];
    let symbol_size = encoded.metadata.symbol_size();
    let sliver = member.client.get_sliver(&blob_id, pair, SliverType::Secondary, symbol_size).await.unwrap();
    assert_eq!(sliver, encoded.pairs[usize::from(pair)].secondary);
    let health = cluster.health(0).await;
    assert!(health.repair.paused);
    assert_eq!((health.repair.on_demand_slivers, health.repair.rebuilt_slivers), (1, 1));
    // Symbols asked from slivers node 0 lacks: it rebuilds its two primaries, then answers.
    let target = redstuff::secondary_index_of_pair(usize::from((pair + 1) % N), usize::from(N));
    let target = u16::try_from(target).unwrap();
    let symbols =
        member.client.recovery_symbols(&blob_id, target, SliverType::Secondary, symbol_size).await.unwrap();
    assert_eq!(symbols.len(), 2);
    for symbol in &symbols {
        encoded.metadata.verify_recovery_symbol(SliverType::Secondary, usize::from(target), symbol).unwrap();
    }
    assert_eq!(cluster.health(0).await.repair.on_demand_slivers, 3);
    // Resumed (from this machine, so the admin route answers), background repair does the rest.
    let token_dir = tempfile::tempdir().unwrap();
    let token = morsa_node::AdminToken::create(token_dir.path()).unwrap();
    member.served.set_admin_token(token.clone());
    member.client.set_repair_paused(false, token.as_str()).await.unwrap();
    let health = cluster
        .wait_health(0, "the rest to be repaired", |health| health.repair.caught_up && !health.repair.paused)
        .await;
    assert_eq!(health.repair.rebuilt_slivers, 4);
    holds_genuine(&cluster, 0, &encoded);
    // Without the caller's address (not on loopback as far as the node knows): refused.
    let (status, _) = common::call(
        &member.served,
        axum::http::Request::post(morsa_api::node::routes::ADMIN_REPAIR_PAUSE)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, axum::http::StatusCode::FORBIDDEN);
    assert!(!cluster.health(0).await.repair.paused);
    // A sliver of a blob that is not certified is not rebuilt: it is simply not found.
    let uncertified = blob(1000, 4);
    let owned = pairs_of(&cluster, 0, uncertified.metadata.blob_id())[0];
    let code = member
        .client
        .get_sliver(
            uncertified.metadata.blob_id(),
            owned,
            SliverType::Primary,
            uncertified.metadata.symbol_size(),
        )
        .await
        .unwrap_err();
    assert_eq!(code.node_code(), Some(morsa_api::node::NodeErrorCode::NotFound), "{code}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_read_of_missing_slivers_rebuilds_them_and_answers_the_rest_in_place() {
    let mut cluster = node_0_paused().await;
    let encoded = blob(30_000, 5);
    let blob_id = *encoded.metadata.blob_id();
    cluster.write(&encoded, &[0]);
    let owned = pairs_of(&cluster, 0, &blob_id);
    let elsewhere = pairs_of(&cluster, 1, &blob_id)[0];
    // Node 0's two pairs with another node's between them.
    let asked = [owned[0], elsewhere, owned[1]];
    let member = &cluster.members[0];
    let symbol_size = encoded.metadata.symbol_size();
    for kind in [SliverType::Primary, SliverType::Secondary] {
        let answers = member.client.get_slivers(&blob_id, &asked, kind, symbol_size).await.unwrap();
        for (pair, answer) in asked.iter().zip(answers) {
            if *pair == elsewhere {
                let error = answer.unwrap_err();
                assert_eq!(error.node_code(), Some(morsa_api::node::NodeErrorCode::WrongShard), "{error}");
                continue;
            }
            let genuine = &encoded.pairs[usize::from(*pair)];
            let genuine = if kind == SliverType::Primary { &genuine.primary } else { &genuine.secondary };
            assert_eq!(&answer.unwrap(), genuine, "pair {pair} {kind}");
        }
    }
    let health = cluster.health(0).await;
    assert!(health.repair.paused);
    assert_eq!((health.repair.on_demand_slivers, health.repair.rebuilt_slivers), (4, 4));
    holds_genuine(&cluster, 0, &encoded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_stored_sliver_is_found_by_the_scrubber_and_repaired() {
    let scrubbing = RepairConfig { scrub_bytes_per_sec: 1 << 30, scrub_interval_ms: 50, ..test_repair() };
    let mut modes = serve_all(5, test_repair());
    modes[0] = Mode::Serve(scrubbing);
    let mut cluster = Cluster::start(&[2, 2, 2, 2, 2], &modes).await;
    let encoded = blob(30_000, 5);
    let blob_id = *encoded.metadata.blob_id();
    cluster.write(&encoded, &[]);
    // Overwrite one stored sliver with another pair's bytes (its checksum is fine; its hash is not).
    let node = &cluster.members[0].node;
    let pairs = pairs_of(&cluster, 0, &blob_id);
    let shard = u16::try_from(blob_id.shard_for_pair(usize::from(pairs[0]), usize::from(N))).unwrap();
    let wrong = to_bcs(&encoded.pairs[usize::from((pairs[0] + 1) % N)].primary);
    node.store()
        .put_slivers(&[SliverWrite { blob_id: blob_id.0, shard, kind: SliverKind::Primary, bytes: &wrong }])
        .unwrap();
    let health = cluster
        .wait_health(0, "the damaged sliver to be repaired", |health| {
            health.repair.corrupt_slivers == 1
                && health.repair.rebuilt_slivers == 1
                && health.repair.caught_up
        })
        .await;
    assert!(health.repair.scrubbed_slivers >= 4);
    holds_genuine(&cluster, 0, &encoded);
}

/// A read that finds a damaged sliver and is abandoned while rebuilding it (its client went
/// away; a hedge elsewhere won) still leaves it counted and queued: background repair rebuilds
/// it once peers answer, long before the next full scan would notice it missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_sliver_an_abandoned_read_found_is_counted_and_repaired_in_the_background() {
    let mut modes = vec![Mode::Held; 5];
    modes[0] = Mode::Serve(RepairConfig { peer_timeout_ms: 1_000, ..test_repair() });
    let mut cluster = Cluster::start(&[2, 2, 2, 2, 2], &modes).await;
    let encoded = blob(30_000, 6);
    let blob_id = *encoded.metadata.blob_id();
    cluster.write(&encoded, &[]);
    // Rot on node 0's disk: the record fails its checksum when read.
    let pair = pairs_of(&cluster, 0, &blob_id)[0];
    let shard = u16::try_from(blob_id.shard_for_pair(usize::from(pair), usize::from(N))).unwrap();
    assert!(cluster.members[0].node.store().damage_sliver(&blob_id.0, shard, SliverKind::Primary).unwrap());

    // The read runs in this task: dropping it cancels the node's handler where it waits.
    let path = morsa_api::node::sliver_path(&blob_id, pair, SliverType::Primary);
    let mut read = Box::pin(common::call(&cluster.members[0].served, common::get(&path)));
    tokio::select! {
        (status, _) = &mut read => panic!("the read finished ({status}) while every peer was held"),
        _ = cluster.wait_health(0, "the read to find the damaged sliver", |health| {
            health.repair.corrupt_slivers == 1
        }) => {}
    }
    drop(read);
    cluster.open_gate();
    let health = cluster
        .wait_health(0, "background repair to rebuild the sliver", |health| {
            health.repair.rebuilt_slivers == 1
        })
        .await;
    assert_eq!(
        (health.repair.corrupt_slivers, health.repair.on_demand_slivers),
        (1, 0),
        "{:?}",
        health.repair
    );
    holds_genuine(&cluster, 0, &encoded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_sliver_the_scrubber_finds_has_its_blob_declared_lost_while_it_waits_for_repair() {
    // Background repair crawls at one byte a second: the loss outlasts the test.
    let scrubbing = RepairConfig {
        scrub_bytes_per_sec: 1 << 30,
        scrub_interval_ms: 50,
        bandwidth_bytes_per_sec: 1,
        ..test_repair()
    };
    let mut modes = serve_all(5, test_repair());
    modes[0] = Mode::Serve(scrubbing);
    let mut cluster = Cluster::start(&[2, 2, 2, 2, 2], &modes).await;
    // Two blobs certified before the current epoch (challengeable), one certified in it.
    let encoded: Vec<EncodedBlob> = (0..3).map(|seed| blob(30_000, 20 + seed)).collect();
    for (index, written) in encoded.iter().enumerate() {
        cluster.register(written);
        cluster.store(written, &[]);
        if index < 2 {
            cluster.certify_before(written);
        } else {
            cluster.certify(written);
        }
    }
    // Node 0's first primary sliver of each is overwritten with another pair's bytes.
    let node = &cluster.members[0].node;
    for damaged in &encoded {
        let blob_id = *damaged.metadata.blob_id();
        let pair = pairs_of(&cluster, 0, &blob_id)[0];
        let shard = u16::try_from(blob_id.shard_for_pair(usize::from(pair), usize::from(N))).unwrap();
        let wrong = to_bcs(&damaged.pairs[usize::from((pair + 1) % N)].primary);
        let write = SliverWrite { blob_id: blob_id.0, shard, kind: SliverKind::Primary, bytes: &wrong };
        node.store().put_slivers(&[write]).unwrap();
    }
    let health = cluster
        .wait_health(0, "the two challengeable blobs to be declared lost", |health| {
            health.repair.corrupt_slivers == 3 && health.repair.losses_declared == 2
        })
        .await;
    assert_eq!(health.repair.rebuilt_slivers, 0, "repair had not rebuilt them: {:?}", health.repair);
    let member = &cluster.committee.members[0];
    let mut declared = Vec::new();
    for report in cluster.reports.lock().unwrap().iter() {
        let NodeReportKind::DeclareLoss { epoch, blob_ids } = &report.report else { continue };
        assert_eq!((report.node, *epoch), (member.node_id, cluster.committee.epoch));
        let message = loss_declaration_message(*epoch, &report.node, blob_ids);
        member.public_key.verify(&message, &report.signature).unwrap();
        declared.extend(blob_ids.iter().copied());
    }
    declared.sort();
    let mut expected: Vec<_> = encoded[..2].iter().map(|declared| *declared.metadata.blob_id()).collect();
    expected.sort();
    assert_eq!(declared, expected, "each challengeable blob declared once, the new one not at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_bad_symbols_is_caught_and_does_not_poison_the_repair() {
    // Node 1 (one shard) lies; without it exactly ks = 7 honest shards remain for node 0.
    let mut modes = serve_all(6, test_repair());
    modes[1] = Mode::Liar;
    let mut cluster = Cluster::start(&[2, 1, 2, 2, 2, 1], &modes).await;
    let encoded = blob(30_000, 6);
    cluster.write(&encoded, &[0]);
    let liar = cluster.committee.members[1].node_id;
    let health = cluster
        .wait_health(0, "node 0 to rebuild past the liar", |health| {
            health.repair.caught_up && health.repair.rebuilt_slivers == 4
        })
        .await;
    holds_genuine(&cluster, 0, &encoded);
    assert_eq!(health.repair.suspected_peers, [liar]);
    assert_eq!(health.repair.inconsistent_blobs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconsistently_encoded_blob_is_proven_attested_and_reported() {
    let mut cluster = Cluster::start(&[2, 2, 2, 2, 2], &serve_all(5, test_repair())).await;
    // A writer tampered with the primary sliver of a pair node 0 holds and committed to it.
    // (The tampering changes the blob ID and with it which shard holds the pair: try pairs until
    // node 0 holds the tampered one.)
    let encoded = (0..N)
        .find_map(|pair| {
            let mut encoded = blob(30_000, 7);
            encoded.pairs[usize::from(pair)].primary.symbols[0] ^= 1;
            let length = encoded.metadata.unencoded_length();
            encoded.metadata = redstuff::metadata_for_pairs(config(), length, &encoded.pairs).unwrap();
            pairs_of(&cluster, 0, encoded.metadata.blob_id()).contains(&pair).then_some(encoded)
        })
        .unwrap();
    let blob_id = *encoded.metadata.blob_id();
    cluster.write(&encoded, &[0]);
    cluster
        .wait_health(0, "the inconsistency to be found", |health| health.repair.inconsistent_blobs == 1)
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let report = loop {
        if let Some(report) = cluster.reports.lock().unwrap().first().cloned() {
            break report;
        }
        assert!(std::time::Instant::now() < deadline, "no invalid-blob report reached the coordinator");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(report.node, cluster.committee.members[0].node_id);
    let NodeReportKind::InvalidBlob { blob_id: reported, certificate } = &report.report else {
        panic!("{report:?}");
    };
    assert_eq!(*reported, blob_id);
    let message = morsa_core::invalid_blob_message(cluster.committee.epoch, &blob_id);
    cluster.committee.verify_certificate(certificate, &message, Threshold::Validity).unwrap();
    cluster.committee.members[0].public_key.verify(&message, &report.signature).unwrap();
    // Other peers attested too: node 0's own two shards are not validity weight.
    assert!(certificate.signers.len() >= 2);
}
