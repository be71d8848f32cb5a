//! Decoding a blob from any `kp` primary slivers, with the consistency check.

use rayon::prelude::*;

use crate::error::DecodeError;
use crate::metadata::VerifiedMetadata;
use crate::rs;
use crate::sliver::{Sliver, SliverType};
use crate::verify::expansion_roots;

impl VerifiedMetadata {
    /// Decodes the blob from primary slivers.
    ///
    /// The slivers must already have passed [`VerifiedMetadata::verify_sliver`] (a client
    /// checks each as it arrives); here only their shape is checked again. Any `kp` distinct
    /// slivers suffice; duplicates and extras are ignored. When the systematic slivers
    /// `0..kp` are all given the blob is assembled from them without decoding. Otherwise the
    /// missing systematic rows are decoded column by column and each is checked against its
    /// hash in the metadata (the consistency check): data that the writer encoded
    /// inconsistently is refused with [`DecodeError::Inconsistent`], never returned.
    pub fn decode(&self, slivers: &[Sliver]) -> Result<Vec<u8>, DecodeError> {
        let config = self.config();
        let (n, kp, ks) = (config.n_shards(), config.kp(), config.ks());
        let s = usize::from(self.symbol_size());
        let mut by_index: Vec<Option<&Sliver>> = vec![None; n];
        for sliver in slivers {
            self.check_sliver_shape(SliverType::Primary, sliver)?;
            by_index[sliver.index()].get_or_insert(sliver);
        }
        let distinct = by_index.iter().flatten().count();
        if distinct < kp {
            return Err(DecodeError::NotEnoughSlivers { got: distinct, needed: kp });
        }
        // Systematic slivers first: every one given is a row that needs no decoding.
        let chosen: Vec<&Sliver> = by_index.iter().flatten().copied().take(kp).collect();
        let missing_rows: Vec<usize> = (0..kp).filter(|row| by_index[*row].is_none()).collect();

        let row_len = ks * s;
        let mut blob = vec![0; kp * row_len];
        blob.par_chunks_mut(row_len).zip(by_index[..kp].par_iter()).for_each(|(row, sliver)| {
            if let Some(sliver) = sliver {
                row.copy_from_slice(&sliver.symbols);
            }
        });

        if !missing_rows.is_empty() {
            self.decode_missing_rows(&chosen, &missing_rows, &mut blob);
            let rows: Vec<&[u8]> =
                missing_rows.iter().map(|row| &blob[row * row_len..(row + 1) * row_len]).collect();
            let roots = expansion_roots(config, SliverType::Primary, s, &rows);
            let inconsistent = missing_rows
                .iter()
                .zip(&roots)
                .find(|(row, root)| Some(*root) != self.sliver_hash(SliverType::Primary, **row))
                .map(|(row, _)| *row);
            if let Some(row) = inconsistent {
                return Err(DecodeError::Inconsistent { row });
            }
        }

        self.cut_padding(blob)
    }

    /// Decodes columns `0..ks` from the `kp` chosen slivers and writes the symbols of the
    /// missing systematic rows into `blob`.
    fn decode_missing_rows(&self, chosen: &[&Sliver], missing_rows: &[usize], blob: &mut [u8]) {
        let config = self.config();
        let (n, kp, ks) = (config.n_shards(), config.kp(), config.ks());
        let s = usize::from(self.symbol_size());
        let shards: Vec<(usize, &[u8])> =
            chosen.iter().map(|sliver| (sliver.index(), sliver.symbols.as_slice())).collect();
        let columns = rs::decode_columns(kp, n, s, ks, &shards);
        // `missing_rows` is in ascending order.
        blob.par_chunks_mut(ks * s)
            .enumerate()
            .filter(|(row, _)| missing_rows.binary_search(row).is_ok())
            .for_each(|(row, out)| {
                for (column, decoded) in columns.iter().enumerate() {
                    out[column * s..(column + 1) * s].copy_from_slice(&decoded[row * s..(row + 1) * s]);
                }
            });
    }

    /// Cuts the decoded matrix to the blob length, refusing non-zero padding: a blob whose
    /// padding is not zero would not re-encode to its own ID.
    fn cut_padding(&self, mut blob: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
        let len = usize::try_from(self.unencoded_length())
            .expect("the blob length was checked to fit the decoded matrix");
        if let Some(at) = blob[len..].iter().position(|byte| *byte != 0) {
            let row = (len + at) / self.sliver_len(SliverType::Primary);
            return Err(DecodeError::Inconsistent { row });
        }
        blob.truncate(len);
        Ok(blob)
    }
}
