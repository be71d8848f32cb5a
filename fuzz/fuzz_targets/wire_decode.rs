//! Feeds arbitrary bytes to every wire decoder of the codec.
//!
//! None may panic. A value that decodes must encode back to exactly the same bytes (BCS is
//! canonical, so two byte strings never stand for one value), and any bytes over the limit
//! must be refused before they are parsed.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use redstuff::wire::{WireValue, from_bcs, to_bcs};
use redstuff::{EncodingConfig, InconsistencyProof, MetadataWithId, RecoverySymbol, Sliver, WireError};

/// Larger than any input libFuzzer produces by default.
const LIMIT: usize = 16 << 20;

fn round_trip<T: WireValue + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    if let Some(limit) = data.len().checked_sub(1) {
        let refused = from_bcs::<T>(data, limit);
        assert!(matches!(refused, Err(WireError::TooLarge { .. })), "{refused:?}");
    }
    let value = from_bcs::<T>(data, LIMIT).ok()?;
    let bytes = to_bcs(&value);
    assert_eq!(bytes, data, "{} decoded from non-canonical bytes", T::WHAT);
    assert_eq!(from_bcs::<T>(&bytes, LIMIT).as_ref(), Ok(&value));
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let _ = round_trip::<Sliver>(data);
    let _ = round_trip::<RecoverySymbol>(data);
    let _ = round_trip::<Vec<RecoverySymbol>>(data);
    let _ = round_trip::<InconsistencyProof>(data);
    if let Some(with_id) = round_trip::<MetadataWithId>(data) {
        // Untrusted metadata goes on to be verified against the code it claims to fit.
        let pairs =
            u16::try_from(with_id.metadata.hashes.len()).expect("the shape check caps pairs at 65535");
        let config = EncodingConfig::new(pairs).expect("the shape check requires at least 4 pairs");
        let _ = with_id.metadata.blob_id();
        let _ = with_id.metadata.verify(&with_id.blob_id, config);
    }
});
