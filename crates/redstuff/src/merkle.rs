//! Merkle trees over BLAKE2b-256, exactly as Walrus builds them.
//!
//! Leaf = `H(0x00 ‖ bytes)`, inner node = `H(0x01 ‖ left ‖ right)`. A level with an odd number
//! of nodes is completed with 32 zero bytes (not hashed); trees are not padded to a power of
//! two. An empty tree's root is 32 zero bytes and a one-leaf tree's root is that leaf's hash.

use serde::{Deserialize, Serialize};

use crate::hash;

/// A 32-byte BLAKE2b digest.
pub type Digest = [u8; 32];

/// The digest used where a level has no right sibling, and as the root of an empty tree.
pub const EMPTY_NODE: Digest = [0; 32];

const LEAF_PREFIX: u8 = 0x00;
const INNER_PREFIX: u8 = 0x01;

/// How many leaves are laid out in the scratch buffer per batch hash.
const HASH_BATCH: usize = 64;

thread_local! {
    /// Per-thread buffer where leaves are laid out as `0x00 ‖ symbol` for batch hashing.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn params() -> blake2b_simd::Params {
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    params
}

fn to_digest(hash: &blake2b_simd::Hash) -> Digest {
    let mut digest = [0; 32];
    digest.copy_from_slice(hash.as_bytes());
    digest
}

/// `H(0x00 ‖ bytes)` for one leaf.
pub fn leaf_hash(bytes: &[u8]) -> Digest {
    let mut state = params().to_state();
    state.update(&[LEAF_PREFIX]);
    state.update(bytes);
    to_digest(&state.finalize())
}

/// `H(0x01 ‖ left ‖ right)` for one inner node.
pub fn inner_hash(left: &Digest, right: &Digest) -> Digest {
    let mut state = params().to_state();
    state.update(&[INNER_PREFIX]);
    state.update(left);
    state.update(right);
    to_digest(&state.finalize())
}

/// Hashes the leaves `chunks` (each `H(0x00 ‖ chunk)`) into `out`, many at a time with SIMD
/// ([`crate::hash::hash_slots`]).
///
/// `symbols` is cut into `symbol_size`-byte chunks; `out` must have one slot per chunk.
pub fn leaf_hashes_into(symbols: &[u8], symbol_size: usize, out: &mut [Digest]) {
    assert!(symbol_size > 0, "symbol size is never zero");
    assert_eq!(symbols.len(), symbol_size * out.len(), "one digest slot per symbol");
    let stride = symbol_size + 1;
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.resize(stride * HASH_BATCH.min(out.len()), 0);
        for (chunk, out_chunk) in symbols.chunks(symbol_size * HASH_BATCH).zip(out.chunks_mut(HASH_BATCH)) {
            for (slot, symbol) in scratch.chunks_exact_mut(stride).zip(chunk.chunks_exact(symbol_size)) {
                slot[0] = LEAF_PREFIX;
                slot[1..].copy_from_slice(symbol);
            }
            hash::hash_slots(&scratch[..stride * out_chunk.len()], stride, out_chunk);
        }
    });
}

/// Hashes leaves laid out in `stride`-byte slots, each `0x00 ‖ symbol`: the prefix byte of
/// every slot is written here, so the symbols are hashed where they lie, without a copy.
pub fn leaf_hashes_in_slots(slots: &mut [u8], stride: usize, out: &mut [Digest]) {
    assert!(stride > 1, "a slot holds the prefix and at least one byte");
    assert_eq!(slots.len(), stride * out.len(), "one digest slot per leaf");
    for slot in slots.chunks_exact_mut(stride) {
        slot[0] = LEAF_PREFIX;
    }
    hash::hash_slots(slots, stride, out);
}

/// Bytes of an inner node's hash input: the prefix and two children.
const INNER_STRIDE: usize = 65;

/// Lays out consecutive pairs of `level` in `scratch` as inner-node inputs (odd ends paired
/// with zeros) and answers how many parents they make.
fn lay_out_pairs(level: &[Digest], scratch: &mut Vec<u8>) -> usize {
    let parents = level.len().div_ceil(2);
    scratch.clear();
    scratch.resize(parents * INNER_STRIDE, 0);
    for (slot, pair) in scratch.chunks_exact_mut(INNER_STRIDE).zip(level.chunks(2)) {
        slot[0] = INNER_PREFIX;
        slot[1..33].copy_from_slice(&pair[0]);
        slot[33..].copy_from_slice(pair.get(1).unwrap_or(&EMPTY_NODE));
    }
    parents
}

/// Hashes consecutive pairs of `level` into the next level up (odd ends paired with zeros).
fn next_level(level: &[Digest], scratch: &mut Vec<u8>) -> Vec<Digest> {
    let parents = lay_out_pairs(level, scratch);
    let mut next = vec![EMPTY_NODE; parents];
    hash::hash_slots(scratch, INNER_STRIDE, &mut next);
    next
}

/// Leaves per block of a [`StreamingRoot`] (`2^BLOCK_HEIGHT`).
const BLOCK_LEAVES: usize = 1 << BLOCK_HEIGHT;
/// Levels between a block's leaves and its root.
const BLOCK_HEIGHT: usize = 6;

thread_local! {
    /// Per-thread buffer for the inner nodes of [`StreamingRoot`]'s blocks.
    static INNER_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The root of a tree whose leaf hashes arrive in order, a few at a time, computed without
/// keeping them all: each whole block of 64 leaves (the leaves `64k..64k + 64`) is reduced to
/// its subtree's root by [`StreamingRoot::raise_whole_blocks`], and only the leaves of blocks
/// not raised yet and the blocks' roots are kept. The root equals [`root_from_leaf_hashes`] of
/// all the leaves.
///
/// Trees are raised many at a time ([`StreamingRoot::raise_whole_blocks`],
/// [`StreamingRoot::roots`]): every level of all their blocks is one batch hash call, where
/// raising each block alone would make six small calls per block.
///
/// In a tree of more than one block, a block's root is the tree's node above it (an aligned
/// block pairs within itself), and the last, partial block rises the same number of levels
/// paired with zeros, as the right end of every level of the whole tree is.
#[derive(Debug, Clone, Default)]
pub struct StreamingRoot {
    /// Leaves not raised into a block root yet.
    pending: Vec<Digest>,
    /// Roots of the whole blocks raised so far.
    blocks: Vec<Digest>,
}

impl StreamingRoot {
    /// Adds the next leaf hash. It is kept until [`StreamingRoot::raise_whole_blocks`] or
    /// [`StreamingRoot::roots`] raises its block.
    pub fn push(&mut self, leaf: Digest) {
        self.pending.push(leaf);
    }

    /// Reduces every whole block of 64 pending leaves of every tree of `trees` to its root,
    /// with one batch hash call per level for all of them.
    pub fn raise_whole_blocks(trees: &mut [Self]) {
        let whole = |tree: &Self| tree.pending.len() / BLOCK_LEAVES * BLOCK_LEAVES;
        let mut level: Vec<Digest> = Vec::with_capacity(trees.iter().map(whole).sum());
        for tree in trees.iter() {
            level.extend_from_slice(&tree.pending[..whole(tree)]);
        }
        if level.is_empty() {
            return;
        }
        let mut runs = vec![BLOCK_LEAVES; level.len() / BLOCK_LEAVES];
        INNER_SCRATCH.with_borrow_mut(|scratch| {
            (0..BLOCK_HEIGHT).for_each(|_| rise_runs(&mut level, &mut runs, false, scratch));
        });
        let mut roots = level.into_iter();
        for tree in trees.iter_mut() {
            let blocks = whole(tree) / BLOCK_LEAVES;
            tree.blocks.extend(roots.by_ref().take(blocks));
            tree.pending.drain(..blocks * BLOCK_LEAVES);
        }
    }

    /// The roots of the trees over every leaf pushed into each, in order, leaving every tree
    /// empty; every level of all the trees is one batch hash call.
    pub fn roots(trees: &mut [Self]) -> Vec<Digest> {
        Self::raise_whole_blocks(trees);
        INNER_SCRATCH.with_borrow_mut(|scratch| {
            // The partial last block of a tree of several blocks rises a block's height.
            let partial = |tree: &Self| !tree.blocks.is_empty() && !tree.pending.is_empty();
            let mut level: Vec<Digest> = trees
                .iter()
                .filter(|tree| partial(tree))
                .flat_map(|tree| tree.pending.iter().copied())
                .collect();
            let mut runs: Vec<usize> =
                trees.iter().filter(|tree| partial(tree)).map(|tree| tree.pending.len()).collect();
            (0..BLOCK_HEIGHT).for_each(|_| rise_runs(&mut level, &mut runs, false, scratch));
            let mut partial_roots = level.into_iter();
            for tree in trees.iter_mut().filter(|tree| partial(tree)) {
                tree.blocks.extend(partial_roots.next());
                tree.pending.clear();
            }
            // Then each tree rises to its root: from its blocks' roots, or from its leaves if
            // it has fewer than one block.
            fn top(tree: &StreamingRoot) -> &[Digest] {
                if tree.blocks.is_empty() { &tree.pending } else { &tree.blocks }
            }
            let mut level: Vec<Digest> = trees.iter().flat_map(|tree| top(tree).iter().copied()).collect();
            let mut runs: Vec<usize> = trees.iter().map(|tree| top(tree).len()).collect();
            while runs.iter().any(|run| *run > 1) {
                rise_runs(&mut level, &mut runs, true, scratch);
            }
            trees.iter_mut().for_each(|tree| *tree = Self::default());
            let mut nodes = level.into_iter();
            runs.iter()
                .map(|run| if *run == 0 { EMPTY_NODE } else { nodes.next().unwrap_or(EMPTY_NODE) })
                .collect()
        })
    }

    /// The root of the tree over every leaf pushed.
    pub fn root(self) -> Digest {
        Self::roots(&mut [self]).first().copied().unwrap_or(EMPTY_NODE)
    }
}

/// Raises each run of consecutive nodes of `level` (their lengths in `runs`, updated) by one
/// level in one batch hash call, pairing within the run and a run's odd end with zeros. A run
/// of one node is left as it is when `keep_lone` (it is a root), else paired with zeros too.
fn rise_runs(level: &mut Vec<Digest>, runs: &mut [usize], keep_lone: bool, scratch: &mut Vec<u8>) {
    let rises = |run: usize| run > 1 || (run == 1 && !keep_lone);
    let parents: usize = runs.iter().filter(|run| rises(**run)).map(|run| run.div_ceil(2)).sum();
    scratch.clear();
    scratch.resize(parents * INNER_STRIDE, 0);
    let mut slots = scratch.chunks_exact_mut(INNER_STRIDE);
    let mut at = 0;
    for run in runs.iter() {
        let nodes = &level[at..at + run];
        at += run;
        if !rises(*run) {
            continue;
        }
        for (pair, slot) in nodes.chunks(2).zip(slots.by_ref()) {
            slot[0] = INNER_PREFIX;
            slot[1..33].copy_from_slice(&pair[0]);
            slot[33..].copy_from_slice(pair.get(1).unwrap_or(&EMPTY_NODE));
        }
    }
    let mut hashed = vec![EMPTY_NODE; parents];
    hash::hash_slots(scratch, INNER_STRIDE, &mut hashed);
    // The next level: each rising run's parents, each kept run's node, in order.
    let mut next = Vec::with_capacity(level.len().div_ceil(2) + runs.len());
    let (mut at, mut parent) = (0, 0);
    for run in runs.iter_mut() {
        let len = *run;
        if rises(len) {
            let count = len.div_ceil(2);
            next.extend_from_slice(&hashed[parent..parent + count]);
            parent += count;
            *run = count;
        } else {
            next.extend_from_slice(&level[at..at + len]);
        }
        at += len;
    }
    *level = next;
}

/// Root of the tree whose leaf hashes are `leaves`.
pub fn root_from_leaf_hashes(leaves: &[Digest]) -> Digest {
    match leaves {
        [] => EMPTY_NODE,
        [only] => *only,
        _ => {
            let mut scratch = Vec::new();
            let mut level = next_level(leaves, &mut scratch);
            while level.len() > 1 {
                level = next_level(&level, &mut scratch);
            }
            level[0]
        }
    }
}

/// A Merkle tree with every level kept, for producing proofs.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes, the last level is the root alone.
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// Builds the tree over already hashed leaves.
    pub fn from_leaf_hashes(leaves: Vec<Digest>) -> Self {
        let mut levels = vec![leaves];
        let mut scratch = Vec::new();
        while let Some(top) = levels.last().filter(|level| level.len() > 1) {
            let next = next_level(top, &mut scratch);
            levels.push(next);
        }
        Self { levels }
    }

    /// The root (32 zero bytes for an empty tree).
    pub fn root(&self) -> Digest {
        self.levels.last().and_then(|level| level.first()).copied().unwrap_or(EMPTY_NODE)
    }

    /// How many leaves the tree has.
    pub fn leaf_count(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The proof for leaf `index`: its siblings from the bottom up, or `None` if out of range.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.leaf_count() {
            return None;
        }
        let mut position = index;
        let mut path = Vec::with_capacity(self.levels.len().saturating_sub(1));
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = level.get(position ^ 1).copied();
            path.push(sibling.map_or(MerkleNode::Empty, MerkleNode::Digest));
            position /= 2;
        }
        Some(MerkleProof { path })
    }
}

/// A node of a Merkle path in Walrus's wire form: tag 0 = empty, tag 1 = a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerkleNode {
    /// The zero node standing in for a missing right sibling.
    Empty,
    /// A digest.
    Digest(Digest),
}

impl MerkleNode {
    /// The 32 bytes this node contributes to its parent's hash.
    pub fn bytes(&self) -> &Digest {
        match self {
            Self::Empty => &EMPTY_NODE,
            Self::Digest(digest) => digest,
        }
    }
}

/// The siblings on the path from a leaf to the root, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Sibling nodes from the leaf's level up to just below the root.
    pub path: Vec<MerkleNode>,
}

impl MerkleProof {
    /// The root this proof leads to from `leaf` at `index`.
    pub fn root_from_leaf(&self, leaf: &Digest, index: usize) -> Digest {
        let mut position = index;
        let mut current = *leaf;
        for sibling in &self.path {
            current = if position.is_multiple_of(2) {
                inner_hash(&current, sibling.bytes())
            } else {
                inner_hash(sibling.bytes(), &current)
            };
            position /= 2;
        }
        current
    }

    /// Whether `leaf` sits at `index` of a tree with the given `root` and `leaf_count` leaves.
    ///
    /// The path length must be exactly the tree height for `leaf_count`, so a proof for a
    /// shorter or taller tree is refused even if it would hash to the root.
    pub fn verifies(&self, root: &Digest, leaf: &Digest, index: usize, leaf_count: usize) -> bool {
        index < leaf_count
            && self.path.len() == tree_height(leaf_count)
            && self.root_from_leaf(leaf, index) == *root
    }
}

/// Number of levels above the leaves in a tree of `leaf_count` leaves.
pub fn tree_height(leaf_count: usize) -> usize {
    let mut height = 0;
    let mut width = leaf_count;
    while width > 1 {
        width = width.div_ceil(2);
        height += 1;
    }
    height
}

#[cfg(test)]
mod tests {
    use super::*;
    use blake2::{Blake2b, Digest as _, digest::consts::U32};

    fn reference_leaf(bytes: &[u8]) -> Digest {
        let mut hasher = Blake2b::<U32>::new();
        hasher.update([0u8]);
        hasher.update(bytes);
        hasher.finalize().into()
    }

    #[test]
    fn batch_leaf_hashes_equal_the_reference_digest() {
        for symbol_size in [1usize, 2, 3, 64, 127, 128, 129, 1206] {
            let count = 150;
            let symbols: Vec<u8> =
                (0..symbol_size * count).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect();
            let mut out = vec![EMPTY_NODE; count];
            leaf_hashes_into(&symbols, symbol_size, &mut out);
            for (digest, symbol) in out.iter().zip(symbols.chunks(symbol_size)) {
                assert_eq!(*digest, reference_leaf(symbol));
                assert_eq!(*digest, leaf_hash(symbol));
            }
        }
    }

    #[test]
    fn roots_of_small_trees() {
        assert_eq!(root_from_leaf_hashes(&[]), EMPTY_NODE);
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let c = leaf_hash(b"c");
        assert_eq!(root_from_leaf_hashes(&[a]), a);
        assert_eq!(root_from_leaf_hashes(&[a, b]), inner_hash(&a, &b));
        let expected = inner_hash(&inner_hash(&a, &b), &inner_hash(&c, &EMPTY_NODE));
        assert_eq!(root_from_leaf_hashes(&[a, b, c]), expected);
    }

    #[test]
    fn every_proof_verifies_and_only_at_its_index() {
        for count in 1..40usize {
            let leaves: Vec<Digest> = (0..count).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let tree = MerkleTree::from_leaf_hashes(leaves.clone());
            assert_eq!(tree.root(), root_from_leaf_hashes(&leaves));
            for (index, leaf) in leaves.iter().enumerate() {
                let proof = tree.proof(index).expect("index in range");
                assert!(proof.verifies(&tree.root(), leaf, index, count));
                if count > 1 {
                    let other = (index + 1) % count;
                    assert!(!proof.verifies(&tree.root(), leaf, other, count));
                }
            }
            assert!(tree.proof(count).is_none());
        }
    }

    #[test]
    fn a_streaming_root_equals_the_root_over_all_leaves() {
        let leaf = |index: usize| leaf_hash(&index.to_le_bytes());
        let counts = (0..=260).chain([319, 320, 321, 1000, 1023, 1024, 1025, 4097]);
        for count in counts {
            let leaves: Vec<Digest> = (0..count).map(leaf).collect();
            let mut streaming = StreamingRoot::default();
            leaves.iter().for_each(|leaf| streaming.push(*leaf));
            assert_eq!(streaming.root(), root_from_leaf_hashes(&leaves), "{count} leaves");
        }
    }

    #[test]
    fn trees_raised_together_equal_each_tree_alone() {
        let leaf = |tree: usize, index: usize| leaf_hash(&(tree * 100_003 + index).to_le_bytes());
        // Trees of different sizes (none, one leaf, partial and whole blocks), fed a few leaves
        // at a time with whole blocks raised in between, as the encoder feeds them.
        let counts = [0, 1, 2, 63, 64, 65, 127, 128, 129, 300, 666, 1000, 4097, 64, 1];
        let mut trees = vec![StreamingRoot::default(); counts.len()];
        for step in 0..=4097 / 37 {
            for (tree, (streaming, count)) in trees.iter_mut().zip(counts).enumerate() {
                (step * 37..(step * 37 + 37).min(count)).for_each(|index| streaming.push(leaf(tree, index)));
            }
            StreamingRoot::raise_whole_blocks(&mut trees[step % 3..]);
        }
        let expected: Vec<Digest> = counts
            .iter()
            .enumerate()
            .map(|(tree, count)| {
                root_from_leaf_hashes(&(0..*count).map(|index| leaf(tree, index)).collect::<Vec<_>>())
            })
            .collect();
        assert_eq!(StreamingRoot::roots(&mut trees.clone()), expected);
        let alone: Vec<Digest> = trees.into_iter().map(StreamingRoot::root).collect();
        assert_eq!(alone, expected);
    }
}
