//! Batched reads: several slivers of one kind of a blob from one node in one request
//! ([`super::routes::SLIVER_READ_BATCH`]) instead of one request each.
//!
//! The request names the pairs in its query (`?pairs=3,17,42`, at most [`MAX_READ_BATCH_ITEMS`],
//! no pair twice). The answer is one item per pair asked, in the asked order, in the framing
//! of the batch upload ([`super::UploadBatch`]: a 7-byte header, then the item's bytes):
//!
//! ```text
//! item   := status (u8) ‖ pair (u16, little-endian) ‖ length (u32, little-endian) ‖ length bytes
//! status := 0 the sliver: its BCS, exactly the single route's answer
//!         | 1 refused: the JSON error body the single route would have answered
//! ```
//!
//! The node refuses a batch whose answer could be over [`MAX_READ_BATCH_BYTES`] (`too_large`);
//! a client keeps its batches well below it, and reads an answer only up to
//! [`read_batch_limit`].

use std::ops::Range;

use redstuff::{EncodingConfig, SliverType};
use serde::{Deserialize, Serialize};

use super::params::sliver_type_text;
use super::upload_batch::{parse_items, write_item_header};
use super::{UPLOAD_ITEM_HEADER, sliver_limit};
use crate::ErrorBody;

/// Most slivers one batched read asks for.
pub const MAX_READ_BATCH_ITEMS: usize = 256;

/// Largest answer of one batched read a node sends: it refuses a batch whose slivers could
/// make more (`too_large`).
pub const MAX_READ_BATCH_BYTES: usize = 16 << 20;

/// Path parameters of [`super::routes::SLIVER_READ_BATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliverReadBatchPath {
    /// The blob.
    pub blob_id: redstuff::BlobId,
    /// Which sliver of each pair.
    #[serde(with = "sliver_type_text")]
    pub sliver_type: SliverType,
}

/// Query of [`super::routes::SLIVER_READ_BATCH`]: the pairs, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliverReadBatchQuery {
    /// Pair indices, e.g. `3,17,42`.
    pub pairs: String,
}

impl SliverReadBatchQuery {
    /// The query asking for `pairs`.
    pub fn new(pairs: &[u16]) -> Self {
        let texts: Vec<String> = pairs.iter().map(u16::to_string).collect();
        Self { pairs: texts.join(",") }
    }

    /// The query string, without the `?`.
    pub fn to_query_string(&self) -> String {
        format!("pairs={}", self.pairs)
    }

    /// The pairs asked for, in order: at least one, at most [`MAX_READ_BATCH_ITEMS`], none
    /// twice.
    pub fn parse(&self) -> Result<Vec<u16>, String> {
        let mut pairs = Vec::new();
        for text in self.pairs.split(',') {
            if pairs.len() == MAX_READ_BATCH_ITEMS {
                return Err(format!("more than {MAX_READ_BATCH_ITEMS} pairs"));
            }
            let shown: String = text.chars().take(16).collect();
            let pair = text.parse::<u16>().map_err(|_| format!("{shown:?} is not a pair index"))?;
            if pairs.contains(&pair) {
                return Err(format!("pair {pair} is asked twice"));
            }
            pairs.push(pair);
        }
        Ok(pairs)
    }
}

/// Item status: the sliver follows.
pub(super) const SLIVER: u8 = 0;
/// Item status: the error body follows.
pub(super) const REFUSED: u8 = 1;

/// A batched read's answer being built.
#[derive(Debug, Default)]
pub struct ReadBatchAnswer {
    body: Vec<u8>,
}

impl ReadBatchAnswer {
    /// An empty answer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { body: Vec::with_capacity(capacity) }
    }

    /// Appends pair `pair`'s sliver, `bcs` its BCS bytes (the single route's answer).
    pub fn push_sliver(&mut self, pair: u16, bcs: &[u8]) {
        write_item_header(&mut self.body, SLIVER, pair, bcs.len());
        self.body.extend_from_slice(bcs);
    }

    /// Appends pair `pair`'s refusal.
    pub fn push_refused(&mut self, pair: u16, error: &ErrorBody) {
        let json = serde_json::to_vec(error).unwrap_or_default();
        write_item_header(&mut self.body, REFUSED, pair, json.len());
        self.body.extend_from_slice(&json);
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether it has no item.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The body.
    pub fn into_bytes(self) -> Vec<u8> {
        self.body
    }
}

/// One item of a batched read's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBatchItem {
    /// Where the sliver's BCS bytes are in the body.
    Sliver(Range<usize>),
    /// The node's refusal, as the single route would have answered.
    Refused(ErrorBody),
}

/// The items of a batched read's answer to a request for `pairs`: one per pair, in order.
/// An answer that does not list exactly those pairs, or is malformed, is refused whole.
pub fn parse_read_batch(body: &[u8], pairs: &[u16]) -> Result<Vec<ReadBatchItem>, String> {
    let items = parse_items(body).map_err(|index| format!("item {index} runs past the end"))?;
    if items.len() != pairs.len() || items.iter().zip(pairs).any(|((_, pair, _), asked)| pair != asked) {
        return Err("the answer does not list the asked pairs in order".into());
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, (status, _, range))| match status {
            SLIVER => Ok(ReadBatchItem::Sliver(range)),
            REFUSED => serde_json::from_slice(&body[range])
                .map(ReadBatchItem::Refused)
                .map_err(|error| format!("item {index}'s error body: {error}")),
            _ => Err(format!("item {index} has an unknown status {status}")),
        })
        .collect()
}

/// Largest answer a client reads for `items` slivers of `kind` of a blob with `symbol_size`:
/// each sliver's limit and its header, refusals included, at most [`MAX_READ_BATCH_BYTES`].
pub fn read_batch_limit(config: EncodingConfig, kind: SliverType, symbol_size: u16, items: usize) -> usize {
    let per_item = sliver_limit(config, kind, symbol_size)
        .max(super::MAX_ERROR_BODY_BYTES)
        .saturating_add(UPLOAD_ITEM_HEADER);
    per_item.saturating_mul(items).min(MAX_READ_BATCH_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_back_as_its_items() {
        let mut answer = ReadBatchAnswer::with_capacity(64);
        answer.push_sliver(7, &[1, 2, 3]);
        let refusal = ErrorBody::new("not_found", "not stored here");
        answer.push_refused(3, &refusal);
        answer.push_sliver(9, &[]);
        let body = answer.into_bytes();
        let items = parse_read_batch(&body, &[7, 3, 9]).unwrap();
        assert_eq!(items[0], ReadBatchItem::Sliver(7..10));
        assert_eq!(&body[7..10], &[1, 2, 3]);
        assert_eq!(items[1], ReadBatchItem::Refused(refusal));
        assert!(matches!(&items[2], ReadBatchItem::Sliver(range) if range.is_empty()));
        assert!(parse_read_batch(&body, &[7, 3]).is_err(), "an item not asked for");
        assert!(parse_read_batch(&body, &[3, 7, 9]).is_err(), "out of order");
        assert!(parse_read_batch(&body[..body.len() - 1], &[7, 3, 9]).is_err(), "truncated");
        let mut unknown = body.clone();
        unknown[0] = 5;
        assert!(parse_read_batch(&unknown, &[7, 3, 9]).is_err(), "an unknown status");
    }

    #[test]
    fn queries_are_bounded_and_without_repeats() {
        let query = SliverReadBatchQuery::new(&[3, 17, 42]);
        assert_eq!(query.to_query_string(), "pairs=3,17,42");
        assert_eq!(query.parse(), Ok(vec![3, 17, 42]));
        assert!(SliverReadBatchQuery { pairs: "3,3".into() }.parse().is_err());
        assert!(SliverReadBatchQuery { pairs: String::new() }.parse().is_err());
        assert!(SliverReadBatchQuery { pairs: "1,x".into() }.parse().is_err());
        let most: Vec<u16> = (0..u16::try_from(MAX_READ_BATCH_ITEMS).unwrap()).collect();
        assert_eq!(
            SliverReadBatchQuery::new(&most).parse().map(|pairs| pairs.len()),
            Ok(MAX_READ_BATCH_ITEMS)
        );
        let over: Vec<u16> = (0..=u16::try_from(MAX_READ_BATCH_ITEMS).unwrap()).collect();
        assert!(SliverReadBatchQuery::new(&over).parse().is_err());
    }

    #[test]
    fn an_answer_limit_covers_its_slivers_and_is_capped() {
        let config = EncodingConfig::new(1000).unwrap();
        let one = sliver_limit(config, SliverType::Primary, 100) + UPLOAD_ITEM_HEADER;
        assert!(read_batch_limit(config, SliverType::Primary, 100, 3) >= 3 * one);
        assert_eq!(read_batch_limit(config, SliverType::Primary, u16::MAX, 256), MAX_READ_BATCH_BYTES);
    }
}
