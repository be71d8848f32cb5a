//! Named integer conversions for the places where a value that does not fit has one obvious
//! answer (the largest value of the target type), so that code says which conversion it means
//! instead of repeating `T::try_from(x).unwrap_or(T::MAX)`. On the 64-bit machines Morsa runs
//! on, `usize` and `u64` convert exactly; the saturation only matters elsewhere.
//!
//! ```
//! use morsa_core::convert::{lossy_f64, saturating_u16, saturating_u64};
//! assert_eq!(saturating_u64(5usize), 5);
//! assert_eq!(saturating_u16(70_000usize), u16::MAX);
//! assert_eq!(lossy_f64(3), 3.0);
//! ```

/// `value` as a `u64`: a length or count (exact on 64-bit machines).
pub fn saturating_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// `value` as a `u64`, or `u64::MAX` if it is larger: e.g. `Duration::as_millis`.
pub fn saturating_u64_from_u128(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// `value` as a `usize`, or `usize::MAX` if it is larger (only on 32-bit machines).
pub fn saturating_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// `value` as a `usize` capacity hint: 0 (no preallocation) if it does not fit, so that a hint
/// never asks for an impossible allocation.
pub fn capacity_hint(value: u64) -> usize {
    usize::try_from(value).unwrap_or(0)
}

/// `value` as a `u32`, or `u32::MAX` if it is larger.
pub fn saturating_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// `value` as a `u16` (a shard or sliver index below `n ≤ u16::MAX`), or `u16::MAX` if it is
/// larger.
pub fn saturating_u16(value: usize) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// `value` as the nearest `f64`: exact below 2^53, rounded above. For rates and metrics.
pub fn lossy_f64(value: u64) -> f64 {
    let high = u32::try_from(value >> 32).expect("a u64 shifted right by 32 fits in a u32");
    let low = u32::try_from(value & 0xffff_ffff).expect("the low 32 bits fit in a u32");
    f64::from(high) * 4_294_967_296.0 + f64::from(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_fit_convert_exactly_and_others_saturate() {
        assert_eq!(saturating_u64(0), 0);
        assert_eq!(saturating_u64(usize::MAX), u64::try_from(usize::MAX).unwrap());
        assert_eq!(saturating_u64_from_u128(7), 7);
        assert_eq!(saturating_u64_from_u128(u128::from(u64::MAX) + 1), u64::MAX);
        assert_eq!(saturating_usize(9), 9);
        assert_eq!(capacity_hint(9), 9);
        assert_eq!(saturating_u32(70_000), 70_000);
        assert_eq!(saturating_u32(usize::MAX), u32::MAX);
        assert_eq!(saturating_u16(65_535), 65_535);
        assert_eq!(saturating_u16(65_536), u16::MAX);
    }

    #[test]
    fn lossy_f64_is_exact_below_two_to_the_53() {
        for value in [0, 1, 1000, (1 << 32) - 1, 1 << 32, (1 << 32) + 5, (1 << 53) - 1] {
            assert_eq!(lossy_f64(value), value.to_string().parse::<f64>().unwrap(), "{value}");
        }
        assert_eq!(lossy_f64(u64::MAX), 18_446_744_073_709_551_615_f64);
    }
}
