//! Which committee to believe when no coordinator answers: the one that voters holding a
//! quorum of the weight agree on. Pure; the asking is in `without_coordinator`.
//!
//! The voters and their weights come from what the client already trusts, never from the
//! answers: the members of its cached committee weighted by their shards, or, without a
//! cache, the configured node URLs with one vote each. A committee named by a minority (even
//! one that gives the liars every shard) is never chosen.

use morsa_api::coord::MemberZones;
use morsa_core::Committee;

/// The committee that voters holding a quorum (`3·weight > 2·total`) of the total weight
/// named, if any. `answers[i]` is voter `i`'s answer (none if it did not answer) and
/// `weights[i]` its weight.
pub(crate) fn agreed_committee(weights: &[usize], answers: &[Option<Committee>]) -> Option<Committee> {
    let total: usize = weights.iter().sum();
    let mut tallies: Vec<(&Committee, usize)> = Vec::new();
    for (weight, answer) in weights.iter().zip(answers) {
        let Some(answer) = answer else { continue };
        match tallies.iter_mut().find(|(committee, _)| *committee == answer) {
            Some((_, tally)) => *tally += weight,
            None => tallies.push((answer, *weight)),
        }
    }
    tallies
        .into_iter()
        .find(|(_, weight)| morsa_core::quorum::is_quorum(*weight, total))
        .map(|(committee, _)| committee.clone())
}

/// The zones of `committee`'s members that every answer naming `committee` gave alike (a
/// member whose zone the answers differ on, or that one of them leaves out, has none). Zones
/// are only a prior for choosing nodes, but a node should not be able to pull reads towards
/// itself alone by naming a zone for itself.
pub(crate) fn agreed_zones(
    committee: &Committee,
    answers: &[Option<(Committee, MemberZones)>],
) -> MemberZones {
    let mut naming = answers.iter().flatten().filter(|(named, _)| named == committee).map(|(_, zones)| zones);
    let Some(first) = naming.next() else { return MemberZones::default() };
    let mut agreed = first.for_committee(committee);
    for zones in naming {
        for member in &committee.members {
            if zones.of(&member.node_id) != agreed.of(&member.node_id) {
                agreed.declare(member.node_id, "");
            }
        }
    }
    agreed
}

#[cfg(test)]
mod tests {
    use morsa_core::{BlsSecretKey, CommitteeMember, Epoch, NodeId, ShardIndex};

    use super::*;

    fn committee(epoch: u32, addresses: &[&str]) -> Committee {
        let members = addresses
            .iter()
            .enumerate()
            .map(|(index, address)| {
                let key = BlsSecretKey::from_seed([u8::try_from(index).unwrap(); 32]);
                CommitteeMember {
                    node_id: NodeId::from_public_key(&key.public_key()),
                    public_key: key.public_key(),
                    address: (*address).into(),
                    shards: vec![ShardIndex(u16::try_from(index).unwrap())],
                }
            })
            .collect();
        Committee { epoch: Epoch(epoch), n_shards: u16::try_from(addresses.len()).unwrap(), members }
    }

    #[test]
    fn the_committee_a_quorum_names_wins_and_a_lying_minority_does_not() {
        let honest = committee(3, &["a", "b", "c", "d", "e"]);
        // Two liars name a committee that gives every shard to one of them.
        let forged = committee(9, &["liar"]);
        let answers = [
            Some(forged.clone()),
            Some(forged.clone()),
            Some(honest.clone()),
            Some(honest.clone()),
            Some(honest.clone()),
        ];
        // Equal weights: 3 of 5 is no quorum (3·3 < 2·5 + 1), so neither is believed.
        assert_eq!(agreed_committee(&[1; 5], &answers), None);
        // Weighted by the cached committee's shards: the honest three hold 6 of 8.
        assert_eq!(agreed_committee(&[1, 1, 2, 2, 2], &answers), Some(honest.clone()));
        // One liar among five voters, one silent: the honest four still win.
        let answers =
            [Some(forged.clone()), None, Some(honest.clone()), Some(honest.clone()), Some(honest.clone())];
        assert_eq!(agreed_committee(&[1; 5], &answers), None, "3 of 5 named it");
        let answers = [
            Some(forged),
            Some(honest.clone()),
            Some(honest.clone()),
            Some(honest.clone()),
            Some(honest.clone()),
        ];
        assert_eq!(agreed_committee(&[1; 5], &answers), Some(honest));
        // Nobody answered.
        assert_eq!(agreed_committee(&[1; 5], &[None, None, None, None, None]), None);
    }

    #[test]
    fn zones_are_those_every_answer_naming_the_committee_gives() {
        let named = committee(3, &["a", "b", "c"]);
        let ids: Vec<NodeId> = named.members.iter().map(|member| member.node_id).collect();
        let zones = |pairs: &[(usize, &str)]| {
            let mut zones = MemberZones::default();
            for (member, zone) in pairs {
                zones.declare(ids[*member], zone);
            }
            zones
        };
        let answers = [
            Some((named.clone(), zones(&[(0, "z1"), (1, "z2"), (2, "z1")]))),
            // A liar places itself (member 2) in the reader's zone; another committee's answer.
            Some((named.clone(), zones(&[(0, "z1"), (1, "z2"), (2, "z0")]))),
            Some((committee(9, &["liar"]), zones(&[(0, "z9")]))),
            None,
        ];
        let agreed = agreed_zones(&named, &answers);
        assert_eq!([0, 1, 2].map(|member| agreed.of(&ids[member])), [Some("z1"), Some("z2"), None]);
        assert!(agreed_zones(&committee(4, &["x"]), &answers).is_empty(), "nobody named it");
    }
}
