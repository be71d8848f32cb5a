//! The RS1024 checksum of SLIP-39: a Reed–Solomon code over GF(1024) (three 10-bit words,
//! detects any three wrong words), computed over a customization string and the data words.

/// The generator constants of the checksum, from the SLIP-39 specification.
const GENERATOR: [u32; 10] = [
    0x00e0_e040,
    0x01c1_c080,
    0x0383_8100,
    0x0707_0200,
    0x0e0e_0009,
    0x1c0c_2412,
    0x3808_6c24,
    0x3090_fc48,
    0x21b1_f890,
    0x03f3_f120,
];

/// Words a checksum takes.
pub const CHECKSUM_WORDS: usize = 3;

fn polymod(values: impl Iterator<Item = u16>) -> u32 {
    let mut checksum: u32 = 1;
    for value in values {
        let top = checksum >> 20;
        checksum = ((checksum & 0x000f_ffff) << 10) ^ u32::from(value);
        for (bit, generator) in GENERATOR.iter().enumerate() {
            if (top >> bit) & 1 == 1 {
                checksum ^= generator;
            }
        }
    }
    checksum
}

fn with_customization<'a>(customization: &'a str, data: &'a [u16]) -> impl Iterator<Item = u16> + 'a {
    customization.bytes().map(u16::from).chain(data.iter().copied())
}

/// The three checksum words of `data` under `customization`.
pub fn create(customization: &str, data: &[u16]) -> [u16; CHECKSUM_WORDS] {
    let value = polymod(with_customization(customization, data).chain([0; CHECKSUM_WORDS])) ^ 1;
    [20u32, 10, 0].map(|shift| u16::try_from((value >> shift) & 1023).expect("ten bits fit in u16"))
}

/// Whether `words` (data then checksum) carry a valid checksum under `customization`.
pub fn verify(customization: &str, words: &[u16]) -> bool {
    polymod(with_customization(customization, words)) == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_checksum_verifies_and_any_one_changed_word_breaks_it() {
        let data: Vec<u16> = (0..17).map(|i| (i * 97 + 5) % 1024).collect();
        let mut words = data.clone();
        words.extend(create("shamir", &data));
        assert!(verify("shamir", &words));
        assert!(!verify("shamir_extendable", &words));
        for position in 0..words.len() {
            let mut changed = words.clone();
            changed[position] ^= 1;
            assert!(!verify("shamir", &changed), "word {position}");
        }
    }
}
