//! Durations as the command line takes them (`250ms`, `30s`, `5` seconds, `2m`, `4h`), for
//! `simulate`'s windows and `serve`'s timeouts alike.

use std::num::ParseFloatError;
use std::time::Duration;

/// A duration flag's value that cannot be read (clap shows it with the flag).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("cannot read the duration {text:?}: write it like 500ms, 30s, 5m or 4h")]
    Number {
        text: String,
        #[source]
        source: ParseFloatError,
    },
    #[error("unknown duration unit {unit:?} in {text:?}: use ms, s, m or h")]
    Unit { unit: String, text: String },
    #[error("the duration {text:?} must be positive and finite")]
    Range { text: String },
    #[error("{text:?}: a timeout must be more than 0")]
    Zero { text: String },
    #[error("{text:?}: write an RFC 3339 time (2026-11-30T08:00:00Z) or a duration ago (24h, 90m)")]
    Time { text: String },
}

/// `250ms`, `30s`, `5m`, `4h`, or a number of seconds; zero allowed.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().map_err(|source| DurationError::Number {
        text: text.to_owned(),
        source,
    })?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(DurationError::Unit {
                unit: other.to_owned(),
                text: text.to_owned(),
            });
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| DurationError::Range {
        text: text.to_owned(),
    })
}

/// A point in time: an RFC 3339 time, or a duration before now (`24h` = a day ago).
pub fn parse_point_in_time(text: &str) -> Result<time::OffsetDateTime, DurationError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(text.trim(), &Rfc3339) {
        return Ok(at);
    }
    let ago = parse_duration(text).map_err(|_| DurationError::Time {
        text: text.trim().to_owned(),
    })?;
    Ok(time::OffsetDateTime::now_utc() - ago)
}

/// A duration that must be more than zero (a timeout of 0 would close every connection).
pub fn parse_timeout(text: &str) -> Result<Duration, DurationError> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(DurationError::Zero {
            text: text.trim().to_owned(),
        });
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(14_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for wrong in ["3 days", "soon", "-1s", "", "1e999"] {
            assert!(parse_duration(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_point_in_time_is_a_time_or_a_duration_ago() {
        let at = parse_point_in_time("2026-11-30T08:00:00Z").unwrap();
        assert_eq!(at.unix_timestamp(), 1_796_025_600);
        let day_ago = parse_point_in_time("24h").unwrap();
        let expected = time::OffsetDateTime::now_utc() - Duration::from_secs(86_400);
        assert!((day_ago - expected).abs() < time::Duration::seconds(5));
        assert!(matches!(
            parse_point_in_time("yesterday"),
            Err(DurationError::Time { .. })
        ));
    }

    #[test]
    fn a_timeout_is_more_than_zero() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        for wrong in ["0", "0s", "0ms"] {
            assert!(
                matches!(parse_timeout(wrong), Err(DurationError::Zero { .. })),
                "{wrong}"
            );
        }
    }
}
