//! The committee of an epoch: which storage node holds which shards, and with what BLS key it
//! signs. A node's weight is the number of shards it holds; quorums are counted in shards.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::bls::BlsPublicKey;
use crate::hex_bytes::hex_newtype;
use crate::index::{Epoch, ShardIndex};

mod certificate;

pub use certificate::{Certificate, CertificateError, Threshold};

/// A storage node's identity: the BLAKE2b-256 hash of its BLS public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub [u8; 32]);
hex_newtype!(NodeId, 32, "a node ID");

impl NodeId {
    /// The ID of the node whose BLS public key is `key`: BLAKE2b-256 of the 48 key bytes.
    pub fn from_public_key(key: &BlsPublicKey) -> NodeId {
        let digest = blake2b_simd::Params::new().hash_length(32).hash(&key.0);
        NodeId(digest.as_bytes().try_into().expect("the digest length was set to 32"))
    }
}

/// One storage node of a committee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeMember {
    /// The node's ID.
    pub node_id: NodeId,
    /// The key the node signs confirmations and attestations with (its proof of possession was
    /// checked when it registered).
    pub public_key: BlsPublicKey,
    /// Where clients and other nodes reach the node's HTTP API.
    pub address: String,
    /// The shards the node holds this epoch.
    pub shards: Vec<ShardIndex>,
}

/// The storage nodes of one epoch and their shards. Members are referred to by their index
/// in `members` (certificates name their signers so).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committee {
    /// The epoch this committee serves.
    pub epoch: Epoch,
    /// The number of shards, `n`.
    pub n_shards: u16,
    /// The nodes, in the order certificates index them.
    pub members: Vec<CommitteeMember>,
}

/// Why a committee is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitteeError {
    /// A committee must have at least one shard.
    #[error("the committee has no shards")]
    NoShards,
    /// Certificates name signers by a `u16` index, so there can be at most 65,536 members.
    #[error("the committee has {members} members, more than the 65536 a certificate can index")]
    TooManyMembers {
        /// How many members there are.
        members: usize,
    },
    /// A member lists a shard index that is not below `n_shards`.
    #[error("member {member} holds {shard}, but the committee has only {n_shards} shards")]
    ShardOutOfRange {
        /// The member's index.
        member: usize,
        /// The shard.
        shard: ShardIndex,
        /// The number of shards.
        n_shards: u16,
    },
    /// A shard is listed twice, by two members or twice by one.
    #[error("{shard} is held by member {first} and again by member {second}")]
    ShardOwnedTwice {
        /// The shard.
        shard: ShardIndex,
        /// The first member listing it.
        first: usize,
        /// The next member listing it (may equal `first`).
        second: usize,
    },
    /// No member holds a shard.
    #[error("{shard} is held by no member")]
    ShardUnowned {
        /// The first shard without an owner.
        shard: ShardIndex,
    },
    /// Two members have the same node ID.
    #[error("members {first} and {second} have the same node ID {node_id}")]
    DuplicateNodeId {
        /// The node ID.
        node_id: NodeId,
        /// The first member with it.
        first: usize,
        /// The second member with it.
        second: usize,
    },
    /// Two members have the same public key: one signature would count for both.
    #[error("members {first} and {second} have the same public key")]
    DuplicatePublicKey {
        /// The first member with it.
        first: usize,
        /// The second member with it.
        second: usize,
    },
}

impl Committee {
    /// Checks that every shard `0..n` is held by exactly one member, and that node IDs and
    /// public keys are distinct. Other methods assume a valid committee.
    pub fn validate(&self) -> Result<(), CommitteeError> {
        if self.n_shards == 0 {
            return Err(CommitteeError::NoShards);
        }
        if self.members.len() > usize::from(u16::MAX) + 1 {
            return Err(CommitteeError::TooManyMembers { members: self.members.len() });
        }
        let mut owners: Vec<Option<usize>> = vec![None; usize::from(self.n_shards)];
        let mut node_ids = HashMap::with_capacity(self.members.len());
        let mut public_keys = HashMap::with_capacity(self.members.len());
        for (member, details) in self.members.iter().enumerate() {
            if let Some(first) = node_ids.insert(details.node_id, member) {
                let node_id = details.node_id;
                return Err(CommitteeError::DuplicateNodeId { node_id, first, second: member });
            }
            if let Some(first) = public_keys.insert(details.public_key, member) {
                return Err(CommitteeError::DuplicatePublicKey { first, second: member });
            }
            for &shard in &details.shards {
                let n_shards = self.n_shards;
                let owner = owners.get_mut(usize::from(shard.0)).ok_or(CommitteeError::ShardOutOfRange {
                    member,
                    shard,
                    n_shards,
                })?;
                if let Some(first) = owner.replace(member) {
                    return Err(CommitteeError::ShardOwnedTwice { shard, first, second: member });
                }
            }
        }
        match owners.iter().position(Option::is_none) {
            Some(shard) => {
                let shard = ShardIndex(u16::try_from(shard).expect("shard is below n_shards, a u16"));
                Err(CommitteeError::ShardUnowned { shard })
            }
            None => Ok(()),
        }
    }

    /// The index of the member holding `shard`, if any.
    pub fn shard_owner(&self, shard: ShardIndex) -> Option<usize> {
        self.members.iter().position(|member| member.shards.contains(&shard))
    }

    /// The number of shards member `member` holds (0 for an index past the end).
    pub fn weight(&self, member: usize) -> usize {
        self.members.get(member).map_or(0, |member| member.shards.len())
    }

    /// The index of the member with node ID `node`, if any.
    pub fn member_by_node(&self, node: &NodeId) -> Option<usize> {
        self.members.iter().position(|member| member.node_id == *node)
    }
}

#[cfg(test)]
mod tests;
