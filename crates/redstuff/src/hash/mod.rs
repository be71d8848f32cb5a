//! BLAKE2b-256 of many inputs of one length at once: the codec's leaf and node hashing.
//!
//! The inputs lie in consecutive `stride`-byte slots of one buffer (a tree level's leaves or
//! inner nodes all have the same length). On a CPU with AVX-512F they go eight at a time
//! through the crate's own 8-lane kernel; elsewhere, and for the last `len % 8` slots, through
//! `blake2b_simd`'s `hash_many` (AVX2, 4 lanes). Both give the same digests; the property
//! tests and the `blake2b_kernel` fuzz target check that.
//!
//! The kernel is chosen once per process: set `MORSA_HASH_KERNEL=portable` to keep to
//! `blake2b_simd`, or call [`force_portable`] (benchmarks and tests compare the two).

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
    /// `blake2b_simd::many::hash_many`, which picks AVX2, SSE4.1 or plain code itself.
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs, whatever the environment or [`force_portable`] say.
    pub fn fastest() -> Self {
        if avx512::detect().is_some() { Self::Avx512x8 } else { Self::Portable }
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
        let done = match (self, avx512::detect()) {
            (Self::Avx512x8, Some(kernel)) => {
                let grouped = out.len() - out.len() % avx512::LANES;
                for (group, out_group) in out[..grouped].chunks_exact_mut(avx512::LANES).enumerate() {
                    let first = group * avx512::LANES;
                    let inputs = std::array::from_fn(|lane| slot(slots, stride, first + lane));
                    out_group.copy_from_slice(&kernel.hash8(inputs));
                }
                grouped
            }
            _ => 0,
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

/// The AVX-512 kernel where the architecture has one.
#[cfg(target_arch = "x86_64")]
use blake2b_x8 as avx512;

/// Stands in for the AVX-512 kernel on other architectures: never detected.
#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    type Digest = [u8; 32];

    pub(super) const LANES: usize = 8;

    /// Uninhabited: no CPU of this architecture has AVX-512.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Avx512 {}

    impl Avx512 {
        pub(super) fn hash8(self, _inputs: [&[u8]; LANES]) -> [Digest; LANES] {
            match self {}
        }
    }

    pub(super) fn detect() -> Option<Avx512> {
        None
    }
}
