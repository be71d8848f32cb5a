//! What a user notices of a restore: the time to its first byte and its throughput, measured
//! where the bytes are written (so a chunked file's first byte comes with its first chunk,
//! long before the last one).

use std::io::Write;
use std::time::Instant;

use serde::Serialize;

/// A writer that notes when the first byte went through it and how many did.
pub struct Timed<W> {
    inner: W,
    started: Instant,
    first_byte: Option<Instant>,
    bytes: u64,
}

/// A finished restore's timing.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RestoreTiming {
    /// Bytes written.
    pub bytes: u64,
    /// Seconds from the start of the restore to its first byte (none if it wrote nothing).
    pub ttfb_seconds: Option<f64>,
    /// Seconds the whole restore took.
    pub seconds: f64,
    /// Bytes written per second of the whole restore.
    pub bytes_per_second: f64,
}

impl<W> Timed<W> {
    /// Times writes to `inner` from `started`, the moment the restore began.
    pub fn new(inner: W, started: Instant) -> Self {
        Self { inner, started, first_byte: None, bytes: 0 }
    }

    /// The timing up to now: call it once the restore is complete.
    pub fn timing(&self) -> RestoreTiming {
        let seconds = self.started.elapsed().as_secs_f64();
        RestoreTiming {
            bytes: self.bytes,
            ttfb_seconds: self.first_byte.map(|first| first.duration_since(self.started).as_secs_f64()),
            seconds,
            bytes_per_second: morsa_core::convert::lossy_f64(self.bytes) / seconds.max(1e-9),
        }
    }

    /// The writer, for what was written to it.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Timed<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        if written > 0 && self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
        self.bytes += morsa_core::convert::saturating_u64(written);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_comes_no_later_than_the_end_and_every_byte_is_counted() {
        let started = Instant::now();
        let mut timed = Timed::new(Vec::new(), started);
        assert_eq!(timed.timing().ttfb_seconds, None, "nothing written, no first byte");
        timed.write_all(b"").unwrap();
        assert_eq!(timed.timing().ttfb_seconds, None, "an empty write is not a first byte");
        timed.write_all(b"abc").unwrap();
        timed.write_all(&[7; 1000]).unwrap();
        let timing = timed.timing();
        assert_eq!(timing.bytes, 1003);
        assert!(timing.ttfb_seconds.unwrap() <= timing.seconds);
        assert!(timing.bytes_per_second > 0.0);
        assert_eq!(timed.into_inner().len(), 1003);
    }
}
