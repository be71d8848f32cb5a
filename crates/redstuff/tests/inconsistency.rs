//! Inconsistently encoded blobs: a writer that commits to a tampered sliver is caught by
//! rebuilds (with a proof anyone can check) and by decoding, while a consistent blob never
//! yields an inconsistency.
//!
//! A blob is tampered by flipping one byte in symbol `column` of primary sliver `pair`
//! before its metadata is computed with `metadata_for_pairs`. The tampered row then differs
//! from the genuine row `pair` of the expanded matrix in exactly the cells of column `column`
//! and of the `f` recovery columns `ks..n` (the difference is a codeword with one non-zero
//! source symbol, so all its repair symbols are non-zero), while every column is genuine.
//! Hence, deterministically:
//! - rebuilding secondary sliver `j` with a symbol from the tampered row is inconsistent
//!   exactly when `j` is one of those columns;
//! - rebuilding primary sliver `pair` (from genuine column cells) is always inconsistent;
//! - every other rebuild gives the genuine sliver.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use redstuff::wire::{self, from_bcs, to_bcs};
use redstuff::{
    DecodeError, EncodedBlob, EncodingConfig, InconsistencyProof, InconsistencyProofError, Proofs,
    RangeError, RecoveryError, RecoverySymbol, Sliver, SliverExpansion, SliverPair, SliverType,
    SliverVerificationError, VerifiedMetadata,
};

const BLOB_LEN: usize = 3000;

fn u16_of(value: usize) -> u16 {
    u16::try_from(value).expect("indices here fit in u16")
}

fn u64_of(value: usize) -> u64 {
    u64::try_from(value).expect("usize fits in u64")
}

fn test_blob() -> Vec<u8> {
    let mut blob = vec![0; BLOB_LEN];
    StdRng::seed_from_u64(7).fill_bytes(&mut blob);
    blob
}

fn config(n: u16) -> EncodingConfig {
    EncodingConfig::new(n).expect("n is at least 4")
}

/// A blob whose writer flipped a byte of primary sliver `pair`, symbol `column`, before
/// committing to the slivers.
struct Tampered {
    blob: Vec<u8>,
    genuine: EncodedBlob,
    pairs: Vec<SliverPair>,
    metadata: VerifiedMetadata,
    column: usize,
}

impl Tampered {
    fn new(n: u16, pair: usize, column: usize) -> Self {
        let config = config(n);
        assert!(column < config.ks(), "the tampered symbol is one of the ks in a primary sliver");
        let blob = test_blob();
        let genuine = redstuff::encode(config, &blob).expect("the blob fits the code");
        let mut pairs = genuine.pairs.clone();
        let s = usize::from(genuine.metadata.symbol_size());
        pairs[pair].primary.symbols[column * s + 1] ^= 0xa5;
        let metadata = redstuff::metadata_for_pairs(config, u64_of(blob.len()), &pairs)
            .expect("n pairs of the right shape");
        Self { blob, genuine, pairs, metadata, column }
    }

    fn config(&self) -> EncodingConfig {
        self.metadata.config()
    }

    fn primary(&self) -> Vec<Sliver> {
        self.pairs.iter().map(|pair| pair.primary.clone()).collect()
    }

    /// Whether secondary sliver `column` crosses a cell the tampering changed.
    fn crosses(&self, column: usize) -> bool {
        column == self.column || column >= self.config().ks()
    }
}

/// Slivers of `kind` by index, and their expansions under `metadata`.
fn expansions(metadata: &VerifiedMetadata, pairs: &[SliverPair], kind: SliverType) -> Vec<SliverExpansion> {
    let mut slivers: Vec<&Sliver> = pairs
        .iter()
        .map(|pair| match kind {
            SliverType::Primary => &pair.primary,
            SliverType::Secondary => &pair.secondary,
        })
        .collect();
    slivers.sort_by_key(|sliver| sliver.index);
    slivers
        .into_iter()
        .map(|sliver| SliverExpansion::new(metadata, kind, sliver).expect("slivers have the blob's shape"))
        .collect()
}

fn sliver_of(pairs: &[SliverPair], kind: SliverType, index: usize) -> Sliver {
    pairs
        .iter()
        .map(|pair| match kind {
            SliverType::Primary => &pair.primary,
            SliverType::Secondary => &pair.secondary,
        })
        .find(|sliver| sliver.index() == index)
        .expect("every index has a sliver")
        .clone()
}

/// The symbols the given sources send towards `target`.
fn symbols_from(sources: &[SliverExpansion], indices: &[usize], target: usize) -> Vec<RecoverySymbol> {
    indices
        .iter()
        .map(|source| sources[*source].recovery_symbol(target).expect("the target is below n"))
        .collect()
}

/// `count` distinct sources starting at `start` (wrapping), with `first` put first if given.
fn sources(n: usize, count: usize, start: usize, first: Option<usize>) -> Vec<usize> {
    let rest = (start..start + n).map(|index| index % n).filter(|index| Some(*index) != first);
    first.into_iter().chain(rest).take(count).collect()
}

fn wire_limit(metadata: &VerifiedMetadata, symbols: usize) -> usize {
    symbols * wire::recovery_symbol_limit(metadata.config(), metadata.symbol_size()) + 64
}

/// Checks an inconsistency proof: it holds against `metadata`, also after a BCS round trip.
fn assert_proof_holds(proof: &InconsistencyProof, metadata: &VerifiedMetadata) {
    assert_eq!(proof.verify(metadata), Ok(()));
    let bytes = to_bcs(proof);
    let decoded: InconsistencyProof =
        from_bcs(&bytes, wire_limit(metadata, proof.symbols.len())).expect("a proof round-trips through BCS");
    assert_eq!(&decoded, proof);
    assert_eq!(decoded.verify(metadata), Ok(()));
}

fn check_tampered(n: u16, pair: usize, column: usize) {
    let tampered = Tampered::new(n, pair, column);
    let config = tampered.config();
    let (n, kp, ks) = (config.n_shards(), config.kp(), config.ks());
    let metadata = &tampered.metadata;
    assert_ne!(metadata.blob_id(), tampered.genuine.metadata.blob_id());

    // The writer committed to the tampered sliver: every sliver verifies, the genuine
    // tampered-with sliver does not.
    for sliver_pair in &tampered.pairs {
        assert_eq!(metadata.verify_sliver(SliverType::Primary, &sliver_pair.primary), Ok(()));
        assert_eq!(metadata.verify_sliver(SliverType::Secondary, &sliver_pair.secondary), Ok(()));
    }
    assert_eq!(
        metadata.verify_sliver(SliverType::Primary, &tampered.genuine.pairs[pair].primary),
        Err(SliverVerificationError::HashMismatch { kind: SliverType::Primary, index: u16_of(pair) })
    );

    // Secondary targets from primary sources.
    let rows = expansions(metadata, &tampered.pairs, SliverType::Primary);
    let mut inconsistent_columns = Vec::new();
    for target in 0..n {
        let genuine = sliver_of(&tampered.genuine.pairs, SliverType::Secondary, target);
        for start in 0..n {
            // Through the tampered row.
            let through = symbols_from(&rows, &sources(n, kp, start, Some(pair)), target);
            let result = metadata.rebuild_sliver(SliverType::Secondary, target, &through, Proofs::Check);
            if tampered.crosses(target) {
                let Err(RecoveryError::Inconsistent { kind, index, proof }) = result else {
                    panic!(
                        "secondary {target} through row {pair}: expected an inconsistency, got {result:?}"
                    );
                };
                assert_eq!((kind, usize::from(index)), (SliverType::Secondary, target));
                assert_eq!((proof.target_kind, usize::from(proof.target_index)), (kind, target));
                assert_eq!(proof.symbols.len(), kp);
                assert_eq!(usize::from(proof.symbols[0].source_index), pair);
                assert_proof_holds(&proof, metadata);
                // Under the genuine metadata the tampered row's symbol has no valid proof.
                assert_eq!(
                    proof.verify(&tampered.genuine.metadata),
                    Err(InconsistencyProofError::Symbols(RecoveryError::InvalidProof {
                        kind: SliverType::Primary,
                        source_index: u16_of(pair),
                    }))
                );
                assert_eq!(
                    metadata.rebuild_sliver(SliverType::Secondary, target, &through, Proofs::Skip),
                    Err(RecoveryError::RebuiltMismatch { kind, index })
                );
                if start == 0 {
                    inconsistent_columns.push(target);
                }
            } else {
                assert_eq!(result.as_ref(), Ok(&genuine), "secondary {target} through row {pair}");
            }

            // Around the tampered row: always the genuine sliver.
            let around: Vec<usize> =
                sources(n, n, start, None).into_iter().filter(|row| *row != pair).collect();
            let symbols = symbols_from(&rows, &around[..kp], target);
            for proofs in [Proofs::Check, Proofs::Skip] {
                assert_eq!(
                    metadata.rebuild_sliver(SliverType::Secondary, target, &symbols, proofs).as_ref(),
                    Ok(&genuine),
                    "secondary {target} around row {pair}"
                );
            }
        }
    }
    let expected: Vec<usize> = std::iter::once(column).chain(ks..n).collect();
    assert_eq!(inconsistent_columns, expected, "the columns the tampered row crosses wrongly");

    // Primary targets from secondary sources: the columns are genuine, so row `pair` rebuilds
    // to the genuine row, which is not what the metadata commits to.
    let columns = expansions(metadata, &tampered.pairs, SliverType::Secondary);
    for target in 0..n {
        for start in 0..n {
            let symbols = symbols_from(&columns, &sources(n, ks, start, None), target);
            let result = metadata.rebuild_sliver(SliverType::Primary, target, &symbols, Proofs::Check);
            if target == pair {
                let Err(RecoveryError::Inconsistent { kind, index, proof }) = result else {
                    panic!("primary {target}: expected an inconsistency, got {result:?}");
                };
                assert_eq!((kind, usize::from(index)), (SliverType::Primary, pair));
                assert_eq!(proof.symbols.len(), ks);
                assert_proof_holds(&proof, metadata);
                // The genuine metadata commits to the genuine row: nothing inconsistent there.
                assert_eq!(
                    proof.verify(&tampered.genuine.metadata),
                    Err(InconsistencyProofError::Consistent)
                );
            } else {
                let genuine = sliver_of(&tampered.genuine.pairs, SliverType::Primary, target);
                assert_eq!(result, Ok(genuine), "primary {target}");
            }
        }
    }
}

#[test]
fn tampered_repair_row_is_caught_at_n_10() {
    check_tampered(10, 8, 2);
}

#[test]
fn tampered_repair_row_is_caught_at_n_7() {
    check_tampered(7, 6, 0);
}

#[test]
fn tampered_repair_row_is_caught_at_n_4() {
    check_tampered(4, 2, 2);
}

#[test]
fn tampered_systematic_row_is_caught_at_n_10() {
    check_tampered(10, 1, 6);
}

/// Every `k`-subset of `0..n`, in lexicographic order.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    let mut current = Vec::with_capacity(k);
    fn extend(start: usize, n: usize, k: usize, current: &mut Vec<usize>, all: &mut Vec<Vec<usize>>) {
        if current.len() == k {
            all.push(current.clone());
            return;
        }
        for next in start..n {
            current.push(next);
            extend(next + 1, n, k, current, all);
            current.pop();
        }
    }
    extend(0, n, k, &mut current, &mut all);
    all
}

#[test]
fn decoding_through_a_tampered_repair_row_is_refused() {
    let tampered = Tampered::new(10, 8, 2);
    let metadata = &tampered.metadata;
    let kp = metadata.config().kp();
    let primary = tampered.primary();
    let pick =
        |indices: &[usize]| -> Vec<Sliver> { indices.iter().map(|index| primary[*index].clone()).collect() };

    // Row 3 is decoded through row 8 and differs in column 2.
    assert_eq!(metadata.decode(&pick(&[0, 1, 2, 8])), Err(DecodeError::Inconsistent { row: 3 }));
    // Rows 5, 6, 7 agree with the genuine code, so every decoded systematic row differs.
    assert_eq!(metadata.decode(&pick(&[8, 7, 6, 5])), Err(DecodeError::Inconsistent { row: 0 }));
    assert_eq!(metadata.decode(&pick(&[0, 1, 2, 3])), Ok(tampered.blob.clone()));

    // Every kp-subset: decoding fails exactly when it goes through row 8, and never returns
    // anything but the blob.
    let mut refused = 0;
    for subset in subsets(10, kp) {
        let result = metadata.decode(&pick(&subset));
        if subset.contains(&8) {
            assert!(matches!(result, Err(DecodeError::Inconsistent { .. })), "{subset:?}: {result:?}");
            refused += 1;
        } else {
            assert_eq!(result.as_ref(), Ok(&tampered.blob), "{subset:?}");
        }
    }
    assert_eq!(refused, 84, "C(9, 3) subsets contain row 8");

    // Range reads rebuild only the columns they need: column 2 of row 3 goes through the
    // tampered cell and is refused; column 1 of row 3 is unaffected.
    let s = u64::from(metadata.symbol_size());
    let ks = u64_of(metadata.config().ks());
    let cell = |row: u64, column: u64| (ks * row + column) * s..(ks * row + column + 1) * s;
    let through = pick(&[0, 1, 2, 8]);
    assert!(matches!(
        metadata.read_range(cell(3, 2), &through),
        Err(RangeError::Decode(DecodeError::Inconsistent { .. }))
    ));
    let unaffected = cell(3, 1);
    let expected = tampered.blob
        [usize::try_from(unaffected.start).expect("small")..usize::try_from(unaffected.end).expect("small")]
        .to_vec();
    assert_eq!(metadata.read_range(unaffected, &through), Ok(expected));
}

#[test]
fn a_tampered_systematic_row_never_decodes_to_two_different_blobs() {
    let tampered = Tampered::new(10, 1, 6);
    let metadata = &tampered.metadata;
    let kp = metadata.config().kp();
    let primary = tampered.primary();
    let mut decoded = Vec::new();
    for subset in subsets(10, kp) {
        let slivers: Vec<Sliver> = subset.iter().map(|index| primary[*index].clone()).collect();
        match metadata.decode(&slivers) {
            Ok(blob) => decoded.push((subset, blob)),
            Err(DecodeError::Inconsistent { .. }) => {}
            Err(error) => panic!("{subset:?}: unexpected {error:?}"),
        }
    }
    // Only the systematic slivers, which need no decoding, give data: what the writer
    // committed to, which is not the original blob.
    assert_eq!(decoded.len(), 1, "{:?}", decoded.iter().map(|(subset, _)| subset).collect::<Vec<_>>());
    let (subset, blob) = &decoded[0];
    assert_eq!(subset, &[0, 1, 2, 3]);
    assert_ne!(blob, &tampered.blob);
    let row_len = metadata.sliver_len(SliverType::Primary);
    assert_eq!(&blob[row_len..2 * row_len], &tampered.pairs[1].primary.symbols[..]);
}

#[test]
fn a_consistent_blob_never_yields_an_inconsistency() {
    for n in [4u16, 7, 10] {
        let config = config(n);
        let (n, kp, ks) = (config.n_shards(), config.kp(), config.ks());
        let blob = test_blob();
        let encoded = redstuff::encode(config, &blob).expect("the blob fits the code");
        let metadata = &encoded.metadata;
        for target_kind in [SliverType::Primary, SliverType::Secondary] {
            let needed = if target_kind == SliverType::Primary { ks } else { kp };
            let sources_of = expansions(metadata, &encoded.pairs, target_kind.orthogonal());
            for target in 0..n {
                let genuine = sliver_of(&encoded.pairs, target_kind, target);
                for start in 0..n {
                    let symbols = symbols_from(&sources_of, &sources(n, needed, start, None), target);
                    for proofs in [Proofs::Check, Proofs::Skip] {
                        assert_eq!(
                            metadata.rebuild_sliver(target_kind, target, &symbols, proofs).as_ref(),
                            Ok(&genuine),
                            "n = {n}, {target_kind} {target}, sources from {start}"
                        );
                    }

                    // The same genuine symbols, offered as an inconsistency proof.
                    let proof = InconsistencyProof {
                        target_kind,
                        target_index: u16_of(target),
                        symbols: symbols.clone(),
                    };
                    assert_eq!(proof.verify(metadata), Err(InconsistencyProofError::Consistent));
                    let decoded: InconsistencyProof =
                        from_bcs(&to_bcs(&proof), wire_limit(metadata, needed)).expect("round trip");
                    assert_eq!(decoded.verify(metadata), Err(InconsistencyProofError::Consistent));
                }

                let symbols = symbols_from(&sources_of, &sources(n, needed, target, None), target);
                let too_few = InconsistencyProof {
                    target_kind,
                    target_index: u16_of(target),
                    symbols: symbols[..needed - 1].to_vec(),
                };
                assert_eq!(
                    too_few.verify(metadata),
                    Err(InconsistencyProofError::Symbols(RecoveryError::NotEnoughSymbols {
                        kind: target_kind,
                        got: needed - 1,
                        needed,
                    }))
                );
                let mut forged = symbols.clone();
                forged[0].symbol[0] ^= 1;
                let forged =
                    InconsistencyProof { target_kind, target_index: u16_of(target), symbols: forged };
                assert_eq!(
                    forged.verify(metadata),
                    Err(InconsistencyProofError::Symbols(RecoveryError::InvalidProof {
                        kind: target_kind.orthogonal(),
                        source_index: symbols[0].source_index,
                    }))
                );
                let out_of_range = InconsistencyProof { target_kind, target_index: u16_of(n), symbols };
                assert!(matches!(
                    out_of_range.verify(metadata),
                    Err(InconsistencyProofError::Symbols(RecoveryError::Malformed { .. }))
                ));
            }
        }
    }
}
