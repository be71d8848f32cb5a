//! A 4-lane BLAKE2b-256 on AVX2: four inputs of one length hashed at once, input `i` in the
//! 64-bit lane `i` of every 256-bit register. AVX2 has no 64-bit rotate, so the rotations by
//! 32, 24 and 16 bits are byte shuffles and the one by 63 is a shift, an add and an or.
//!
//! The kernel is reachable only through [`Avx2`], a token that [`detect`] hands out after the
//! CPU reported AVX2, so every call of a `#[target_feature]` function below runs on a CPU
//! that has the feature; the other `unsafe` blocks are unaligned loads from and stores to
//! arrays of exactly the size read or written.

#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_or_si256, _mm256_permute2x128_si256,
    _mm256_set1_epi64x, _mm256_setr_epi8, _mm256_shuffle_epi8, _mm256_srli_epi64, _mm256_storeu_si256,
    _mm256_unpackhi_epi64, _mm256_unpacklo_epi64, _mm256_xor_si256,
};
use std::sync::OnceLock;

use super::blake2b_params::{BLOCK, IV, PARAM_WORD_0, SIGMA, byte_count};

/// A 32-byte BLAKE2b digest.
type Digest = [u8; 32];

/// How many inputs one call hashes.
const LANES: usize = 4;

/// Proof that the CPU running this process has AVX2; only [`detect`] makes one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx2(());

/// The token if the CPU has AVX2 (asked once per process, then remembered).
pub(super) fn detect() -> Option<Avx2> {
    static HAS_AVX2: OnceLock<bool> = OnceLock::new();
    HAS_AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2")).then_some(Avx2(()))
}

impl Avx2 {
    /// BLAKE2b-256 (unkeyed) of each of the four `inputs`, which must all have one length.
    pub(super) fn hash4(self, inputs: [&[u8]; LANES]) -> [Digest; LANES] {
        let len = inputs[0].len();
        assert!(inputs.iter().all(|input| input.len() == len), "the four inputs have one length");
        // SAFETY: `self` exists only when the CPU reported AVX2, the one feature `hash4_avx2`
        // is compiled for.
        unsafe { hash4_avx2(inputs, len) }
    }
}

/// Splats one 64-bit word over the four lanes.
#[target_feature(enable = "avx2")]
fn splat(word: u64) -> __m256i {
    _mm256_set1_epi64x(i64::from_ne_bytes(word.to_ne_bytes()))
}

/// The body of [`Avx2::hash4`]; `len` is the length of every input.
#[target_feature(enable = "avx2")]
fn hash4_avx2(inputs: [&[u8]; LANES], len: usize) -> [Digest; LANES] {
    let mut state: [__m256i; 8] = std::array::from_fn(|i| splat(IV[i]));
    state[0] = splat(IV[0] ^ PARAM_WORD_0);

    // Every block but the last is compressed as it lies; the last one (empty for an empty
    // input, full when the length is a multiple of 128) is copied and zero-padded first.
    let leading_blocks = len.saturating_sub(1) / BLOCK;
    let blocks = inputs.map(|input| input.as_chunks::<BLOCK>().0);
    for index in 0..leading_blocks {
        let message = load_message(blocks.map(|lane| &lane[index]));
        compress(&mut state, &message, byte_count((index + 1) * BLOCK), false);
    }
    let mut last = [[0u8; BLOCK]; LANES];
    for (padded, input) in last.iter_mut().zip(inputs) {
        let tail = &input[leading_blocks * BLOCK..];
        padded[..tail.len()].copy_from_slice(tail);
    }
    let message = load_message(std::array::from_fn(|lane| &last[lane]));
    compress(&mut state, &message, byte_count(len), true);

    // Words 0–3 of the state are the digest: transposed, lane `i`'s four words in vector `i`.
    let lanes = transpose([state[0], state[1], state[2], state[3]]);
    let mut digests = [[0u8; 32]; LANES];
    for (digest, vector) in digests.iter_mut().zip(lanes) {
        // SAFETY: `digest` is 32 writable bytes, exactly one unaligned 256-bit store; x86_64 is
        // little-endian, so the words land in BLAKE2b's byte order.
        unsafe { _mm256_storeu_si256(digest.as_mut_ptr().cast(), vector) };
    }
    digests
}

/// The sixteen message words of one block per lane, word `w` of every lane in vector `w`.
#[target_feature(enable = "avx2")]
fn load_message(blocks: [&[u8; BLOCK]; LANES]) -> [__m256i; 16] {
    let quarter = |offset: usize| {
        // SAFETY: each block is 128 readable bytes and `offset` is 0, 32, 64 or 96: the
        // unaligned 256-bit load reads bytes `offset..offset + 32` of it.
        transpose(blocks.map(|block| unsafe { _mm256_loadu_si256(block[offset..].as_ptr().cast()) }))
    };
    let quarters = [quarter(0), quarter(32), quarter(64), quarter(96)];
    std::array::from_fn(|word| quarters[word / 4][word % 4])
}

/// Transposes a 4 × 4 matrix of 64-bit words held one row per vector.
#[target_feature(enable = "avx2")]
fn transpose(rows: [__m256i; 4]) -> [__m256i; 4] {
    // Within each 128-bit half: words (0, 2) of rows 0 and 1 interleaved, words (1, 3), ...
    let w02_01 = _mm256_unpacklo_epi64(rows[0], rows[1]);
    let w13_01 = _mm256_unpackhi_epi64(rows[0], rows[1]);
    let w02_23 = _mm256_unpacklo_epi64(rows[2], rows[3]);
    let w13_23 = _mm256_unpackhi_epi64(rows[2], rows[3]);
    // Low halves joined give words 0 and 1 of all four rows, high halves words 2 and 3.
    [
        _mm256_permute2x128_si256::<0x20>(w02_01, w02_23),
        _mm256_permute2x128_si256::<0x20>(w13_01, w13_23),
        _mm256_permute2x128_si256::<0x31>(w02_01, w02_23),
        _mm256_permute2x128_si256::<0x31>(w13_01, w13_23),
    ]
}

/// The byte shuffles that rotate each 64-bit word right by 32, 24 and 16 bits: byte `i` of
/// the result is byte `(i + 4) % 8`, `(i + 3) % 8`, respectively `(i + 2) % 8` of the word.
#[derive(Clone, Copy)]
struct ByteRotations {
    by32: __m256i,
    by24: __m256i,
    by16: __m256i,
}

impl ByteRotations {
    /// The three shuffles, opaque to the optimiser. With the constants in view LLVM moves a
    /// rotation across the xor before it and shuffles both operands (the 16-bit one as a
    /// `vpshuflw` + `vpshufhw` pair on each): up to four shuffles where one `vpshufb` does,
    /// all on the same two shuffle units (about 5% slower on Zen 3).
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        let by32 = _mm256_setr_epi8(
            4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, //
            4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11,
        );
        let by24 = _mm256_setr_epi8(
            3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, //
            3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
        );
        let by16 = _mm256_setr_epi8(
            2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, //
            2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
        );
        std::hint::black_box(Self { by32, by24, by16 })
    }

    /// Each 64-bit word rotated right by 32 bits.
    #[target_feature(enable = "avx2")]
    fn ror32(self, x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(x, self.by32)
    }

    /// Each 64-bit word rotated right by 24 bits.
    #[target_feature(enable = "avx2")]
    fn ror24(self, x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(x, self.by24)
    }

    /// Each 64-bit word rotated right by 16 bits.
    #[target_feature(enable = "avx2")]
    fn ror16(self, x: __m256i) -> __m256i {
        _mm256_shuffle_epi8(x, self.by16)
    }
}

/// Each 64-bit word rotated right by 63 bits, that is left by one: doubled, or its top bit.
#[target_feature(enable = "avx2")]
fn ror63(x: __m256i) -> __m256i {
    _mm256_or_si256(_mm256_add_epi64(x, x), _mm256_srli_epi64::<63>(x))
}

/// BLAKE2b's mixing function G on the columns or diagonals `a, b, c, d` of `v`.
macro_rules! mix {
    ($v:ident, $r:ident, $a:literal, $b:literal, $c:literal, $d:literal, $x:expr, $y:expr) => {
        $v[$a] = _mm256_add_epi64(_mm256_add_epi64($v[$a], $v[$b]), $x);
        $v[$d] = $r.ror32(_mm256_xor_si256($v[$d], $v[$a]));
        $v[$c] = _mm256_add_epi64($v[$c], $v[$d]);
        $v[$b] = $r.ror24(_mm256_xor_si256($v[$b], $v[$c]));
        $v[$a] = _mm256_add_epi64(_mm256_add_epi64($v[$a], $v[$b]), $y);
        $v[$d] = $r.ror16(_mm256_xor_si256($v[$d], $v[$a]));
        $v[$c] = _mm256_add_epi64($v[$c], $v[$d]);
        $v[$b] = ror63(_mm256_xor_si256($v[$b], $v[$c]));
    };
}

/// BLAKE2b's compression function F on four lanes: `bytes` is the counter after this block
/// (below 2⁶⁴, so its high word is zero) and `last` marks the final block.
#[target_feature(enable = "avx2")]
fn compress(state: &mut [__m256i; 8], message: &[__m256i; 16], bytes: u64, last: bool) {
    let mut v = [
        state[0],
        state[1],
        state[2],
        state[3],
        state[4],
        state[5],
        state[6],
        state[7],
        splat(IV[0]),
        splat(IV[1]),
        splat(IV[2]),
        splat(IV[3]),
        splat(IV[4] ^ bytes),
        splat(IV[5]),
        splat(if last { !IV[6] } else { IV[6] }),
        splat(IV[7]),
    ];
    let r = ByteRotations::new();
    // Unrolled, so the message words are picked by constant indices rather than by loads from
    // `SIGMA` in every round.
    macro_rules! round {
        ($round:literal) => {{
            const S: [usize; 16] = SIGMA[$round % SIGMA.len()];
            mix!(v, r, 0, 4, 8, 12, message[S[0]], message[S[1]]);
            mix!(v, r, 1, 5, 9, 13, message[S[2]], message[S[3]]);
            mix!(v, r, 2, 6, 10, 14, message[S[4]], message[S[5]]);
            mix!(v, r, 3, 7, 11, 15, message[S[6]], message[S[7]]);
            mix!(v, r, 0, 5, 10, 15, message[S[8]], message[S[9]]);
            mix!(v, r, 1, 6, 11, 12, message[S[10]], message[S[11]]);
            mix!(v, r, 2, 7, 8, 13, message[S[12]], message[S[13]]);
            mix!(v, r, 3, 4, 9, 14, message[S[14]], message[S[15]]);
        }};
    }
    round!(0);
    round!(1);
    round!(2);
    round!(3);
    round!(4);
    round!(5);
    round!(6);
    round!(7);
    round!(8);
    round!(9);
    round!(10);
    round!(11);
    for (i, word) in state.iter_mut().enumerate() {
        *word = _mm256_xor_si256(_mm256_xor_si256(*word, v[i]), v[i + 8]);
    }
}
