//! Batched uploads: all of a node's slivers of a blob (and, for small blobs, its metadata) in
//! one request instead of one request each ([`super::routes::SLIVER_BATCH`]).
//!
//! The body is a sequence of items, each a 7-byte header and the item's BCS bytes, exactly the
//! body the single-item route takes:
//!
//! ```text
//! item   := target (u8) ‖ pair (u16, little-endian) ‖ length (u32, little-endian) ‖ length bytes
//! target := 0 metadata (pair 0; BCS MetadataWithId; first item only)
//!         | 1 primary sliver of pair `pair` | 2 secondary sliver of pair `pair` (BCS Sliver)
//! ```
//!
//! Each item is written straight into the body ([`UploadBatch`]) and read back as a range of
//! it ([`parse_upload_batch`]), so neither side copies a sliver for the framing. The node
//! answers JSON [`UploadBatchAnswer`]: one outcome per item, in order.

use std::ops::Range;

use bytes::Bytes;
use redstuff::{MetadataWithId, Sliver, SliverType};
use serde::{Deserialize, Serialize};

use super::params::sliver_type_text;
use crate::ErrorBody;

/// Largest body of one batch upload the node accepts (a larger one is refused with
/// `too_large`, 413); clients split a node's slivers into several batches below it and send a
/// sliver that does not fit alone through the single-sliver route.
pub const MAX_UPLOAD_BATCH_BYTES: usize = 16 << 20;

/// Bytes of an item's header.
pub const UPLOAD_ITEM_HEADER: usize = 7;

/// What one batch item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadTarget {
    /// The blob's metadata.
    Metadata,
    /// The `sliver_type` sliver of pair `pair`.
    Sliver {
        /// Pair index.
        pair: u16,
        /// Primary or secondary.
        #[serde(with = "sliver_type_text")]
        sliver_type: SliverType,
    },
}

impl UploadTarget {
    fn tag(self) -> (u8, u16) {
        match self {
            Self::Metadata => (0, 0),
            Self::Sliver { pair, sliver_type: SliverType::Primary } => (1, pair),
            Self::Sliver { pair, sliver_type: SliverType::Secondary } => (2, pair),
        }
    }

    fn from_tag(tag: u8, pair: u16) -> Option<Self> {
        match tag {
            0 if pair == 0 => Some(Self::Metadata),
            1 => Some(Self::Sliver { pair, sliver_type: SliverType::Primary }),
            2 => Some(Self::Sliver { pair, sliver_type: SliverType::Secondary }),
            _ => None,
        }
    }
}

impl std::fmt::Display for UploadTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Metadata => formatter.write_str("metadata"),
            Self::Sliver { pair, sliver_type } => write!(formatter, "{sliver_type} sliver of pair {pair}"),
        }
    }
}

/// A batch upload's body being built: items are appended in BCS, straight into the body. A
/// sliver pushed as shared bytes ([`UploadBatch::push_shared_sliver`]) is not copied: the body
/// is a list of pieces, the sliver's symbols one of them.
#[derive(Debug, Clone, Default)]
pub struct UploadBatch {
    /// The body's pieces before `open`.
    pieces: Vec<Bytes>,
    /// The piece being written.
    open: Vec<u8>,
    /// Bytes in all.
    len: usize,
    targets: Vec<UploadTarget>,
}

impl UploadBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the metadata; it must be the first item.
    pub fn push_metadata(&mut self, metadata: &MetadataWithId) {
        self.push(UploadTarget::Metadata, metadata);
    }

    /// Appends the `kind` sliver of pair `pair`.
    pub fn push_sliver(&mut self, pair: u16, kind: SliverType, sliver: &Sliver) {
        self.push(UploadTarget::Sliver { pair, sliver_type: kind }, sliver);
    }

    /// Appends the `kind` sliver of pair `pair` whose symbols are `symbols` (shared, not
    /// copied), of `symbol_size` and index `index`: the same bytes as [`UploadBatch::push_sliver`].
    pub fn push_shared_sliver(
        &mut self,
        pair: u16,
        kind: SliverType,
        symbols: Bytes,
        symbol_size: u16,
        index: u16,
    ) {
        let target = UploadTarget::Sliver { pair, sliver_type: kind };
        let prefix = uleb128(u32::try_from(symbols.len()).unwrap_or(u32::MAX));
        // BCS of `Sliver`: the symbols' length and bytes, then `symbol_size` and `index`.
        let item_len = prefix.len() + symbols.len() + 4;
        self.item_header(target, item_len);
        self.open.extend_from_slice(&prefix);
        self.seal_open();
        self.len += symbols.len();
        self.pieces.push(symbols);
        self.open.extend_from_slice(&symbol_size.to_le_bytes());
        self.open.extend_from_slice(&index.to_le_bytes());
        self.len += 4 + prefix.len();
        self.targets.push(target);
    }

    fn push<T: Serialize>(&mut self, target: UploadTarget, value: &T) {
        let before = self.open.len();
        let (tag, pair) = target.tag();
        self.open.push(tag);
        self.open.extend_from_slice(&pair.to_le_bytes());
        let length_at = self.open.len();
        self.open.extend_from_slice(&[0; 4]);
        bcs::serialize_into(&mut self.open, value).expect("metadata and slivers always encode");
        let length = u32::try_from(self.open.len() - length_at - 4).unwrap_or(u32::MAX);
        self.open[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
        self.len += self.open.len() - before;
        self.targets.push(target);
    }

    /// Writes an item's header (tag, pair, length) for an item of `item_len` bytes.
    fn item_header(&mut self, target: UploadTarget, item_len: usize) {
        let (tag, pair) = target.tag();
        write_item_header(&mut self.open, tag, pair, item_len);
        self.len += UPLOAD_ITEM_HEADER;
    }

    /// Ends the piece being written.
    fn seal_open(&mut self) {
        if !self.open.is_empty() {
            self.pieces.push(Bytes::from(std::mem::take(&mut self.open)));
        }
    }

    /// Bytes of the body so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no items.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Its items, in order.
    pub fn targets(&self) -> &[UploadTarget] {
        &self.targets
    }

    /// The body, and the items in order.
    pub fn into_parts(self) -> (Vec<u8>, Vec<UploadTarget>) {
        let (pieces, targets) = self.into_pieces();
        (pieces.concat(), targets)
    }

    /// The body as the pieces it was built of (shared slivers are not copied), and the items
    /// in order.
    pub fn into_pieces(mut self) -> (Vec<Bytes>, Vec<UploadTarget>) {
        self.seal_open();
        (self.pieces, self.targets)
    }
}

/// A sequence's length as BCS writes it: ULEB128.
fn uleb128(mut value: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5);
    loop {
        let low = u8::try_from(value & 0x7f).unwrap_or(0);
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return bytes;
        }
        bytes.push(low | 0x80);
    }
}

/// Bytes a sliver takes in a batch: its header and its BCS form.
pub fn sliver_item_len(sliver: &Sliver) -> usize {
    UPLOAD_ITEM_HEADER + bcs::serialized_size(sliver).unwrap_or(usize::MAX - UPLOAD_ITEM_HEADER)
}

/// Why a batch body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadBatchError {
    /// An item's header or bytes run past the end of the body.
    #[error("item {0} runs past the end of the body")]
    Truncated(usize),
    /// An item's target byte is unknown (or metadata with a pair).
    #[error("item {0} has an unknown target")]
    UnknownTarget(usize),
    /// Metadata anywhere but first.
    #[error("item {0} is metadata, which may only be the first item")]
    MetadataNotFirst(usize),
    /// The body holds no item.
    #[error("the batch is empty")]
    Empty,
}

/// The items of a batch body: each target and where its BCS bytes are in `body`.
pub fn parse_upload_batch(body: &[u8]) -> Result<Vec<(UploadTarget, Range<usize>)>, UploadBatchError> {
    let items = parse_items(body).map_err(UploadBatchError::Truncated)?;
    let mut targets = Vec::with_capacity(items.len());
    for (index, (tag, pair, range)) in items.into_iter().enumerate() {
        let target = UploadTarget::from_tag(tag, pair).ok_or(UploadBatchError::UnknownTarget(index))?;
        if target == UploadTarget::Metadata && index > 0 {
            return Err(UploadBatchError::MetadataNotFirst(index));
        }
        targets.push((target, range));
    }
    if targets.is_empty() {
        return Err(UploadBatchError::Empty);
    }
    Ok(targets)
}

/// Appends an item's header: its tag byte, pair and length (the framing both batch routes
/// share: [`UPLOAD_ITEM_HEADER`] bytes).
pub(crate) fn write_item_header(out: &mut Vec<u8>, tag: u8, pair: u16, item_len: usize) {
    out.push(tag);
    out.extend_from_slice(&pair.to_le_bytes());
    out.extend_from_slice(&u32::try_from(item_len).unwrap_or(u32::MAX).to_le_bytes());
}

/// The items of a body in the shared framing: each tag, pair and where its bytes are in
/// `body`; the index of the first item that runs past the end if one does.
pub(crate) fn parse_items(body: &[u8]) -> Result<Vec<(u8, u16, Range<usize>)>, usize> {
    let mut items = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        let index = items.len();
        let header = body.get(at..at + UPLOAD_ITEM_HEADER).ok_or(index)?;
        let pair = u16::from_le_bytes([header[1], header[2]]);
        let length = u32::from_le_bytes([header[3], header[4], header[5], header[6]]);
        let start = at + UPLOAD_ITEM_HEADER;
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| start.checked_add(length))
            .filter(|end| *end <= body.len())
            .ok_or(index)?;
        items.push((header[0], pair, start..end));
        at = end;
    }
    Ok(items)
}

/// The JSON answer to a batch upload: one outcome per item, in the body's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadBatchAnswer {
    /// The outcomes.
    pub items: Vec<UploadOutcome>,
}

/// What the node did with one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOutcome {
    /// The item.
    pub target: UploadTarget,
    /// Why it was refused (the error the single-item route would have answered); absent if it
    /// is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<ErrorBody>,
}

impl UploadBatchAnswer {
    /// Whether the answer lists exactly `targets`, in order.
    pub fn answers(&self, targets: &[UploadTarget]) -> bool {
        self.items.len() == targets.len()
            && self.items.iter().zip(targets).all(|(outcome, target)| outcome.target == *target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_back_as_its_items() {
        let config = redstuff::EncodingConfig::new(7).unwrap();
        let encoded = redstuff::encode(config, &[7u8; 3000]).unwrap();
        let metadata = MetadataWithId {
            blob_id: *encoded.metadata.blob_id(),
            metadata: encoded.metadata.metadata().clone(),
        };
        let mut batch = UploadBatch::new();
        batch.push_metadata(&metadata);
        batch.push_sliver(2, SliverType::Primary, &encoded.pairs[2].primary);
        batch.push_sliver(2, SliverType::Secondary, &encoded.pairs[2].secondary);
        let expected = UPLOAD_ITEM_HEADER * 3
            + redstuff::wire::to_bcs(&metadata).len()
            + sliver_item_len(&encoded.pairs[2].primary)
            - UPLOAD_ITEM_HEADER
            + sliver_item_len(&encoded.pairs[2].secondary)
            - UPLOAD_ITEM_HEADER;
        assert_eq!(batch.len(), expected);
        let (body, targets) = batch.into_parts();
        let items = parse_upload_batch(&body).unwrap();
        assert_eq!(items.iter().map(|(target, _)| *target).collect::<Vec<_>>(), targets);
        assert_eq!(body[items[1].1.clone()], redstuff::wire::to_bcs(&encoded.pairs[2].primary)[..]);
        assert_eq!(body[items[0].1.clone()], redstuff::wire::to_bcs(&metadata)[..]);
    }

    #[test]
    fn a_shared_sliver_is_the_same_bytes_as_a_copied_one() {
        let config = redstuff::EncodingConfig::new(7).unwrap();
        for size in [3000, 300_000] {
            let encoded = redstuff::encode(config, &vec![9u8; size]).unwrap();
            let sliver = &encoded.pairs[3].secondary;
            let mut copied = UploadBatch::new();
            copied.push_sliver(3, SliverType::Secondary, sliver);
            copied.push_sliver(4, SliverType::Primary, &encoded.pairs[4].primary);
            let mut shared = UploadBatch::new();
            let symbols = Bytes::from(sliver.symbols.clone());
            let symbols_at = symbols.as_ptr();
            shared.push_shared_sliver(3, SliverType::Secondary, symbols, sliver.symbol_size, sliver.index);
            shared.push_sliver(4, SliverType::Primary, &encoded.pairs[4].primary);
            assert_eq!(shared.len(), copied.len());
            let (shared_pieces, shared_targets) = shared.into_pieces();
            assert!(
                shared_pieces.iter().any(|piece| piece.as_ptr() == symbols_at),
                "the symbols are not copied"
            );
            assert_eq!((shared_pieces.concat(), shared_targets), copied.into_parts());
        }
        assert_eq!(uleb128(0), [0]);
        assert_eq!(uleb128(300), [0xac, 0x02]);
        assert_eq!(uleb128(u32::MAX), [0xff, 0xff, 0xff, 0xff, 0x0f]);
    }

    #[test]
    fn malformed_batches_are_refused() {
        assert_eq!(parse_upload_batch(&[]), Err(UploadBatchError::Empty));
        assert_eq!(parse_upload_batch(&[1, 0, 0, 9, 0, 0, 0, 1]), Err(UploadBatchError::Truncated(0)));
        assert_eq!(parse_upload_batch(&[9, 0, 0, 0, 0, 0, 0]), Err(UploadBatchError::UnknownTarget(0)));
        let late_metadata = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_upload_batch(&late_metadata), Err(UploadBatchError::MetadataNotFirst(1)));
        let target = UploadTarget::Sliver { pair: 3, sliver_type: SliverType::Secondary };
        let json = serde_json::to_string(&UploadOutcome { target, refused: None }).unwrap();
        assert_eq!(json, r#"{"target":{"sliver":{"pair":3,"sliver_type":"secondary"}}}"#);
    }
}
