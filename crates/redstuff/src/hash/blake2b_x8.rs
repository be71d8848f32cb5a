//! An 8-lane BLAKE2b-256 on AVX-512F: eight inputs of one length hashed at once, input `i` in
//! the 64-bit lane `i` of every 512-bit register, with the native 64-bit rotate (`vprorq`)
//! that AVX2 has to emulate with shuffles and shifts.
//!
//! The kernel is reachable only through [`Avx512`], a token that [`detect`] hands out after the
//! CPU reported AVX-512F, so every call of a `#[target_feature]` function below runs on a CPU
//! that has the feature; the other `unsafe` blocks are unaligned loads from and stores to
//! arrays of exactly the size read. Its 4-lane AVX2 sibling is `blake2b_x4.rs`.

#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_loadu_si512, _mm512_permutex2var_epi64, _mm512_ror_epi64,
    _mm512_set1_epi64, _mm512_setr_epi64, _mm512_storeu_si512, _mm512_unpackhi_epi64, _mm512_unpacklo_epi64,
    _mm512_xor_si512,
};
use std::sync::OnceLock;

use super::blake2b_params::{BLOCK, IV, PARAM_WORD_0, ROUNDS, SIGMA, byte_count};

/// A 32-byte BLAKE2b digest.
type Digest = [u8; 32];

/// How many inputs one call hashes.
const LANES: usize = 8;

/// Proof that the CPU running this process has AVX-512F; only [`detect`] makes one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx512(());

/// The token if the CPU has AVX-512F (asked once per process, then remembered).
pub(super) fn detect() -> Option<Avx512> {
    static HAS_AVX512F: OnceLock<bool> = OnceLock::new();
    HAS_AVX512F.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f")).then_some(Avx512(()))
}

impl Avx512 {
    /// BLAKE2b-256 (unkeyed) of each of the eight `inputs`, which must all have one length.
    pub(super) fn hash8(self, inputs: [&[u8]; LANES]) -> [Digest; LANES] {
        let len = inputs[0].len();
        assert!(inputs.iter().all(|input| input.len() == len), "the eight inputs have one length");
        // SAFETY: `self` exists only when the CPU reported AVX-512F, the one feature
        // `hash8_avx512` is compiled for.
        unsafe { hash8_avx512(inputs, len) }
    }
}

/// Splats one 64-bit word over the eight lanes.
#[target_feature(enable = "avx512f")]
fn splat(word: u64) -> __m512i {
    _mm512_set1_epi64(i64::from_ne_bytes(word.to_ne_bytes()))
}

/// The body of [`Avx512::hash8`]; `len` is the length of every input.
#[target_feature(enable = "avx512f")]
fn hash8_avx512(inputs: [&[u8]; LANES], len: usize) -> [Digest; LANES] {
    let mut state: [__m512i; 8] = std::array::from_fn(|i| splat(IV[i]));
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

    let mut words = [[0u64; LANES]; 4];
    for (row, vector) in words.iter_mut().zip(state) {
        // SAFETY: `row` is 8 × 8 = 64 writable bytes, exactly one unaligned 512-bit store.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), vector) };
    }
    std::array::from_fn(|lane| {
        let mut digest = [0u8; 32];
        for (bytes, row) in digest.chunks_exact_mut(8).zip(&words) {
            bytes.copy_from_slice(&row[lane].to_le_bytes());
        }
        digest
    })
}

/// The sixteen message words of one block per lane, word `w` of every lane in vector `w`.
#[target_feature(enable = "avx512f")]
fn load_message(blocks: [&[u8; BLOCK]; LANES]) -> [__m512i; 16] {
    // SAFETY: each block is 128 readable bytes; the two unaligned 512-bit loads read bytes
    // 0..64 and 64..128 of it.
    let low = blocks.map(|block| unsafe { _mm512_loadu_si512(block.as_ptr().cast()) });
    // SAFETY: as above, for the second half of each block.
    let high = blocks.map(|block| unsafe { _mm512_loadu_si512(block[64..].as_ptr().cast()) });
    let low = transpose(low);
    let high = transpose(high);
    std::array::from_fn(|word| if word < 8 { low[word] } else { high[word - 8] })
}

/// Transposes an 8 × 8 matrix of 64-bit words held one row per vector.
#[target_feature(enable = "avx512f")]
fn transpose(rows: [__m512i; 8]) -> [__m512i; 8] {
    // Pairs of rows interleaved: even words of rows 0 and 1, odd words of rows 0 and 1, ...
    let even01 = _mm512_unpacklo_epi64(rows[0], rows[1]);
    let odd01 = _mm512_unpackhi_epi64(rows[0], rows[1]);
    let even23 = _mm512_unpacklo_epi64(rows[2], rows[3]);
    let odd23 = _mm512_unpackhi_epi64(rows[2], rows[3]);
    let even45 = _mm512_unpacklo_epi64(rows[4], rows[5]);
    let odd45 = _mm512_unpackhi_epi64(rows[4], rows[5]);
    let even67 = _mm512_unpacklo_epi64(rows[6], rows[7]);
    let odd67 = _mm512_unpackhi_epi64(rows[6], rows[7]);
    // Quads: words (0, 4), (2, 6) of four rows each from the even pairs, (1, 5), (3, 7) from the odd.
    let words_0_4 = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    let words_2_6 = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    let w04_0123 = _mm512_permutex2var_epi64(even01, words_0_4, even23);
    let w26_0123 = _mm512_permutex2var_epi64(even01, words_2_6, even23);
    let w15_0123 = _mm512_permutex2var_epi64(odd01, words_0_4, odd23);
    let w37_0123 = _mm512_permutex2var_epi64(odd01, words_2_6, odd23);
    let w04_4567 = _mm512_permutex2var_epi64(even45, words_0_4, even67);
    let w26_4567 = _mm512_permutex2var_epi64(even45, words_2_6, even67);
    let w15_4567 = _mm512_permutex2var_epi64(odd45, words_0_4, odd67);
    let w37_4567 = _mm512_permutex2var_epi64(odd45, words_2_6, odd67);
    // Halves of the rows 0–3 and 4–7 quads joined into whole columns.
    let first = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11);
    let second = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
    [
        _mm512_permutex2var_epi64(w04_0123, first, w04_4567),
        _mm512_permutex2var_epi64(w15_0123, first, w15_4567),
        _mm512_permutex2var_epi64(w26_0123, first, w26_4567),
        _mm512_permutex2var_epi64(w37_0123, first, w37_4567),
        _mm512_permutex2var_epi64(w04_0123, second, w04_4567),
        _mm512_permutex2var_epi64(w15_0123, second, w15_4567),
        _mm512_permutex2var_epi64(w26_0123, second, w26_4567),
        _mm512_permutex2var_epi64(w37_0123, second, w37_4567),
    ]
}

/// BLAKE2b's mixing function G on the columns or diagonals `a, b, c, d` of `v`.
macro_rules! mix {
    ($v:ident, $a:literal, $b:literal, $c:literal, $d:literal, $x:expr, $y:expr) => {
        $v[$a] = _mm512_add_epi64(_mm512_add_epi64($v[$a], $v[$b]), $x);
        $v[$d] = _mm512_ror_epi64::<32>(_mm512_xor_si512($v[$d], $v[$a]));
        $v[$c] = _mm512_add_epi64($v[$c], $v[$d]);
        $v[$b] = _mm512_ror_epi64::<24>(_mm512_xor_si512($v[$b], $v[$c]));
        $v[$a] = _mm512_add_epi64(_mm512_add_epi64($v[$a], $v[$b]), $y);
        $v[$d] = _mm512_ror_epi64::<16>(_mm512_xor_si512($v[$d], $v[$a]));
        $v[$c] = _mm512_add_epi64($v[$c], $v[$d]);
        $v[$b] = _mm512_ror_epi64::<63>(_mm512_xor_si512($v[$b], $v[$c]));
    };
}

/// BLAKE2b's compression function F on eight lanes: `bytes` is the counter after this block
/// (below 2⁶⁴, so its high word is zero) and `last` marks the final block.
#[target_feature(enable = "avx512f")]
fn compress(state: &mut [__m512i; 8], message: &[__m512i; 16], bytes: u64, last: bool) {
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
    for round in 0..ROUNDS {
        let s = &SIGMA[round % SIGMA.len()];
        let m = |i: usize| message[s[i]];
        mix!(v, 0, 4, 8, 12, m(0), m(1));
        mix!(v, 1, 5, 9, 13, m(2), m(3));
        mix!(v, 2, 6, 10, 14, m(4), m(5));
        mix!(v, 3, 7, 11, 15, m(6), m(7));
        mix!(v, 0, 5, 10, 15, m(8), m(9));
        mix!(v, 1, 6, 11, 12, m(10), m(11));
        mix!(v, 2, 7, 8, 13, m(12), m(13));
        mix!(v, 3, 4, 9, 14, m(14), m(15));
    }
    for (i, word) in state.iter_mut().enumerate() {
        *word = _mm512_xor_si512(_mm512_xor_si512(*word, v[i]), v[i + 8]);
    }
}
