//! BLAKE2b-256 of many inputs of one length at once: the codec's leaf and node hashing.
//!
//! The inputs lie in consecutive `stride`-byte slots of one buffer (a tree level's leaves or
//! inner nodes all have the same length). What runs where:
//!
//! - a CPU with AVX-512F: the crate's own 8-lane kernel (`blake2b_x8.rs`), eight slots at a time;
//! - a CPU with AVX2 but not AVX-512F: the crate's own 4-lane kernel (`blake2b_x4.rs`), four
//!   slots at a time;
//! - every other CPU, the last `len % 8` or `len % 4` slots, and a process kept to the portable
//!   kernel: `blake2b_simd`'s `hash_many` (which itself picks AVX2, SSE4.1 or plain code).
//!
//! All give the same digests; the property tests and the `blake2b_kernel` fuzz target check
//! that. The own kernels exist because `hash_many` spends about half a block's compression
//! again on each input's job (setup, copies, finalisation): most of a short input's cost.
//!
//! The kernel is chosen once per process: set `MORSA_HASH_KERNEL=portable` to keep to
//! `blake2b_simd`, or call [`force_portable`] (benchmarks and tests compare the two).

#[cfg(target_arch = "x86_64")]
mod blake2b_params;
#[cfg(target_arch = "x86_64")]
mod blake2b_x4;
#[cfg(target_arch = "x86_64")]
mod blake2b_x8;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use blake2b_simd::many::{HashManyJob, hash_many};

/// A 32-byte BLAKE2b digest (the same as [`crate::merkle::Digest`]).
pub type Digest = [u8; 32];

/// The environment variable that keeps the process on the portable kernel when `portable`.
pub const KERNEL_ENV: &str = "MORSA_HASH_KERNEL";

/// How many inputs are hashed per `hash_many` call: enough to fill every SIMD lane many times.
const HASH_BATCH: usize = 64;

/// Set by [`force_portable`].
static FORCED_PORTABLE: AtomicBool = AtomicBool::new(false);

/// An implementation of the batch hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The crate's 8-lane AVX-512F kernel (the portable one on a CPU without AVX-512F).
    Avx512x8,
    /// The crate's 4-lane AVX2 kernel (the portable one on a CPU without AVX2).
    Avx2x4,
    /// `blake2b_simd::many::hash_many`, which picks AVX2, SSE4.1 or plain code itself.
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs, whatever the environment or [`force_portable`] say:
    /// [`Kernel::Avx512x8`] with AVX-512F, else [`Kernel::Avx2x4`] with AVX2, else
    /// [`Kernel::Portable`].
    pub fn fastest() -> Self {
        if avx512::detect().is_some() {
            Self::Avx512x8
        } else if avx2::detect().is_some() {
            Self::Avx2x4
        } else {
            Self::Portable
        }
    }

    /// The kernel [`hash_slots`] uses now: [`Kernel::fastest`] unless `MORSA_HASH_KERNEL` is
    /// `portable` (read once) or [`force_portable`] is on.
    pub fn active() -> Self {
        static CONFIGURED: OnceLock<Kernel> = OnceLock::new();
        let configured = *CONFIGURED.get_or_init(|| match std::env::var(KERNEL_ENV) {
            Ok(value) if value == "portable" => Self::Portable,
            _ => Self::fastest(),
        });
        if FORCED_PORTABLE.load(Ordering::Relaxed) { Self::Portable } else { configured }
    }

    /// BLAKE2b-256 of each `stride`-byte slot of `slots` into the matching slot of `out`.
    ///
    /// # Panics
    /// If `slots` is not exactly `out.len()` slots long.
    pub fn hash_slots(self, slots: &[u8], stride: usize, out: &mut [Digest]) {
        assert_eq!(Some(slots.len()), stride.checked_mul(out.len()), "one digest per slot");
        let done = match self {
            Self::Avx512x8 => avx512::detect()
                .map_or(0, |kernel| in_groups(slots, stride, out, |inputs| kernel.hash8(inputs))),
            Self::Avx2x4 => avx2::detect()
                .map_or(0, |kernel| in_groups(slots, stride, out, |inputs| kernel.hash4(inputs))),
            Self::Portable => 0,
        };
        portable(&slots[done * stride..], stride, &mut out[done..]);
    }
}

/// Makes [`hash_slots`] use the portable kernel (`true`) or [`Kernel::active`]'s configured
/// choice again (`false`), for the whole process.
pub fn force_portable(forced: bool) {
    FORCED_PORTABLE.store(forced, Ordering::Relaxed);
}

/// BLAKE2b-256 of each `stride`-byte slot of `slots` into `out`, with [`Kernel::active`].
///
/// # Panics
/// If `slots` is not exactly `out.len()` slots long.
pub fn hash_slots(slots: &[u8], stride: usize, out: &mut [Digest]) {
    Kernel::active().hash_slots(slots, stride, out);
}

/// Hashes the slots `LANES` at a time with `hash`, as many whole groups as there are; returns
/// how many slots (from the front) it hashed.
fn in_groups<const LANES: usize>(
    slots: &[u8],
    stride: usize,
    out: &mut [Digest],
    hash: impl Fn([&[u8]; LANES]) -> [Digest; LANES],
) -> usize {
    let grouped = out.len() - out.len() % LANES;
    for (group, out_group) in out[..grouped].chunks_exact_mut(LANES).enumerate() {
        let first = group * LANES;
        let inputs = std::array::from_fn(|lane| slot(slots, stride, first + lane));
        out_group.copy_from_slice(&hash(inputs));
    }
    grouped
}

fn slot(slots: &[u8], stride: usize, index: usize) -> &[u8] {
    &slots[index * stride..(index + 1) * stride]
}

/// Parameters of an unkeyed BLAKE2b with a 32-byte digest.
fn params() -> blake2b_simd::Params {
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    params
}

/// [`Kernel::Portable`]'s body.
fn portable(slots: &[u8], stride: usize, out: &mut [Digest]) {
    let params = params();
    for (first, out_batch) in (0..).step_by(HASH_BATCH).zip(out.chunks_mut(HASH_BATCH)) {
        let mut jobs: Vec<HashManyJob<'_>> = (first..first + out_batch.len())
            .map(|index| HashManyJob::new(&params, slot(slots, stride, index)))
            .collect();
        hash_many(jobs.iter_mut());
        for (digest, job) in out_batch.iter_mut().zip(&jobs) {
            digest.copy_from_slice(job.to_hash().as_bytes());
        }
    }
}

/// The own kernels where the architecture has them.
#[cfg(target_arch = "x86_64")]
use {blake2b_x4 as avx2, blake2b_x8 as avx512};

/// Stands in for both own kernels on other architectures.
#[cfg(not(target_arch = "x86_64"))]
use {absent as avx2, absent as avx512};

/// Stands in for the AVX2 and AVX-512 kernels on other architectures: never detected.
#[cfg(not(target_arch = "x86_64"))]
mod absent {
    type Digest = [u8; 32];

    /// Uninhabited: no CPU of this architecture has AVX2 or AVX-512.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Absent {}

    impl Absent {
        pub(super) fn hash8(self, _inputs: [&[u8]; 8]) -> [Digest; 8] {
            match self {}
        }

        pub(super) fn hash4(self, _inputs: [&[u8]; 4]) -> [Digest; 4] {
            match self {}
        }
    }

    pub(super) fn detect() -> Option<Absent> {
        None
    }
}
