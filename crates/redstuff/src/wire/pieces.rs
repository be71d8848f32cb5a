//! A sliver's BCS decoded from the pieces it arrives in (an item of a batched read's answer,
//! as the socket delivers it): its symbols are copied once, from the pieces straight into the
//! sliver, instead of into one buffer first and out of it again.

use super::{WireValue, from_bcs};
use crate::error::WireError;
use crate::sliver::Sliver;

/// Bytes after a sliver's symbols in its BCS: the symbol size and the index, each a `u16`.
const TAIL: usize = 4;

/// Longest length prefix BCS writes for a byte string (a ULEB128 `u32`).
const MAX_PREFIX: usize = 5;

/// Longest byte string BCS accepts.
const MAX_BYTES: u64 = (1 << 31) - 1;

/// A sliver's BCS of a known length being decoded from its pieces; [`SliverFromPieces::finish`]
/// answers exactly what [`from_bcs`] answers for the same bytes put together.
#[derive(Debug)]
pub struct SliverFromPieces {
    /// Bytes the sliver's BCS has in all.
    len: usize,
    limit: usize,
    /// Bytes given so far.
    given: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Over the limit: the pieces are only counted.
    TooLarge,
    /// The symbols' length prefix so far.
    Prefix(Vec<u8>),
    /// The symbols (room for all of them made), then the tail.
    Symbols { prefix: Vec<u8>, symbols: Vec<u8>, wanted: usize, tail: Vec<u8> },
    /// Not the shape of a well-formed sliver of this length: every byte is kept, and
    /// [`from_bcs`] names what is wrong.
    Whole(Vec<u8>),
}

impl SliverFromPieces {
    /// A sliver whose BCS is `len` bytes, refused if that is over `limit` (as [`from_bcs`]
    /// refuses it).
    pub fn new(len: usize, limit: usize) -> Self {
        let state = if len > limit { State::TooLarge } else { State::Prefix(Vec::with_capacity(MAX_PREFIX)) };
        Self { len, limit, given: 0, state }
    }

    /// Takes the next piece of the sliver's bytes.
    pub fn push(&mut self, mut piece: &[u8]) {
        self.given = self.given.saturating_add(piece.len());
        while !piece.is_empty() {
            match &mut self.state {
                State::TooLarge => return,
                State::Whole(bytes) => {
                    bytes.extend_from_slice(piece);
                    return;
                }
                State::Prefix(prefix) => {
                    prefix.push(piece[0]);
                    piece = &piece[1..];
                    if let Some(next) = self.after_prefix() {
                        self.state = next;
                    }
                }
                State::Symbols { symbols, wanted, tail, .. } => {
                    let taken = (*wanted - symbols.len()).min(piece.len());
                    symbols.extend_from_slice(&piece[..taken]);
                    piece = &piece[taken..];
                    let tailed = (TAIL - tail.len()).min(piece.len());
                    tail.extend_from_slice(&piece[..tailed]);
                    piece = &piece[tailed..];
                    if !piece.is_empty() {
                        // More bytes than the length said: keep them all for `from_bcs`.
                        self.state = State::Whole(self.bytes_so_far());
                    }
                }
            }
        }
    }

    /// The state once the prefix read so far is complete or known bad; `None` while it is
    /// neither.
    fn after_prefix(&mut self) -> Option<State> {
        let State::Prefix(prefix) = &mut self.state else { return None };
        let last = *prefix.last()?;
        if last & 0x80 != 0 {
            return (prefix.len() == MAX_PREFIX).then(|| State::Whole(std::mem::take(prefix)));
        }
        let value = prefix.iter().rev().fold(0u64, |value, byte| (value << 7) | u64::from(byte & 0x7f));
        let canonical = prefix.len() == 1 || last != 0;
        let fits = usize::try_from(value)
            .ok()
            .filter(|wanted| value <= MAX_BYTES && prefix.len() + wanted + TAIL == self.len);
        Some(match (canonical, fits) {
            (true, Some(wanted)) => State::Symbols {
                prefix: std::mem::take(prefix),
                symbols: Vec::with_capacity(wanted),
                wanted,
                tail: Vec::with_capacity(TAIL),
            },
            _ => State::Whole(std::mem::take(prefix)),
        })
    }

    /// Every byte given so far, put together (for the states that keep them).
    fn bytes_so_far(&mut self) -> Vec<u8> {
        match &mut self.state {
            State::TooLarge => Vec::new(),
            State::Prefix(bytes) | State::Whole(bytes) => std::mem::take(bytes),
            State::Symbols { prefix, symbols, tail, .. } => {
                let mut bytes = std::mem::take(prefix);
                bytes.append(symbols);
                bytes.append(tail);
                bytes
            }
        }
    }

    /// The sliver, or why its bytes are not one: what [`from_bcs`] answers for them.
    pub fn finish(mut self) -> Result<Sliver, WireError> {
        match &mut self.state {
            State::TooLarge => {
                return Err(WireError::TooLarge { what: Sliver::WHAT, len: self.given, limit: self.limit });
            }
            State::Symbols { symbols, wanted, tail, .. }
                if symbols.len() == *wanted && tail.len() == TAIL && self.given == self.len =>
            {
                let sliver = Sliver {
                    symbols: std::mem::take(symbols),
                    symbol_size: u16::from_le_bytes([tail[0], tail[1]]),
                    index: u16::from_le_bytes([tail[2], tail[3]]),
                };
                sliver.check().map_err(|reason| WireError::Malformed { what: Sliver::WHAT, reason })?;
                return Ok(sliver);
            }
            _ => {}
        }
        from_bcs(&self.bytes_so_far(), self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::to_bcs;

    /// What decoding `bytes` from pieces cut at `cuts` answers.
    fn from_pieces(bytes: &[u8], cuts: &[usize], limit: usize) -> Result<Sliver, WireError> {
        let mut decoder = SliverFromPieces::new(bytes.len(), limit);
        let mut at = 0;
        for cut in cuts.iter().copied().chain([bytes.len()]) {
            let cut = cut.clamp(at, bytes.len());
            decoder.push(&bytes[at..cut]);
            at = cut;
        }
        decoder.finish()
    }

    fn same(bytes: &[u8], cuts: &[usize], limit: usize) {
        let whole = from_bcs::<Sliver>(bytes, limit);
        let pieces = from_pieces(bytes, cuts, limit);
        assert_eq!(format!("{pieces:?}"), format!("{whole:?}"), "{bytes:?} cut at {cuts:?}");
        assert_eq!(pieces.ok(), whole.ok());
    }

    #[test]
    fn a_sliver_from_pieces_is_the_sliver_from_its_bytes() {
        let sliver = Sliver { symbols: (0..=255).cycle().take(300 * 4).collect(), symbol_size: 4, index: 7 };
        let bytes = to_bcs(&sliver);
        for cuts in [vec![], vec![0], vec![1], vec![2, 3], vec![5, 600, 1201, 1202, 1203], vec![1203]] {
            assert_eq!(from_pieces(&bytes, &cuts, 4096).unwrap(), sliver);
            same(&bytes, &cuts, 4096);
        }
        same(&bytes, &[], bytes.len() - 1);
    }

    proptest::proptest! {
        /// Any bytes, cut anywhere: garbled, truncated and lengthened slivers, non-canonical
        /// and overlong prefixes, bad shapes, limits on either side.
        #[test]
        fn pieces_answer_what_whole_bytes_answer(
            symbols in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            symbol_size in 0u16..6,
            index in proptest::prelude::any::<u16>(),
            garble in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..3),
            cut_len in proptest::option::of(0usize..60),
            extra in 0usize..3,
            cuts in proptest::collection::vec(0usize..64, 0..4),
            limit in 0usize..80,
        ) {
            let mut bytes = to_bcs(&Sliver { symbols, symbol_size, index });
            for (at, byte) in garble {
                if let Some(slot) = bytes.get_mut(at) {
                    *slot = byte;
                }
            }
            if let Some(len) = cut_len {
                bytes.truncate(len);
            }
            bytes.extend(std::iter::repeat_n(0x80, extra));
            let mut cuts = cuts;
            cuts.sort_unstable();
            same(&bytes, &cuts, limit);
            same(&bytes, &cuts, 4096);
        }

        #[test]
        fn any_short_bytes_answer_alike(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            cut in 0usize..12,
        ) {
            same(&bytes, &[cut], 4096);
        }
    }
}
