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
        Self::starting_at(rate, Instant::now())
    }

    /// A throttle whose bucket is empty at `start` (tests drive time by hand with it).
    fn starting_at(rate: u64, start: Instant) -> Self {
        Self { rate, state: Mutex::new((0, start)) }
    }

    /// How long to wait before `bytes` may go, counting them as gone.
    pub fn reserve(&self, bytes: u64) -> Duration {
        self.reserve_at(bytes, Instant::now())
    }

    /// [`Throttle::reserve`] with the clock read by the caller.
    fn reserve_at(&self, bytes: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        const NANOS: i128 = 1_000_000_000;
        let (rate, bytes) = (i128::from(self.rate), i128::from(bytes));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
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

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_debt_is_waited_out_at_the_rate() {
        let start = Instant::now();
        let throttle = Throttle::starting_at(1000, start);
        // Starts empty: 500 bytes wait half a second.
        assert_eq!(throttle.reserve_at(500, start), 500 * MS);
        // The debt adds up: 1000 more bytes at once wait 1.5 s in all.
        assert_eq!(throttle.reserve_at(1000, start), 1500 * MS);
        // Once the debt is waited out, the bucket is empty, not in credit.
        assert_eq!(throttle.reserve_at(0, start + 1500 * MS), Duration::ZERO);
        assert_eq!(throttle.reserve_at(1, start + 1500 * MS), MS);
        // Time that passes pays the debt back at the rate, part of it too.
        assert_eq!(throttle.reserve_at(250, start + 1751 * MS), Duration::ZERO);
        assert_eq!(Throttle::new(0).reserve(u64::MAX), Duration::ZERO);
    }

    #[test]
    fn an_idle_throttle_saves_up_one_seconds_worth_only() {
        let start = Instant::now();
        let throttle = Throttle::starting_at(1000, start);
        // Ten idle seconds: a burst of 1000 bytes goes at once, the next byte waits.
        let later = start + 10_000 * MS;
        assert_eq!(throttle.reserve_at(1000, later), Duration::ZERO);
        assert_eq!(throttle.reserve_at(1, later), MS);
    }

    #[test]
    fn a_greedy_consumer_gets_exactly_the_rate_whatever_its_request_sizes() {
        // Requests of mixed sizes (some larger than the bucket), each sent as soon as the throttle
        // allows: the bytes sent by any moment never exceed the rate times the time since the
        // start, and the whole run takes exactly bytes / rate (1 µs a byte: no rounding).
        const RATE: u64 = 1_000_000;
        let start = Instant::now();
        let throttle = Throttle::starting_at(RATE, start);
        let sizes = [100u64, 1_500_000, 1, 999_999, 0, 3_000_000, 333, 1_000_000, 20, 7];
        let mut now = start;
        let mut sent = 0u64;
        for bytes in sizes {
            let wait = throttle.reserve_at(bytes, now);
            now += wait;
            sent += bytes;
            // Bytes sent by `now` (this request counted as gone) are all paid for by `now`.
            let elapsed = now.duration_since(start).as_nanos();
            let paid_for = u128::from(RATE) * elapsed / 1_000_000_000;
            assert!(u128::from(sent) <= paid_for, "{sent} bytes sent after {elapsed} ns at {RATE} B/s");
        }
        let total: u64 = sizes.iter().sum();
        assert_eq!(now.duration_since(start), Duration::from_micros(total));
    }
}
