//! Reading when no coordinator answers: the committee comes from the cache or from the nodes
//! (see `committee_vote`), and a blob's certification from the nodes that hold it. Every
//! sliver is still checked against the blob ID, so a wrong answer here can make a read fail,
//! never return wrong data.
//!
//! Once the coordinator was found unreachable, reads skip it for [`COORDINATOR_RETRY`] rather
//! than waiting for its timeout again; writes always ask it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use morsa_api::client::{ClientError as ApiError, ClientOptions, NodeClient};
use morsa_api::coord::BlobStatusKind;
use morsa_api::node::NodeBlobState;
use morsa_core::quorum::is_validity;
use redstuff::BlobId;

use crate::committee_cache::{CommitteeCache, KnownCommittee};
use crate::committee_vote::{agreed_committee, agreed_zones};
use crate::nodes::NodeSet;
use crate::{Client, Error};

/// How long reads go without asking the coordinator after it was unreachable.
pub(crate) const COORDINATOR_RETRY: Duration = Duration::from_secs(30);

/// Timeout of asking one node for its committee.
const COMMITTEE_TIMEOUT: Duration = Duration::from_secs(5);

/// The committee to read with when the coordinator is `unreachable`: the one that a quorum
/// of the voters agree on (the cached committee's members by their shards, else the
/// configured `node_urls`), else the cached one as it is. The agreed one is cached, with the
/// zones every node that named it gave alike.
pub(crate) async fn committee_from_nodes(
    cache: &CommitteeCache,
    node_urls: &[String],
    http: &reqwest::Client,
    unreachable: ApiError,
) -> Result<KnownCommittee, Error> {
    let cached = cache.load();
    let (urls, weights): (Vec<String>, Vec<usize>) = match &cached {
        Some(known) => {
            known.committee.members.iter().map(|member| (member.address.clone(), member.shards.len())).unzip()
        }
        None => node_urls.iter().map(|url| (url.clone(), 1)).unzip(),
    };
    if urls.is_empty() {
        return Err(Error::NoCommittee {
            coordinator: unreachable,
            reason: "no committee is cached and the configuration lists no node_urls to ask".into(),
        });
    }
    let options = ClientOptions { timeout: COMMITTEE_TIMEOUT, ..ClientOptions::default() };
    let asked = urls.iter().map(|url| async move {
        NodeClient::committee_at(http, url, options).await.map(|answer| (answer.current, answer.zones))
    });
    let answers: Vec<Option<_>> = futures_util::future::join_all(asked)
        .await
        .into_iter()
        .zip(&urls)
        .map(|(answer, url)| {
            answer.inspect_err(|error| tracing::debug!(node = %url, %error, "no committee from node")).ok()
        })
        .collect();
    let committees: Vec<_> =
        answers.iter().map(|answer| answer.as_ref().map(|(committee, _)| committee.clone())).collect();
    if let Some(committee) = agreed_committee(&weights, &committees) {
        let zones = agreed_zones(&committee, &answers);
        let known = KnownCommittee::new(committee, &zones);
        cache.save(&known);
        return Ok(known);
    }
    let answered = answers.iter().filter(|answer| answer.is_some()).count();
    match cached {
        Some(committee) => {
            tracing::warn!(
                answered,
                asked = urls.len(),
                "the nodes do not agree on a committee; using the cached one"
            );
            Ok(committee)
        }
        None => Err(Error::NoCommittee {
            coordinator: unreachable,
            reason: format!(
                "no quorum of the {} node_urls agrees on a committee ({answered} answered)",
                urls.len()
            ),
        }),
    }
}

impl Client {
    /// Whether reads should not ask the coordinator now: it was unreachable recently.
    pub(crate) fn coordinator_skipped(&self) -> bool {
        self.coordinator_down_since().is_some_and(|since| since.elapsed() < COORDINATOR_RETRY)
    }

    /// Notes how the last call to the coordinator went.
    pub(crate) fn coordinator_reached(&self, reached: bool) {
        *self.coordinator_down.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            (!reached).then(Instant::now);
    }

    fn coordinator_down_since(&self) -> Option<Instant> {
        *self.coordinator_down.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks with the nodes that `blob_id` is certified: nodes holding at least `f + 1`
    /// shards (so at least one honest node) must say so. Nodes that say it is invalid as
    /// much make it [`Error::Inconsistent`]; otherwise it is not available, with the state
    /// the most shards reported.
    pub(crate) async fn certified_by_nodes(&self, nodes: &NodeSet, blob_id: &BlobId) -> Result<(), Error> {
        let n_shards = self.encoding.n_shards();
        let mut asking: FuturesUnordered<_> = (0..nodes.len())
            .filter(|member| nodes.readable(*member))
            .map(|member| async move { (member, nodes.client(member).blob_status(blob_id).await) })
            .collect();
        let mut weights = [0usize; 4];
        let mut unanswered = n_shards;
        while let Some((member, answer)) = asking.next().await {
            let weight = nodes.weight(member);
            unanswered = unanswered.saturating_sub(weight);
            let Ok(status) = answer else { continue };
            weights[state_index(status.status)] += weight;
            if is_validity(weights[state_index(NodeBlobState::Certified)], n_shards) {
                return Ok(());
            }
            if is_validity(weights[state_index(NodeBlobState::Invalid)], n_shards) {
                return Err(Error::Inconsistent(*blob_id));
            }
            if !is_validity(weights[state_index(NodeBlobState::Certified)] + unanswered, n_shards) {
                break;
            }
        }
        let said = [
            (BlobStatusKind::Nonexistent, weights[0]),
            (BlobStatusKind::Registered, weights[1]),
            (BlobStatusKind::Invalid, weights[3]),
        ];
        let status = said
            .into_iter()
            .max_by_key(|(_, weight)| *weight)
            .map_or(BlobStatusKind::Nonexistent, |(kind, _)| kind);
        Err(Error::NotAvailable { blob_id: *blob_id, status })
    }
}

fn state_index(state: NodeBlobState) -> usize {
    match state {
        NodeBlobState::Nonexistent => 0,
        NodeBlobState::Registered => 1,
        NodeBlobState::Certified => 2,
        NodeBlobState::Invalid => 3,
    }
}
