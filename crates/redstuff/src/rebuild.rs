//! Rebuilding a lost sliver from recovery symbols: each symbol checked (its shape, and with
//! [`Proofs::Check`] its Merkle proof), `k` of distinct sources decoded, and the result checked
//! against the metadata. A mismatch from proven symbols is an [`InconsistencyProof`].

use crate::error::RecoveryError;
use crate::inconsistency::InconsistencyProof;
use crate::merkle;
use crate::metadata::VerifiedMetadata;
use crate::recovery::{Proofs, RecoverySymbol};
use crate::rs;
use crate::sliver::{Sliver, SliverType};
use crate::verify::{expansion_root, source_symbols};

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
        let index = u16::try_from(target_index)
            .ok()
            .filter(|index| usize::from(*index) < self.config().n_shards())
            .ok_or(RecoveryError::Malformed {
                source_index: 0,
                reason: "target index is not below the shard count",
            })?;
        let chosen = self.choose_symbols(target_kind, target_index, symbols, proofs)?;
        let sliver = self.decode_symbols(target_kind, index, &chosen);
        let s = usize::from(self.symbol_size());
        let root = expansion_root(self.config(), target_kind, s, &sliver.symbols);
        if Some(&root) == self.sliver_hash(target_kind, target_index) {
            return Ok(sliver);
        }
        match proofs {
            Proofs::Check => Err(RecoveryError::Inconsistent {
                kind: target_kind,
                index,
                proof: Box::new(InconsistencyProof {
                    target_kind,
                    target_index: index,
                    symbols: chosen.into_iter().cloned().collect(),
                }),
            }),
            Proofs::Skip => Err(RecoveryError::RebuiltMismatch { kind: target_kind, index }),
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
