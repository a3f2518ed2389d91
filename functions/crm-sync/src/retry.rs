//! Backoff between CRM attempts: exponential with full jitter, or what Retry-After asks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// A cheap, good-enough random number for jitter (xorshift over a shared counter).
fn random() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let mut x = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The wait before attempt `attempt + 1`: Retry-After when the CRM said, else a random wait in
/// `[base, min(max, base * 2^attempt)]`.
pub(crate) fn backoff(
    attempt: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(wait) = retry_after {
        return wait;
    }
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    let span = ceiling.saturating_sub(base).as_millis() as u64;
    base + Duration::from_millis(if span == 0 { 0 } else { random() % (span + 1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds_and_honours_retry_after() {
        let (base, max) = (Duration::from_millis(10), Duration::from_millis(200));
        for attempt in 0..10 {
            let wait = backoff(attempt, base, max, None);
            assert!(wait >= base && wait <= max, "{attempt}: {wait:?}");
        }
        assert_eq!(
            backoff(0, base, max, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
