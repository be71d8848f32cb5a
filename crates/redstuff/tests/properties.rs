//! Property tests of the codec's public API: decoding, sliver verification, recovery, range
//! reads, wire forms and metadata checks, on random blobs and shard counts.
//!
//! Blobs are generated from a `(length, seed)` pair so that a failing case shrinks to a short
//! blob quickly; every other random choice (subsets, positions, xor masks) comes from an RNG
//! seeded by the case, so a case is fully reproducible from its printed `Case`.

use std::ops::Range;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use redstuff::wire::{self, from_bcs, to_bcs};
use redstuff::{
    BlobMetadata, DecodeError, EncodedBlob, EncodingConfig, InconsistencyProof, MetadataError,
    MetadataWithId, Proofs, RangeError, RecoveryError, RecoverySymbol, Sliver, SliverExpansion, SliverType,
    SliverVerificationError, SymbolBlock, SymbolRef, VerifiedMetadata, WireError,
};

/// The shard counts every property runs on: `n = 3f + 1` (4, 7, 10, 13, 31, 100), where
/// `kp = f + 1` and `ks = 2f + 1`, and counts with `n mod 3` of 0 or 2, where the code has
/// more than `3f + 1` shards and `kp`, `ks` exceed those values.
const SHARD_COUNTS: [u16; 12] = [4, 5, 6, 7, 8, 9, 10, 12, 13, 31, 50, 100];

type TestResult = Result<(), TestCaseError>;

/// `prop_assert!` that a value matches a pattern, printing the value when it does not.
macro_rules! prop_assert_matches {
    ($value:expr, $pattern:pat) => {{
        let value = $value;
        prop_assert!(matches!(value, $pattern), "{:?} does not match {}", value, stringify!($pattern));
    }};
}

/// One generated case: a shard count and a blob given by its length and seed.
#[derive(Debug, Clone)]
struct Case {
    n: u16,
    len: usize,
    seed: u64,
}

impl Case {
    fn config(&self) -> EncodingConfig {
        EncodingConfig::new(self.n).expect("every shard count here is at least 4")
    }

    fn blob(&self) -> Vec<u8> {
        let mut blob = vec![0; self.len];
        StdRng::seed_from_u64(self.seed).fill_bytes(&mut blob);
        blob
    }

    /// The RNG for the case's other choices, a stream apart from the blob's.
    fn rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    fn encode(&self) -> (Vec<u8>, EncodedBlob) {
        let blob = self.blob();
        let encoded = redstuff::encode(self.config(), &blob).expect("test blobs fit the code");
        (blob, encoded)
    }
}

/// Blob lengths for `n`: mostly small, with 0 and 1, lengths straddling the points where the
/// symbol size grows (`2m·kp·ks` and one either side), and some up to tens of KiB.
fn blob_len(n: u16) -> BoxedStrategy<usize> {
    let config = EncodingConfig::new(n).expect("every shard count here is at least 4");
    let source_symbols = config.source_symbols();
    let cap = if n >= 100 { 64 << 10 } else { 256 << 10 };
    prop_oneof![
        1 => 0usize..=1,
        3 => 2usize..=64,
        3 => (1usize..=6, 0usize..=2).prop_map(move |(m, d)| 2 * m * source_symbols + d - 1),
        2 => 0usize..=2 * source_symbols + 2,
        2 => 65usize..=cap,
    ]
    .boxed()
}

fn cases() -> impl Strategy<Value = Case> {
    prop::sample::select(SHARD_COUNTS.to_vec())
        .prop_flat_map(|n| (Just(n), blob_len(n), any::<u64>()))
        .prop_map(|(n, len, seed)| Case { n, len, seed })
}

/// A few blobs of 1–3 MiB, on shard counts whose largest blob (`kp·ks·65534` bytes) is at
/// least 1 MiB; lengths are capped at that largest blob, which is itself a case worth having.
fn large_cases() -> impl Strategy<Value = Case> {
    (prop::sample::select(vec![10u16, 13, 31]), (1usize << 20)..=(3 << 20), any::<u64>()).prop_map(
        |(n, len, seed)| {
            let max = usize_of(EncodingConfig::new(n).expect("n is at least 4").max_blob_size());
            Case { n, len: len.min(max), seed }
        },
    )
}

/// A deployment-sized code: n = 1000 (f = 333, kp = 334, ks = 667), small blobs only so that a
/// case stays quick.
fn thousand_shard_cases() -> impl Strategy<Value = Case> {
    (0usize..=(4 << 10), any::<u64>()).prop_map(|(len, seed)| Case { n: 1000, len, seed })
}

fn config_with_cases(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn u16_of(value: usize) -> u16 {
    u16::try_from(value).expect("indices and sizes here fit in u16")
}

fn u64_of(value: usize) -> u64 {
    u64::try_from(value).expect("usize fits in u64")
}

fn usize_of(value: u64) -> usize {
    usize::try_from(value).expect("test blobs fit in memory")
}

/// Primary slivers by index.
fn primary_slivers(encoded: &EncodedBlob) -> Vec<Sliver> {
    encoded.pairs.iter().map(|pair| pair.primary.clone()).collect()
}

/// Secondary slivers by index (pair `p` holds secondary sliver `n − 1 − p`).
fn secondary_slivers(encoded: &EncodedBlob) -> Vec<Sliver> {
    let mut slivers: Vec<Sliver> = encoded.pairs.iter().map(|pair| pair.secondary.clone()).collect();
    slivers.sort_by_key(|sliver| sliver.index);
    slivers
}

fn slivers_of(encoded: &EncodedBlob, kind: SliverType) -> Vec<Sliver> {
    match kind {
        SliverType::Primary => primary_slivers(encoded),
        SliverType::Secondary => secondary_slivers(encoded),
    }
}

/// Symbols needed to rebuild a sliver of `kind`: `ks` for primary, `kp` for secondary.
fn needed_to_rebuild(config: EncodingConfig, kind: SliverType) -> usize {
    match kind {
        SliverType::Primary => config.ks(),
        SliverType::Secondary => config.kp(),
    }
}

/// `count` distinct indices below `n` in random order.
fn random_subset(rng: &mut StdRng, n: usize, count: usize) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(rng);
    indices.truncate(count);
    indices
}

/// Flips one random byte of `bytes` with a random non-zero mask.
fn flip_random_byte(rng: &mut StdRng, bytes: &mut [u8]) {
    let position = rng.random_range(0..bytes.len());
    bytes[position] ^= rng.random_range(1..=u8::MAX);
}

fn check_decode(case: &Case) -> TestResult {
    let (blob, encoded) = case.encode();
    let config = case.config();
    let (n, kp) = (config.n_shards(), config.kp());
    let metadata = &encoded.metadata;
    let primary = primary_slivers(&encoded);
    let mut rng = case.rng();

    // Any kp distinct slivers, in any order, with duplicates and extras mixed in.
    let mut given: Vec<Sliver> =
        random_subset(&mut rng, n, kp).into_iter().map(|index| primary[index].clone()).collect();
    for _ in 0..rng.random_range(0..=3) {
        given.push(primary[rng.random_range(0..n)].clone());
    }
    given.shuffle(&mut rng);
    prop_assert_eq!(metadata.decode(&given), Ok(blob.clone()));

    // Only the non-systematic slivers when there are enough of them: every row is decoded.
    if n - kp >= kp {
        let repair: Vec<Sliver> = primary[kp..].to_vec();
        prop_assert_eq!(metadata.decode(&repair), Ok(blob.clone()));
    }

    // Fewer than kp distinct slivers, even with duplicates, are not enough.
    let got = rng.random_range(0..kp);
    let mut few: Vec<Sliver> =
        random_subset(&mut rng, n, got).into_iter().map(|index| primary[index].clone()).collect();
    if got > 0 {
        for _ in 0..rng.random_range(0..=kp) {
            few.push(few[rng.random_range(0..got)].clone());
        }
    }
    few.shuffle(&mut rng);
    prop_assert_eq!(metadata.decode(&few), Err(DecodeError::NotEnoughSlivers { got, needed: kp }));

    // Secondary slivers are not primary ones.
    let secondary = secondary_slivers(&encoded);
    prop_assert_matches!(
        metadata.decode(&secondary),
        Err(DecodeError::Sliver(SliverVerificationError::LengthMismatch { kind: SliverType::Primary, .. }))
    );
    Ok(())
}

fn check_verify(case: &Case) -> TestResult {
    let (_, encoded) = case.encode();
    let config = case.config();
    let n = config.n_shards();
    let metadata = &encoded.metadata;
    let s = metadata.symbol_size();
    let mut rng = case.rng();

    for (pair_index, pair) in encoded.pairs.iter().enumerate() {
        prop_assert_eq!(pair.primary.index(), pair_index);
        prop_assert_eq!(pair.secondary.index(), n - 1 - pair_index);
        prop_assert_eq!(metadata.verify_sliver(SliverType::Primary, &pair.primary), Ok(()));
        prop_assert_eq!(metadata.verify_sliver(SliverType::Secondary, &pair.secondary), Ok(()));
    }

    for kind in [SliverType::Primary, SliverType::Secondary] {
        let slivers = slivers_of(&encoded, kind);
        let index = rng.random_range(0..n);
        let sliver = &slivers[index];
        let expected_len = needed_to_rebuild(config, kind) * usize::from(s);
        prop_assert_eq!(sliver.symbols.len(), expected_len);

        let mut flipped = sliver.clone();
        flip_random_byte(&mut rng, &mut flipped.symbols);
        prop_assert_eq!(
            metadata.verify_sliver(kind, &flipped),
            Err(SliverVerificationError::HashMismatch { kind, index: u16_of(index) })
        );

        let mut out_of_range = sliver.clone();
        out_of_range.index = u16_of(n + rng.random_range(0..=1000));
        prop_assert_eq!(
            metadata.verify_sliver(kind, &out_of_range),
            Err(SliverVerificationError::IndexOutOfRange { kind, index: out_of_range.index, n_shards: n })
        );

        // Under another valid index the sliver only verifies if that sliver has the same bytes
        // (which happens for blobs that are mostly zeros).
        let other = (index + rng.random_range(1..n)) % n;
        let mut misplaced = sliver.clone();
        misplaced.index = u16_of(other);
        let expected = if slivers[other].symbols == sliver.symbols {
            Ok(())
        } else {
            Err(SliverVerificationError::HashMismatch { kind, index: u16_of(other) })
        };
        prop_assert_eq!(metadata.verify_sliver(kind, &misplaced), expected);

        let sizes = [s.checked_add(2), s.checked_add(1), s.checked_sub(2).filter(|size| *size > 0)];
        for actual in sizes.into_iter().flatten() {
            let mut resized = sliver.clone();
            resized.symbol_size = actual;
            prop_assert_eq!(
                metadata.verify_sliver(kind, &resized),
                Err(SliverVerificationError::SymbolSizeMismatch { expected: s, actual })
            );
        }

        let mut short = sliver.clone();
        short.symbols.truncate(expected_len - usize::from(s));
        let mut long = sliver.clone();
        long.symbols.push(0);
        for bad in [short, long] {
            let actual = bad.symbols.len();
            prop_assert_eq!(
                metadata.verify_sliver(kind, &bad),
                Err(SliverVerificationError::LengthMismatch { kind, expected: expected_len, actual })
            );
        }

        // A sliver of one kind is never accepted as the other (kp < ks for every n).
        prop_assert_matches!(
            metadata.verify_sliver(kind.orthogonal(), sliver),
            Err(SliverVerificationError::LengthMismatch { .. })
        );

        // Checked together, every sliver of the kind and each bad one among them gets the
        // answer it gets alone.
        let mut together: Vec<Sliver> = slivers.clone();
        let mut bad = [flipped, out_of_range, misplaced, sliver.clone(), sliver.clone()];
        bad[3].symbols.truncate(expected_len - usize::from(s));
        bad[4].symbol_size = s.checked_add(2).unwrap_or(s - 2);
        for bad in bad {
            let at = rng.random_range(0..=together.len());
            together.insert(at, bad);
        }
        let refs: Vec<&Sliver> = together.iter().collect();
        let answers = metadata.verify_slivers(kind, &refs);
        prop_assert_eq!(answers.len(), together.len());
        for (sliver, answer) in together.iter().zip(answers) {
            prop_assert_eq!(answer, metadata.verify_sliver(kind, sliver));
        }
    }
    Ok(())
}

/// Every sliver of both kinds expanded, by kind then index.
struct Expansions {
    primary: Vec<SliverExpansion>,
    secondary: Vec<SliverExpansion>,
}

impl Expansions {
    fn new(encoded: &EncodedBlob) -> Result<Self, TestCaseError> {
        let metadata = &encoded.metadata;
        let expand = |kind| -> Result<Vec<SliverExpansion>, TestCaseError> {
            let mut expansions = Vec::new();
            for (index, sliver) in slivers_of(encoded, kind).iter().enumerate() {
                let expansion = SliverExpansion::new(metadata, kind, sliver)
                    .map_err(|error| TestCaseError::fail(format!("expanding {kind} {index}: {error}")))?;
                prop_assert_eq!(expansion.root(), metadata.sliver_hash(kind, index).copied());
                prop_assert_eq!(expansion.kind(), kind);
                // Without its tree: the same cells, empty proofs, no root.
                let unproven = SliverExpansion::unproven(metadata, kind, sliver)
                    .map_err(|error| TestCaseError::fail(format!("expanding {kind} {index}: {error}")))?;
                prop_assert_eq!(unproven.root(), None);
                for target in [0, index, metadata.config().n_shards() - 1] {
                    let (proven, bare) =
                        (expansion.recovery_symbol(target), unproven.recovery_symbol(target));
                    let (Some(proven), Some(bare)) = (proven, bare) else {
                        return Err(TestCaseError::fail("a target below n has a symbol"));
                    };
                    prop_assert_eq!((proven.source_index, &proven.symbol), (bare.source_index, &bare.symbol));
                    prop_assert!(bare.proof.path.is_empty());
                }
                expansions.push(expansion);
            }
            check_expanded_together(metadata, kind, &slivers_of(encoded, kind), &expansions)?;
            Ok(expansions)
        };
        Ok(Self { primary: expand(SliverType::Primary)?, secondary: expand(SliverType::Secondary)? })
    }

    fn of(&self, kind: SliverType) -> &[SliverExpansion] {
        match kind {
            SliverType::Primary => &self.primary,
            SliverType::Secondary => &self.secondary,
        }
    }

    /// The symbol source sliver `source` (of the kind orthogonal to the target) sends to
    /// `target`.
    fn symbol(&self, target_kind: SliverType, target: usize, source: usize) -> RecoverySymbol {
        self.of(target_kind.orthogonal())[source].recovery_symbol(target).expect("the target is below n")
    }
}

/// [`SliverExpansion::unproven_many`] over all slivers of `kind`, with a sliver of the wrong
/// length among them: every other sliver's cells are those of its own expansion, the bad one
/// gets an error, and a batch-expanded sliver proven afterwards has the metadata's root.
fn check_expanded_together(
    metadata: &VerifiedMetadata,
    kind: SliverType,
    slivers: &[Sliver],
    alone: &[SliverExpansion],
) -> TestResult {
    let mut short = slivers[0].clone();
    short.symbols.truncate(short.symbols.len() - usize::from(short.symbol_size));
    let mut given: Vec<&Sliver> = slivers.iter().collect();
    let at = given.len() / 2;
    given.insert(at, &short);
    let mut together = SliverExpansion::unproven_many(metadata, kind, &given);
    prop_assert_eq!(together.len(), given.len());
    prop_assert!(together.remove(at).is_err(), "a short sliver is refused");
    let n = metadata.config().n_shards();
    for (index, (batched, single)) in together.iter_mut().zip(alone).enumerate() {
        let Ok(batched) = batched else {
            return Err(TestCaseError::fail(format!("{kind} {index} was refused in a batch")));
        };
        prop_assert_eq!(batched.root(), None);
        for target in 0..n {
            let (Some(batched), Some(single)) =
                (batched.recovery_symbol(target), single.recovery_symbol(target))
            else {
                return Err(TestCaseError::fail("a target below n has a symbol"));
            };
            prop_assert_eq!((batched.source_index, &batched.symbol), (single.source_index, &single.symbol));
        }
        batched.prove();
        prop_assert_eq!(batched.root(), metadata.sliver_hash(kind, index).copied());
    }
    check_picked_together(metadata, kind, &given, at, alone)
}

/// [`SliverExpansion::append_unproven_blocks`] over the same slivers (the short one at `at`)
/// towards some targets, out of order and one repeated, systematic and recovery positions
/// alike, appended after a symbol already in each block: each block holds, for every
/// well-shaped sliver in order, the symbol its own expansion sends; the short one is refused.
fn check_picked_together(
    metadata: &VerifiedMetadata,
    kind: SliverType,
    given: &[&Sliver],
    at: usize,
    alone: &[SliverExpansion],
) -> TestResult {
    let n = metadata.config().n_shards();
    let s = usize::from(metadata.symbol_size());
    let mut targets: Vec<usize> = (0..n).rev().step_by(3).collect();
    targets.extend([0, n / 2, n - 1, n / 2]);
    let earlier = vec![0xa5; s];
    let mut blocks: Vec<SymbolBlock> = targets
        .iter()
        .map(|_| {
            let mut block = SymbolBlock::default();
            block.push(u16::MAX, &earlier);
            block
        })
        .collect();
    let mut shapes = SliverExpansion::append_unproven_blocks(metadata, kind, given, &targets, &mut blocks);
    prop_assert_eq!(shapes.len(), given.len());
    prop_assert!(shapes.remove(at).is_err(), "a short sliver is refused");
    prop_assert!(shapes.iter().all(Result::is_ok), "well-shaped slivers are taken");
    for (block, target) in blocks.iter().zip(&targets) {
        let Some(symbols) = block.symbols(s) else {
            return Err(TestCaseError::fail("a block is cut at the symbol size"));
        };
        let symbols: Vec<SymbolRef<'_>> = symbols.collect();
        prop_assert_eq!(symbols.len(), alone.len() + 1);
        prop_assert_eq!(symbols[0], SymbolRef { source_index: u16::MAX, symbol: &earlier });
        for (symbol, single) in symbols[1..].iter().zip(alone) {
            let expected = single.recovery_symbol(*target).expect("targets are below n");
            prop_assert_eq!(*symbol, expected.cell());
        }
    }
    Ok(())
}

/// Many targets rebuilt in one call: targets sharing their sources (one erasure pattern,
/// decoded together), targets with sources of their own, a tampered one and a short one among
/// them. Each result must be what the target alone gives, and the bad ones must not spoil the
/// others.
fn check_rebuild_many(case: &Case) -> TestResult {
    let (_, encoded) = case.encode();
    let config = case.config();
    let n = config.n_shards();
    let metadata = &encoded.metadata;
    let expansions = Expansions::new(&encoded)?;
    let mut rng = case.rng();

    for target_kind in [SliverType::Primary, SliverType::Secondary] {
        let needed = needed_to_rebuild(config, target_kind);
        let shared = random_subset(&mut rng, n, needed);
        let count = rng.random_range(2..=n.min(12));
        let targets = random_subset(&mut rng, n, count);
        let symbols: Vec<Vec<RecoverySymbol>> = targets
            .iter()
            .enumerate()
            .map(|(position, target)| {
                // Every third target has sources of its own; the others share `shared`, in an
                // order of their own.
                let mut sources =
                    if position % 3 == 2 { random_subset(&mut rng, n, needed) } else { shared.clone() };
                sources.rotate_left(position % needed);
                sources.iter().map(|source| expansions.symbol(target_kind, *target, *source)).collect()
            })
            .collect();
        let mut symbols = symbols;
        let tampered = rng.random_range(0..count);
        let short = (tampered + 1) % count;
        flip_random_byte(&mut rng, &mut symbols[tampered][0].symbol);
        symbols[short].truncate(needed - 1);

        let batch: Vec<(usize, &[RecoverySymbol])> =
            targets.iter().zip(&symbols).map(|(target, symbols)| (*target, symbols.as_slice())).collect();
        for proofs in [Proofs::Check, Proofs::Skip] {
            let results = metadata.rebuild_slivers(target_kind, &batch, proofs);
            prop_assert_eq!(results.len(), count);
            for (position, (result, (target, symbols))) in results.iter().zip(&batch).enumerate() {
                let original = &slivers_of(&encoded, target_kind)[*target];
                let expected = if position == short {
                    Err(RecoveryError::NotEnoughSymbols { kind: target_kind, got: needed - 1, needed })
                } else if position == tampered {
                    Err(match proofs {
                        Proofs::Check => RecoveryError::InvalidProof {
                            kind: target_kind.orthogonal(),
                            source_index: symbols[0].source_index,
                        },
                        Proofs::Skip => {
                            RecoveryError::RebuiltMismatch { kind: target_kind, index: u16_of(*target) }
                        }
                    })
                } else {
                    Ok(original.clone())
                };
                prop_assert_eq!(
                    result,
                    &expected,
                    "{:?} batch rebuild of {} sliver {}",
                    proofs,
                    target_kind,
                    target
                );
            }
        }
        // The same symbols by reference (as blocks give them) rebuild as they do without proofs.
        let cells: Vec<Vec<SymbolRef<'_>>> =
            symbols.iter().map(|symbols| symbols.iter().map(RecoverySymbol::cell).collect()).collect();
        let by_reference: Vec<(usize, &[SymbolRef<'_>])> =
            targets.iter().zip(&cells).map(|(target, cells)| (*target, cells.as_slice())).collect();
        prop_assert_eq!(
            metadata.rebuild_slivers_unproven(target_kind, &by_reference),
            metadata.rebuild_slivers(target_kind, &batch, Proofs::Skip),
            "{} slivers rebuilt from symbols by reference",
            target_kind
        );
    }
    Ok(())
}

fn check_rebuild(case: &Case, rounds: usize) -> TestResult {
    let (_, encoded) = case.encode();
    let config = case.config();
    let n = config.n_shards();
    let metadata = &encoded.metadata;
    let expansions = Expansions::new(&encoded)?;
    let mut rng = case.rng();

    for _ in 0..rounds {
        for target_kind in [SliverType::Primary, SliverType::Secondary] {
            let source_kind = target_kind.orthogonal();
            let needed = needed_to_rebuild(config, target_kind);
            let target = rng.random_range(0..n);
            let original = &slivers_of(&encoded, target_kind)[target];
            let index = u16_of(target);

            prop_assert!(expansions.of(source_kind)[0].recovery_symbol(n).is_none());

            // `needed` distinct sources in random order, with genuine duplicates and extras.
            let sources = random_subset(&mut rng, n, needed);
            let mut symbols: Vec<RecoverySymbol> =
                sources.iter().map(|source| expansions.symbol(target_kind, target, *source)).collect();
            for _ in 0..rng.random_range(0..=2) {
                let at = rng.random_range(1..=symbols.len());
                let duplicate = symbols[rng.random_range(0..symbols.len())].clone();
                symbols.insert(at, duplicate);
            }
            for _ in 0..rng.random_range(0..=2) {
                symbols.push(expansions.symbol(target_kind, target, rng.random_range(0..n)));
            }
            for symbol in &symbols {
                prop_assert_eq!(metadata.verify_recovery_symbol(target_kind, target, symbol), Ok(()));
            }
            for proofs in [Proofs::Check, Proofs::Skip] {
                prop_assert_eq!(
                    metadata.rebuild_sliver(target_kind, target, &symbols, proofs),
                    Ok(original.clone()),
                    "{:?} rebuild of {} sliver {}",
                    proofs,
                    target_kind,
                    target
                );
            }

            // One source short, however many duplicates.
            let few: Vec<RecoverySymbol> = sources[..needed - 1]
                .iter()
                .chain(&sources[..(needed - 1).min(2)])
                .map(|source| expansions.symbol(target_kind, target, *source))
                .collect();
            for proofs in [Proofs::Check, Proofs::Skip] {
                prop_assert_eq!(
                    metadata.rebuild_sliver(target_kind, target, &few, proofs),
                    Err(RecoveryError::NotEnoughSymbols { kind: target_kind, got: needed - 1, needed })
                );
            }

            // A flipped byte in the first symbol: its proof fails, and unproven it rebuilds a
            // sliver that does not match the metadata.
            let mut tampered = symbols.clone();
            flip_random_byte(&mut rng, &mut tampered[0].symbol);
            let invalid =
                RecoveryError::InvalidProof { kind: source_kind, source_index: tampered[0].source_index };
            prop_assert_eq!(
                metadata.verify_recovery_symbol(target_kind, target, &tampered[0]),
                Err(invalid.clone())
            );
            prop_assert_eq!(
                metadata.rebuild_sliver(target_kind, target, &tampered, Proofs::Check),
                Err(invalid)
            );
            prop_assert_eq!(
                metadata.rebuild_sliver(target_kind, target, &tampered, Proofs::Skip),
                Err(RecoveryError::RebuiltMismatch { kind: target_kind, index })
            );

            // A genuine symbol presented for another target only passes if it is, bytes and
            // proof, that target's symbol too (possible only when cells repeat).
            let wrong = (target + rng.random_range(1..n)) % n;
            let symbol = &symbols[0];
            let genuine_there = expansions.symbol(target_kind, wrong, usize::from(symbol.source_index));
            let expected = if genuine_there == *symbol {
                Ok(())
            } else {
                Err(RecoveryError::InvalidProof { kind: source_kind, source_index: symbol.source_index })
            };
            prop_assert_eq!(metadata.verify_recovery_symbol(target_kind, wrong, symbol), expected);

            // A target index that is not below n.
            prop_assert_matches!(
                metadata.rebuild_sliver(target_kind, n, &symbols, Proofs::Check),
                Err(RecoveryError::Malformed { .. })
            );
        }
    }
    Ok(())
}

fn random_byte_range(rng: &mut StdRng, len: u64) -> Range<u64> {
    if len == 0 {
        return 0..0;
    }
    let start = rng.random_range(0..len);
    let end = if rng.random_bool(0.5) {
        rng.random_range(start + 1..=len.min(start + 64))
    } else {
        rng.random_range(start + 1..=len)
    };
    start..end
}

fn check_read_range(case: &Case) -> TestResult {
    let (blob, encoded) = case.encode();
    let config = case.config();
    let (n, kp, ks) = (config.n_shards(), config.kp(), config.ks());
    let metadata = &encoded.metadata;
    let s = usize::from(metadata.symbol_size());
    let row_bytes = u64_of(ks * s);
    let len = u64_of(blob.len());
    let primary = primary_slivers(&encoded);
    let mut rng = case.rng();

    for _ in 0..3 {
        let range = random_byte_range(&mut rng, len);
        let expected = blob[usize_of(range.start)..usize_of(range.end)].to_vec();
        prop_assert_eq!(metadata.read_range(range.clone(), &primary), Ok(expected.clone()));

        let span = metadata.symbols_for_range(range.clone()).expect("the range is within the blob");
        let touched = if range.is_empty() {
            0..0
        } else {
            usize_of(range.start / row_bytes)..usize_of((range.end - 1) / row_bytes) + 1
        };
        prop_assert_eq!(span.rows(), touched.clone());
        prop_assert!(span.first_byte() <= range.start);

        // Without the touched systematic slivers, and in random order: the columns are decoded.
        let mut rest: Vec<Sliver> =
            primary.iter().filter(|sliver| !touched.contains(&sliver.index())).cloned().collect();
        rest.shuffle(&mut rng);
        if rest.len() < kp {
            // Only where n − kp < kp (n = 5, 6, 8: few shards, n mod 3 ≠ 1) can the touched rows
            // leave fewer than kp slivers: then the range cannot be read.
            prop_assert!(n - kp < kp);
            prop_assert_eq!(
                metadata.read_range(range.clone(), &rest),
                Err(RangeError::Decode(DecodeError::NotEnoughSlivers { got: rest.len(), needed: kp }))
            );
            continue;
        }
        prop_assert_eq!(metadata.read_range(range.clone(), &rest), Ok(expected.clone()));

        // With one sliver fewer than kp left, a range that needs a column cannot be read.
        if !touched.is_empty() {
            rest.truncate(kp - 1);
            prop_assert_eq!(
                metadata.read_range(range.clone(), &rest),
                Err(RangeError::Decode(DecodeError::NotEnoughSlivers { got: kp - 1, needed: kp }))
            );
        }
    }

    let past_end = len + rng.random_range(1..=u64_of(n) * 1000);
    let out_of_bounds = [0..past_end, len..past_end, past_end..past_end + 1];
    for range in out_of_bounds {
        prop_assert_eq!(
            metadata.read_range(range.clone(), &primary),
            Err(RangeError::OutOfBounds { start: range.start, end: range.end, blob_len: len })
        );
    }
    if len > 0 {
        let start = rng.random_range(1..=len);
        let end = rng.random_range(0..start);
        prop_assert_eq!(
            metadata.read_range(start..end, &primary),
            Err(RangeError::OutOfBounds { start, end, blob_len: len })
        );
    }
    Ok(())
}

/// Checks that `value` survives a BCS round trip under `limit`, and that truncated bytes,
/// trailing bytes and bytes over the limit are refused.
fn check_wire_value<T>(value: &T, limit: usize, rng: &mut StdRng) -> TestResult
where
    T: wire::WireValue + PartialEq + std::fmt::Debug,
{
    let bytes = to_bcs(value);
    prop_assert!(bytes.len() <= limit, "{} bytes over the limit {}", bytes.len(), limit);
    let decoded = from_bcs::<T>(&bytes, limit);
    prop_assert_eq!(decoded.as_ref(), Ok(value));

    let cut = rng.random_range(0..bytes.len());
    prop_assert_matches!(from_bcs::<T>(&bytes[..cut], limit), Err(WireError::Bcs { .. }));

    let mut trailing = bytes.clone();
    trailing.push(rng.random());
    prop_assert_matches!(from_bcs::<T>(&trailing, limit + 1), Err(WireError::Bcs { .. }));

    let len = bytes.len();
    prop_assert_eq!(
        from_bcs::<T>(&bytes, len - 1),
        Err(WireError::TooLarge { what: T::WHAT, len, limit: len - 1 })
    );

    // Random garbage of the same length never panics.
    let mut garbage = vec![0; len];
    rng.fill_bytes(&mut garbage);
    let _ = from_bcs::<T>(&garbage, limit);
    Ok(())
}

fn check_wire(case: &Case) -> TestResult {
    let (_, encoded) = case.encode();
    let config = case.config();
    let (n, kp) = (config.n_shards(), config.kp());
    let metadata = &encoded.metadata;
    let s = metadata.symbol_size();
    let mut rng = case.rng();

    for kind in [SliverType::Primary, SliverType::Secondary] {
        let sliver = &slivers_of(&encoded, kind)[rng.random_range(0..n)];
        check_wire_value(sliver, wire::sliver_limit(config, kind, s), &mut rng)?;
    }

    let with_id = MetadataWithId { blob_id: *metadata.blob_id(), metadata: metadata.metadata().clone() };
    check_wire_value(&with_id, wire::metadata_limit(config), &mut rng)?;
    let decoded: MetadataWithId = from_bcs(&to_bcs(&with_id), wire::metadata_limit(config))
        .map_err(|error| TestCaseError::fail(error.to_string()))?;
    prop_assert_eq!(decoded.metadata.verify(&decoded.blob_id, config), Ok(metadata.clone()));

    let target_kind = if rng.random_bool(0.5) { SliverType::Primary } else { SliverType::Secondary };
    let source_kind = target_kind.orthogonal();
    let target = rng.random_range(0..n);
    let symbol_limit = wire::recovery_symbol_limit(config, s);
    let symbols: Vec<RecoverySymbol> = random_subset(&mut rng, n, kp)
        .into_iter()
        .map(|source| {
            let sliver = &slivers_of(&encoded, source_kind)[source];
            SliverExpansion::new(metadata, source_kind, sliver)
                .expect("genuine slivers have the blob's shape")
                .recovery_symbol(target)
                .expect("the target is below n")
        })
        .collect();
    check_wire_value(&symbols[0], symbol_limit, &mut rng)?;
    // Without its proof a symbol is never longer than the bound a batch answer plans with.
    let mut bare = symbols[0].clone();
    bare.proof.path.clear();
    prop_assert!(to_bcs(&bare).len() <= wire::unproven_recovery_symbol_len(s));
    let list_limit = symbols.len() * symbol_limit + 64;
    check_wire_value(&symbols, list_limit, &mut rng)?;
    let proof = InconsistencyProof { target_kind, target_index: u16_of(target), symbols };
    check_wire_value(&proof, list_limit + 64, &mut rng)?;
    Ok(())
}

fn check_metadata(case: &Case) -> TestResult {
    let (blob, encoded) = case.encode();
    let config = case.config();
    let n = config.n_shards();
    let metadata = &encoded.metadata;
    let blob_id = *metadata.blob_id();
    let plain: BlobMetadata = metadata.metadata().clone();
    let mut rng = case.rng();

    prop_assert_eq!(redstuff::compute_metadata(config, &blob), Ok(metadata.clone()));
    prop_assert_eq!(metadata.unencoded_length(), u64_of(blob.len()));
    prop_assert_eq!(plain.blob_id(), blob_id);
    prop_assert_eq!(plain.clone().verify(&blob_id, config), Ok(metadata.clone()));

    let mut wrong_id = blob_id;
    wrong_id.0[rng.random_range(0..32)] ^= rng.random_range(1..=u8::MAX);
    prop_assert_eq!(
        plain.clone().verify(&wrong_id, config),
        Err(MetadataError::BlobIdMismatch { expected: wrong_id, computed: blob_id })
    );

    for other in SHARD_COUNTS.iter().copied().chain([config.n_shards() + 1].map(u16_of)) {
        if usize::from(other) == n {
            continue;
        }
        let other_config = EncodingConfig::new(other).expect("every shard count here is at least 4");
        prop_assert_eq!(
            plain.clone().verify(&blob_id, other_config),
            Err(MetadataError::WrongPairCount { expected: usize::from(other), actual: n })
        );
    }

    let mut wrong_type = plain.clone();
    wrong_type.encoding_type = 2;
    prop_assert_eq!(wrong_type.verify(&blob_id, config), Err(MetadataError::UnsupportedEncoding(2)));

    // Changing a hash or the length changes the ID.
    let mut changed = plain.clone();
    let pair = rng.random_range(0..n);
    changed.hashes[pair].secondary = changed.hashes[pair].primary;
    if changed != plain {
        let computed = changed.blob_id();
        prop_assert_eq!(
            changed.verify(&blob_id, config),
            Err(MetadataError::BlobIdMismatch { expected: blob_id, computed })
        );
    }
    let mut longer = plain.clone();
    longer.unencoded_length += 1;
    let computed = longer.blob_id();
    prop_assert_eq!(
        longer.verify(&blob_id, config),
        Err(MetadataError::BlobIdMismatch { expected: blob_id, computed })
    );

    // An empty hash is refused even under the ID it hashes to.
    let mut empty = plain;
    empty.hashes[pair].primary = redstuff::merkle::MerkleNode::Empty;
    let empty_id = empty.blob_id();
    prop_assert_eq!(empty.verify(&empty_id, config), Err(MetadataError::EmptyHash(pair)));
    Ok(())
}

proptest! {
    #![proptest_config(config_with_cases(128))]

    #[test]
    fn any_kp_primary_slivers_decode_the_blob(case in cases()) {
        check_decode(&case)?;
    }

    #[test]
    fn ranges_read_back_the_slice(case in cases()) {
        check_read_range(&case)?;
    }
}

proptest! {
    #![proptest_config(config_with_cases(64))]

    #[test]
    fn every_sliver_verifies_and_tampering_is_refused(case in cases()) {
        check_verify(&case)?;
    }

    #[test]
    fn recovery_symbols_rebuild_any_sliver(case in cases()) {
        check_rebuild(&case, 2)?;
    }

    #[test]
    fn many_slivers_rebuild_together_as_each_would_alone(case in cases()) {
        check_rebuild_many(&case)?;
    }

    #[test]
    fn wire_forms_round_trip_and_bad_bytes_are_refused(case in cases()) {
        check_wire(&case)?;
    }

    #[test]
    fn metadata_is_refused_under_the_wrong_id_or_shard_count(case in cases()) {
        check_metadata(&case)?;
    }
}

proptest! {
    #![proptest_config(config_with_cases(4))]

    #[test]
    fn large_blobs_pass_every_property(case in large_cases()) {
        check_decode(&case)?;
        check_verify(&case)?;
        check_rebuild(&case, 1)?;
        check_read_range(&case)?;
    }
}

proptest! {
    #![proptest_config(config_with_cases(1))]

    #[test]
    fn a_thousand_shards_decode_and_rebuild(case in thousand_shard_cases()) {
        check_decode(&case)?;
        check_rebuild(&case, 1)?;
        check_rebuild_many(&case)?;
    }
}

/// The smallest blobs, where the matrix is almost all padding, at every shard count.
#[test]
fn tiny_blobs_pass_every_property_at_every_shard_count() {
    for n in SHARD_COUNTS {
        for len in [0, 1, 2, 3] {
            let case = Case { n, len, seed: u64_of(len) + u64::from(n) };
            let run = || -> TestResult {
                check_decode(&case)?;
                check_verify(&case)?;
                check_rebuild(&case, 1)?;
                check_read_range(&case)?;
                check_wire(&case)?;
                check_metadata(&case)
            };
            if let Err(error) = run() {
                panic!("{case:?}: {error}");
            }
        }
    }
}

/// The largest blob of a code has the largest symbol size; one byte more is refused.
#[test]
fn the_largest_blob_round_trips_and_one_more_byte_is_refused() {
    let config = EncodingConfig::new(4).expect("n is at least 4");
    let max = usize_of(config.max_blob_size());
    let case = Case { n: 4, len: max, seed: 3 };
    let run = || -> TestResult {
        check_decode(&case)?;
        check_rebuild(&case, 1)?;
        check_read_range(&case)
    };
    if let Err(error) = run() {
        panic!("{case:?}: {error}");
    }
    let (_, encoded) = case.encode();
    assert_eq!(encoded.metadata.symbol_size(), redstuff::MAX_SYMBOL_SIZE);
    let too_large = vec![0; max + 1];
    assert!(matches!(
        redstuff::encode(config, &too_large),
        Err(redstuff::EncodeError::Config(redstuff::ConfigError::BlobTooLarge { .. }))
    ));
}

/// An empty range that starts inside the blob reads nothing, as `0..0` does.
#[test]
fn an_empty_range_inside_the_blob_reads_nothing() {
    let case = Case { n: 10, len: 1000, seed: 1 };
    let (_, encoded) = case.encode();
    let primary = primary_slivers(&encoded);
    for start in [0, 1, 5, 999, 1000] {
        assert_eq!(encoded.metadata.read_range(start..start, &primary), Ok(Vec::new()), "{start}..{start}");
    }
}
