//! Rebuilding a lost sliver from recovery symbols: each symbol checked (its shape, and with
//! [`Proofs::Check`] its Merkle proof), `k` of distinct sources decoded, and the result checked
//! against the metadata. A mismatch from proven symbols is an [`InconsistencyProof`].

use std::collections::HashMap;

use crate::error::RecoveryError;
use crate::inconsistency::InconsistencyProof;
use crate::merkle;
use crate::metadata::VerifiedMetadata;
use crate::recovery::{Proofs, RecoverySymbol};
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
        self.check_recovery_symbol_shape(symbol)?;
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

    fn check_recovery_symbol_shape(&self, symbol: &RecoverySymbol) -> Result<(), RecoveryError> {
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
        let mut results: Vec<Option<Result<Sliver, RecoveryError>>> = Vec::with_capacity(targets.len());
        let mut chosen: Vec<Vec<&RecoverySymbol>> = vec![Vec::new(); targets.len()];
        let mut patterns: HashMap<Vec<u16>, Vec<usize>> = HashMap::new();
        for (position, (target_index, symbols)) in targets.iter().enumerate() {
            match self.choose_for(target_kind, *target_index, symbols, proofs) {
                Ok(picked) => {
                    // Kept in the order given (an inconsistency proof lists them so); the
                    // pattern is the set of sources.
                    let mut pattern: Vec<u16> = picked.iter().map(|symbol| symbol.source_index).collect();
                    pattern.sort_unstable();
                    patterns.entry(pattern).or_default().push(position);
                    chosen[position] = picked;
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        let mut decoded: Vec<Option<Sliver>> = vec![None; targets.len()];
        for members in patterns.into_values() {
            for (position, sliver) in
                members.iter().zip(self.decode_pattern(target_kind, targets, &chosen, &members))
            {
                decoded[*position] = Some(sliver);
            }
        }
        let s = usize::from(self.symbol_size());
        let symbols: Vec<&[u8]> = decoded.iter().flatten().map(|sliver| sliver.symbols.as_slice()).collect();
        let mut roots = expansion_roots(self.config(), target_kind, s, &symbols).into_iter();
        let checked: Vec<Option<bool>> = decoded
            .iter()
            .enumerate()
            .map(|(position, sliver)| {
                sliver.as_ref().map(|_| {
                    let root = roots.next().expect("one root per decoded sliver");
                    Some(&root) == self.sliver_hash(target_kind, targets[position].0)
                })
            })
            .collect();
        results
            .into_iter()
            .zip(decoded)
            .zip(checked)
            .zip(chosen)
            .map(|(((result, sliver), matches), chosen)| match (result, sliver, matches) {
                (Some(result), _, _) => result,
                (None, Some(sliver), Some(true)) => Ok(sliver),
                (None, Some(sliver), _) => Err(self.mismatch(target_kind, sliver.index, chosen, proofs)),
                (None, None, _) => unreachable!("every target without an error was decoded"),
            })
            .collect()
    }

    /// The target's index as a sliver index of this blob, and its chosen symbols.
    fn choose_for<'a>(
        &self,
        target_kind: SliverType,
        target_index: usize,
        symbols: &'a [RecoverySymbol],
        proofs: Proofs,
    ) -> Result<Vec<&'a RecoverySymbol>, RecoveryError> {
        u16::try_from(target_index)
            .ok()
            .filter(|index| usize::from(*index) < self.config().n_shards())
            .ok_or(RecoveryError::Malformed {
                source_index: 0,
                reason: "target index is not below the shard count",
            })?;
        self.choose_symbols(target_kind, target_index, symbols, proofs)
    }

    /// Decodes the targets at `members`, whose chosen symbols come from the same sources, in
    /// one batch.
    fn decode_pattern(
        &self,
        target_kind: SliverType,
        targets: &[(usize, &[RecoverySymbol])],
        chosen: &[Vec<&RecoverySymbol>],
        members: &[usize],
    ) -> Vec<Sliver> {
        let config = self.config();
        let k = source_symbols(config, target_kind);
        let s = usize::from(self.symbol_size());
        // Each member's symbols in source order, so that position `p` is the same source in all.
        let sorted: Vec<Vec<&RecoverySymbol>> = members
            .iter()
            .map(|member| {
                let mut symbols = chosen[*member].clone();
                symbols.sort_unstable_by_key(|symbol| symbol.source_index);
                symbols
            })
            .collect();
        let sources = &sorted[0];
        let shards: Vec<(usize, Vec<u8>)> = (0..sources.len())
            .map(|source| {
                let mut bytes = Vec::with_capacity(members.len() * s);
                for symbols in &sorted {
                    bytes.extend_from_slice(&symbols[source].symbol);
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
                index: u16::try_from(targets[*member].0).expect("target indices were checked"),
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
        let config = self.config();
        let needed = source_symbols(config, target_kind);
        let mut seen = vec![false; config.n_shards()];
        let mut chosen = Vec::with_capacity(needed);
        for symbol in symbols {
            if chosen.len() == needed {
                break;
            }
            match proofs {
                Proofs::Check => self.verify_recovery_symbol(target_kind, target_index, symbol)?,
                Proofs::Skip => self.check_recovery_symbol_shape(symbol)?,
            }
            let source = usize::from(symbol.source_index);
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
