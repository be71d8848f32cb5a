//! Gathering recovery symbols from peers for many target slivers at once.
//!
//! Each round asks every peer involved ONE batched request (split only past
//! [`MAX_RECOVERY_BATCH`] items) for all the targets assigned to it. A target is assigned to the
//! best-ranked peers not asked yet until the shards they hold cover the symbols it still needs,
//! so a target normally costs one symbol per needed source plus the overshoot of the last peer:
//! about one sliver. Targets left short (a peer failed, did not hold the blob, or ran out of
//! answer budget) are assigned to the next peers in the following round, until none is left.
//!
//! Every symbol is checked for its shape and that its source is a sliver of a shard its sender
//! holds; with proofs, also against its proof. A sender of bad symbols is suspected.

use std::collections::HashSet;
use std::sync::Arc;

use morsa_api::client::ClientError;
use morsa_api::node::{
    MAX_RECOVERY_BATCH, NodeErrorCode, RecoveryBatchQuery, RecoveryBatchRequest, RecoveryBatchResponse,
    RecoveryItem, RecoveryOutcome,
};
use morsa_core::NodeId;
use redstuff::{RecoverySymbol, SliverType, SymbolBlock, SymbolRef, VerifiedMetadata};
use tokio::task::JoinSet;

use crate::blocking::{Background, Priority};
use crate::heal::peers::{Peer, Peers};
use crate::heal::repair_queue::Missing;

/// Times a peer may answer `over_budget` for one target before it is given up for it. Nodes
/// build answers of up to 8 MiB by default (`max_recovery_answer_bytes`), a quarter of what a
/// client accepts: a full batch may take several rounds from the same peer.
const MAX_OVER_BUDGET: u8 = 8;

/// Bytes of an answer's item besides its symbols (blob ID, target, type, tags and lengths),
/// rounded up: part of a round's estimate.
const ITEM_OVERHEAD: u64 = 64;

/// One sliver to rebuild and the symbols gathered for it.
#[derive(Debug)]
pub struct Want {
    /// The sliver.
    pub target: Missing,
    /// Its type.
    pub kind: SliverType,
    /// Its sliver index.
    pub index: u16,
    /// Its blob's metadata.
    pub metadata: Arc<VerifiedMetadata>,
    /// Symbols of distinct sources needed: `ks` for a primary sliver, `kp` for a secondary one.
    pub needed: usize,
    /// Symbols gathered one by one (this node's own, and peers' answers in lists), of distinct
    /// sources.
    pub symbols: Vec<RecoverySymbol>,
    /// The sender of each of `symbols` (`None`: this node).
    pub senders: Vec<Option<NodeId>>,
    /// Peers' answers without proofs as blocks, each bringing at least one source not held
    /// before it (a block's other symbols are left in it and skipped when rebuilding).
    pub blocks: Vec<SymbolBlock>,
    /// Distinct sources held, in `symbols` and `blocks`.
    have: usize,
    /// Peers asked.
    pub asked: HashSet<NodeId>,
    /// Peers that did not answer with symbols (failed, refused, or do not hold the blob).
    pub silent: HashSet<NodeId>,
    over_budget: u8,
    /// Whether a symbol of each source index is in `symbols` (a lookup, not a search: a
    /// primary target takes hundreds of symbols).
    held: Vec<bool>,
}

impl Want {
    /// A target with `local` symbols from this node's own slivers.
    pub fn new(
        target: Missing,
        kind: SliverType,
        index: u16,
        metadata: Arc<VerifiedMetadata>,
        local: Vec<RecoverySymbol>,
    ) -> Self {
        let needed = match kind {
            SliverType::Primary => metadata.config().ks(),
            SliverType::Secondary => metadata.config().kp(),
        };
        let mut want = Self {
            target,
            kind,
            index,
            needed,
            symbols: Vec::new(),
            senders: Vec::new(),
            blocks: Vec::new(),
            have: 0,
            asked: HashSet::new(),
            silent: HashSet::new(),
            over_budget: 0,
            held: vec![false; metadata.config().n_shards()],
            metadata,
        };
        for symbol in local {
            want.add(symbol, None);
        }
        want
    }

    /// Whether enough symbols are in.
    pub fn is_complete(&self) -> bool {
        self.have >= self.needed
    }

    /// Distinct sources held.
    pub fn sources_held(&self) -> usize {
        self.have
    }

    /// Every symbol held, by reference: those taken one by one, then the blocks' (a source may
    /// come twice; a rebuild takes the first).
    pub fn cells(&self) -> Vec<SymbolRef<'_>> {
        let s = usize::from(self.metadata.symbol_size());
        let mut cells: Vec<SymbolRef<'_>> = self.symbols.iter().map(RecoverySymbol::cell).collect();
        for block in &self.blocks {
            cells.extend(block.symbols(s).expect("blocks were checked against the symbol size"));
        }
        cells
    }

    /// Marks `source` held; whether it is new.
    fn hold(&mut self, source: u16) -> bool {
        let Some(held) = self.held.get_mut(usize::from(source)) else { return false };
        let new = !std::mem::replace(held, true);
        self.have += usize::from(new);
        new
    }

    fn add(&mut self, symbol: RecoverySymbol, sender: Option<NodeId>) {
        if self.hold(symbol.source_index) {
            self.symbols.push(symbol);
            self.senders.push(sender);
        }
    }

    /// Drops every symbol from peers and forgets whom it asked: to start again with proofs.
    pub fn keep_local(&mut self) {
        let (symbols, senders) = std::mem::take(&mut self.symbols)
            .into_iter()
            .zip(std::mem::take(&mut self.senders))
            .filter(|(_, sender)| sender.is_none())
            .unzip();
        self.symbols = symbols;
        self.senders = senders;
        self.blocks.clear();
        self.held.fill(false);
        for symbol in &self.symbols {
            self.held[usize::from(symbol.source_index)] = true;
        }
        self.have = self.symbols.len();
        self.asked.clear();
        self.over_budget = 0;
    }

    /// The source indices `peer` may send symbols from towards this target: its slivers of the
    /// other type.
    fn sources_of(&self, peer: &Peer) -> HashSet<u16> {
        let n = self.metadata.config().n_shards();
        let placement = self.target.blob_id.placement(n);
        peer.shards
            .iter()
            .filter_map(|shard| {
                let pair = placement.pair_for_shard(usize::from(*shard));
                let index = match self.kind.orthogonal() {
                    SliverType::Primary => pair,
                    SliverType::Secondary => redstuff::secondary_index_of_pair(pair, n),
                };
                u16::try_from(index).ok()
            })
            .collect()
    }

    /// Takes `peer`'s block of symbols without proofs; returns whether it was bad (cut at
    /// another symbol size, a symbol from a sliver the peer does not hold, or sent when proofs
    /// were asked for), and then takes none of it.
    fn absorb_block(&mut self, peer: &Peer, block: SymbolBlock, proofs: bool) -> bool {
        let allowed = self.sources_of(peer);
        let size = usize::from(self.metadata.symbol_size());
        let fits = !proofs
            && block.symbols(size).is_some()
            && block.source_indices.iter().all(|source| allowed.contains(source));
        if !fits {
            return true;
        }
        let mut new = false;
        for source in &block.source_indices {
            new |= self.hold(*source);
        }
        if new {
            self.blocks.push(block);
        }
        false
    }

    /// Takes `peer`'s symbols; returns whether any was bad.
    fn absorb(&mut self, peer: &Peer, symbols: Vec<RecoverySymbol>, proofs: bool) -> bool {
        let allowed = self.sources_of(peer);
        let size = usize::from(self.metadata.symbol_size());
        let mut bad = false;
        for symbol in symbols {
            let fits = symbol.symbol.len() == size && allowed.contains(&symbol.source_index);
            let proven = !proofs
                || self.metadata.verify_recovery_symbol(self.kind, usize::from(self.index), &symbol).is_ok();
            if fits && proven {
                self.add(symbol, Some(peer.node_id));
            } else {
                bad = true;
            }
        }
        bad
    }
}

/// What a gathering cost and found.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Bytes of the BCS answers received.
    pub fetched_bytes: u64,
    /// Peers that sent bad symbols.
    pub bad_peers: HashSet<NodeId>,
    /// Peers whose symbols all checked out against their proofs.
    pub good_peers: HashSet<NodeId>,
}

type Answer = (usize, Vec<usize>, Result<RecoveryBatchResponse, ClientError>);

/// Gathers symbols for `wants` from `peers` (best first), with or without proofs. Calls
/// `before_round` with an estimate of each round's bytes before sending it (the throttle), and
/// again with what the answers took beyond it, if anything, once they are in. The answers are
/// checked on `checking`'s pool at its priority.
pub async fn gather<F, Fut>(
    wants: &mut Vec<Want>,
    peers: &[Arc<Peer>],
    stats: &Arc<Peers>,
    proofs: bool,
    checking: (&Background, Priority),
    mut before_round: F,
) -> Gathered
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut gathered = Gathered::default();
    // A rebuild a read waits for is asked to be answered at the peers' normal priority, not as
    // their background work.
    let query = RecoveryBatchQuery { proofs, blocks: !proofs, waiting: checking.1 == Priority::Serving };
    for _round in 0..peers.len() + usize::from(MAX_OVER_BUDGET) + 1 {
        // Per peer: the targets it is asked for, each with the most symbols it should send.
        let mut plan: Vec<Vec<(usize, Option<u16>)>> = vec![Vec::new(); peers.len()];
        let mut estimate = 0u64;
        for (position, want) in wants.iter_mut().enumerate() {
            let mut cover = want.sources_held();
            for (slot, peer) in peers.iter().enumerate() {
                if cover >= want.needed {
                    break;
                }
                if want.asked.insert(peer.node_id) {
                    // The last peer needed sends only what is still missing, not all it holds.
                    let short = want.needed - cover;
                    let most =
                        (short < peer.shards.len()).then(|| morsa_core::convert::saturating_u16(short));
                    plan[slot].push((position, most));
                    cover += peer.shards.len();
                    let per_symbol = u64::from(want.metadata.symbol_size()) + if proofs { 400 } else { 8 };
                    let symbols = most.map_or(peer.shards.len(), usize::from).min(peer.shards.len());
                    estimate += ITEM_OVERHEAD + per_symbol * morsa_core::convert::saturating_u64(symbols);
                }
            }
        }
        if plan.iter().all(Vec::is_empty) {
            break;
        }
        before_round(estimate).await;
        let mut calls: JoinSet<Answer> = JoinSet::new();
        for (slot, assigned) in plan.into_iter().enumerate() {
            for chunk in assigned.chunks(MAX_RECOVERY_BATCH) {
                let items = chunk
                    .iter()
                    .map(|(position, most)| {
                        let want = &wants[*position];
                        RecoveryItem {
                            blob_id: want.target.blob_id,
                            target_sliver: want.index,
                            target_type: want.kind,
                            max_symbols: *most,
                        }
                    })
                    .collect();
                let request = RecoveryBatchRequest { items };
                let chunk: Vec<usize> = chunk.iter().map(|(position, _)| *position).collect();
                let (peer, stats) = (Arc::clone(&peers[slot]), Arc::clone(stats));
                calls.spawn(async move {
                    let call = stats.start(&peer.node_id);
                    let answer = peer.client.recovery_batch(&request, &query).await;
                    call.finish(answer.is_ok());
                    (slot, chunk, answer)
                });
            }
        }
        let mut answers = Vec::new();
        while let Some(answer) = calls.join_next().await {
            if let Ok(answer) = answer {
                answers.push(answer);
            }
        }
        // Checking proofs is CPU work: off the async threads.
        let taken = std::mem::take(wants);
        let peers_owned: Vec<Arc<Peer>> = peers.to_vec();
        let (pool, priority) = checking;
        let absorbed = pool
            .run_at(priority, move || {
                let mut taken = taken;
                let round = absorb_all(&mut taken, &peers_owned, answers, proofs);
                Ok((taken, round))
            })
            .await;
        let Ok((taken, round)) = absorbed else {
            tracing::error!("checking recovery symbols panicked");
            break;
        };
        *wants = taken;
        // Answers longer than estimated (error texts, tiny symbols) are charged now, so the
        // next round waits them out: every byte fetched is paid for.
        if round.fetched_bytes > estimate {
            before_round(round.fetched_bytes - estimate).await;
        }
        gathered.fetched_bytes += round.fetched_bytes;
        for peer in &round.bad_peers {
            stats.suspect(peer);
        }
        for peer in round.good_peers.difference(&round.bad_peers) {
            stats.vouch(peer);
        }
        gathered.bad_peers.extend(round.bad_peers);
    }
    gathered
}

fn absorb_all(wants: &mut [Want], peers: &[Arc<Peer>], answers: Vec<Answer>, proofs: bool) -> Gathered {
    let mut round = Gathered::default();
    for (slot, positions, answer) in answers {
        let peer = &peers[slot];
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(node = %peer.node_id, %error, "a peer did not answer a recovery batch");
                for position in positions {
                    wants[position].silent.insert(peer.node_id);
                }
                continue;
            }
        };
        round.fetched_bytes += morsa_core::convert::saturating_u64(response.encoded_len());
        for (position, item) in positions.into_iter().zip(response.items) {
            let want = &mut wants[position];
            match item.outcome {
                RecoveryOutcome::Symbols(symbols) => {
                    let sent = !symbols.is_empty();
                    if want.absorb(peer, symbols, proofs) {
                        round.bad_peers.insert(peer.node_id);
                    } else if proofs && sent {
                        round.good_peers.insert(peer.node_id);
                    }
                }
                RecoveryOutcome::Block(block) => {
                    if want.absorb_block(peer, block, proofs) {
                        round.bad_peers.insert(peer.node_id);
                    }
                }
                RecoveryOutcome::Error(body)
                    if body.code == NodeErrorCode::OverBudget.as_str()
                        && want.over_budget < MAX_OVER_BUDGET =>
                {
                    want.over_budget += 1;
                    want.asked.remove(&peer.node_id);
                }
                RecoveryOutcome::Error(_) => {
                    want.silent.insert(peer.node_id);
                }
            }
        }
    }
    round
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use morsa_api::ErrorBody;
    use morsa_api::client::NodeClient;
    use morsa_api::node::{RecoveryBatchItem, routes};
    use morsa_store::SliverKind;
    use redstuff::EncodingConfig;
    use redstuff::merkle::MerkleProof;

    use super::*;

    const N: u16 = 10;

    /// A stand-in peer on 127.0.0.1 answering recovery batches with `answer`; it counts the
    /// requests and the bytes it sent.
    struct StandIn {
        requests: AtomicU64,
        sent_bytes: AtomicU64,
    }

    async fn stand_in(
        member: u8,
        shards: Vec<u16>,
        answer: impl Fn(&RecoveryItem, &[u16]) -> RecoveryOutcome + Send + Sync + 'static,
    ) -> (Arc<StandIn>, Arc<Peer>) {
        let counts = Arc::new(StandIn { requests: AtomicU64::new(0), sent_bytes: AtomicU64::new(0) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (state, held, answer) = (Arc::clone(&counts), shards.clone(), Arc::new(answer));
        let app = axum::Router::new().route(
            routes::RECOVERY_SYMBOLS_BATCH,
            axum::routing::post(move |body: axum::body::Bytes| async move {
                let request: RecoveryBatchRequest = serde_json::from_slice(&body).unwrap();
                let items = request
                    .items
                    .iter()
                    .map(|item| RecoveryBatchItem {
                        blob_id: item.blob_id,
                        target_sliver: item.target_sliver,
                        target_type: item.target_type,
                        outcome: answer(item, &held),
                    })
                    .collect();
                let bytes = redstuff::wire::to_bcs(&RecoveryBatchResponse { items });
                state.requests.fetch_add(1, Ordering::SeqCst);
                state.sent_bytes.fetch_add(u64::try_from(bytes.len()).unwrap(), Ordering::SeqCst);
                bytes
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = NodeClient::new(&url, config()).unwrap();
        let peer = Peer { node_id: NodeId([member; 32]), member: u16::from(member), shards, client };
        (counts, Arc::new(peer))
    }

    fn config() -> EncodingConfig {
        EncodingConfig::new(N).unwrap()
    }

    /// Answers checked on a blocking thread, as for a read's rebuild.
    fn serving() -> (&'static Background, Priority) {
        static OFF: std::sync::LazyLock<Background> = std::sync::LazyLock::new(|| Background::new(0));
        (&OFF, Priority::Serving)
    }

    fn peers_stats() -> Arc<Peers> {
        Arc::new(Peers::new(NodeId([0; 32]), config(), Duration::from_secs(10)))
    }

    /// A want for `kind` sliver `index` of a blob of `len` bytes, nothing held locally.
    fn want(len: usize, kind: SliverType, index: u16) -> Want {
        let data: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let encoded = redstuff::encode(config(), &data).unwrap();
        let store_kind = match kind {
            SliverType::Primary => SliverKind::Primary,
            SliverType::Secondary => SliverKind::Secondary,
        };
        let target = Missing { blob_id: *encoded.metadata.blob_id(), shard: 0, kind: store_kind };
        Want::new(target, kind, index, Arc::new(encoded.metadata), Vec::new())
    }

    /// Honest-looking symbols (right size, a source the peer holds; proofless): one per held
    /// shard, at most `max_symbols`.
    fn symbols(symbol_size: u16) -> impl Fn(&RecoveryItem, &[u16]) -> RecoveryOutcome {
        move |item, held| {
            let n = usize::from(N);
            let sources = held.iter().map(|shard| {
                let pair = item.blob_id.pair_for_shard(usize::from(*shard), n);
                let index = match item.target_type.orthogonal() {
                    SliverType::Primary => pair,
                    SliverType::Secondary => redstuff::secondary_index_of_pair(pair, n),
                };
                RecoverySymbol {
                    source_index: u16::try_from(index).unwrap(),
                    symbol: vec![7; usize::from(symbol_size)],
                    proof: MerkleProof { path: Vec::new() },
                }
            });
            let most = item.max_symbols.map_or(usize::MAX, usize::from);
            RecoveryOutcome::Symbols(sources.take(most).collect())
        }
    }

    #[tokio::test]
    async fn a_peer_that_keeps_answering_over_budget_is_asked_a_bounded_number_of_times() {
        let over_budget = |_: &RecoveryItem, _: &[u16]| {
            RecoveryOutcome::Error(ErrorBody::new(NodeErrorCode::OverBudget.as_str(), "no room"))
        };
        let (counts, peer) = stand_in(1, (1..N).collect(), over_budget).await;
        let mut wants = vec![want(10_000, SliverType::Primary, 3)];
        gather(&mut wants, &[Arc::clone(&peer)], &peers_stats(), false, serving(), |_| async {}).await;
        assert_eq!(
            counts.requests.load(Ordering::SeqCst),
            1 + u64::from(MAX_OVER_BUDGET),
            "asked once, then again after each of MAX_OVER_BUDGET over_budget answers"
        );
        assert!(wants[0].silent.contains(&peer.node_id), "then given up for this target");
        assert!(!wants[0].is_complete());
    }

    #[tokio::test]
    async fn every_byte_peers_send_is_charged_to_the_throttle() {
        // Three peers of three shards each (shard 0 is this node's), asked after one that
        // answers every item with a long error (longer than any estimate of it); targets of
        // both kinds in blobs from tiny (per-item overhead matters most) to large.
        let holdings = [vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]];
        let refusal = |_: &RecoveryItem, _: &[u16]| {
            RecoveryOutcome::Error(ErrorBody::new("not_stored", "this node lost the blob; ".repeat(20)))
        };
        for (len, kinds) in [(100, 4), (5_000, 4), (300_000, 2)] {
            let mut wants: Vec<Want> = (0..kinds)
                .map(|i| {
                    let kind = if i % 2 == 0 { SliverType::Primary } else { SliverType::Secondary };
                    want(len, kind, u16::try_from(i).unwrap())
                })
                .collect();
            let symbol_size = wants[0].metadata.symbol_size();
            let (refuser, first) = stand_in(9, vec![1, 2, 3, 4, 5], refusal).await;
            let mut peers = vec![first];
            let mut standins = vec![refuser];
            for (member, shards) in holdings.iter().enumerate() {
                let (counts, peer) =
                    stand_in(u8::try_from(member + 1).unwrap(), shards.clone(), symbols(symbol_size)).await;
                standins.push(counts);
                peers.push(peer);
            }
            let reserved = Arc::new(Mutex::new(Vec::new()));
            let rounds = Arc::clone(&reserved);
            let gathered = gather(&mut wants, &peers, &peers_stats(), false, serving(), move |bytes| {
                rounds.lock().unwrap().push(bytes);
                async {}
            })
            .await;
            assert!(wants.iter().all(Want::is_complete), "every target got its symbols");
            let reserved: u64 = reserved.lock().unwrap().iter().sum();
            let sent: u64 = standins.iter().map(|counts| counts.sent_bytes.load(Ordering::SeqCst)).sum();
            assert_eq!(gathered.fetched_bytes, sent, "the node counts what the peers sent");
            assert!(sent <= reserved, "{len}-byte blob: peers sent {sent} bytes, {reserved} charged");
        }
    }
}
