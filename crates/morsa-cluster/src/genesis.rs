//! The genesis of a local cluster: equal stake per node, room to spare, one rich user.

use std::net::SocketAddr;

use morsa_coord::{Genesis, GenesisAccount, GenesisNode};
use morsa_core::AccountId;
use morsa_node::keys::Registration;

/// The chain ID of every local cluster.
pub const CHAIN_ID: &str = "morsa-local";
/// Stake of each node: equal, so shards are spread evenly.
pub const NODE_STAKE: u64 = 1_000;
/// Encoded bytes each node offers (1 TiB: more than a laptop will ever fill).
pub const NODE_CAPACITY: u64 = 1 << 40;
/// The user account's balance: enough for any experiment at price 1.
pub const USER_BALANCE: u64 = 1_000_000_000_000_000;
/// How many epochs ahead storage can be bought.
pub const MAX_EPOCHS_AHEAD: u32 = 1_000;

/// A node of a local genesis: its registration, where it is reached, who operates it.
#[derive(Debug, Clone, Copy)]
pub struct LocalNode<'a> {
    /// Its key and proof of possession.
    pub registration: &'a Registration,
    /// Where it is reached.
    pub address: SocketAddr,
    /// Its operator's account (a key per node, in `nodeI.operator.key`, keeps them distinct).
    pub operator: AccountId,
}

/// The genesis for `nodes`, spread over `zones` zones ([`zone_name`]), `n_shards` shards, and
/// the user `user` funded with [`USER_BALANCE`].
pub fn local_genesis(
    n_shards: u16,
    epoch_duration_ms: u64,
    genesis_time_ms: u64,
    nodes: &[LocalNode<'_>],
    user: AccountId,
    zones: usize,
) -> Genesis {
    let nodes = nodes
        .iter()
        .enumerate()
        .map(|(index, node)| GenesisNode {
            public_key: node.registration.public_key,
            proof_of_possession: node.registration.proof_of_possession.clone(),
            address: node.address.to_string(),
            stake: NODE_STAKE,
            capacity: NODE_CAPACITY,
            operator: node.operator,
            zone: zone_name(index, zones),
        })
        .collect();
    Genesis {
        chain_id: CHAIN_ID.into(),
        n_shards,
        epoch_duration_ms,
        genesis_time_ms,
        storage_price_per_mib_epoch: 1,
        write_price_per_mib: 1,
        max_epochs_ahead: MAX_EPOCHS_AHEAD,
        max_shards_per_node: n_shards,
        nodes,
        accounts: vec![GenesisAccount { id: user, balance: USER_BALANCE }],
        node_rules: morsa_coord::NodeRules::local(),
    }
}

/// The zone of node `index` when a cluster's nodes are spread over `zones` zones, round
/// robin; none (a zone of its own) if `zones` is 0.
pub fn zone_name(index: usize, zones: usize) -> String {
    index.checked_rem(zones).map(|zone| format!("zone-{zone}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use morsa_core::{AccountKey, BlsSecretKey};

    use super::*;

    #[test]
    fn the_genesis_is_valid_and_spreads_shards_evenly() {
        let registrations: Vec<_> =
            (0..4).map(|_| morsa_node::keys::registration(&BlsSecretKey::generate())).collect();
        let addresses: Vec<SocketAddr> =
            (0..4).map(|i| SocketAddr::from(([127, 0, 0, 1], 9000 + i))).collect();
        let user = AccountKey::from_seed([1; 32]).id();
        let nodes: Vec<LocalNode<'_>> = (0..4)
            .map(|i| LocalNode {
                registration: &registrations[i],
                address: addresses[i],
                operator: AccountKey::from_seed([10 + u8::try_from(i).unwrap(); 32]).id(),
            })
            .collect();
        let genesis = local_genesis(12, 3_600_000, 1, &nodes, user, 0);
        assert_eq!(genesis.nodes[3].zone, "");
        let state = genesis.initial_state().unwrap();
        let counts: Vec<usize> = state.committee.members.iter().map(|m| m.shards.len()).collect();
        assert_eq!(counts, [3, 3, 3, 3]);
        assert_eq!(state.accounts[&user].balance, USER_BALANCE);
        assert_eq!(genesis.nodes[2].address, "127.0.0.1:9002");
        // Over three zones, zone-0 holds nodes 0 and 3; no zone can stay within f = 3 of 12,
        // and the best committee keeps every zone to 4.
        let zoned = local_genesis(12, 3_600_000, 1, &nodes, user, 3);
        assert_eq!(
            zoned.nodes.iter().map(|node| node.zone.as_str()).collect::<Vec<_>>(),
            ["zone-0", "zone-1", "zone-2", "zone-0"]
        );
        let info = morsa_coord::domains::domains_info(&zoned.initial_state().unwrap());
        assert!(info.zones.iter().all(|zone| zone.shards == 4), "{info:?}");
        assert!(info.warning.is_some());
    }
}
