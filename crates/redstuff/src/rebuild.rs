//! Rebuilding a lost sliver from recovery symbols: each symbol checked (its shape, and with
//! [`Proofs::Check`] its Merkle proof), `k` of distinct sources decoded, and the result checked
//! against the metadata. A mismatch from proven symbols is an [`InconsistencyProof`].

use std::collections::HashMap;

use crate::error::RecoveryError;
use crate::inconsistency::InconsistencyProof;
use crate::merkle;
use crate::metadata::VerifiedMetadata;
use crate::recovery::{Proofs, RecoverySymbol, SymbolRef};
use crate::rs;
use crate::sliver::{Sliver, SliverType};
use crate::verify::{expansion_roots, source_symbols};

impl VerifiedMetadata {
    /// Checks that `symbol` is cell `target_index` of its source sliver, which is of the kind
    /// orthogonal to `target_kind`.
    pub fn verify_recovery_symbol(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbol: &RecoverySymbol,
    ) -> Result<(), RecoveryError> {
        self.check_shape(symbol.cell())?;
        let source_kind = target_kind.orthogonal();
        let n = self.config().n_shards();
        let root = self.sliver_hash(source_kind, usize::from(symbol.source_index)).ok_or(
            RecoveryError::Malformed {
                source_index: symbol.source_index,
                reason: "source index is not below the shard count",
            },
        )?;
        let leaf = merkle::leaf_hash(&symbol.symbol);
        if !symbol.proof.verifies(root, &leaf, target_index, n) {
            return Err(RecoveryError::InvalidProof { kind: source_kind, source_index: symbol.source_index });
        }
        Ok(())
    }

    /// Checks a symbol's length and that its source is below `n`.
    fn check_shape(&self, symbol: SymbolRef<'_>) -> Result<(), RecoveryError> {
        if symbol.symbol.len() != usize::from(self.symbol_size()) {
            return Err(RecoveryError::Malformed {
                source_index: symbol.source_index,
                reason: "symbol length is not the blob's symbol size",
            });
        }
        if usize::from(symbol.source_index) >= self.config().n_shards() {
            return Err(RecoveryError::Malformed {
                source_index: symbol.source_index,
                reason: "source index is not below the shard count",
            });
        }
        Ok(())
    }

    /// Rebuilds sliver `target_index` of `target_kind` from recovery symbols of distinct
    /// source slivers: `kp` of them for a secondary sliver, `ks` for a primary one (extras
    /// and duplicates are ignored).
    ///
    /// The result is checked against the metadata. If it does not match and the proofs were
    /// checked, the symbols prove the blob was encoded inconsistently and the error carries
    /// an [`InconsistencyProof`]; with [`Proofs::Skip`] it means some peer lied, so retry
    /// with proofs.
    pub fn rebuild_sliver(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbols: &[RecoverySymbol],
        proofs: Proofs,
    ) -> Result<Sliver, RecoveryError> {
        let mut results = self.rebuild_slivers(target_kind, &[(target_index, symbols)], proofs);
        results.pop().expect("one result per target")
    }

    /// Rebuilds several slivers of `target_kind` of this blob, each `(index, symbols)` as
    /// [`VerifiedMetadata::rebuild_sliver`] would, with one result per target in order.
    ///
    /// Targets whose chosen symbols come from the same sources share one erasure pattern and
    /// are decoded together, side by side (`rs::decode_columns`): a node rebuilding many slivers
    /// of a blob from the same peers pays the decoder's setup once, not once per sliver. The
    /// checks against the metadata run on every core.
    pub fn rebuild_slivers(
        &self,
        target_kind: SliverType,
        targets: &[(usize, &[RecoverySymbol])],
        proofs: Proofs,
    ) -> Vec<Result<Sliver, RecoveryError>> {
        let chosen: Vec<Result<Vec<&RecoverySymbol>, RecoveryError>> = targets
            .iter()
            .map(|(target_index, symbols)| self.choose_for(target_kind, *target_index, symbols, proofs))
            .collect();
        let indices: Vec<usize> = targets.iter().map(|(index, _)| *index).collect();
        self.rebuild_chosen(
            target_kind,
            &indices,
            chosen,
            |picked| picked.iter().map(|symbol| RecoverySymbol::cell(symbol)).collect(),
            |index, picked| self.mismatch(target_kind, index, picked, proofs),
        )
    }

    /// [`VerifiedMetadata::rebuild_slivers`] without proofs, from symbols given by reference
    /// (alone or out of [`crate::SymbolBlock`]s): each `(index, symbols)` rebuilt from the first
    /// of each distinct source, their shapes checked, the result checked against the metadata
    /// (a mismatch is [`RecoveryError::RebuiltMismatch`]: retry with proofs).
    pub fn rebuild_slivers_unproven(
        &self,
        target_kind: SliverType,
        targets: &[(usize, &[SymbolRef<'_>])],
    ) -> Vec<Result<Sliver, RecoveryError>> {
        let chosen: Vec<Result<Vec<SymbolRef<'_>>, RecoveryError>> = targets
            .iter()
            .map(|(target_index, symbols)| {
                self.check_target(*target_index)?;
                self.choose(target_kind, symbols.iter().copied(), |symbol| self.check_shape(*symbol))
            })
            .collect();
        let indices: Vec<usize> = targets.iter().map(|(index, _)| *index).collect();
        self.rebuild_chosen(target_kind, &indices, chosen, Vec::clone, |index, _| {
            RecoveryError::RebuiltMismatch { kind: target_kind, index }
        })
    }

    /// Decodes and checks every target (`indices[i]`) whose symbols were chosen: a match is its
    /// sliver, a mismatch the error `mismatch` makes of the target's index and choice, and a
    /// target whose choice failed keeps its error.
    fn rebuild_chosen<'a, C>(
        &self,
        target_kind: SliverType,
        indices: &[usize],
        chosen: Vec<Result<C, RecoveryError>>,
        cells_of: impl Fn(&C) -> Vec<SymbolRef<'a>>,
        mismatch: impl Fn(u16, C) -> RecoveryError,
    ) -> Vec<Result<Sliver, RecoveryError>> {
        let cells: Vec<Option<Vec<SymbolRef<'a>>>> =
            chosen.iter().map(|picked| picked.as_ref().ok().map(&cells_of)).collect();
        let decoded = self.decode_chosen(target_kind, indices, &cells);
        decoded
            .into_iter()
            .zip(chosen)
            .map(|(decoded, chosen)| match (decoded, chosen) {
                (_, Err(error)) => Err(error),
                (Some((sliver, true)), Ok(_)) => Ok(sliver),
                (Some((sliver, false)), Ok(chosen)) => Err(mismatch(sliver.index, chosen)),
                (None, Ok(_)) => unreachable!("every target without an error was decoded"),
            })
            .collect()
    }

    /// Decodes each target (`indices[i]`) that has chosen cells (`k` of distinct sources) and
    /// checks it against the metadata: per target, the sliver and whether it matches its hash,
    /// or `None` where nothing was chosen. Targets whose cells come from the same sources share
    /// one erasure pattern and are decoded together; the checks run on every core.
    fn decode_chosen(
        &self,
        target_kind: SliverType,
        indices: &[usize],
        chosen: &[Option<Vec<SymbolRef<'_>>>],
    ) -> Vec<Option<(Sliver, bool)>> {
        let mut patterns: HashMap<Vec<u16>, Vec<usize>> = HashMap::new();
        for (position, picked) in chosen.iter().enumerate() {
            if let Some(picked) = picked {
                // The pattern is the set of sources.
                let mut pattern: Vec<u16> = picked.iter().map(|symbol| symbol.source_index).collect();
                pattern.sort_unstable();
                patterns.entry(pattern).or_default().push(position);
            }
        }
        let mut decoded: Vec<Option<Sliver>> = vec![None; chosen.len()];
        for members in patterns.into_values() {
            for (position, sliver) in
                members.iter().zip(self.decode_pattern(target_kind, indices, chosen, &members))
            {
                decoded[*position] = Some(sliver);
            }
        }
        let s = usize::from(self.symbol_size());
        let symbols: Vec<&[u8]> = decoded.iter().flatten().map(|sliver| sliver.symbols.as_slice()).collect();
        let mut roots = expansion_roots(self.config(), target_kind, s, &symbols).into_iter();
        decoded
            .into_iter()
            .zip(indices)
            .map(|(sliver, index)| {
                sliver.map(|sliver| {
                    let root = roots.next().expect("one root per decoded sliver");
                    let matches = Some(&root) == self.sliver_hash(target_kind, *index);
                    (sliver, matches)
                })
            })
            .collect()
    }

    /// Refuses a target index that is not below `n`.
    fn check_target(&self, target_index: usize) -> Result<(), RecoveryError> {
        u16::try_from(target_index)
            .ok()
            .filter(|index| usize::from(*index) < self.config().n_shards())
            .ok_or(RecoveryError::Malformed {
                source_index: 0,
                reason: "target index is not below the shard count",
            })?;
        Ok(())
    }

    /// The target's index as a sliver index of this blob, and its chosen symbols.
    fn choose_for<'a>(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbols: &'a [RecoverySymbol],
        proofs: Proofs,
    ) -> Result<Vec<&'a RecoverySymbol>, RecoveryError> {
        self.check_target(target_index)?;
        self.choose_symbols(target_kind, target_index, symbols, proofs)
    }

    /// Decodes the targets at `members`, whose chosen symbols come from the same sources, in
    /// one batch.
    fn decode_pattern(
        &self,
        target_kind: SliverType,
        indices: &[usize],
        chosen: &[Option<Vec<SymbolRef<'_>>>],
        members: &[usize],
    ) -> Vec<Sliver> {
        let config = self.config();
        let k = source_symbols(config, target_kind);
        let s = usize::from(self.symbol_size());
        // Each member's symbols in source order, so that position `p` is the same source in all.
        let sorted: Vec<Vec<SymbolRef<'_>>> = members
            .iter()
            .map(|member| {
                let mut symbols = chosen[*member].clone().expect("members have chosen symbols");
                symbols.sort_unstable_by_key(|symbol| symbol.source_index);
                symbols
            })
            .collect();
        let sources = &sorted[0];
        let shards: Vec<(usize, Vec<u8>)> = (0..sources.len())
            .map(|source| {
                let mut bytes = Vec::with_capacity(members.len() * s);
                for symbols in &sorted {
                    bytes.extend_from_slice(symbols[source].symbol);
                }
                (usize::from(sources[source].source_index), bytes)
            })
            .collect();
        let shards: Vec<(usize, &[u8])> =
            shards.iter().map(|(index, bytes)| (*index, bytes.as_slice())).collect();
        rs::decode_columns(k, config.n_shards(), s, members.len(), &shards)
            .into_iter()
            .zip(members)
            .map(|(symbols, member)| Sliver {
                symbols,
                symbol_size: self.symbol_size(),
                index: u16::try_from(indices[*member]).expect("target indices were checked"),
            })
            .collect()
    }

    /// The error for a rebuilt sliver that does not match its hash.
    fn mismatch(
        &self,
        target_kind: SliverType,
        index: u16,
        chosen: Vec<&RecoverySymbol>,
        proofs: Proofs,
    ) -> RecoveryError {
        match proofs {
            Proofs::Check => RecoveryError::Inconsistent {
                kind: target_kind,
                index,
                proof: Box::new(InconsistencyProof {
                    target_kind,
                    target_index: index,
                    symbols: chosen.into_iter().cloned().collect(),
                }),
            },
            Proofs::Skip => RecoveryError::RebuiltMismatch { kind: target_kind, index },
        }
    }

    /// The first symbol of each distinct source, `k` of them, with shapes (and proofs if
    /// asked) checked.
    pub(crate) fn choose_symbols<'a>(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbols: &'a [RecoverySymbol],
        proofs: Proofs,
    ) -> Result<Vec<&'a RecoverySymbol>, RecoveryError> {
        self.choose(target_kind, symbols.iter(), |symbol| match proofs {
            Proofs::Check => self.verify_recovery_symbol(target_kind, target_index, symbol),
            Proofs::Skip => self.check_shape(symbol.cell()),
        })
    }

    /// The first symbol of each distinct source among `symbols`, `k` of them (those after the
    /// `k`th are not looked at), each passing `check` before it is counted.
    fn choose<T: Copy + HasSource>(
        &self,
        target_kind: SliverType,
        symbols: impl Iterator<Item = T>,
        mut check: impl FnMut(&T) -> Result<(), RecoveryError>,
    ) -> Result<Vec<T>, RecoveryError> {
        let config = self.config();
        let needed = source_symbols(config, target_kind);
        let mut seen = vec![false; config.n_shards()];
        let mut chosen = Vec::with_capacity(needed);
        for symbol in symbols {
            if chosen.len() == needed {
                break;
            }
            check(&symbol)?;
            let source = usize::from(symbol.source());
            if !std::mem::replace(&mut seen[source], true) {
                chosen.push(symbol);
            }
        }
        if chosen.len() < needed {
            return Err(RecoveryError::NotEnoughSymbols { kind: target_kind, got: chosen.len(), needed });
        }
        Ok(chosen)
    }

    /// Decodes the target sliver from `k` symbols of distinct sources.
    pub(crate) fn decode_symbols(
        &self,
        target_kind: SliverType,
        index: u16,
        chosen: &[&RecoverySymbol],
    ) -> Sliver {
        let config = self.config();
        let k = source_symbols(config, target_kind);
        let s = usize::from(self.symbol_size());
        let cells = chosen.iter().map(|symbol| (usize::from(symbol.source_index), symbol.symbol.as_slice()));
        Sliver { symbols: rs::decode(k, config.n_shards(), s, cells), symbol_size: self.symbol_size(), index }
    }
}

/// What [`VerifiedMetadata::choose`] needs of a symbol: its source.
trait HasSource {
    fn source(&self) -> u16;
}

impl HasSource for &RecoverySymbol {
    fn source(&self) -> u16 {
        self.source_index
    }
}

impl HasSource for SymbolRef<'_> {
    fn source(&self) -> u16 {
        self.source_index
    }
}
