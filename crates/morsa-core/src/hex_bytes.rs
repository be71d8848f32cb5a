//! Fixed-size byte strings (keys, signatures, IDs) that read as lowercase hex in text and in
//! human-readable formats (JSON), and as exactly `N` raw bytes, without a length prefix, in
//! binary formats (BCS).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};

/// Longest piece of rejected input quoted back in a [`ParseHexError`].
const QUOTE_LIMIT: usize = 80;

/// The error for text that is not the hex form of a key, signature or ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not {what}: expected {expected_chars} hex characters")]
pub struct ParseHexError {
    /// What the text should have been, e.g. "an account ID".
    pub what: &'static str,
    /// How many hex characters the text must have.
    pub expected_chars: usize,
    /// The rejected text (its first 80 characters when longer).
    pub input: String,
}

/// Parses `N` bytes from exactly `2N` hex characters (either case).
pub(crate) fn parse<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], ParseHexError> {
    let mut bytes = [0; N];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| ParseHexError {
        what,
        expected_chars: 2 * N,
        input: text.chars().take(QUOTE_LIMIT).collect(),
    })?;
    Ok(bytes)
}

/// Writes `bytes` as lowercase hex.
pub(crate) fn fmt_hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    bytes.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
}

/// Serializes as a hex string when the format is human readable, else as an `N`-tuple of bytes.
pub(crate) fn serialize<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&hex::encode(bytes))
    } else {
        let mut tuple = serializer.serialize_tuple(N)?;
        for byte in bytes {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

/// The inverse of [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
    what: &'static str,
) -> Result<[u8; N], D::Error> {
    let visitor = BytesVisitor::<N> { what, length: PhantomData };
    if deserializer.is_human_readable() {
        deserializer.deserialize_str(visitor)
    } else {
        deserializer.deserialize_tuple(N, visitor)
    }
}

struct BytesVisitor<const N: usize> {
    what: &'static str,
    length: PhantomData<[u8; N]>,
}

impl<'de, const N: usize> Visitor<'de> for BytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as {} hex characters or {N} bytes", self.what, 2 * N)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        parse(text, self.what).map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(bytes).map_err(|_| E::invalid_length(bytes.len(), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut bytes = [0; N];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(index, &self))?;
        }
        Ok(bytes)
    }
}

/// Implements `Display` and `Debug` (hex), `FromStr` and serde for `$name(pub [u8; $len])`.
macro_rules! hex_newtype {
    ($name:ident, $len:literal, $what:literal) => {
        impl $name {
            /// Length in bytes.
            pub const LENGTH: usize = $len;
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::hex_bytes::fmt_hex(&self.0, f)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::hex_bytes::ParseHexError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::hex_bytes::parse(text, $what).map(Self)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::hex_bytes::serialize(&self.0, serializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::hex_bytes::deserialize(deserializer, $what).map(Self)
            }
        }
    };
}
pub(crate) use hex_newtype;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_exact_length_in_either_case() {
        assert_eq!(parse::<2>("abCD", "a pair"), Ok([0xab, 0xcd]));
        for bad in ["abc", "abcdef", "zzzz", ""] {
            let error = parse::<2>(bad, "a pair").unwrap_err();
            assert_eq!(error.expected_chars, 4);
            assert!(error.to_string().contains("is not a pair: expected 4 hex characters"), "{error}");
        }
    }

    #[test]
    fn long_rejected_input_is_quoted_only_in_part() {
        let error = parse::<2>(&"x".repeat(10_000), "a pair").unwrap_err();
        assert_eq!(error.input.len(), QUOTE_LIMIT);
    }
}
