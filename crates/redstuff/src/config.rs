//! Parameters of the code for `n` shards: fault bound, source symbol counts, symbol sizes.

use crate::error::ConfigError;

/// The smallest shard count the code is defined for (`f = 1`).
pub const MIN_SHARDS: u16 = 4;
/// Largest symbol size: the code works on 16-bit words, and sizes are stored as `u16`.
pub const MAX_SYMBOL_SIZE: u16 = 65534;
/// The encoding type byte of RS2, the only one Morsa writes.
pub const ENCODING_TYPE_RS2: u8 = 1;

/// The code for a system of `n` shards: `f = ⌊(n−1)/3⌋`, `kp = n − 2f`, `ks = n − f`.
///
/// ```
/// let config = redstuff::EncodingConfig::new(1000).unwrap();
/// assert_eq!((config.f(), config.kp(), config.ks()), (333, 334, 667));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodingConfig {
    n: u16,
}

impl EncodingConfig {
    /// The code for `n_shards` shards; `n_shards` must be at least 4.
    pub fn new(n_shards: u16) -> Result<Self, ConfigError> {
        if n_shards < MIN_SHARDS {
            return Err(ConfigError::TooFewShards(n_shards));
        }
        Ok(Self { n: n_shards })
    }

    /// Number of shards `n` (and of sliver pairs of every blob).
    pub fn n_shards(&self) -> usize {
        usize::from(self.n)
    }

    /// Maximum number of faulty shards tolerated, `f = ⌊(n−1)/3⌋`.
    pub fn f(&self) -> usize {
        (self.n_shards() - 1) / 3
    }

    /// Primary source symbols `kp = n − 2f`: rows of the message matrix, symbols of a
    /// secondary sliver, and how many primary slivers decode a blob.
    pub fn kp(&self) -> usize {
        self.n_shards() - 2 * self.f()
    }

    /// Secondary source symbols `ks = n − f`: columns of the message matrix and symbols of a
    /// primary sliver.
    pub fn ks(&self) -> usize {
        self.n_shards() - self.f()
    }

    /// Source symbols of one blob, `kp · ks`.
    pub fn source_symbols(&self) -> usize {
        self.kp() * self.ks()
    }

    /// Largest blob this code can hold: `kp · ks · 65534` bytes.
    pub fn max_blob_size(&self) -> u64 {
        to_u64(self.source_symbols()) * u64::from(MAX_SYMBOL_SIZE)
    }

    /// Symbol size for a blob of `blob_len` bytes: `⌈max(L,1) / (kp·ks)⌉` rounded up to even.
    pub fn symbol_size(&self, blob_len: u64) -> Result<u16, ConfigError> {
        let symbols = to_u64(self.source_symbols());
        let size = blob_len.max(1).div_ceil(symbols);
        let even = size + size % 2;
        u16::try_from(even).ok().filter(|size| *size <= MAX_SYMBOL_SIZE).ok_or(ConfigError::BlobTooLarge {
            blob_len,
            max: self.max_blob_size(),
            n_shards: self.n,
        })
    }

    /// Bytes paid for to store a blob of `blob_len` bytes: every shard's sliver pair plus the
    /// metadata each shard keeps, `n · ((kp + ks)·s + 64n + 32)`.
    pub fn encoded_size(&self, blob_len: u64) -> Result<u64, ConfigError> {
        let symbol_size = u64::from(self.symbol_size(blob_len)?);
        let n = to_u64(self.n_shards());
        let pair = to_u64(self.kp() + self.ks()) * symbol_size;
        Ok(n * (pair + 64 * n + 32))
    }

    /// Length in bytes of a primary sliver (`ks` symbols) for `symbol_size`.
    pub fn primary_sliver_len(&self, symbol_size: u16) -> usize {
        self.ks() * usize::from(symbol_size)
    }

    /// Length in bytes of a secondary sliver (`kp` symbols) for `symbol_size`.
    pub fn secondary_sliver_len(&self, symbol_size: u16) -> usize {
        self.kp() * usize::from(symbol_size)
    }

    /// Checks a symbol size read from untrusted input: non-zero, even and at most 65534.
    pub fn check_symbol_size(symbol_size: u16) -> Result<(), ConfigError> {
        if symbol_size == 0 || symbol_size % 2 == 1 || symbol_size > MAX_SYMBOL_SIZE {
            return Err(ConfigError::BadSymbolSize(symbol_size));
        }
        Ok(())
    }
}

pub(crate) fn to_u64(value: usize) -> u64 {
    u64::try_from(value).expect("usize fits in u64 on every supported target")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_follow_the_spec_table() {
        let table = [
            (4, 1, 2, 3),
            (7, 2, 3, 5),
            (10, 3, 4, 7),
            (13, 4, 5, 9),
            (31, 10, 11, 21),
            (100, 33, 34, 67),
            (301, 100, 101, 201),
            (1000, 333, 334, 667),
        ];
        for (n, f, kp, ks) in table {
            let config = EncodingConfig::new(n).expect("valid n");
            assert_eq!((config.f(), config.kp(), config.ks()), (f, kp, ks), "n = {n}");
        }
    }

    #[test]
    fn too_few_shards_is_an_error() {
        for n in 0..4 {
            assert_eq!(EncodingConfig::new(n), Err(ConfigError::TooFewShards(n)));
        }
    }

    #[test]
    fn symbol_sizes_round_up_to_even() {
        let config = EncodingConfig::new(10).expect("valid n"); // kp·ks = 28
        let table = [(0, 2), (1, 2), (28, 2), (29, 2), (56, 2), (57, 4), (33, 2), (85, 4)];
        for (len, size) in table {
            assert_eq!(config.symbol_size(len), Ok(size), "L = {len}");
        }
        let big = EncodingConfig::new(1000).expect("valid n");
        assert_eq!(big.symbol_size(256 << 20), Ok(1206));
        assert_eq!(big.symbol_size(1024), Ok(2));
    }

    #[test]
    fn largest_blob_is_accepted_and_one_more_byte_is_not() {
        let config = EncodingConfig::new(1000).expect("valid n");
        let max = config.max_blob_size();
        assert_eq!(max, 334 * 667 * 65534);
        assert_eq!(config.symbol_size(max), Ok(MAX_SYMBOL_SIZE));
        assert!(matches!(config.symbol_size(max + 1), Err(ConfigError::BlobTooLarge { .. })));
    }

    #[test]
    fn encoded_sizes() {
        let config = EncodingConfig::new(10).expect("valid n");
        // n·((kp+ks)·s + 64n + 32) = 10·(11·2 + 640 + 32)
        assert_eq!(config.encoded_size(33), Ok(6940));
        let big = EncodingConfig::new(1000).expect("valid n");
        assert_eq!(big.encoded_size(1024), Ok(1000 * (1001 * 2 + 64_000 + 32)));
    }

    #[test]
    fn symbol_size_checks() {
        assert!(EncodingConfig::check_symbol_size(2).is_ok());
        assert!(EncodingConfig::check_symbol_size(65534).is_ok());
        for bad in [0, 1, 3, 65535] {
            assert_eq!(EncodingConfig::check_symbol_size(bad), Err(ConfigError::BadSymbolSize(bad)));
        }
    }
}
