//! Slivers: the rows (primary) and columns (secondary) of the expanded matrix that nodes store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which dimension a sliver comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SliverType {
    /// A row of the expanded matrix: `ks` symbols.
    Primary,
    /// A column of the expanded matrix: `kp` symbols.
    Secondary,
}

impl SliverType {
    /// The other dimension: the kind of sliver whose cells this one's expansion crosses.
    pub fn orthogonal(self) -> Self {
        match self {
            Self::Primary => Self::Secondary,
            Self::Secondary => Self::Primary,
        }
    }

    /// Lower-case name, as used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        }
    }
}

impl fmt::Display for SliverType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sliver in Walrus's wire form: `{ symbols: bytes, symbol_size: u16, index: u16 }`.
///
/// Whether it is primary or secondary is known from context (the route or the pair field).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sliver {
    /// The symbols, concatenated.
    #[serde(with = "serde_bytes")]
    pub symbols: Vec<u8>,
    /// Bytes per symbol.
    pub symbol_size: u16,
    /// The sliver index (row for primary, column for secondary).
    pub index: u16,
}

impl Sliver {
    /// Number of whole symbols.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len().checked_div(usize::from(self.symbol_size)).unwrap_or(0)
    }

    /// Symbol `position`, if the sliver has it.
    pub fn symbol(&self, position: usize) -> Option<&[u8]> {
        let size = usize::from(self.symbol_size);
        self.symbols.get(position * size..(position + 1) * size)
    }

    /// The sliver index as `usize`.
    pub fn index(&self) -> usize {
        usize::from(self.index)
    }
}

impl fmt::Debug for Sliver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sliver")
            .field("index", &self.index)
            .field("symbol_size", &self.symbol_size)
            .field("bytes", &self.symbols.len())
            .finish()
    }
}

/// What one shard stores for a blob: primary sliver `p` and secondary sliver `n − 1 − p`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliverPair {
    /// Primary sliver `p`.
    pub primary: Sliver,
    /// Secondary sliver `n − 1 − p`.
    pub secondary: Sliver,
}

impl SliverPair {
    /// The pair index `p` (the primary sliver's index).
    pub fn index(&self) -> usize {
        self.primary.index()
    }
}

/// Index of the secondary sliver in pair `pair_index`, and of the pair holding secondary
/// sliver `pair_index` (the map is its own inverse): `n − 1 − index`.
pub fn secondary_index_of_pair(pair_index: usize, n_shards: usize) -> usize {
    n_shards - 1 - pair_index
}
