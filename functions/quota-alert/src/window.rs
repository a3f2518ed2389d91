//! Windows in UTC and the forecast of when a limit will be hit.
//!
//! Calendar windows (hour, day, month) are one counter bucket each, keyed by the window's start.
//! A rolling 24-hour window is 24 hourly buckets: an event adds to its hour's bucket, and use is
//! the sum of that bucket and the 23 before it, so the window slides by whole hours (at most one
//! hour of events too many is counted right after an hour boundary, never too few).

use crate::quotas::WindowKind;
use time::{Date, Month, OffsetDateTime, Time};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Where an event falls: the bucket it adds to and the buckets its quota's use is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpan {
    /// Unix seconds of the bucket the event adds to.
    pub bucket: i64,
    /// First and last bucket (inclusive) whose sum is the window's use.
    pub first_bucket: i64,
    pub last_bucket: i64,
    /// The window's start (for a rolling window, the start of its oldest bucket).
    pub start: i64,
    /// When a calendar window ends; `None` for rolling windows, which never reset.
    pub end: Option<i64>,
}

impl WindowSpan {
    /// The window `kind` around `at` (unix seconds, UTC).
    pub fn at(kind: WindowKind, at: i64) -> Self {
        let floor = |unit: i64| at - at.rem_euclid(unit);
        let calendar = |start: i64, end: i64| Self {
            bucket: start,
            first_bucket: start,
            last_bucket: start,
            start,
            end: Some(end),
        };
        match kind {
            WindowKind::Hour => calendar(floor(HOUR), floor(HOUR) + HOUR),
            WindowKind::Day => calendar(floor(DAY), floor(DAY) + DAY),
            WindowKind::Month => {
                let (start, end) = month_bounds(at);
                calendar(start, end)
            }
            WindowKind::Rolling24h => {
                let hour = floor(HOUR);
                Self {
                    bucket: hour,
                    first_bucket: hour - 23 * HOUR,
                    last_bucket: hour,
                    start: hour - 23 * HOUR,
                    end: None,
                }
            }
        }
    }

    /// When a bucket can be forgotten: a while after the last window that reads it has ended.
    pub fn bucket_expiry(&self) -> i64 {
        self.end.unwrap_or(self.bucket + DAY) + 35 * DAY
    }
}

/// Start and end (unix seconds) of the UTC calendar month holding `at`.
fn month_bounds(at: i64) -> (i64, i64) {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(at) else {
        // Out of `time`'s range: fall back to a 31-day block rather than fail an event.
        let start = at - at.rem_euclid(31 * DAY);
        return (start, start + 31 * DAY);
    };
    let (year, month) = (t.year(), t.month());
    let first = |y: i32, m: Month| {
        Date::from_calendar_date(y, m, 1)
            .map(|d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
    };
    let next = if month == Month::December {
        first(year + 1, Month::January)
    } else {
        first(year, month.next())
    };
    match (first(year, month), next) {
        (Ok(start), Ok(end)) => (start, end),
        _ => {
            let start = at - at.rem_euclid(31 * DAY);
            (start, start + 31 * DAY)
        }
    }
}

/// When `limit` will be reached if use keeps growing at its average rate since the window
/// began: `now` if it already is, `None` if not before the window ends (or, for a rolling
/// window, not within the next 24 hours), or if there is no growth to extrapolate.
pub fn forecast_exhausted_at(used: f64, limit: f64, span: &WindowSpan, now: i64) -> Option<i64> {
    if used >= limit {
        return Some(now);
    }
    if used <= 0.0 {
        return None;
    }
    // At least a minute of history, so the first events of a window do not extrapolate wildly.
    let elapsed = (now - span.start).max(60) as f64;
    let rate = used / elapsed;
    let remaining = (limit - used) / rate;
    let at = now.saturating_add(remaining.ceil().min(i64::MAX as f64 / 2.0) as i64);
    let horizon = span.end.unwrap_or(now + DAY);
    (at <= horizon).then_some(at)
}

/// RFC 3339 for unix seconds (UTC), as alerts print times.
pub fn rfc3339(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ts(t: OffsetDateTime) -> i64 {
        t.unix_timestamp()
    }

    #[test]
    fn calendar_windows_roll_over_at_utc_boundaries() {
        // GIVEN the last second of a UTC day and the first of the next
        let before = ts(datetime!(2026-03-31 23:59:59 UTC));
        let after = ts(datetime!(2026-04-01 00:00:00 UTC));
        // WHEN their windows are computed THEN they fall in different days, hours and months
        for kind in [WindowKind::Hour, WindowKind::Day, WindowKind::Month] {
            let (a, b) = (WindowSpan::at(kind, before), WindowSpan::at(kind, after));
            assert_ne!(a.bucket, b.bucket, "{kind}");
            assert_eq!(
                a.end,
                Some(b.start),
                "{kind}: one window ends where the next starts"
            );
        }
        assert_eq!(
            WindowSpan::at(WindowKind::Day, before).start,
            ts(datetime!(2026-03-31 00:00 UTC))
        );
        assert_eq!(
            WindowSpan::at(WindowKind::Month, before).start,
            ts(datetime!(2026-03-01 00:00 UTC))
        );
        // A time with a local offset is the same instant: windows are UTC whatever the zone.
        let offset = ts(datetime!(2026-04-01 01:30:00 +02:00));
        assert_eq!(
            WindowSpan::at(WindowKind::Day, offset).start,
            ts(datetime!(2026-03-31 00:00 UTC))
        );
        // December rolls into January of the next year.
        let dec = WindowSpan::at(WindowKind::Month, ts(datetime!(2026-12-15 12:00 UTC)));
        assert_eq!(dec.end, Some(ts(datetime!(2027-01-01 00:00 UTC))));
    }

    #[test]
    fn a_rolling_window_is_the_last_24_hourly_buckets() {
        let at = ts(datetime!(2026-03-10 05:17:00 UTC));
        let span = WindowSpan::at(WindowKind::Rolling24h, at);
        assert_eq!(span.bucket, ts(datetime!(2026-03-10 05:00 UTC)));
        assert_eq!(span.first_bucket, ts(datetime!(2026-03-09 06:00 UTC)));
        assert_eq!((span.last_bucket - span.first_bucket) / HOUR + 1, 24);
        assert_eq!(span.end, None);
    }

    #[test]
    fn the_forecast_extrapolates_the_average_rate() {
        // GIVEN 400 of 800 used six hours into a UTC day
        let span = WindowSpan::at(WindowKind::Day, ts(datetime!(2026-03-10 00:00 UTC)));
        let now = ts(datetime!(2026-03-10 06:00 UTC));
        // THEN at the same rate the limit is hit six hours later
        assert_eq!(
            forecast_exhausted_at(400.0, 800.0, &span, now),
            Some(ts(datetime!(2026-03-10 12:00 UTC)))
        );
        // AND at a quarter of that use, not before the day ends
        assert_eq!(forecast_exhausted_at(100.0, 800.0, &span, now), None);
        // AND a limit already reached is exhausted now
        assert_eq!(forecast_exhausted_at(800.0, 800.0, &span, now), Some(now));
        assert_eq!(forecast_exhausted_at(0.0, 800.0, &span, now), None);
    }

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(
            rfc3339(ts(datetime!(2026-03-10 06:00 UTC))),
            "2026-03-10T06:00:00Z"
        );
    }
}
