//! Round-trip checks shared by the targets.

use std::any::type_name;
use std::fmt::Debug;

use redstuff::wire::{WireValue, from_bcs, to_bcs};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `data` as JSON; a value that decodes must encode and decode back to itself.
pub fn json<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let text = serde_json::to_vec(&value)
        .unwrap_or_else(|error| panic!("a decoded {} does not encode: {error}", type_name::<T>()));
    let again: T = serde_json::from_slice(&text).unwrap_or_else(|error| {
        panic!(
            "a {} does not decode from its own JSON {}: {error}",
            type_name::<T>(),
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(again, value, "a {} changed in a JSON round trip", type_name::<T>());
    Some(value)
}

/// Decodes `data` as a query string (what axum's `Query` does); a value that decodes must
/// encode and decode back to itself.
pub fn query<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_urlencoded::from_bytes(data).ok()?;
    let text = serde_urlencoded::to_string(&value)
        .unwrap_or_else(|error| panic!("a decoded {} does not encode: {error}", type_name::<T>()));
    let again: T = serde_urlencoded::from_str(&text).unwrap_or_else(|error| {
        panic!("a {} does not decode from its own query {text:?}: {error}", type_name::<T>())
    });
    assert_eq!(again, value, "a {} changed in a query round trip", type_name::<T>());
    Some(value)
}

/// Decodes `data` as BCS (plain `bcs::from_bytes`, as the stores' readers do); a value that
/// decodes must encode back to exactly `data`.
pub fn bcs<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = bcs::from_bytes(data).ok()?;
    let bytes = bcs::to_bytes(&value)
        .unwrap_or_else(|error| panic!("a decoded {} does not encode: {error}", type_name::<T>()));
    assert_eq!(bytes, data, "a {} decoded from non-canonical BCS", type_name::<T>());
    Some(value)
}

/// Decodes `data` as a wire value under `limit` (as servers and clients do); bytes over the
/// limit are refused unread, and a value that decodes must encode back to exactly `data`.
pub fn wire<T: WireValue + PartialEq + Debug>(data: &[u8], limit: usize) -> Option<T> {
    if data.len() > limit {
        assert!(from_bcs::<T>(data, limit).is_err(), "{} over its limit was decoded", T::WHAT);
        return None;
    }
    let value = from_bcs::<T>(data, limit).ok()?;
    assert_eq!(to_bcs(&value), data, "{} decoded from non-canonical bytes", T::WHAT);
    Some(value)
}

/// Parses `data` as UTF-8 text (paths and headers are text), if it is.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
