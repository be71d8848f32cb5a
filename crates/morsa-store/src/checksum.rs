//! CRC-32C (Castagnoli), the checksum stored beside every record.
//!
//! redb checksums its pages, but verifies them only when it repairs a file after a crash or when
//! asked to check the whole file; an ordinary read trusts the page. So every record also carries
//! this checksum, computed over its key and its bytes, and every read checks it. A record whose
//! bytes rotted, or that sits under the wrong key, is reported instead of returned.
//!
//! Computed with the `crc32c` crate, which uses the CPU's CRC32 instruction where there is
//! one (SSE 4.2, ARMv8): several GB/s, so checking every sliver read and write costs little
//! beside redb and the network.

/// An incremental CRC-32C: feed it byte slices with [`Crc32c::update`], read it with
/// [`Crc32c::finish`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Crc32c(u32);

impl Crc32c {
    /// A CRC over no bytes yet.
    pub(crate) fn new() -> Self {
        Self(0)
    }

    /// Feeds `bytes` into the CRC.
    pub(crate) fn update(self, bytes: &[u8]) -> Self {
        Self(crc32c::crc32c_append(self.0, bytes))
    }

    /// The CRC of every byte fed so far.
    pub(crate) fn finish(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32c;

    #[test]
    fn matches_the_published_check_values() {
        // The "check" value of CRC-32C (RFC 3720, appendix B.4 and the CRC catalogue).
        assert_eq!(Crc32c::new().update(b"123456789").finish(), 0xE306_9283);
        assert_eq!(Crc32c::new().update(&[0; 32]).finish(), 0x8A91_36AA);
        assert_eq!(Crc32c::new().update(&[0xFF; 32]).finish(), 0x62A8_AB43);
        assert_eq!(Crc32c::new().finish(), 0);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let bytes: Vec<u8> = (0..=255).collect();
        let one_shot = Crc32c::new().update(&bytes).finish();
        let split = Crc32c::new().update(&bytes[..100]).update(&bytes[100..]).finish();
        assert_eq!(one_shot, split);
    }

    #[test]
    fn detects_a_flipped_bit() {
        let mut bytes = b"morsa command log".to_vec();
        let before = Crc32c::new().update(&bytes).finish();
        bytes[5] ^= 0x10;
        assert_ne!(Crc32c::new().update(&bytes).finish(), before);
    }
}
