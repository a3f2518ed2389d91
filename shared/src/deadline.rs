//! Lambda's deadline for an invocation, as an [`Instant`] the cores can compare with.
//!
//! The Runtime API gives it as wall-clock milliseconds since the epoch. A value further in the
//! past than any invocation can last (Lambda's 15-minute maximum timeout) is not a deadline
//! Lambda gave: cargo-lambda's emulator, for one, sends a constant 600000 (ten minutes after
//! 1970). Such a value is treated as absent, so that the function falls back to its own budget
//! instead of failing every invocation as out of time.

use std::time::{Duration, Instant, SystemTime};

/// The longest a Lambda invocation can run.
pub const LAMBDA_MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The instant matching `deadline`, or `None` when it cannot be a real deadline.
pub fn lambda_deadline(deadline: SystemTime, received: Instant) -> Option<Instant> {
    let now = SystemTime::now();
    match deadline.duration_since(now) {
        Ok(left) => Some(received + left),
        Err(past) if past.duration() <= LAMBDA_MAX_TIMEOUT => Some(received),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_ahead_is_the_time_left() {
        let received = Instant::now();
        let at = lambda_deadline(SystemTime::now() + Duration::from_secs(10), received).unwrap();
        let left = at - received;
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
    }

    #[test]
    fn a_deadline_just_passed_means_no_time_left() {
        let received = Instant::now();
        let at = lambda_deadline(SystemTime::now() - Duration::from_secs(10), received);
        assert_eq!(at, Some(received));
    }

    #[test]
    fn a_deadline_decades_ago_is_no_deadline() {
        let emulator = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(lambda_deadline(emulator, Instant::now()), None);
    }
}
