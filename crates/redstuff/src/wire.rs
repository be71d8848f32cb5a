//! BCS forms of slivers, metadata, recovery symbols and inconsistency proofs, as Walrus puts
//! them on the wire, with a size limit and a shape check on every decode of untrusted bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{EncodingConfig, MAX_SYMBOL_SIZE};
use crate::error::WireError;
use crate::inconsistency::InconsistencyProof;
use crate::merkle::tree_height;
use crate::metadata::MetadataWithId;
use crate::recovery::{RecoverySymbol, SymbolBlock};
use crate::sliver::{Sliver, SliverType};

mod pieces;

pub use pieces::SliverFromPieces;

/// Longest Merkle path in any system (`n ≤ 65535` leaves).
const MAX_PROOF_LEN: usize = 16;

/// A value with a BCS wire form and a shape check run after decoding.
pub trait WireValue: Serialize + DeserializeOwned {
    /// What the value is called in errors.
    const WHAT: &'static str;

    /// Checks what BCS cannot: sizes and ranges that make the value usable.
    fn check(&self) -> Result<(), &'static str>;
}

/// The BCS bytes of `value`.
pub fn to_bcs<T: Serialize>(value: &T) -> Vec<u8> {
    bcs::to_bytes(value).expect("Morsa's wire values have no maps and no sequences over 2^31")
}

/// Decodes a `T` from untrusted `bytes`, refusing more than `limit` bytes, trailing bytes,
/// and values that fail `T`'s shape check.
pub fn from_bcs<T: WireValue>(bytes: &[u8], limit: usize) -> Result<T, WireError> {
    if bytes.len() > limit {
        return Err(WireError::TooLarge { what: T::WHAT, len: bytes.len(), limit });
    }
    let value: T = bcs::from_bytes(bytes)
        .map_err(|error| WireError::Bcs { what: T::WHAT, reason: error.to_string() })?;
    value.check().map_err(|reason| WireError::Malformed { what: T::WHAT, reason })?;
    Ok(value)
}

/// Overhead of BCS lengths and small fields around the payload of any value here.
const FRAME: usize = 64;

/// Largest BCS sliver of `kind` for a blob with `symbol_size` under `config`.
pub fn sliver_limit(config: EncodingConfig, kind: SliverType, symbol_size: u16) -> usize {
    let symbols = match kind {
        SliverType::Primary => config.ks(),
        SliverType::Secondary => config.kp(),
    };
    symbols * usize::from(symbol_size) + FRAME
}

/// Largest BCS metadata-with-ID for `config`.
pub fn metadata_limit(config: EncodingConfig) -> usize {
    config.n_shards() * 66 + FRAME
}

/// Largest BCS recovery symbol for a blob with `symbol_size` under `config`.
pub fn recovery_symbol_limit(config: EncodingConfig, symbol_size: u16) -> usize {
    usize::from(symbol_size) + 33 * tree_height(config.n_shards()) + FRAME
}

/// BCS length of a recovery symbol of `symbol_size` bytes with an empty proof (at most: the
/// symbol's length prefix counted at its longest).
pub fn unproven_recovery_symbol_len(symbol_size: u16) -> usize {
    // Source index, length prefix (at most 3 bytes below 2^21), the symbol, empty path.
    2 + 3 + usize::from(symbol_size) + 1
}

impl WireValue for Sliver {
    const WHAT: &'static str = "sliver";

    fn check(&self) -> Result<(), &'static str> {
        EncodingConfig::check_symbol_size(self.symbol_size)
            .map_err(|_| "symbol size is zero, odd or over 65534")?;
        if self.symbols.is_empty() {
            return Err("it has no symbols");
        }
        if !self.symbols.len().is_multiple_of(usize::from(self.symbol_size)) {
            return Err("its length is not a whole number of symbols");
        }
        Ok(())
    }
}

impl WireValue for MetadataWithId {
    const WHAT: &'static str = "blob metadata";

    fn check(&self) -> Result<(), &'static str> {
        if self.metadata.hashes.len() < usize::from(crate::config::MIN_SHARDS) {
            return Err("it lists fewer than 4 sliver pairs");
        }
        if self.metadata.hashes.len() > usize::from(u16::MAX) {
            return Err("it lists more than 65535 sliver pairs");
        }
        Ok(())
    }
}

impl WireValue for RecoverySymbol {
    const WHAT: &'static str = "recovery symbol";

    fn check(&self) -> Result<(), &'static str> {
        check_symbol_bytes(&self.symbol)?;
        if self.proof.path.len() > MAX_PROOF_LEN {
            return Err("its proof is longer than any tree's height");
        }
        Ok(())
    }
}

impl WireValue for Vec<RecoverySymbol> {
    const WHAT: &'static str = "recovery symbol list";

    fn check(&self) -> Result<(), &'static str> {
        self.iter().try_for_each(WireValue::check)
    }
}

impl WireValue for SymbolBlock {
    const WHAT: &'static str = "recovery symbol block";

    fn check(&self) -> Result<(), &'static str> {
        if self.source_indices.is_empty() {
            return if self.symbols.is_empty() { Ok(()) } else { Err("it has bytes but no sources") };
        }
        if !self.symbols.len().is_multiple_of(self.source_indices.len()) {
            return Err("its length is not a whole number of symbols");
        }
        check_symbol_bytes(&self.symbols[..self.symbols.len() / self.source_indices.len()])
    }
}

impl WireValue for InconsistencyProof {
    const WHAT: &'static str = "inconsistency proof";

    fn check(&self) -> Result<(), &'static str> {
        if self.symbols.is_empty() || self.symbols.len() > usize::from(u16::MAX) {
            return Err("its symbol count is zero or over 65535");
        }
        self.symbols.iter().try_for_each(WireValue::check)
    }
}

fn check_symbol_bytes(symbol: &[u8]) -> Result<(), &'static str> {
    let ok =
        !symbol.is_empty() && symbol.len().is_multiple_of(2) && symbol.len() <= usize::from(MAX_SYMBOL_SIZE);
    if ok { Ok(()) } else { Err("symbol length is zero, odd or over 65534") }
}
