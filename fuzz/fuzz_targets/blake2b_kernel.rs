//! Feeds arbitrary bytes to the codec's batch hash: the first two bytes choose the slot length
//! (0 to 1023, so inputs of zero, one and several BLAKE2b blocks all occur), the rest are cut
//! into that many-byte slots. The 8-lane AVX-512 kernel, the 4-lane AVX2 kernel and the portable
//! kernel must each give, for every slot, the digest `blake2b_simd` gives that slot alone.

#![no_main]

use libfuzzer_sys::fuzz_target;
use redstuff::hash::{Digest, Kernel};

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<2>() else { return };
    let stride = usize::from(u16::from_le_bytes(*head) % 1024);
    // Empty slots take no bytes: their count comes from the body's length instead.
    let count = if stride == 0 { body.len() % 64 } else { body.len() / stride };
    let slots = &body[..stride * count];
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    let expected: Vec<Digest> = (0..count)
        .map(|index| &slots[index * stride..(index + 1) * stride])
        .map(|slot| {
            let mut digest = [0; 32];
            digest.copy_from_slice(params.hash(slot).as_bytes());
            digest
        })
        .collect();
    for kernel in [Kernel::Avx512x8, Kernel::Avx2x4, Kernel::Portable] {
        let mut out = vec![[0; 32]; count];
        kernel.hash_slots(slots, stride, &mut out);
        assert_eq!(out, expected, "{kernel:?}, stride {stride}, {count} slots");
    }
});
