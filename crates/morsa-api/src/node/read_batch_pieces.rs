//! A batched read's answer decoded as it arrives, piece by piece: each sliver's symbols are
//! copied once, from the pieces straight into the sliver ([`SliverFromPieces`]), not into one
//! buffer for the whole answer first. The outcome is exactly that of [`parse_read_batch`] on
//! the whole answer followed by [`from_bcs`](redstuff::wire::from_bcs) on each sliver's bytes.
//!
//! [`parse_read_batch`]: super::parse_read_batch

use redstuff::wire::SliverFromPieces;
use redstuff::{Sliver, WireError};

use super::UPLOAD_ITEM_HEADER;
use super::read_batch::{REFUSED, SLIVER};
use crate::ErrorBody;

/// One decoded item of a batched read's answer.
#[derive(Debug)]
pub enum ReadBatchPart {
    /// The sliver, or why its bytes are not one.
    Sliver(Result<Sliver, WireError>),
    /// The node's refusal, as the single route would have answered.
    Refused(ErrorBody),
}

/// A batched read's answer to a request for some pairs, being decoded.
#[derive(Debug)]
pub struct ReadBatchDecoder<'a> {
    pairs: &'a [u16],
    /// Largest BCS sliver accepted.
    sliver_limit: usize,
    /// The next item's header so far.
    header: Vec<u8>,
    /// The item being read and its bytes still to come.
    item: Option<(Item, usize)>,
    parts: Vec<ReadBatchPart>,
    /// Items whose bytes were all read.
    complete: usize,
    /// Whether an item was not the pair asked at its place.
    unasked: bool,
    /// The first item, in order, that makes the answer malformed.
    bad_item: Option<String>,
}

#[derive(Debug)]
enum Item {
    Sliver(SliverFromPieces),
    Refused(Vec<u8>),
    /// An item the answer is refused for anyway: its bytes are passed over.
    Skipped,
}

impl<'a> ReadBatchDecoder<'a> {
    /// A decoder of the answer to a request for `pairs`, refusing slivers over `sliver_limit`
    /// BCS bytes.
    pub fn new(pairs: &'a [u16], sliver_limit: usize) -> Self {
        Self {
            pairs,
            sliver_limit,
            header: Vec::with_capacity(UPLOAD_ITEM_HEADER),
            item: None,
            parts: Vec::with_capacity(pairs.len()),
            complete: 0,
            unasked: false,
            bad_item: None,
        }
    }

    /// Takes the answer's next piece.
    pub fn push(&mut self, mut piece: &[u8]) {
        while !piece.is_empty() {
            let Some((item, remaining)) = &mut self.item else {
                let taken = (UPLOAD_ITEM_HEADER - self.header.len()).min(piece.len());
                self.header.extend_from_slice(&piece[..taken]);
                piece = &piece[taken..];
                if self.header.len() == UPLOAD_ITEM_HEADER {
                    self.start_item();
                }
                continue;
            };
            let taken = (*remaining).min(piece.len());
            match item {
                Item::Sliver(sliver) => sliver.push(&piece[..taken]),
                Item::Refused(bytes) => bytes.extend_from_slice(&piece[..taken]),
                Item::Skipped => {}
            }
            *remaining -= taken;
            piece = &piece[taken..];
            if *remaining == 0 {
                self.finish_item();
            }
        }
    }

    /// Begins the item whose header was just read (and ends it if it has no bytes).
    fn start_item(&mut self) {
        let header = std::mem::take(&mut self.header);
        let (status, pair) = (header[0], u16::from_le_bytes([header[1], header[2]]));
        let len = usize::try_from(u32::from_le_bytes([header[3], header[4], header[5], header[6]]))
            .unwrap_or(usize::MAX);
        let index = self.complete;
        let item = if self.pairs.get(index) != Some(&pair) {
            self.unasked = true;
            Item::Skipped
        } else {
            match status {
                SLIVER => Item::Sliver(SliverFromPieces::new(len, self.sliver_limit)),
                // An error body is small; its length is not trusted for a reservation.
                REFUSED => Item::Refused(Vec::with_capacity(len.min(super::MAX_ERROR_BODY_BYTES))),
                _ => {
                    self.note_bad_item(format!("item {index} has an unknown status {status}"));
                    Item::Skipped
                }
            }
        };
        self.header = header;
        self.header.clear();
        self.item = Some((item, len));
        if len == 0 {
            self.finish_item();
        }
    }

    /// Ends the item whose bytes were all read.
    fn finish_item(&mut self) {
        let Some((item, _)) = self.item.take() else { return };
        let index = self.complete;
        self.complete += 1;
        match item {
            Item::Sliver(sliver) => self.parts.push(ReadBatchPart::Sliver(sliver.finish())),
            Item::Refused(bytes) => match serde_json::from_slice(&bytes) {
                Ok(body) => self.parts.push(ReadBatchPart::Refused(body)),
                Err(error) => self.note_bad_item(format!("item {index}'s error body: {error}")),
            },
            Item::Skipped => {}
        }
    }

    fn note_bad_item(&mut self, reason: String) {
        self.bad_item.get_or_insert(reason);
    }

    /// The items, one per pair asked, in order; why the answer is refused whole if it is
    /// truncated, does not list exactly the asked pairs in order, or has a malformed item.
    pub fn finish(self) -> Result<Vec<ReadBatchPart>, String> {
        if self.item.is_some() || !self.header.is_empty() {
            return Err(format!("item {} runs past the end", self.complete));
        }
        if self.unasked || self.complete != self.pairs.len() {
            return Err("the answer does not list the asked pairs in order".into());
        }
        match self.bad_item {
            Some(reason) => Err(reason),
            None => Ok(self.parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use redstuff::wire::{from_bcs, to_bcs};

    use super::*;
    use crate::node::{ReadBatchAnswer, ReadBatchItem, parse_read_batch};

    /// What the whole-body decoding answers: [`parse_read_batch`], then each sliver's BCS.
    fn whole(body: &[u8], pairs: &[u16], limit: usize) -> String {
        let parts = parse_read_batch(body, pairs).map(|items| {
            items
                .into_iter()
                .map(|item| match item {
                    ReadBatchItem::Sliver(range) => ReadBatchPart::Sliver(from_bcs(&body[range], limit)),
                    ReadBatchItem::Refused(error) => ReadBatchPart::Refused(error),
                })
                .collect::<Vec<_>>()
        });
        shown(parts)
    }

    /// What decoding `body` in pieces cut at `cuts` answers.
    fn in_pieces(body: &[u8], cuts: &[usize], pairs: &[u16], limit: usize) -> String {
        let mut decoder = ReadBatchDecoder::new(pairs, limit);
        let mut at = 0;
        for cut in cuts.iter().copied().chain([body.len()]) {
            let cut = cut.clamp(at, body.len());
            decoder.push(&body[at..cut]);
            at = cut;
        }
        shown(decoder.finish())
    }

    /// An outcome in full: slivers with their symbols, errors with their messages.
    fn shown(parts: Result<Vec<ReadBatchPart>, String>) -> String {
        let parts = parts.map(|parts| {
            parts
                .into_iter()
                .map(|part| match part {
                    ReadBatchPart::Sliver(Ok(sliver)) => {
                        format!("{} {} {:?}", sliver.index, sliver.symbol_size, sliver.symbols)
                    }
                    ReadBatchPart::Sliver(Err(error)) => format!("{error}"),
                    ReadBatchPart::Refused(error) => format!("refused {error:?}"),
                })
                .collect::<Vec<_>>()
        });
        format!("{parts:?}")
    }

    /// An answer for pairs 4, 9, 2 and 7: two slivers, a refusal, a sliver of bad shape.
    fn answer() -> Vec<u8> {
        let mut answer = ReadBatchAnswer::with_capacity(256);
        let sliver = |index: u16, symbols: usize, symbol_size: u16| {
            let symbols = (0..symbols).map(|byte| (byte * 7 + usize::from(index)).to_le_bytes()[0]).collect();
            to_bcs(&Sliver { symbols, symbol_size, index })
        };
        answer.push_sliver(4, &sliver(4, 40, 4));
        answer.push_sliver(9, &sliver(9, 40, 4));
        answer.push_refused(2, &ErrorBody::new("not_found", "not stored here"));
        answer.push_sliver(7, &sliver(7, 41, 4));
        answer.into_bytes()
    }

    const PAIRS: [u16; 4] = [4, 9, 2, 7];

    #[test]
    fn an_answer_in_pieces_decodes_as_the_whole_answer() {
        let body = answer();
        let expected = whole(&body, &PAIRS, 100);
        assert!(expected.starts_with("Ok"), "{expected}");
        assert!(expected.contains("refused"), "{expected}");
        assert!(expected.contains("malformed"), "{expected}");
        for cuts in [
            vec![],
            vec![1],
            vec![7, 8],
            vec![3, 50, 51, 52, 53, 54, 55, 56, 57, 58],
            (0..body.len()).collect(),
        ] {
            assert_eq!(in_pieces(&body, &cuts, &PAIRS, 100), expected, "cut at {cuts:?}");
        }
        // A sliver over the limit is refused alone, as a whole answer's is.
        let limited = whole(&body, &PAIRS, 45);
        assert!(limited.contains("over the limit"), "{limited}");
        assert_eq!(in_pieces(&body, &[20], &PAIRS, 45), limited);
    }

    #[test]
    fn malformed_answers_are_refused_as_the_whole_answer_is() {
        let body = answer();
        for len in 0..body.len() {
            let expected = whole(&body[..len], &PAIRS, 100);
            assert_eq!(in_pieces(&body[..len], &[len / 2], &PAIRS, 100), expected, "truncated to {len}");
        }
        for pairs in [&PAIRS[..3], &[4, 9, 2, 7, 1], &[9, 4, 2, 7]] {
            let expected = whole(&body, pairs, 100);
            assert!(expected.starts_with("Err"), "{expected}");
            assert_eq!(in_pieces(&body, &[9], pairs, 100), expected, "{pairs:?}");
        }
    }

    /// Every byte garbled in turn (statuses, pairs, lengths, BCS prefixes and tails, JSON),
    /// each answer cut into pieces in two ways.
    #[test]
    fn garbled_answers_decode_as_the_whole_answer_does() {
        let body = answer();
        for at in 0..body.len() {
            for byte in [0, 1, 2, 0x7f, 0x80, 0xff, body[at] ^ 1, body[at].wrapping_add(4)] {
                let mut garbled = body.clone();
                garbled[at] = byte;
                for limit in [45, 100] {
                    let expected = whole(&garbled, &PAIRS, limit);
                    for cuts in [vec![at], vec![at.saturating_sub(1), at + 1, at + 3]] {
                        assert_eq!(in_pieces(&garbled, &cuts, &PAIRS, limit), expected, "{at} = {byte}");
                    }
                }
            }
        }
    }
}
