//! Recovery symbols: what the node sends a peer that rebuilds a lost sliver.
//!
//! A target is named by its **sliver index** and type, as
//! [`VerifiedMetadata::rebuild_sliver`] takes it, never by its pair index. Towards primary
//! sliver `i` the node sends cell `i` of every secondary sliver it holds (proven at leaf `i` of
//! that sliver's tree); towards secondary sliver `j`, cell `j` of every primary sliver it holds.
//!
//! Answering means re-encoding each held sliver to all `n` cells and, for symbols with proofs,
//! building its Merkle tree ([`SliverExpansion`]): the CPU-heavy part. Without proofs only the
//! cells asked for are copied out of the encode, into one block per target
//! ([`SymbolBlock`]). A request expands each
//! held sliver once, even when a batch asks several targets of the same blob, and expands the
//! held slivers of a blob side by side in groups of at most 16 MiB of cells (small slivers
//! share their transforms), so its memory is one group plus its answer. A tree is also
//! checked against the metadata hash it must have (a free checksum): a stored sliver that fails
//! is logged and left out, since a peer would refuse its symbol anyway. Without proofs there is
//! no tree: the sliver was verified when it was stored, the store checks its checksum on every
//! read, and the rebuilder checks what it rebuilds and asks again with proofs on a mismatch.

use morsa_store::StoreError;
use redstuff::merkle::MerkleProof;
use redstuff::wire::{from_bcs, sliver_limit};
use redstuff::{
    BlobId, Proofs, RecoverySymbol, Sliver, SliverExpansion, SliverType, SymbolBlock, VerifiedMetadata,
};

use crate::error::NodeError;
use crate::node::{Node, kind_of};

impl Node {
    /// This node's recovery symbols towards sliver `target_sliver` (a sliver index, not a pair
    /// index) of `target_type`: one from each sliver of the other type it holds of `blob_id`, in
    /// the order of its shards, each proven at leaf `target_sliver` of its source's tree.
    ///
    /// Refuses targets not below `n`, blobs it has not seen registered, expired or invalid
    /// blobs, and blobs of which it holds no sliver of the source type.
    pub fn recovery_symbols(
        &self,
        blob_id: &BlobId,
        target_sliver: u16,
        target_type: SliverType,
    ) -> Result<Vec<RecoverySymbol>, NodeError> {
        let mut answers = self.recovery_symbols_towards(blob_id, &[target_sliver], target_type)?;
        Ok(answers.pop().expect("one answer per target"))
    }

    /// [`Node::recovery_symbols`] towards each of `targets` (sliver indices of `target_type`),
    /// expanding each held sliver once for all of them: what a node rebuilding many slivers of
    /// a blob takes from its own slivers.
    pub fn recovery_symbols_towards(
        &self,
        blob_id: &BlobId,
        targets: &[u16],
        target_type: SliverType,
    ) -> Result<Vec<Vec<RecoverySymbol>>, NodeError> {
        for target in targets {
            check_target(self, *target)?;
        }
        let sources = sources(self, blob_id, target_type.orthogonal())?;
        let targets: Vec<usize> = targets.iter().map(|target| usize::from(*target)).collect();
        symbols_towards(self, &sources, &targets, Proofs::Check)
    }
}

/// Refuses a target index that is not below `n`.
pub(super) fn check_target(node: &Node, target_sliver: u16) -> Result<(), NodeError> {
    let n = node.config().n_shards();
    if usize::from(target_sliver) >= n {
        return Err(NodeError::TargetOutOfRange { target: target_sliver, n_shards: n });
    }
    Ok(())
}

/// One held sliver that symbols come from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source {
    /// The shard it is stored under.
    shard: u16,
    /// Its sliver index.
    index: u16,
}

/// The slivers of one kind this node holds of one blob, with the blob's metadata.
pub(super) struct Sources {
    pub(super) blob_id: BlobId,
    pub(super) kind: SliverType,
    pub(super) metadata: VerifiedMetadata,
    pub(super) slivers: Vec<Source>,
}

/// Lists the `kind` slivers the node holds of `blob_id`, in the order of its shards.
pub(super) fn sources(node: &Node, blob_id: &BlobId, kind: SliverType) -> Result<Sources, NodeError> {
    node.require_live(blob_id)?;
    let metadata = node.verified_metadata(blob_id)?;
    let n = node.config().n_shards();
    let placement = blob_id.placement(n);
    let mut slivers = Vec::new();
    for shard in node.owned_shards() {
        if node.store().has_sliver(&blob_id.0, shard, kind_of(kind))? {
            let pair = placement.pair_for_shard(usize::from(shard));
            let index = match kind {
                SliverType::Primary => pair,
                SliverType::Secondary => redstuff::secondary_index_of_pair(pair, n),
            };
            slivers.push(Source { shard, index: u16::try_from(index).expect("sliver indices are below n") });
        }
    }
    if slivers.is_empty() {
        return Err(NodeError::NoSourceSlivers { blob_id: *blob_id, kind });
    }
    Ok(Sources { blob_id: *blob_id, kind, metadata, slivers })
}

/// Bytes of expanded cells a request holds at once: its sources are read and expanded in groups
/// of this size (all of a small blob's slivers in one group, a dozen of a 256 MiB blob's).
const EXPANSION_BYTES: usize = 16 << 20;

/// The symbols towards each of `targets` (indices below `n`), expanding each source once, with
/// or without proofs. Sources are expanded together in groups of at most [`EXPANSION_BYTES`]
/// of cells ([`SliverExpansion::unproven_many`]): small slivers share their transforms.
/// Without proofs they are [`blocks_towards`]' symbols one by one.
pub(super) fn symbols_towards(
    node: &Node,
    sources: &Sources,
    targets: &[usize],
    proofs: Proofs,
) -> Result<Vec<Vec<RecoverySymbol>>, NodeError> {
    if proofs == Proofs::Skip {
        let s = usize::from(sources.metadata.symbol_size());
        return Ok(blocks_towards(node, sources, targets)?
            .iter()
            .map(|block| {
                block
                    .symbols(s)
                    .expect("blocks are cut at the blob's symbol size")
                    .map(|symbol| RecoverySymbol {
                        source_index: symbol.source_index,
                        symbol: symbol.symbol.to_vec(),
                        proof: MerkleProof { path: Vec::new() },
                    })
                    .collect()
            })
            .collect());
    }
    let mut answers = vec![Vec::with_capacity(sources.slivers.len()); targets.len()];
    for group in sources.slivers.chunks(group_len(node, sources)) {
        for expansion in proven_group(node, sources, group)? {
            for (answer, target) in answers.iter_mut().zip(targets) {
                answer.push(expansion.recovery_symbol(*target).expect("targets are below n"));
            }
        }
    }
    Ok(answers)
}

/// The unproven symbols towards each of `targets` (indices below `n`), one block per target:
/// only the targets' cells are taken out of each group's encode
/// ([`SliverExpansion::append_unproven_blocks`]), since no tree needs the others. A sliver gone
/// is left out, a damaged one logged and left out, as [`proven_group`] does.
pub(super) fn blocks_towards(
    node: &Node,
    sources: &Sources,
    targets: &[usize],
) -> Result<Vec<SymbolBlock>, NodeError> {
    let Sources { blob_id, kind, metadata, .. } = sources;
    let s = usize::from(metadata.symbol_size());
    let mut blocks: Vec<SymbolBlock> =
        targets.iter().map(|_| SymbolBlock::with_capacity(sources.slivers.len(), s)).collect();
    for group in sources.slivers.chunks(group_len(node, sources)) {
        let read = read_group(node, sources, group)?;
        let slivers: Vec<&Sliver> = read.iter().map(|(_, sliver)| sliver).collect();
        let shapes = SliverExpansion::append_unproven_blocks(metadata, *kind, &slivers, targets, &mut blocks);
        for ((source, _), shape) in read.iter().zip(shapes) {
            if let Err(error) = shape {
                unusable(blob_id, *source, *kind, &error);
            }
        }
    }
    Ok(blocks)
}

/// Sources read and expanded at once: as many as fit [`EXPANSION_BYTES`] of cells, at least one.
fn group_len(node: &Node, sources: &Sources) -> usize {
    let expansion_bytes = node.config().n_shards() * usize::from(sources.metadata.symbol_size());
    (EXPANSION_BYTES / expansion_bytes.max(1)).max(1)
}

/// Reads the held slivers of `group` that are there and usable.
fn read_group(node: &Node, sources: &Sources, group: &[Source]) -> Result<Vec<(Source, Sliver)>, NodeError> {
    let mut read = Vec::with_capacity(group.len());
    for source in group {
        if let Some(sliver) = read_source(node, sources, *source)? {
            read.push((*source, sliver));
        }
    }
    Ok(read)
}

/// Reads and expands the held slivers of `group` with their trees, each checked against its
/// root in the metadata. A sliver gone (deleted since it was listed) is left out; a damaged one
/// is logged and left out.
fn proven_group(node: &Node, sources: &Sources, group: &[Source]) -> Result<Vec<SliverExpansion>, NodeError> {
    let Sources { blob_id, kind, metadata, .. } = sources;
    let read = read_group(node, sources, group)?;
    let slivers: Vec<&Sliver> = read.iter().map(|(_, sliver)| sliver).collect();
    let expanded = SliverExpansion::unproven_many(metadata, *kind, &slivers);
    let mut expansions = Vec::with_capacity(expanded.len());
    for ((source, _), expansion) in read.iter().zip(expanded) {
        let mut expansion = match expansion {
            Ok(expansion) => expansion,
            Err(error) => {
                unusable(blob_id, *source, *kind, &error);
                continue;
            }
        };
        expansion.prove();
        if expansion.root().as_ref() != metadata.sliver_hash(*kind, usize::from(source.index)) {
            unusable(blob_id, *source, *kind, &"it does not match its hash in the metadata");
            continue;
        }
        expansions.push(expansion);
    }
    Ok(expansions)
}

/// Reads one held sliver. `None` if it is gone or unusable (logged).
fn read_source(node: &Node, sources: &Sources, source: Source) -> Result<Option<Sliver>, NodeError> {
    let Sources { blob_id, kind, metadata, .. } = sources;
    #[cfg(test)]
    tests::EXPANSIONS.with(|count| count.set(count.get() + 1));
    let bytes = match node.store().get_sliver(&blob_id.0, source.shard, kind_of(*kind)) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(error @ StoreError::CorruptSliver { .. }) => {
            unusable(blob_id, source, *kind, &error);
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let sliver: Sliver = match from_bcs(&bytes, sliver_limit(node.config(), *kind, metadata.symbol_size())) {
        Ok(sliver) => sliver,
        Err(error) => {
            unusable(blob_id, source, *kind, &error);
            return Ok(None);
        }
    };
    if sliver.index != source.index {
        unusable(blob_id, source, *kind, &format!("it is sliver {}, not {}", sliver.index, source.index));
        return Ok(None);
    }
    Ok(Some(sliver))
}

/// Logs a stored sliver no symbol is sent from.
fn unusable(blob_id: &BlobId, source: Source, kind: SliverType, reason: &dyn std::fmt::Display) {
    tracing::error!(
        blob_id = %blob_id, shard = source.shard, %kind, %reason,
        "a stored sliver is unusable; sending no symbol from it"
    );
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use morsa_api::coord::{Event, EventRecord};
    use morsa_api::node::{RecoveryBatchRequest, RecoveryBatchResponse, RecoveryItem, RecoveryOutcome};
    use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ObjectId, ShardIndex};
    use morsa_store::NodeStore;
    use redstuff::wire::to_bcs;

    use super::*;
    use crate::node::{SymbolForm, View};

    thread_local! {
        /// Slivers expanded on this thread: the work a batch must not repeat.
        pub(super) static EXPANSIONS: Cell<usize> = const { Cell::new(0) };
    }

    /// Slivers expanded by `work` on this thread.
    fn expansions_of<T>(work: impl FnOnce() -> T) -> (usize, T) {
        let before = EXPANSIONS.with(Cell::get);
        let result = work();
        (EXPANSIONS.with(Cell::get) - before, result)
    }

    /// A node holding shards 0..5 of 10, and a blob of which it stores all of its share.
    fn node_with_a_blob() -> (Node, redstuff::EncodedBlob, BlobId, tempfile::TempDir) {
        let key = BlsSecretKey::from_seed([1; 32]);
        let member = CommitteeMember {
            node_id: NodeId::from_public_key(&key.public_key()),
            public_key: key.public_key(),
            address: "127.0.0.1:1".into(),
            shards: (0..5).map(ShardIndex).collect(),
        };
        let committee = Committee { epoch: Epoch(1), n_shards: 10, members: vec![member] };
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(&dir.path().join("node.redb")).unwrap();
        let node = Node::new(key, store, View { committee, next: None, zones: Default::default() }).unwrap();
        let encoded = redstuff::encode(node.config(), &[0x5a; 3000]).unwrap();
        let blob_id = *encoded.metadata.blob_id();
        let registered = Event::BlobRegistered {
            blob_id,
            object: ObjectId([0; 32]),
            size: 3000,
            encoded_size: 1,
            end_epoch: Epoch(5),
            deletable: false,
            epoch: Epoch(1),
        };
        node.apply_events(&[EventRecord::new(0, 0, registered, [0; 32])]).unwrap();
        let metadata = redstuff::MetadataWithId { blob_id, metadata: encoded.metadata.metadata().clone() };
        node.store_metadata(&blob_id, &to_bcs(&metadata)).unwrap();
        for shard in 0..5 {
            let pair = u16::try_from(blob_id.pair_for_shard(shard, 10)).unwrap();
            let slivers = &encoded.pairs[usize::from(pair)];
            node.store_sliver(&blob_id, pair, SliverType::Primary, to_bcs(&slivers.primary).into()).unwrap();
            node.store_sliver(&blob_id, pair, SliverType::Secondary, to_bcs(&slivers.secondary).into())
                .unwrap();
        }

        (node, encoded, blob_id, dir)
    }

    #[test]
    fn a_batch_expands_each_held_sliver_once() {
        let (node, encoded, blob_id, _dir) = node_with_a_blob();
        let (expanded, symbols) = expansions_of(|| node.recovery_symbols(&blob_id, 3, SliverType::Primary));
        assert_eq!((expanded, symbols.unwrap().len()), (5, 5));
        // Twenty items on one blob, both kinds, some asked twice: each of the ten held slivers
        // is expanded once.
        let items = (0..20)
            .map(|position: u16| RecoveryItem {
                blob_id,
                target_sliver: position % 7,
                target_type: if position.is_multiple_of(2) {
                    SliverType::Primary
                } else {
                    SliverType::Secondary
                },
                max_symbols: None,
            })
            .collect();
        let (expanded, response) = expansions_of(|| node.recovery_batch(&RecoveryBatchRequest { items }));
        assert_eq!(expanded, 10);
        for item in response.unwrap().items {
            let RecoveryOutcome::Symbols(symbols) = item.outcome else { panic!("{:?}", item.outcome) };
            assert_eq!(symbols.len(), 5);
            for symbol in &symbols {
                encoded
                    .metadata
                    .verify_recovery_symbol(item.target_type, usize::from(item.target_sliver), symbol)
                    .unwrap();
            }
        }
    }

    #[test]
    fn a_batch_without_proofs_sends_the_same_symbols_and_fits_more_items() {
        let (node, _encoded, blob_id, _dir) = node_with_a_blob();
        let items: Vec<RecoveryItem> = (0..10)
            .map(|target| RecoveryItem {
                blob_id,
                target_sliver: target,
                target_type: SliverType::Primary,
                max_symbols: None,
            })
            .collect();
        let request = RecoveryBatchRequest { items };
        let proven = node.recovery_batch_within(&request, usize::MAX, SymbolForm::Proven).unwrap();
        let unproven = node.recovery_batch_within(&request, usize::MAX, SymbolForm::Unproven).unwrap();
        for (proven, unproven) in proven.items.iter().zip(&unproven.items) {
            let (RecoveryOutcome::Symbols(proven), RecoveryOutcome::Symbols(unproven)) =
                (&proven.outcome, &unproven.outcome)
            else {
                panic!("{:?} / {:?}", proven.outcome, unproven.outcome)
            };
            assert_eq!(unproven.len(), 5);
            for (proven, unproven) in proven.iter().zip(unproven) {
                assert!(unproven.proof.path.is_empty() && !proven.proof.path.is_empty());
                assert_eq!((proven.source_index, &proven.symbol), (unproven.source_index, &unproven.symbol));
            }
        }
        // A budget that holds three items with proofs holds more without: the plan counts each
        // symbol at its size without a proof.
        let one = to_bcs(&proven.items[0]).len();
        let budget = 3 * one + one / 2 + 16;
        let admitted = |response: RecoveryBatchResponse| {
            response.items.iter().filter(|item| matches!(item.outcome, RecoveryOutcome::Symbols(_))).count()
        };
        let with_proofs = admitted(node.recovery_batch_within(&request, budget, SymbolForm::Proven).unwrap());
        let without = admitted(node.recovery_batch_within(&request, budget, SymbolForm::Unproven).unwrap());
        assert!(with_proofs <= 3 && without > with_proofs, "{with_proofs} with proofs, {without} without");
    }

    #[test]
    fn blocks_carry_the_symbols_of_lists_cut_to_max_symbols_and_within_the_budget() {
        let (node, _encoded, blob_id, _dir) = node_with_a_blob();
        let items: Vec<RecoveryItem> = (0..10)
            .map(|target| RecoveryItem {
                blob_id,
                target_sliver: target,
                target_type: if target % 2 == 0 { SliverType::Primary } else { SliverType::Secondary },
                max_symbols: (target % 3 == 0).then_some(2),
            })
            .collect();
        let request = RecoveryBatchRequest { items };
        // Against the symbols with proofs, which come from whole expansions, not from blocks.
        let proven = node.recovery_batch_within(&request, usize::MAX, SymbolForm::Proven).unwrap();
        let blocks = node.recovery_batch_within(&request, usize::MAX, SymbolForm::Blocks).unwrap();
        let s = usize::from(node.verified_metadata(&blob_id).unwrap().symbol_size());
        for ((item, list), block) in request.items.iter().zip(&proven.items).zip(&blocks.items) {
            let (RecoveryOutcome::Symbols(list), RecoveryOutcome::Block(block)) =
                (&list.outcome, &block.outcome)
            else {
                panic!("{:?} / {:?}", list.outcome, block.outcome)
            };
            assert_eq!(list.len(), if item.max_symbols.is_some() { 2 } else { 5 });
            let cells: Vec<(u16, &[u8])> =
                block.symbols(s).unwrap().map(|symbol| (symbol.source_index, symbol.symbol)).collect();
            let expected: Vec<(u16, &[u8])> =
                list.iter().map(|symbol| (symbol.source_index, symbol.symbol.as_slice())).collect();
            assert_eq!(cells, expected);
        }
        // Every budget is kept (each holds the refusals of all ten items), and a block answer
        // admits at least the items a list answer does.
        let lists = node.recovery_batch_within(&request, usize::MAX, SymbolForm::Unproven).unwrap();
        let one = to_bcs(&lists.items[1]).len();
        for budget in [3 * one, 4 * one + one / 3, 6 * one + 7, 20 * one] {
            let answered = |form| {
                let response = node.recovery_batch_within(&request, budget, form).unwrap();
                assert!(response.encoded_len() <= budget, "{form:?} over {budget} bytes");
                response
                    .items
                    .iter()
                    .filter(|item| !matches!(item.outcome, RecoveryOutcome::Error(_)))
                    .count()
            };
            let (lists, blocks) = (answered(SymbolForm::Unproven), answered(SymbolForm::Blocks));
            assert!(blocks >= lists, "{blocks} blocks, {lists} lists within {budget} bytes");
        }
    }
}
