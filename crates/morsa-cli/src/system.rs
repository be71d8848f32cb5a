//! `morsa info` and `morsa health`: the system and every node, as a person or a script
//! wants to see them.

use serde_json::json;

use crate::blobs::{ConfigArg, bytes, runtime};

/// Runs `morsa info`.
pub fn info(common: &ConfigArg) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = common.connect().await?;
        let (system, committee) = (client.system().await?, client.committee().await?);
        let account = client.coordinator().account(&client.account()).await.ok();
        // Older coordinators have no challenges: shown as off.
        let challenges = client.coordinator().challenge_outcomes().await.ok();
        if common.json {
            let mut committee = serde_json::to_value(&committee)?;
            add_challenge_outcomes(&mut committee, challenges.as_ref());
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "system": system,
                    "committee": committee,
                    "challenges": challenges,
                    "account": account,
                }))?
            );
            return Ok(());
        }
        let encoding = client.encoding();
        outln!("chain {}, {} ({} ms per epoch)", system.chain_id, system.epoch, system.epoch_duration_ms);
        outln!(
            "shards {} (f = {}, kp = {}, ks = {}); largest blob {}; chunks of {}",
            system.n_shards,
            encoding.f(),
            encoding.kp(),
            encoding.ks(),
            bytes(encoding.max_blob_size()),
            bytes(client.effective_chunk_size())
        );
        outln!(
            "capacity {}, used this epoch {}; price {} per MiB-epoch + {} per MiB written",
            bytes(system.capacity),
            bytes(system.used),
            system.storage_price_per_mib_epoch,
            system.write_price_per_mib
        );
        outln!("committee of {} ({} nodes):", committee.current.epoch, committee.current.members.len());
        let challenges_on = challenges.as_ref().filter(|info| info.rounds_per_epoch > 0);
        for member in &committee.current.members {
            outln!("  {} {} shards  {}", member.address, member.shards.len(), member.node_id);
            if let Some(info) = challenges_on {
                outln!("      challenges: {}", challenge_line(info, &member.node_id));
            }
        }
        if let Some(domains) = &system.domains {
            print_domains(domains, system.n_shards);
        }
        print_nodes(&system.nodes);
        match account {
            Some(account) => {
                outln!("account {} balance {} nonce {}", account.id, account.balance, account.nonce);
                for pending in &account.withdrawals {
                    let when = if pending.payable {
                        "now".to_string()
                    } else {
                        format!("after the change to {}", pending.epoch)
                    };
                    outln!(
                        "  pending withdrawal {} from node {}: withdrawable {when}",
                        pending.amount,
                        pending.node
                    );
                }
            }
            None => outln!("account {} (unknown to the coordinator)", client.account()),
        }
        Ok(())
    })
}

/// Adds to each member of the current committee in `committee` (JSON of `CommitteeInfo`)
/// its challenge outcome of the last completed epoch: `challenges_passed`,
/// `challenges_failed` (caught and declared) and `penalties` (stake slashed), `null` when the
/// coordinator has no outcome for it (challenges off, or no epoch settled yet).
fn add_challenge_outcomes(
    committee: &mut serde_json::Value,
    info: Option<&morsa_api::coord::ChallengesInfo>,
) {
    let Some(members) = committee.pointer_mut("/current/members").and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for member in members {
        let node = member
            .get("node_id")
            .and_then(|id| serde_json::from_value::<morsa_core::NodeId>(id.clone()).ok());
        let outcome = info
            .zip(node)
            .and_then(|(info, node)| info.last_epoch.iter().find(|outcome| outcome.node == node));
        if let Some(fields) = member.as_object_mut() {
            fields.insert("challenges_passed".into(), json!(outcome.map(|outcome| outcome.passed)));
            fields.insert(
                "challenges_failed".into(),
                json!(outcome.map(|outcome| outcome.failed.saturating_add(outcome.declared))),
            );
            fields.insert("penalties".into(), json!(outcome.map(|outcome| outcome.penalty)));
        }
    }
}

/// One member's challenge outcome of the last completed epoch, for `morsa info`.
fn challenge_line(info: &morsa_api::coord::ChallengesInfo, node: &morsa_core::NodeId) -> String {
    match info.last_epoch.iter().find(|outcome| outcome.node == *node) {
        Some(outcome) => format!(
            "{}: passed {}, failed {} (declared {}), φ {:.2}%, reward {}, withheld {}, penalty {}{}",
            outcome.epoch,
            outcome.passed,
            outcome.failed.saturating_add(outcome.declared),
            outcome.declared,
            morsa_core::convert::lossy_f64(outcome.phi_ppm) / 1e4,
            outcome.reward,
            outcome.withheld,
            outcome.penalty,
            if outcome.removed { ", LEFT OUT of the next committee" } else { "" },
        ),
        None => "no epoch settled yet".to_owned(),
    }
}

/// Shards per zone and per operator, and the worst-case loss: the largest zone's share
/// against f.
fn print_domains(domains: &morsa_api::coord::DomainsInfo, n_shards: u16) {
    let list = |domains: &[morsa_api::coord::DomainShards]| {
        domains
            .iter()
            .map(|domain| format!("{} {}", domain.name, domain.shards))
            .collect::<Vec<_>>()
            .join(", ")
    };
    outln!("shards per zone: {}", list(&domains.zones));
    outln!("shards per operator: {}", list(&domains.operators));
    if let Some(largest) = domains.zones.first() {
        let verdict = if largest.shards <= domains.f { "within f" } else { "MORE than f" };
        outln!(
            "worst-case loss: zone {} with {} of {n_shards} shards ({verdict} = {})",
            largest.name,
            largest.shards,
            domains.f
        );
    }
    if let Some(warning) = &domains.warning {
        outln!("warning: {warning}");
    }
}

/// Every registered node: stake, commission (and the rate set for the next epoch), zone.
fn print_nodes(nodes: &[morsa_api::coord::NodeSummary]) {
    use crate::staking::Commission;
    if nodes.is_empty() {
        return;
    }
    outln!("registered nodes ({}):", nodes.len());
    for node in nodes {
        let next = node
            .next_commission_ppm
            .map(|rate| format!(" ({} from the next epoch)", Commission(rate)))
            .unwrap_or_default();
        let zone = if node.zone.is_empty() { "(none)" } else { node.zone.as_str() };
        outln!(
            "  {} stake {} commission {}{next} zone {zone} operator {}{}",
            node.node_id,
            node.stake,
            Commission(node.commission_ppm),
            node.operator,
            if node.retired { " RETIRED" } else { "" }
        );
    }
}

/// Options of `morsa health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[command(flatten)]
    common: ConfigArg,
    /// Show what reads know of each node instead: the inputs of its score (latency and its
    /// spread, bandwidth, requests in flight, the node's own load figure, samples), with one
    /// health probe each timed into them, and the score and patience of a 1 MiB sliver.
    #[arg(long)]
    latency: bool,
}

/// The answer size `health --latency` scores: a 1 MiB sliver.
const SCORED_BYTES: u64 = 1 << 20;

/// `morsa health --latency`.
fn latency(common: &ConfigArg) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = common.connect().await?;
        let nodes = client.probe_node_scores(SCORED_BYTES).await?;
        if common.json {
            let nodes: Vec<_> = nodes
                .iter()
                .map(|(node, answered)| {
                    json!({ "address": node.address, "zone": node.zone, "answered": answered, "score": node.inputs })
                })
                .collect();
            outln!("{}", serde_json::to_string_pretty(&json!({ "scored_bytes": SCORED_BYTES, "nodes": nodes }))?);
            return Ok(());
        }
        outln!(
            "{:<22} {:<12} {:>17} {:>6} {:>9} {:>9} {:>10} {:>6} {:>6} {:>7} {:>10} {:>10}",
            "node",
            "zone",
            "prior",
            "state",
            "latency",
            "spread",
            "bandwidth",
            "queue",
            "load",
            "samples",
            "score 1MiB",
            "patience"
        );
        for (node, answered) in &nodes {
            let inputs = &node.inputs;
            let bandwidth =
                inputs.bandwidth_mbit.map_or_else(|| "?".to_string(), |mbit| format!("{mbit:.0} Mb/s"));
            let prior = format!("{} {:.0}ms", inputs.prior.describe(), inputs.prior.latency_ms());
            outln!(
                "{:<22} {:<12} {:>17} {:>6} {:>7.1}ms {:>7.1}ms {:>10} {:>6} {:>6.1} {:>7} {:>8.1}ms {:>8.1}ms",
                node.address,
                node.zone.as_deref().unwrap_or("-"),
                prior,
                if *answered { "up" } else { "DOWN" },
                inputs.latency_ms,
                inputs.spread_ms,
                bandwidth,
                inputs.in_flight,
                inputs.reported_load,
                inputs.samples,
                inputs.score_ms,
                inputs.patience_ms,
            );
        }
        outln!(
            "(zone: as its operator declared it; prior: what the latency is assumed from this client's zone \
             (client.toml `zone`) while samples is 0; estimates are kept between runs in the cache)"
        );
        Ok(())
    })
}

/// The shards of `health` that are not simply `active` (shard migration), if any, and what was
/// pulled and served.
fn print_moving_shards(health: &morsa_api::node::NodeHealth) {
    use morsa_api::node::ShardStatus;
    let moving: Vec<String> = health
        .shards
        .iter()
        .filter(|shard| shard.status != ShardStatus::Active)
        .map(|shard| {
            let state = match shard.status {
                ShardStatus::Active => "active",
                ShardStatus::ActiveSync => "active_sync",
                ShardStatus::ActiveRecover => "active_recover",
                ShardStatus::LockedToMove => "locked_to_move",
            };
            format!("{} {state}", shard.shard.0)
        })
        .collect();
    if moving.is_empty() {
        return;
    }
    let migration = &health.migration;
    outln!(
        "{:<22}       moving shards: {}; pulled {} pages ({}), served {} pages",
        "",
        moving.join(", "),
        migration.pages_pulled_total,
        bytes(migration.bytes_pulled),
        migration.pages_served,
    );
}

/// Runs `morsa health`; fails if a node does not answer.
pub fn health(args: &HealthArgs) -> anyhow::Result<()> {
    if args.latency {
        return latency(&args.common);
    }
    let common = &args.common;
    runtime()?.block_on(async {
        let client = common.connect().await?;
        let reports = client.health().await?;
        let down = reports.iter().filter(|report| report.health.is_err()).count();
        let replicas = coordinator_replicas(&client).await;
        let availability = client.coordinator().availability().await;
        if common.json {
            let nodes: Vec<_> = reports
                .iter()
                .map(|report| {
                    json!({
                        "address": report.address,
                        "shards": report.shards,
                        "latency_ms": report.latency.as_secs_f64() * 1e3,
                        "health": report.health.as_ref().ok(),
                        "error": report.health.as_ref().err(),
                    })
                })
                .collect();
            let coordinators: Vec<_> = replicas
                .iter()
                .map(|(member, role)| {
                    json!({ "id": member.id, "url": member.url, "voter": member.voter, "role": role.as_ref().ok(), "error": role.as_ref().err() })
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "nodes": nodes,
                    "down": down,
                    "coordinators": coordinators,
                    "availability": availability.as_ref().ok(),
                    "availability_error": availability.as_ref().err().map(ToString::to_string),
                }))?
            );
        } else {
            for (member, role) in &replicas {
                match role {
                    Ok(role) => outln!("coordinator {} {:<22} {role}", member.id, member.url),
                    Err(error) => outln!("coordinator {} {:<22} DOWN: {error}", member.id, member.url),
                }
            }
            match &availability {
                Ok(view) => print_availability(view),
                Err(error) => outln!("availability margin unknown: {error}"),
            }
            for report in &reports {
                match &report.health {
                    Ok(health) => {
                        let stored: u64 = health.shards.iter().map(|shard| shard.bytes).sum();
                        outln!(
                            "{:<22} up    {} shards {:>3} blobs {:>5} stored {:>10} events {} ({:.1} ms)",
                            report.address,
                            health.epoch,
                            health.shards.len(),
                            health.blobs,
                            bytes(stored),
                            health.event_cursor,
                            report.latency.as_secs_f64() * 1e3
                        );
                        let repair = &health.repair;
                        outln!(
                            "{:<22}       repair: {}{} queued ({}), {} rebuilt ({}) from {} fetched, {} on demand; \
                             scrubbed {}, {} corrupt{}",
                            "",
                            if repair.paused { "PAUSED, " } else { "" },
                            repair.backlog_slivers,
                            bytes(repair.backlog_bytes),
                            repair.rebuilt_slivers,
                            bytes(repair.rebuilt_bytes),
                            bytes(repair.fetched_bytes),
                            repair.on_demand_slivers,
                            bytes(repair.scrubbed_bytes),
                            repair.corrupt_slivers,
                            repair
                                .lowest_margin
                                .map(|margin| format!("; lowest margin {margin} shards"))
                                .unwrap_or_default(),
                        );
                        if let Some(disk) = &health.disk {
                            let short = disk.free_bytes < disk.reserve_bytes;
                            outln!(
                                "{:<22}       disk: {} free of {}, {} kept free{}",
                                "",
                                bytes(disk.free_bytes),
                                bytes(disk.total_bytes),
                                bytes(disk.reserve_bytes),
                                if short { "; SHORT OF SPACE: uploads refused" } else { "" }
                            );
                        }
                        print_moving_shards(health);
                    }
                    Err(error) => outln!("{:<22} DOWN  {} shards: {error}", report.address, report.shards),
                }
            }
        }
        if down > 0 {
            anyhow::bail!("{down} of {} nodes did not answer", reports.len());
        }
        Ok(())
    })
}

/// The system-wide availability margin, its histogram and the blobs most at risk.
fn print_availability(view: &morsa_api::coord::AvailabilityView) {
    let margin = view
        .min_margin_shards
        .map_or_else(|| "none (no certified blob)".to_owned(), |m| format!("{m} shards"));
    outln!(
        "availability: lowest margin {margin} of {} (kp = {} of {} shards), {} certified blobs, {} of {} nodes reporting{}",
        view.full_margin_shards,
        view.needed_shards,
        view.n_shards,
        view.certified_blobs,
        view.nodes.iter().filter(|node| node.reporting).count(),
        view.nodes.len(),
        if view.unreachable_shards.is_empty() {
            String::new()
        } else {
            format!("; shards of silent nodes {:?}", view.unreachable_shards)
        }
    );
    let histogram: Vec<String> =
        view.histogram.iter().map(|count| format!("{}: {}", count.margin_shards, count.blobs)).collect();
    outln!("  blobs by margin  {}", histogram.join(", "));
    for blob in &view.at_risk {
        outln!(
            "  at risk  {}  margin {}  lost shards {:?}",
            blob.blob_id,
            blob.margin_shards,
            blob.lost_shards
        );
    }
}

/// Every coordinator replica the configured coordinator knows of, with the role each reports
/// (or why it did not answer); empty if the coordinator does not replicate.
async fn coordinator_replicas(
    client: &morsa_client::Client,
) -> Vec<(morsa_api::coord::ReplicaMember, Result<String, String>)> {
    let Some(replica) = client.system().await.ok().and_then(|system| system.replica) else {
        return Vec::new();
    };
    let mut answers = Vec::new();
    for member in replica.replicas {
        let role = match morsa_api::client::CoordClient::new(&member.url) {
            Ok(coordinator) => match coordinator.system().await {
                Ok(system) => system
                    .replica
                    .map_or_else(|| Err("no replica information".to_owned()), |info| Ok(info.role)),
                Err(error) => Err(error.to_string()),
            },
            Err(error) => Err(error.to_string()),
        };
        answers.push((member, role));
    }
    answers
}
