//! The wall clock, as the protocol counts time: milliseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock is set before 1970, `u64::MAX` past the
/// year 584 million.
pub fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2026_and_does_not_go_back() {
        // 2026-01-01T00:00:00Z: a clock that reads earlier is broken, not early.
        let first = now_ms();
        assert!(first >= 1_767_225_600_000, "{first}");
        assert!(now_ms() >= first);
    }
}
