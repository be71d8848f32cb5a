//! How the current committee's shards spread over failure domains (zones and operators),
//! for `GET /v1/system` and `morsa info`: the worst-case loss is the largest domain's share,
//! against `f`.

use std::collections::BTreeMap;

use morsa_api::coord::{DomainShards, DomainsInfo};
use morsa_core::{Committee, NodeId};

use crate::apportion::max_faulty;
use crate::state::{Node, State};

/// The domains of `state`'s current committee, with a warning if one holds more than `f`.
pub fn domains_info(state: &State) -> DomainsInfo {
    let f = max_faulty(state.params.n_shards);
    let (zones, operators) = shards_by_domain(&state.nodes, &state.committee);
    let over = |kind: &str, domains: &[DomainShards]| {
        domains.first().filter(|largest| largest.shards > f).map(|largest| {
            format!(
                "{kind} {} holds {} of {} shards, more than f = {f}: losing it loses more than the code tolerates",
                largest.name, largest.shards, state.params.n_shards
            )
        })
    };
    let warnings: Vec<String> =
        [over("zone", &zones), over("operator", &operators)].into_iter().flatten().collect();
    let warning = (!warnings.is_empty()).then(|| {
        format!(
            "{}; declare zones (morsa node set-zone) or add nodes in other zones and of other operators",
            warnings.join("; ")
        )
    });
    DomainsInfo { f, zones, operators, warning }
}

/// Shards of `committee` per zone (a node without a zone under `(node ID)`) and per operator,
/// largest first.
pub fn shards_by_domain(
    nodes: &BTreeMap<NodeId, Node>,
    committee: &Committee,
) -> (Vec<DomainShards>, Vec<DomainShards>) {
    let mut zones: BTreeMap<String, u16> = BTreeMap::new();
    let mut operators: BTreeMap<String, u16> = BTreeMap::new();
    for member in &committee.members {
        let shards = u16::try_from(member.shards.len()).unwrap_or(u16::MAX);
        let node = nodes.get(&member.node_id);
        let zone = match node {
            Some(node) if !node.zone.is_empty() => node.zone.clone(),
            _ => format!("({})", member.node_id),
        };
        let count = zones.entry(zone).or_default();
        *count = count.saturating_add(shards);
        if let Some(node) = node {
            let count = operators.entry(node.operator.to_string()).or_default();
            *count = count.saturating_add(shards);
        }
    }
    (largest_first(zones), largest_first(operators))
}

fn largest_first(domains: BTreeMap<String, u16>) -> Vec<DomainShards> {
    let mut domains: Vec<DomainShards> =
        domains.into_iter().map(|(name, shards)| DomainShards { name, shards }).collect();
    domains.sort_by(|a, b| b.shards.cmp(&a.shards).then_with(|| a.name.cmp(&b.name)));
    domains
}
