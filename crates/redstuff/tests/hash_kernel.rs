//! The batch hash behind every leaf and inner node: the 8-lane AVX-512 kernel, the 4-lane AVX2
//! kernel and the portable one (`blake2b_simd::many`) give the digests `blake2b_simd` gives one input at a
//! time, for any input length and any number of inputs, and the codec's blob IDs equal
//! Walrus's with the kernel on and with it forced off.
//!
//! The properties name the kernel they check explicitly; only
//! `known_answers_with_the_kernel_on_and_forced_off` switches the process-wide choice, so no
//! other test here depends on it.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use redstuff::EncodingConfig;
use redstuff::hash::{self, Digest, Kernel};

/// Lengths at the edges of BLAKE2b's 128-byte blocks, and the slot lengths the codec hashes:
/// a leaf of the Walrus test vector (1 + 2), a leaf of a 1 MiB blob at n = 1000 (1 + 6), an
/// inner node (1 + 32 + 32), a metadata leaf (1 + 64) and a leaf of a 256 MiB blob at n = 1000
/// (1 + 1206).
const EDGE_LENGTHS: [usize; 17] = [0, 1, 2, 3, 7, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1207, 1024, 4097];

/// BLAKE2b-256 of each slot, one `blake2b_simd::Params::hash` at a time.
fn reference(slots: &[u8], stride: usize, count: usize) -> Vec<Digest> {
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    (0..count)
        .map(|index| {
            let mut digest = [0; 32];
            digest.copy_from_slice(params.hash(&slots[index * stride..(index + 1) * stride]).as_bytes());
            digest
        })
        .collect()
}

fn random_slots(stride: usize, count: usize, seed: u64) -> Vec<u8> {
    let mut slots = vec![0; stride * count];
    StdRng::seed_from_u64(seed).fill_bytes(&mut slots);
    slots
}

fn check(kernel: Kernel, stride: usize, count: usize, seed: u64) -> Result<(), TestCaseError> {
    let slots = random_slots(stride, count, seed);
    let mut out = vec![[0xAA; 32]; count];
    kernel.hash_slots(&slots, stride, &mut out);
    prop_assert_eq!(
        out,
        reference(&slots, stride, count),
        "{:?}, stride {}, count {}",
        kernel,
        stride,
        count
    );
    Ok(())
}

fn lengths() -> impl Strategy<Value = usize> {
    prop_oneof![prop::sample::select(EDGE_LENGTHS.to_vec()), 0..700usize, 700..9000usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any length, any count (most not multiples of 8, so the portable tail runs too).
    #[test]
    fn the_avx512_kernel_equals_blake2b_simd(stride in lengths(), count in 0..42usize, seed: u64) {
        check(Kernel::Avx512x8, stride, count, seed)?;
    }

    /// Any length, any count (most not multiples of 4, so the portable tail runs too).
    #[test]
    fn the_avx2_kernel_equals_blake2b_simd(stride in lengths(), count in 0..42usize, seed: u64) {
        check(Kernel::Avx2x4, stride, count, seed)?;
    }

    #[test]
    fn the_portable_kernel_equals_blake2b_simd(stride in lengths(), count in 0..42usize, seed: u64) {
        check(Kernel::Portable, stride, count, seed)?;
    }
}

/// The own kernels, each with the number of inputs it hashes at once.
const OWN_KERNELS: [(Kernel, usize); 2] = [(Kernel::Avx512x8, 8), (Kernel::Avx2x4, 4)];

/// Every edge length with zero to sixteen inputs: one, two and four whole groups of four, one
/// and two of eight, and every remainder.
#[test]
fn every_edge_length_and_small_count() {
    for (kernel, _) in OWN_KERNELS {
        for stride in EDGE_LENGTHS {
            for count in 0..=16 {
                check(kernel, stride, count, u64::try_from(stride * 100 + count).unwrap()).unwrap();
            }
        }
    }
}

/// Lanes differ only in one byte: each lane's digest is its own, not a neighbour's.
#[test]
fn lanes_do_not_mix() {
    for (kernel, count) in OWN_KERNELS {
        for stride in [1usize, 7, 65, 129, 300] {
            for (lane, position) in (0..count).zip([0, stride / 2, stride - 1].into_iter().cycle()) {
                let mut slots = vec![0u8; stride * count];
                slots[lane * stride + position] = 1;
                let mut out = vec![[0; 32]; count];
                kernel.hash_slots(&slots, stride, &mut out);
                assert_eq!(out, reference(&slots, stride, count), "{kernel:?}, stride {stride}, lane {lane}");
            }
        }
    }
}

/// The fastest kernel the CPU runs is chosen: AVX-512F's, else AVX2's, else the portable one.
/// (On a CPU without a feature its kernel's properties above compare the portable kernel with
/// itself; this test is what says which kernel a machine's run really checked.)
#[test]
fn the_fastest_kernel_is_chosen_from_the_cpu_features() {
    #[cfg(target_arch = "x86_64")]
    let (avx512f, avx2) =
        (std::arch::is_x86_feature_detected!("avx512f"), std::arch::is_x86_feature_detected!("avx2"));
    #[cfg(not(target_arch = "x86_64"))]
    let (avx512f, avx2) = (false, false);
    let expected = if avx512f {
        Kernel::Avx512x8
    } else if avx2 {
        Kernel::Avx2x4
    } else {
        Kernel::Portable
    };
    assert_eq!(Kernel::fastest(), expected);
}

/// Walrus's test vector (33 bytes at n = 10), and larger blobs whose trees have many levels,
/// give the same blob IDs with the kernel on and forced off.
#[test]
fn known_answers_with_the_kernel_on_and_forced_off() {
    const VECTOR: &[u8] = b"walrus blob id v1 regression test";
    const VECTOR_ID: &str = "RcU82Mwf-CFkv1LaI_2qcpANwpGUuG3TMwnVzZxD2kY";
    let blobs =
        [(10, random_slots(5000, 1, 1)), (100, random_slots(70_001, 1, 2)), (301, random_slots(3, 1, 3))];
    let mut ids = Vec::new();
    for forced in [true, false] {
        hash::force_portable(forced);
        let expected = if forced { Kernel::Portable } else { Kernel::fastest() };
        assert_eq!(Kernel::active(), expected);
        let config = EncodingConfig::new(10).unwrap();
        let encoded = redstuff::encode(config, VECTOR).unwrap();
        assert_eq!(encoded.metadata.blob_id().to_string(), VECTOR_ID, "{expected:?}");
        let these: Vec<_> = blobs
            .iter()
            .map(|(n, blob)| {
                let config = EncodingConfig::new(*n).unwrap();
                let encoded = redstuff::encode(config, blob).unwrap();
                assert_eq!(redstuff::compute_metadata(config, blob).unwrap(), encoded.metadata);
                encoded.metadata.blob_id().to_string()
            })
            .collect();
        ids.push(these);
    }
    hash::force_portable(false);
    assert_eq!(ids[0], ids[1]);
}
