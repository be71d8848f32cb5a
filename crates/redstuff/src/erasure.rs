//! A Reed–Solomon decoder for many codewords with one erasure pattern, over the field and
//! transforms of `reed-solomon-simd` 3.1.0 (its public engine API).
//!
//! The library's decoder recomputes the erasure locator (a transform over all 65 536 field
//! elements) on every decode and copies every shard in and out of its own work buffer. Decoding
//! the columns of a blob repeats one pattern hundreds of times, so [`PatternDecoder`] computes
//! the locator once and then decodes batches of any width in a work buffer reused per thread,
//! filled by and read by the caller. Narrow batches keep that buffer in cache (at n = 1000 it
//! holds 2048 shards), which wide ones, paid for by the locator's cost, did not.
//!
//! The steps are the library's own (`rate_low.rs`, `rate_high.rs` of 3.1.0): the same rate
//! choice, shard positions, locator, transforms and formal derivative, so that a decode gives
//! the library's answer byte for byte; `rs` tests compare the two.
#![allow(unsafe_code)] // one call into AVX2 code after detecting AVX2 (`formal_derivative`)

use std::cell::RefCell;

use reed_solomon_simd::engine::{DefaultEngine, Engine, GF_MODULUS, GF_ORDER, GfElement, ShardsRefMut};

thread_local! {
    /// The work buffer of [`PatternDecoder::decode_batch`], reused per thread.
    static WORK: RefCell<Vec<[u8; 64]>> = const { RefCell::new(Vec::new()) };
}

/// Decodes codewords of `k` sources out of `n` symbols that all miss the same symbols.
pub(crate) struct PatternDecoder {
    engine: DefaultEngine,
    /// Shards in the work buffer.
    work_count: usize,
    /// The inverse transform, in steps that leave out the blocks of the work buffer that hold
    /// only zeros (the library transforms all of it, up to the last given shard).
    ifft: Vec<IfftStep>,
    /// The forward transform only needs to be right up to the last missing source.
    fft_end: usize,
    /// The erasure locator's logarithms, one per work position.
    locator: Box<[GfElement; GF_ORDER]>,
    /// `(work position, item of the given shards)` of the `k` shards the decode uses.
    used: Vec<(usize, usize)>,
    /// `(source index, work position)` of every missing source, ascending.
    missing: Vec<(usize, usize)>,
}

/// Where the library puts the shards of a code (`k` sources, `n − k` recovery symbols).
#[derive(Clone, Copy)]
enum Rate {
    /// Sources at `0..k`, zeros to `chunk = k.next_power_of_two()`, recovery from `chunk`.
    Low { chunk: usize },
    /// Recovery at `0..n − k`, erased to `chunk = (n − k).next_power_of_two()`, sources from
    /// `chunk`.
    High { chunk: usize },
}

impl Rate {
    /// The library's choice for a decoder (`rate_default.rs`, `use_high_rate`).
    fn of(k: usize, recovery: usize) -> Self {
        let (k_pow2, recovery_pow2) = (k.next_power_of_two(), recovery.next_power_of_two());
        let high = match k_pow2.cmp(&recovery_pow2) {
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => k <= recovery,
        };
        match high {
            true => Self::High { chunk: recovery_pow2 },
            false => Self::Low { chunk: k_pow2 },
        }
    }

    /// Work position of symbol `index` (sources first, then recovery symbols).
    fn position(self, k: usize, index: usize) -> usize {
        match (self, index < k) {
            (Self::Low { .. }, true) => index,
            (Self::Low { chunk }, false) => chunk + index - k,
            (Self::High { chunk }, true) => chunk + index,
            (Self::High { .. }, false) => index - k,
        }
    }
}

impl PatternDecoder {
    /// A decoder for codewords of which the symbols `indices` are given, in this order
    /// (distinct, below `n`, at least `k` of them; `1 ≤ k < n ≤ 65535`). Like
    /// `reed_solomon_simd`'s use in `rs::decode`, it uses every given source and the first
    /// recovery symbols needed to make `k`; `None` when all sources are given (nothing to
    /// decode).
    pub(crate) fn new(k: usize, n: usize, indices: impl IntoIterator<Item = usize>) -> Option<Self> {
        let recovery = n - k;
        let rate = Rate::of(k, recovery);
        let indices: Vec<(usize, usize)> =
            indices.into_iter().enumerate().map(|(item, index)| (index, item)).collect();
        let sources = indices.iter().filter(|(index, _)| *index < k).count();
        if sources == k {
            return None;
        }
        let used: Vec<(usize, usize)> = indices
            .iter()
            .filter(|(index, _)| *index < k)
            .chain(indices.iter().filter(|(index, _)| *index >= k).take(k - sources))
            .map(|&(index, item)| (rate.position(k, index), item))
            .collect();
        let (work_count, end) = match rate {
            Rate::Low { chunk } => ((chunk + recovery).next_power_of_two(), chunk + recovery),
            Rate::High { chunk } => ((chunk + k).next_power_of_two(), chunk + k),
        };
        let mut given = vec![false; GF_ORDER];
        for (position, _) in &used {
            given[*position] = true;
        }
        // Erased: every source or recovery position not used; the low rate's zeros between
        // sources and recovery are known, and so is everything past the high rate's sources.
        let mut locator: Box<[GfElement; GF_ORDER]> =
            vec![0; GF_ORDER].into_boxed_slice().try_into().expect("GF_ORDER elements");
        let (ranges, erased, truncated) = match rate {
            Rate::Low { chunk } => ([0..k, chunk..end], end..GF_ORDER, GF_ORDER),
            Rate::High { chunk } => ([0..recovery, chunk..end], recovery..chunk, end),
        };
        for position in ranges.into_iter().flatten() {
            locator[position] = GfElement::from(!given[position]);
        }
        locator[erased].fill(1);
        DefaultEngine::eval_poly(&mut locator, truncated);
        let missing: Vec<(usize, usize)> = (0..k)
            .map(|index| (index, rate.position(k, index)))
            .filter(|(_, position)| !given[*position])
            .collect();
        let fft_end = missing.iter().map(|(_, position)| position + 1).max().expect("a source is missing");
        let mut ifft = Vec::new();
        plan_ifft(&given[..work_count], 0, &mut ifft);
        Some(Self { engine: DefaultEngine::new(), work_count, ifft, fft_end, locator, used, missing })
    }

    /// Decodes one batch of codewords laid side by side in shards of `width` bytes (a
    /// non-zero multiple of 64, laid out as `reed-solomon-simd` lays out a shard of that
    /// width). `fill(item, shard)` writes given shard `item` (of the indices given to
    /// [`PatternDecoder::new`]) into `shard`, which holds zeros; `take(source, shard)` then
    /// reads each missing source's decoded shard, in ascending order of sources.
    pub(crate) fn decode_batch(
        &self,
        width: usize,
        mut fill: impl FnMut(usize, &mut [u8]),
        mut take: impl FnMut(usize, &[u8]),
    ) {
        debug_assert!(width > 0 && width.is_multiple_of(64));
        let blocks = width / 64;
        WORK.with_borrow_mut(|work| {
            work.clear();
            work.resize(self.work_count * blocks, [0; 64]);
            let count = self.work_count;
            let mut shards = ShardsRefMut::new(count, blocks, work);
            for &(position, item) in &self.used {
                fill(item, shards[position].as_flattened_mut());
                self.engine.mul(&mut shards[position], self.locator[position]);
            }
            for step in &self.ifft {
                match *step {
                    IfftStep::Block { pos, size, end } => {
                        self.engine.ifft(&mut ShardsRefMut::new(count, blocks, work), pos, size, end, pos);
                    }
                    IfftStep::TopLayer { pos, size } => {
                        // The block's halves as two shards: a transform of size 2 is one layer
                        // of butterflies, with the factor the whole transform uses there.
                        let block = &mut work[pos * blocks..(pos + size) * blocks];
                        let mut halves = ShardsRefMut::new(2, size / 2 * blocks, block);
                        self.engine.ifft(&mut halves, 0, 2, 2, pos + size / 2 - 1);
                    }
                }
            }
            formal_derivative(work, count, blocks);
            let mut shards = ShardsRefMut::new(count, blocks, work);
            self.engine.fft(&mut shards, 0, count, self.fft_end, 0);
            for &(index, position) in &self.missing {
                self.engine.mul(&mut shards[position], GF_MODULUS - self.locator[position]);
                take(index, shards[position].as_flattened());
            }
        });
    }
}

/// A step of the inverse transform ([`plan_ifft`]).
enum IfftStep {
    /// The inverse transform of the block of `size` shards at `pos`, all zeros from `end` on
    /// (relative to `pos`).
    Block { pos: usize, size: usize, end: usize },
    /// The last layer of the inverse transform of the block of `size` shards at `pos`, whose
    /// halves are transformed already.
    TopLayer { pos: usize, size: usize },
}

/// Plans the inverse transform of the block of `nonzero.len()` (a power of two) shards at
/// `pos`, of which `nonzero` says which can hold other bytes than zeros. A block of zeros
/// transforms to zeros and is left out; a block whose zeros come after its other shards is
/// one call of the engine (which leaves out the zeros at the end); any other is transformed
/// half by half and then joined by its top layer, as the whole transform does.
fn plan_ifft(nonzero: &[bool], pos: usize, steps: &mut Vec<IfftStep>) {
    let size = nonzero.len();
    let Some(last) = nonzero.iter().rposition(|shard| *shard) else { return };
    if size <= 16 || nonzero[..last].iter().all(|shard| *shard) {
        steps.push(IfftStep::Block { pos, size, end: last + 1 });
        return;
    }
    let (low, high) = nonzero.split_at(size / 2);
    plan_ifft(low, pos, steps);
    plan_ifft(high, pos + size / 2, steps);
    steps.push(IfftStep::TopLayer { pos, size });
}

/// The formal derivative of the polynomial in the `count` shards of `blocks` blocks each in
/// `work` (as the library computes it: shards `i − w..i` ^= shards `i..i + w`, `w` the lowest
/// set bit of `i`), xoring flat byte runs.
fn formal_derivative(work: &mut [[u8; 64]], count: usize, blocks: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU runs AVX2 (detected just above), all `formal_derivative_avx2` needs.
        unsafe { formal_derivative_avx2(work, count, blocks) };
        return;
    }
    formal_derivative_with(work, count, blocks);
}

/// [`formal_derivative`] compiled for AVX2 (32-byte xors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn formal_derivative_avx2(work: &mut [[u8; 64]], count: usize, blocks: usize) {
    formal_derivative_with(work, count, blocks);
}

#[inline(always)]
fn formal_derivative_with(work: &mut [[u8; 64]], count: usize, blocks: usize) {
    for i in 1..count {
        let width = 1 << i.trailing_zeros();
        let (low, high) = work.split_at_mut(i * blocks);
        let targets = low[(i - width) * blocks..].as_flattened_mut();
        let sources = high[..width * blocks].as_flattened();
        for (target, source) in targets.iter_mut().zip(sources) {
            *target ^= source;
        }
    }
}
