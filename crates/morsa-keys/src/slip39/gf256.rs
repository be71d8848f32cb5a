//! Arithmetic in GF(256) with the Rijndael polynomial x⁸ + x⁴ + x³ + x + 1 (as SLIP-39 and
//! AES use it), and Lagrange interpolation of byte vectors over it.

/// The Rijndael reduction polynomial (x⁸ + x⁴ + x³ + x + 1).
const POLYNOMIAL: u16 = 0x11b;

/// Powers of the generator 3 (`EXP[i] = 3^i`), 255 of them, repeated once so that a sum of
/// two logarithms indexes it without a modulo.
const EXP: [u8; 510] = exp_table();

/// Discrete logarithms to base 3 (`LOG[0]` is unused: 0 has none).
const LOG: [u8; 256] = log_table();

const fn exp_table() -> [u8; 510] {
    let mut table = [0u8; 510];
    let mut value: u16 = 1;
    let mut i = 0;
    while i < 255 {
        // `value` stays below 256: it is reduced after every multiplication.
        table[i] = value.to_le_bytes()[0];
        table[i + 255] = table[i];
        // Multiply by 3 = x + 1: value·x xor value.
        value ^= value << 1;
        if value & 0x100 != 0 {
            value ^= POLYNOMIAL;
        }
        i += 1;
    }
    table
}

const fn log_table() -> [u8; 256] {
    let exp = exp_table();
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        table[exp[i] as usize] = i.to_le_bytes()[0];
        i += 1;
    }
    table
}

/// The product of two field elements.
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    EXP[usize::from(LOG[usize::from(a)]) + usize::from(LOG[usize::from(b)])]
}

/// The quotient `a / b`; `b` must not be 0.
pub fn div(a: u8, b: u8) -> u8 {
    assert!(b != 0, "division by zero in GF(256)");
    if a == 0 {
        return 0;
    }
    EXP[usize::from(LOG[usize::from(a)]) + 255 - usize::from(LOG[usize::from(b)])]
}

/// The value at `x` of the polynomials through `points` (one polynomial per byte position):
/// Lagrange interpolation. The points' x values must be distinct and their vectors equally
/// long (the callers check both).
pub fn interpolate(points: &[(u8, &[u8])], x: u8) -> Vec<u8> {
    if let Some((_, value)) = points.iter().find(|(xi, _)| *xi == x) {
        return value.to_vec();
    }
    let length = points.first().map_or(0, |(_, value)| value.len());
    let mut result = vec![0u8; length];
    for (i, (xi, yi)) in points.iter().enumerate() {
        // The basis polynomial of point i at x: Π_{j≠i} (x − x_j) / (x_i − x_j); in
        // characteristic 2 subtraction is xor.
        let mut basis = 1u8;
        for (j, (xj, _)) in points.iter().enumerate() {
            if i != j {
                basis = mul(basis, div(x ^ xj, xi ^ xj));
            }
        }
        for (out, y) in result.iter_mut().zip(yi.iter()) {
            *out ^= mul(*y, basis);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multiplication the slow way: shift and add, reducing by the polynomial.
    fn mul_by_shifting(mut a: u8, mut b: u8) -> u8 {
        let mut product = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                product ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= 0x1b;
            }
            b >>= 1;
        }
        product
    }

    #[test]
    fn table_multiplication_equals_shift_and_add_and_division_inverts_it() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul_by_shifting(a, b), "{a} * {b}");
                if b != 0 {
                    assert_eq!(div(mul(a, b), b), a, "{a} * {b} / {b}");
                }
            }
        }
        // FIPS-197 section 4.2: {57} • {83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
    }

    #[test]
    fn interpolation_goes_through_its_points_and_finds_a_line() {
        // f(x) = 7 + 5x: f(1) = 7 xor 5 = 2, f(2) = 7 xor 10 = 13.
        let points: [(u8, &[u8]); 2] = [(1, &[2]), (2, &[13])];
        assert_eq!(interpolate(&points, 0), vec![7]);
        assert_eq!(interpolate(&points, 2), vec![13]);
        assert_eq!(interpolate(&points, 3), vec![7 ^ mul(5, 3)]);
    }
}
