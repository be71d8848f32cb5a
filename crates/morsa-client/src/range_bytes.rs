//! A range's bytes where they lie: slices of the verified rows they come from, in order,
//! written out piece by piece (a streamed read then copies no byte between the slivers and
//! the output) or put together once for a caller that needs them in one buffer.

use std::io::Write;
use std::ops::Range;

/// Bytes of a range, as pieces of buffers, in order.
#[derive(Debug, Default)]
pub(crate) struct RangeBytes {
    /// Each piece: a buffer (a sliver's symbols, say) and the part of it that belongs.
    pieces: Vec<(Vec<u8>, Range<usize>)>,
    len: usize,
}

impl RangeBytes {
    /// Appends `part` of `buffer` (which the caller has checked is within it).
    pub(crate) fn push(&mut self, buffer: Vec<u8>, part: Range<usize>) {
        debug_assert!(part.start <= part.end && part.end <= buffer.len());
        self.len += part.len();
        self.pieces.push((buffer, part));
    }

    /// Bytes in all.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes the bytes to `out`, piece by piece.
    pub(crate) fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.pieces.iter().try_for_each(|(buffer, part)| out.write_all(&buffer[part.clone()]))
    }

    /// The bytes in one buffer: a lone piece's own buffer, cut to its part.
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        if self.pieces.len() == 1
            && let Some((mut buffer, part)) = self.pieces.pop()
        {
            buffer.truncate(part.end);
            buffer.drain(..part.start);
            return buffer;
        }
        let mut bytes = Vec::with_capacity(self.len);
        for (buffer, part) in &self.pieces {
            bytes.extend_from_slice(&buffer[part.clone()]);
        }
        bytes
    }
}

impl From<Vec<u8>> for RangeBytes {
    fn from(bytes: Vec<u8>) -> Self {
        let mut range = Self::default();
        let all = 0..bytes.len();
        range.push(bytes, all);
        range
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_write_and_join_as_the_bytes_they_cut() {
        let mut range = RangeBytes::default();
        range.push(b"..abc.".to_vec(), 2..5);
        range.push(b"de".to_vec(), 0..2);
        range.push(b"xx".to_vec(), 1..1);
        range.push(b"f..".to_vec(), 0..1);
        assert_eq!(range.len(), 6);
        let mut written = Vec::new();
        range.write_to(&mut written).unwrap();
        assert_eq!(written, b"abcdef");
        assert_eq!(range.into_vec(), b"abcdef");
        let mut lone = RangeBytes::default();
        lone.push(b"..abc.".to_vec(), 2..5);
        assert_eq!(lone.into_vec(), b"abc");
        assert_eq!(RangeBytes::from(b"xyz".to_vec()).into_vec(), b"xyz");
        assert_eq!(RangeBytes::default().into_vec(), b"");
    }
}
