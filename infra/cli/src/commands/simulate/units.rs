//! `simulate`'s rates, durations and shares, as written on the command line.

use super::super::duration::DurationError;
use std::num::ParseFloatError;
use std::time::Duration;

/// A rate, duration or share that cannot be read (clap shows it with the flag).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("unknown rate unit {unit:?}: use N/s, N/m or N/h")]
    RateUnit { unit: String },
    #[error("cannot read the rate {text:?}: write it like 500/s, or max")]
    Rate {
        text: String,
        #[source]
        source: ParseFloatError,
    },
    #[error("the rate {text:?} must be a positive number")]
    RateRange { text: String },
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("{text:?}: write a share between 0 and 1, like 0.05")]
    Share {
        text: String,
        #[source]
        source: ParseFloatError,
    },
    #[error("{text}: a share is between 0 and 1 (0.05 = 5%)")]
    ShareRange { text: String },
}

/// `500/s`, `30000/m`, `500`; `max` (or 0) for as fast as the endpoint answers.
pub fn parse_rate(text: &str) -> Result<Option<f64>, ValueError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    let (number, per) = match text.split_once('/') {
        Some((n, unit)) => (
            n,
            match unit.trim() {
                "s" | "sec" | "second" => 1.0,
                "m" | "min" | "minute" => 60.0,
                "h" | "hour" => 3600.0,
                other => {
                    return Err(ValueError::RateUnit {
                        unit: other.to_owned(),
                    });
                }
            },
        ),
        None => (text, 1.0),
    };
    let n: f64 = number.trim().parse().map_err(|source| ValueError::Rate {
        text: text.to_owned(),
        source,
    })?;
    if !n.is_finite() || n < 0.0 {
        return Err(ValueError::RateRange {
            text: text.to_owned(),
        });
    }
    Ok((n > 0.0).then_some(n / per))
}

/// `250ms`, `30s`, `5m`, `4h`, or a number of seconds (see [`super::super::duration`]).
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    Ok(super::super::duration::parse_duration(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_as_written() {
        assert_eq!(parse_rate("500/s"), Ok(Some(500.0)));
        assert_eq!(parse_rate("600/m"), Ok(Some(10.0)));
        assert_eq!(parse_rate("42"), Ok(Some(42.0)));
        assert_eq!(parse_rate("max"), Ok(None));
        assert_eq!(parse_rate("0"), Ok(None));
        assert!(parse_rate("fast").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(14_400)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 days").is_err());
    }
}
