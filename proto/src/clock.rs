//! The wall clock as the wire carries it: Unix milliseconds (`time_ms` fields) and microseconds
//! (the clock probes' `t1_us`..`t3_us`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds (0 before 1970, which no sane host reports).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Now, in Unix microseconds (0 before 1970).
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn milliseconds_and_microseconds_agree() {
        let ms = super::now_ms();
        let us = super::now_us();
        assert!(ms > 1_600_000_000_000, "{ms}");
        assert!((us / 1000 - ms).abs() < 1000, "{us} vs {ms}");
    }
}
