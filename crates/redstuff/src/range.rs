//! Targeted reads: which symbols hold a byte range, and rebuilding just those symbols when
//! their systematic sliver is missing.
//!
//! The blob is laid out row-major in the `kp × ks` message matrix, so bytes `a..b` lie in
//! the symbols `⌊a/s⌋ ..= ⌊(b−1)/s⌋`, symbol `q` being cell `(q / ks, q % ks)`: column
//! `q % ks` of primary sliver `q / ks`. If that sliver is missing, column `q % ks` alone is
//! decoded from the same column of any `kp` other primary slivers. A decoded column is the
//! secondary sliver of that index, so it is checked against its hash in the metadata.

use std::collections::HashMap;
use std::ops::Range;

use crate::config::to_u64;
use crate::error::{DecodeError, RangeError};
use crate::metadata::VerifiedMetadata;
use crate::rs;
use crate::sliver::{Sliver, SliverType};
use crate::verify::expansion_root;

/// The symbols of the message matrix that cover a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolSpan {
    /// Row-major positions of the symbols, `position = ks · row + column`.
    pub positions: (usize, usize),
    /// Symbols per row (`ks`).
    pub row_width: usize,
    /// Bytes per symbol.
    pub symbol_size: usize,
}

impl SymbolSpan {
    /// The `(row, column)` of every symbol in the span, in blob order.
    pub fn cells(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (self.positions.0..self.positions.1)
            .map(|position| (position / self.row_width, position % self.row_width))
    }

    /// The rows (primary slivers) the span touches.
    pub fn rows(&self) -> Range<usize> {
        if self.positions.0 == self.positions.1 {
            return 0..0;
        }
        self.positions.0 / self.row_width..(self.positions.1 - 1) / self.row_width + 1
    }

    /// Byte offset in the blob of the span's first symbol.
    pub fn first_byte(&self) -> u64 {
        to_u64(self.positions.0 * self.symbol_size)
    }
}

impl VerifiedMetadata {
    /// The symbols that hold bytes `range` of the blob.
    pub fn symbols_for_range(&self, range: Range<u64>) -> Result<SymbolSpan, RangeError> {
        let blob_len = self.unencoded_length();
        if range.start > range.end || range.end > blob_len {
            return Err(RangeError::OutOfBounds { start: range.start, end: range.end, blob_len });
        }
        let s = u64::from(self.symbol_size());
        let to_position = |byte: u64| usize::try_from(byte / s).expect("positions are below kp·ks");
        let positions = if range.is_empty() {
            (0, 0)
        } else {
            (to_position(range.start), to_position(range.end - 1) + 1)
        };
        Ok(SymbolSpan {
            positions,
            row_width: self.config().ks(),
            symbol_size: usize::from(self.symbol_size()),
        })
    }

    /// Reads bytes `range` of the blob from whichever primary slivers are given (already
    /// verified, as for [`VerifiedMetadata::decode`]).
    ///
    /// Symbols of a given systematic sliver are copied; for a missing one only the columns
    /// the range needs are decoded, from `kp` other slivers, and each decoded column is
    /// checked against the metadata.
    pub fn read_range(&self, range: Range<u64>, slivers: &[Sliver]) -> Result<Vec<u8>, RangeError> {
        let span = self.symbols_for_range(range.clone())?;
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.config().n_shards();
        let mut by_index: Vec<Option<&Sliver>> = vec![None; n];
        for sliver in slivers {
            self.check_sliver_shape(SliverType::Primary, sliver).map_err(DecodeError::from)?;
            by_index[sliver.index()].get_or_insert(sliver);
        }
        let s = span.symbol_size;
        let mut columns: HashMap<usize, Vec<u8>> = HashMap::new();
        let mut bytes = Vec::with_capacity((span.positions.1 - span.positions.0) * s);
        for (row, column) in span.cells() {
            if let Some(sliver) = by_index[row] {
                bytes.extend_from_slice(&sliver.symbols[column * s..(column + 1) * s]);
                continue;
            }
            let decoded = match columns.get(&column) {
                Some(decoded) => decoded,
                None => {
                    let decoded = self.reconstruct_column(column, &by_index)?;
                    columns.entry(column).or_insert(decoded)
                }
            };
            bytes.extend_from_slice(&decoded[row * s..(row + 1) * s]);
        }
        let skip = usize::try_from(range.start - span.first_byte()).expect("less than one symbol");
        let len = usize::try_from(range.end - range.start).expect("the range fits in the blob");
        bytes.drain(..skip);
        bytes.truncate(len);
        Ok(bytes)
    }

    /// Decodes column `column` (the first `kp` cells, i.e. secondary sliver `column`) from
    /// that column of `kp` of the given primary slivers, and checks it against the metadata.
    fn reconstruct_column(
        &self,
        column: usize,
        by_index: &[Option<&Sliver>],
    ) -> Result<Vec<u8>, DecodeError> {
        let config = self.config();
        let (n, kp) = (config.n_shards(), config.kp());
        let s = usize::from(self.symbol_size());
        let available: Vec<&Sliver> = by_index.iter().flatten().copied().take(kp).collect();
        if available.len() < kp {
            return Err(DecodeError::NotEnoughSlivers { got: available.len(), needed: kp });
        }
        let cells =
            available.iter().map(|sliver| (sliver.index(), &sliver.symbols[column * s..(column + 1) * s]));
        let decoded = rs::decode(kp, n, s, cells);
        let root = expansion_root(config, SliverType::Secondary, s, &decoded);
        if Some(&root) != self.sliver_hash(SliverType::Secondary, column) {
            let row = by_index.iter().position(Option::is_none).unwrap_or(0);
            return Err(DecodeError::Inconsistent { row });
        }
        Ok(decoded)
    }
}
