//! The `Range` header of a blob read: one range of bytes (`bytes=FIRST-LAST`, `bytes=FIRST-`
//! or `bytes=-SUFFIX`), resolved against the blob's size.

use std::ops::Range;

/// One byte range as asked, before the blob's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From byte `first` to byte `last` (inclusive), or to the end when `last` is `None`.
    From {
        /// First byte.
        first: u64,
        /// Last byte, inclusive.
        last: Option<u64>,
    },
    /// The last `len` bytes.
    Suffix {
        /// How many bytes.
        len: u64,
    },
}

/// Why a `Range` header cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not of the form `bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`.
    #[error("not a byte range (expected bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX)")]
    Malformed,
    /// Several ranges: one response holds one range.
    #[error("several ranges in one request are not supported; ask for one range at a time")]
    Several,
    /// The range holds no byte of the blob.
    #[error("no byte of the range is in the blob of {len} bytes")]
    Unsatisfiable {
        /// The blob's size.
        len: u64,
    },
}

impl ByteRange {
    /// Parses a `Range` header value.
    pub fn parse(header: &str) -> Result<Self, RangeError> {
        let spec = header.trim().strip_prefix("bytes=").ok_or(RangeError::Malformed)?;
        if spec.contains(',') {
            return Err(RangeError::Several);
        }
        let (first, last) = spec.trim().split_once('-').ok_or(RangeError::Malformed)?;
        let number = |text: &str| -> Result<u64, RangeError> {
            match text.bytes().all(|byte| byte.is_ascii_digit()) && !text.is_empty() {
                true => text.parse().map_err(|_| RangeError::Malformed),
                false => Err(RangeError::Malformed),
            }
        };
        match (first.is_empty(), last.is_empty()) {
            (true, true) => Err(RangeError::Malformed),
            (true, false) => Ok(Self::Suffix { len: number(last)? }),
            (false, true) => Ok(Self::From { first: number(first)?, last: None }),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                match last < first {
                    true => Err(RangeError::Malformed),
                    false => Ok(Self::From { first, last: Some(last) }),
                }
            }
        }
    }

    /// The bytes of a blob of `len` bytes this range asks for (a last byte past the end is
    /// cut to the end, as HTTP says).
    pub fn resolve(self, len: u64) -> Result<Range<u64>, RangeError> {
        let unsatisfiable = RangeError::Unsatisfiable { len };
        match self {
            Self::From { first, .. } if first >= len => Err(unsatisfiable),
            Self::From { first, last } => Ok(first..last.map_or(len, |last| last.saturating_add(1).min(len))),
            // An empty suffix, or any suffix of an empty blob, holds no byte.
            Self::Suffix { len: 0 } => Err(unsatisfiable),
            Self::Suffix { .. } if len == 0 => Err(unsatisfiable),
            Self::Suffix { len: suffix } => Ok(len.saturating_sub(suffix)..len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve_as_http_says() {
        let resolve = |header: &str, len| ByteRange::parse(header).and_then(|range| range.resolve(len));
        assert_eq!(resolve("bytes=0-0", 10), Ok(0..1));
        assert_eq!(resolve("bytes=2-5", 10), Ok(2..6));
        assert_eq!(resolve("bytes=2-", 10), Ok(2..10));
        assert_eq!(resolve("bytes=8-100", 10), Ok(8..10));
        assert_eq!(resolve("bytes=-3", 10), Ok(7..10));
        assert_eq!(resolve("bytes=-30", 10), Ok(0..10));
        assert_eq!(resolve("bytes=10-", 10), Err(RangeError::Unsatisfiable { len: 10 }));
        assert_eq!(resolve("bytes=-0", 10), Err(RangeError::Unsatisfiable { len: 10 }));
        assert_eq!(resolve("bytes=0-", 0), Err(RangeError::Unsatisfiable { len: 0 }));
        assert_eq!(resolve("bytes=-1", 0), Err(RangeError::Unsatisfiable { len: 0 }));
        for malformed in ["bytes=", "bytes=-", "bytes=5-2", "items=0-1", "bytes=a-1", "bytes=+1-2", "0-1"] {
            assert_eq!(resolve(malformed, 10), Err(RangeError::Malformed), "{malformed}");
        }
        assert_eq!(resolve("bytes=0-1,3-4", 10), Err(RangeError::Several));
    }
}
