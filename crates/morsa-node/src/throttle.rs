//! A token bucket of bytes per second, for background repair's downloads and the scrubber's
//! reads. A request larger than the bucket goes through and leaves a debt that later requests
//! wait out, so the average rate holds whatever the request sizes.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bytes per second, with a burst of one second's worth.
#[derive(Debug)]
pub struct Throttle {
    rate: u64,
    /// Bytes that may go now (negative: a debt), and when that was computed.
    state: Mutex<(i128, Instant)>,
}

impl Throttle {
    /// A throttle of `rate` bytes per second; 0 means no limit.
    pub fn new(rate: u64) -> Self {
        Self { rate, state: Mutex::new((0, Instant::now())) }
    }

    /// How long to wait before `bytes` may go, counting them as gone.
    pub fn reserve(&self, bytes: u64) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        const NANOS: i128 = 1_000_000_000;
        let (rate, bytes) = (i128::from(self.rate), i128::from(bytes));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (available, since) = *state;
        let elapsed = i128::try_from(now.duration_since(since).as_nanos()).unwrap_or(i128::MAX / 2);
        let refill = elapsed.saturating_mul(rate) / NANOS;
        let available = available.saturating_add(refill).min(rate);
        let left = available - bytes;
        *state = (left, now);
        if left >= 0 {
            return Duration::ZERO;
        }
        let nanos = (-left).saturating_mul(NANOS) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Waits until `bytes` may go.
    pub async fn take(&self, bytes: u64) {
        let wait = self.reserve(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debt_is_waited_out_at_the_rate() {
        let throttle = Throttle::new(1000);
        // Starts empty: 500 bytes wait half a second.
        let wait = throttle.reserve(500);
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        // The debt adds up.
        let wait = throttle.reserve(1000);
        assert!(wait > Duration::from_millis(1400), "{wait:?}");
        assert_eq!(Throttle::new(0).reserve(u64::MAX), Duration::ZERO);
    }
}
