//! One SLIP-39 share and its mnemonic: the 40 bits of parameters, the padded share value
//! and the RS1024 checksum, cut into 10-bit words.

use super::{ShareError, rs1024, wordlist};

/// Words of the parameters: identifier, extendable flag, iteration exponent, group index,
/// group threshold, group count, member index, member threshold (40 bits).
const PARAMETER_WORDS: usize = 4;

/// The shortest mnemonic: parameters, a 128-bit value (13 words) and the checksum.
pub const MIN_WORDS: usize = PARAMETER_WORDS + 13 + rs1024::CHECKSUM_WORDS;

/// One share, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Random identifier shared by all shares of one split (15 bits).
    pub identifier: u16,
    /// Whether the identifier is left out of the passphrase encryption's salt.
    pub extendable: bool,
    /// PBKDF2 runs `2500 << exponent` iterations per round (4 bits).
    pub exponent: u8,
    /// The x value of the group share (0–15).
    pub group_index: u8,
    /// Groups needed (1–16).
    pub group_threshold: u8,
    /// Groups made (1–16).
    pub group_count: u8,
    /// The x value of the member share within its group (0–15).
    pub member_index: u8,
    /// Members of the group needed (1–16).
    pub member_threshold: u8,
    /// The share value.
    pub value: Vec<u8>,
}

fn customization(extendable: bool) -> &'static str {
    match extendable {
        true => "shamir_extendable",
        false => "shamir",
    }
}

/// A big-endian bit string that is read or written ten bits at a time.
#[derive(Default)]
struct Bits {
    bits: Vec<bool>,
}

impl Bits {
    fn push(&mut self, value: u64, width: usize) {
        self.bits.extend((0..width).rev().map(|bit| (value >> bit) & 1 == 1));
    }

    fn words(&self) -> Vec<u16> {
        self.bits
            .chunks(10)
            .map(|chunk| chunk.iter().fold(0u16, |word, bit| (word << 1) | u16::from(*bit)))
            .collect()
    }
}

impl Share {
    /// The share's mnemonic: its words separated by spaces.
    pub fn to_mnemonic(&self) -> String {
        let mut bits = Bits::default();
        bits.push(u64::from(self.identifier), 15);
        bits.push(u64::from(self.extendable), 1);
        bits.push(u64::from(self.exponent), 4);
        bits.push(u64::from(self.group_index), 4);
        bits.push(u64::from(self.group_threshold - 1), 4);
        bits.push(u64::from(self.group_count - 1), 4);
        bits.push(u64::from(self.member_index), 4);
        bits.push(u64::from(self.member_threshold - 1), 4);
        let value_bits = self.value.len() * 8;
        bits.push(0, value_bits.div_ceil(10) * 10 - value_bits);
        for byte in &self.value {
            bits.push(u64::from(*byte), 8);
        }
        let mut words = bits.words();
        words.extend(rs1024::create(customization(self.extendable), &words));
        words.iter().map(|index| wordlist::word(*index)).collect::<Vec<_>>().join(" ")
    }

    /// Decodes a mnemonic, checking its words, length, checksum and padding. `number` (from
    /// 1) names the share in errors.
    pub fn from_mnemonic(mnemonic: &str, number: usize) -> Result<Self, ShareError> {
        let words = mnemonic
            .split_whitespace()
            .enumerate()
            .map(|(position, word)| {
                wordlist::index(word).ok_or_else(|| ShareError::UnknownWord {
                    share: number,
                    position: position + 1,
                    word: word.to_string(),
                })
            })
            .collect::<Result<Vec<u16>, _>>()?;
        if words.len() < MIN_WORDS {
            return Err(ShareError::TooShort { share: number, words: words.len(), min: MIN_WORDS });
        }
        let value_words = words.len() - PARAMETER_WORDS - rs1024::CHECKSUM_WORDS;
        let padding = (value_words * 10) % 16;
        if padding > 8 {
            return Err(ShareError::BadLength { share: number, words: words.len() });
        }
        let extendable = (words[1] >> 4) & 1 == 1;
        if !rs1024::verify(customization(extendable), &words) {
            return Err(ShareError::Checksum { share: number });
        }
        let bits: Vec<bool> = words
            .iter()
            .take(words.len() - rs1024::CHECKSUM_WORDS)
            .flat_map(|word| (0..10).rev().map(move |bit| (word >> bit) & 1 == 1))
            .collect();
        let field = |start: usize, width: usize| {
            bits[start..start + width].iter().fold(0u16, |value, bit| (value << 1) | u16::from(*bit))
        };
        let small = |start: usize| u8::try_from(field(start, 4)).expect("four bits fit in u8");
        let value_bits = &bits[PARAMETER_WORDS * 10..];
        if value_bits[..padding].iter().any(|bit| *bit) {
            return Err(ShareError::Padding { share: number });
        }
        let value = value_bits[padding..]
            .chunks(8)
            .map(|byte| byte.iter().fold(0u8, |value, bit| (value << 1) | u8::from(*bit)))
            .collect();
        Ok(Share {
            identifier: field(0, 15),
            extendable,
            exponent: small(16),
            group_index: small(20),
            group_threshold: small(24) + 1,
            group_count: small(28) + 1,
            member_index: small(32),
            member_threshold: small(36) + 1,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_round_trips_through_its_mnemonic() {
        let share = Share {
            identifier: 0x5a5a,
            extendable: true,
            exponent: 3,
            group_index: 2,
            group_threshold: 2,
            group_count: 4,
            member_index: 9,
            member_threshold: 3,
            value: (0..36).collect(),
        };
        let mnemonic = share.to_mnemonic();
        assert_eq!(mnemonic.split(' ').count(), 4 + 29 + 3);
        assert_eq!(
            Share::from_mnemonic(&mnemonic, 1).unwrap(),
            Share { identifier: 0x5a5a & 0x7fff, ..share }
        );
    }
}
