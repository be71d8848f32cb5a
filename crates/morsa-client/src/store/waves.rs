//! The uploads of one blob in two waves: nodes that together make a quorum get their slivers
//! first; the others start once the blob is certified, or as soon as one of the first fails
//! or stalls. On a busy machine this certifies after about two thirds of the work instead of
//! all of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use morsa_core::{BlsSignature, Threshold};
use tokio::task::JoinSet;

use super::background::{Background, Uploads};
use super::shares::Encoding;
use super::upload::{Common, Upload};
use crate::NodeFailure;
use crate::nodes::NodeSet;

/// Shortest wait for a stalled first wave before the other nodes are started.
const STALL_MIN: Duration = Duration::from_millis(100);

/// What the nodes answered by the time a quorum confirmed (or every node had answered).
pub(super) struct Confirmed {
    /// Shards whose nodes confirmed.
    pub(super) weight: usize,
    /// Shards needed for a certificate.
    pub(super) needed: usize,
    /// Each confirming member's index and signature.
    pub(super) parts: Vec<(u16, BlsSignature)>,
    /// The nodes that failed.
    pub(super) failures: Vec<NodeFailure>,
}

/// The uploads of one blob, started wave by wave.
pub(super) struct Waves {
    /// What every upload shares.
    common: Common,
    /// The whole encoding, each node's share taken from it when its upload starts.
    encoding: Arc<Encoding>,
    uploads: Uploads,
    /// Members not started yet.
    rest: Vec<usize>,
}

impl Waves {
    /// Starts the first wave: the fastest nodes that make a quorum.
    pub(super) fn start(common: Common, encoding: Arc<Encoding>) -> Self {
        let n = usize::from(common.nodes.committee().n_shards);
        let (first, rest) = first_wave(&common.nodes, Threshold::Quorum.min_weight(n));
        let mut waves = Waves { common, encoding, uploads: JoinSet::new(), rest };
        for member in first {
            waves.spawn(member);
        }
        waves
    }

    fn spawn(&mut self, member: usize) {
        let pairs = self.common.nodes.pairs_of(&self.encoding.blob_id(), member);
        let upload = Upload {
            common: self.common.clone(),
            member,
            metadata: Arc::clone(self.encoding.metadata()),
            share: self.encoding.share(pairs),
        };
        self.uploads.spawn(upload.run());
    }

    fn start_rest(&mut self) {
        for member in std::mem::take(&mut self.rest) {
            self.spawn(member);
        }
    }

    /// Waits until nodes holding a quorum of shards have confirmed, or every started node
    /// has answered; starts the second wave early when a node fails or the first wave
    /// stalls. `confirmed` is told each new total weight.
    pub(super) async fn until_quorum(&mut self, confirmed: impl Fn(usize, usize)) -> Confirmed {
        let nodes = Arc::clone(&self.common.nodes);
        let needed = Threshold::Quorum.min_weight(usize::from(nodes.committee().n_shards));
        let trouble = Arc::clone(&self.common.trouble);
        let started = Instant::now();
        let mut start_rest_at: Option<tokio::time::Instant> = None;
        let mut done = Confirmed { weight: 0, needed, parts: Vec::new(), failures: Vec::new() };
        while done.weight < needed {
            if !self.rest.is_empty() && (self.uploads.is_empty() || !done.failures.is_empty()) {
                self.start_rest();
            }
            let waiting = !self.rest.is_empty();
            let stall = async {
                match start_rest_at {
                    Some(at) if waiting => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                result = self.uploads.join_next() => match result {
                    Some(result) => result,
                    None => break,
                },
                () = stall, if waiting => {
                    self.start_rest();
                    continue;
                }
                () = trouble.notified(), if waiting => {
                    self.start_rest();
                    continue;
                }
            };
            match result.map_err(|error| format!("upload task failed: {error}")) {
                Ok(Ok((member, signature))) => {
                    done.weight += nodes.weight(member);
                    done.parts.push((morsa_core::convert::saturating_u16(member), signature));
                    confirmed(done.weight, needed);
                    // The first wave finishes together: if it has not made the quorum a
                    // quarter of its time after its first node, a node is stalling.
                    start_rest_at.get_or_insert_with(|| {
                        tokio::time::Instant::now() + (started.elapsed() / 4).max(STALL_MIN)
                    });
                }
                Ok(Err(failure)) => done.failures.push(failure),
                Err(reason) => done.failures.push(NodeFailure { node: "?".into(), shards: 0, reason }),
            }
        }
        done
    }

    /// Starts the nodes not started yet (after certification every node gets its slivers)
    /// and hands the running uploads over, with the members that have not answered. The
    /// waves' hold on the whole encoding ends here: the uploads still running hold their own
    /// nodes' pairs only.
    pub(super) fn into_background(mut self, confirmed: &Confirmed) -> Background {
        self.start_rest();
        let nodes = Arc::clone(&self.common.nodes);
        let answered = |member: usize| {
            confirmed.parts.iter().any(|(index, _)| usize::from(*index) == member)
                || confirmed
                    .failures
                    .iter()
                    .any(|failure| failure.node == nodes.committee().members[member].address)
        };
        let pending = (0..nodes.len()).filter(|member| !answered(*member)).collect();
        Background { uploads: self.uploads, nodes, pending }
    }
}

/// The nodes to upload to first: the fastest ones whose shards make a quorum (`needed`); and
/// the others.
fn first_wave(nodes: &NodeSet, needed: usize) -> (Vec<usize>, Vec<usize>) {
    let mut order = nodes.by_latency();
    let mut weight = 0;
    let split = order
        .iter()
        .position(|member| {
            weight += nodes.weight(*member);
            weight >= needed
        })
        .map_or(order.len(), |last| last + 1);
    let rest = order.split_off(split);
    (order, rest)
}

#[cfg(test)]
mod tests {
    use morsa_api::client::ClientOptions;
    use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ShardIndex};

    use super::*;

    #[test]
    fn the_first_wave_is_the_fewest_fastest_nodes_that_make_a_quorum() {
        // Ten nodes of ten shards: a quorum of n = 100 is 67 shards, so seven nodes.
        let members = (0..10u8)
            .map(|index| {
                let key = BlsSecretKey::from_seed([index + 1; 32]);
                CommitteeMember {
                    node_id: NodeId::from_public_key(&key.public_key()),
                    public_key: key.public_key(),
                    address: format!("127.0.0.1:{}", 1000 + u16::from(index)),
                    shards: (u16::from(index) * 10..u16::from(index) * 10 + 10).map(ShardIndex).collect(),
                }
            })
            .collect();
        let committee = Committee { epoch: Epoch(1), n_shards: 100, members };
        let config = redstuff::EncodingConfig::new(100).unwrap();
        let options = ClientOptions::default();
        let nodes = NodeSet::new(
            committee,
            &Default::default(),
            config,
            &options.http_client().unwrap(),
            options,
            &Default::default(),
            Default::default(),
        )
        .unwrap();
        nodes.record_failure(0);
        nodes.record_latency(9, Duration::from_micros(10));
        let needed = Threshold::Quorum.min_weight(100);
        let (first, rest) = first_wave(&nodes, needed);
        assert_eq!(first.len(), 7);
        assert_eq!(first[0], 9, "the fastest node first");
        assert!(rest.contains(&0), "a failing node last");
        assert_eq!(first.len() + rest.len(), 10);
        let (all, none) = first_wave(&nodes, 101);
        assert_eq!((all.len(), none.len()), (10, 0));
    }
}
