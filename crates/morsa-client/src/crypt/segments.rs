//! The layout of an age file, for reading a range without the rest: the header (ending in
//! its MAC line) and a 16-byte nonce, then the payload in segments of 64 KiB of plaintext,
//! each sealed with a 16-byte tag (the last segment may be shorter).
//!
//! Pure arithmetic and an in-memory reader: no I/O, no keys.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

/// Plaintext bytes of one payload segment.
pub const SEGMENT: u64 = 64 * 1024;

/// Bytes of one sealed segment: plaintext and its authentication tag.
pub const SEALED_SEGMENT: u64 = SEGMENT + 16;

/// The first bytes of every age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The most bytes sealing `plaintext` bytes adds besides the header: the nonce and one tag
/// per segment (an empty plaintext still has one segment).
pub fn payload_overhead(plaintext: u64) -> u64 {
    16 + 16 * plaintext.div_ceil(SEGMENT).max(1)
}

/// Where the payload segments start (header and nonce length), if `head` (the file's first
/// bytes) holds the whole header and nonce; `Ok(None)` if it needs more bytes.
pub fn payload_start(head: &[u8]) -> Result<Option<u64>, String> {
    let mut counting = Counting { inner: head, read: 0 };
    match age::Decryptor::new(&mut counting) {
        Ok(_) => Ok(Some(counting.read)),
        Err(age::DecryptError::Io(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(format!("its age header does not parse: {error}")),
    }
}

/// The plaintext length of an age file of `sealed_len` bytes whose payload starts at `start`.
pub fn plaintext_len(sealed_len: u64, start: u64) -> Result<u64, String> {
    let payload = sealed_len.checked_sub(start).ok_or("it is shorter than its header")?;
    let (full, rest) = (payload / SEALED_SEGMENT, payload % SEALED_SEGMENT);
    match rest {
        0 if full > 0 => Ok(full * SEGMENT),
        16.. => Ok(full * SEGMENT + rest - 16),
        _ => Err(format!("its payload of {payload} bytes is not whole segments (truncated?)")),
    }
}

/// The bytes of the sealed file that hold plaintext `range` (not empty): the sealed
/// segments that cover it.
pub fn sealed_span(start: u64, sealed_len: u64, range: &Range<u64>) -> Range<u64> {
    let first = range.start / SEGMENT;
    let last = (range.end - 1) / SEGMENT;
    (start + first * SEALED_SEGMENT)..(start + (last + 1) * SEALED_SEGMENT).min(sealed_len)
}

/// The byte ranges of the sealed file the age reader needs to read plaintext `range` (not
/// empty) after the header: the segments covering it, and, when the range starts on a segment
/// boundary other than the first, the last segment too (seeking to a boundary makes the
/// reader authenticate the plaintext length by opening the last segment).
pub fn sealed_pieces(start: u64, sealed_len: u64, range: &Range<u64>) -> Vec<Range<u64>> {
    let span = sealed_span(start, sealed_len, range);
    let mut pieces = vec![span.clone()];
    if range.start > 0 && range.start.is_multiple_of(SEGMENT) {
        let payload = sealed_len.saturating_sub(start);
        let last = start + payload.saturating_sub(1) / SEALED_SEGMENT * SEALED_SEGMENT;
        if last >= span.end {
            pieces.push(last..sealed_len);
        }
    }
    pieces
}

struct Counting<'a> {
    inner: &'a [u8],
    read: u64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += u64::try_from(n).unwrap_or(u64::MAX);
        Ok(n)
    }
}

/// A file of `len` bytes of which only some pieces are known: reads within them succeed,
/// reads elsewhere fail (the age reader is given exactly the pieces it needs).
pub struct Sparse {
    pieces: Vec<(u64, Vec<u8>)>,
    len: u64,
    position: u64,
}

impl Sparse {
    /// A file of `len` bytes holding `pieces` (offset, bytes).
    pub fn new(len: u64, pieces: Vec<(u64, Vec<u8>)>) -> Self {
        Self { pieces, len, position: 0 }
    }
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let position = self.position;
        let piece = self.pieces.iter().find(|(offset, bytes)| {
            *offset <= position && position < offset + u64::try_from(bytes.len()).unwrap_or(u64::MAX)
        });
        let Some((offset, bytes)) = piece else {
            return Err(std::io::Error::other(format!("byte {position} of the sealed blob was not fetched")));
        };
        let from = usize::try_from(position - offset).expect("within a piece in memory");
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.position += u64::try_from(n).unwrap_or(u64::MAX);
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_lengths_follow_from_sealed_lengths() {
        // An empty plaintext is one empty segment: its tag alone.
        assert_eq!(plaintext_len(100 + 16, 100), Ok(0));
        assert_eq!(plaintext_len(100 + 16 + 5, 100), Ok(5));
        assert_eq!(plaintext_len(100 + SEALED_SEGMENT, 100), Ok(SEGMENT));
        assert_eq!(plaintext_len(100 + SEALED_SEGMENT + 17, 100), Ok(SEGMENT + 1));
        let truncated = plaintext_len(100 + SEALED_SEGMENT + 3, 100).unwrap_err();
        assert!(truncated.contains("not whole segments"), "{truncated}");
        let headless = plaintext_len(99, 100).unwrap_err();
        assert!(headless.contains("shorter than its header"), "{headless}");
        assert!(plaintext_len(100, 100).unwrap_err().contains("not whole segments"));
    }

    #[test]
    fn a_span_covers_whole_segments_and_stops_at_the_end() {
        assert_eq!(sealed_span(10, 1_000_000, &(0..1)), 10..10 + SEALED_SEGMENT);
        assert_eq!(sealed_span(10, 1_000_000, &(SEGMENT - 1..SEGMENT + 1)), 10..10 + 2 * SEALED_SEGMENT);
        assert_eq!(
            sealed_span(10, 10 + SEALED_SEGMENT + 20, &(SEGMENT..SEGMENT + 4)),
            10 + SEALED_SEGMENT..10 + SEALED_SEGMENT + 20
        );
    }

    #[test]
    fn a_range_starting_on_a_boundary_also_needs_the_last_segment() {
        let sealed_len = 10 + 4 * SEALED_SEGMENT + 100;
        assert_eq!(sealed_pieces(10, sealed_len, &(5..9)), vec![10..10 + SEALED_SEGMENT]);
        assert_eq!(
            sealed_pieces(10, sealed_len, &(SEGMENT..SEGMENT + 1)),
            vec![10 + SEALED_SEGMENT..10 + 2 * SEALED_SEGMENT, 10 + 4 * SEALED_SEGMENT..sealed_len]
        );
        assert_eq!(
            sealed_pieces(10, sealed_len, &(4 * SEGMENT..4 * SEGMENT + 2)),
            vec![10 + 4 * SEALED_SEGMENT..sealed_len]
        );
    }

    #[test]
    fn a_sparse_file_reads_its_pieces_and_refuses_the_rest() {
        let mut sparse = Sparse::new(100, vec![(0, vec![1, 2, 3]), (50, vec![7; 10])]);
        let mut buf = [0u8; 3];
        sparse.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3]);
        let missing = sparse.read(&mut buf).unwrap_err().to_string();
        assert_eq!(missing, "byte 3 of the sealed blob was not fetched");
        sparse.seek(SeekFrom::Start(58)).unwrap();
        assert_eq!(sparse.read(&mut buf).unwrap(), 2);
        sparse.seek(SeekFrom::End(0)).unwrap();
        assert_eq!(sparse.read(&mut buf).unwrap(), 0);
    }
}
