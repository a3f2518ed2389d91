//! `simulate`'s rates and durations, as written on the command line.

use std::time::Duration;

/// `500/s`, `30000/m`, `500`; `max` (or 0) for as fast as the endpoint answers.
pub fn parse_rate(text: &str) -> Result<Option<f64>, String> {
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
                other => return Err(format!("unknown rate unit {other:?}: use N/s, N/m or N/h")),
            },
        ),
        None => (text, 1.0),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("cannot read the rate {text:?}: write it like 500/s, or max"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("the rate {text:?} must be a positive number"));
    }
    Ok((n > 0.0).then_some(n / per))
}

/// `250ms`, `30s`, `5m`, `4h`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("cannot read the duration {text:?}: write it like 30s, 5m or 4h"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("the duration {text:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
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
