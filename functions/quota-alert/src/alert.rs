//! The alert a threshold crossing sends.

use serde::{Deserialize, Serialize};

/// One threshold crossing: what, how close, and when the limit will be hit at the current rate.
/// This is the JSON body of the SNS message and of each `alerts.jsonl` line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The quota's name.
    pub quota: String,
    /// What it counts (`messages`, `segments`, …).
    pub counts: String,
    /// `hour`, `day`, `month` or `rolling-24h`.
    pub window: String,
    /// The account the quota is restricted to, if any.
    pub account: Option<String>,
    /// The threshold crossed, as a fraction of the limit (0.8).
    pub threshold: f64,
    /// Use when the threshold was crossed, and the limit.
    pub used: f64,
    pub limit: f64,
    /// `used / limit`, in percent.
    pub utilization_percent: f64,
    /// The window, RFC 3339 UTC (`window_end` is null for a rolling window).
    pub window_start: String,
    pub window_end: Option<String>,
    /// When the limit will be hit at the window's average rate so far; null if not before the
    /// window ends (rolling: within 24 hours); the crossing time once it is reached.
    pub forecast_exhausted_at: Option<String>,
    /// The event that crossed the threshold, and its time.
    pub event_id: String,
    pub event_time: String,
    /// One human-readable sentence.
    pub summary: String,
}

impl Alert {
    /// A short subject line (SNS allows 100 characters).
    pub fn subject(&self) -> String {
        let subject = format!(
            "Twilio quota {} at {}% ({} of {})",
            self.quota,
            percent(self.utilization_percent),
            number(self.used),
            number(self.limit)
        );
        subject.chars().take(100).collect()
    }
}

/// A number as people write it: no trailing `.0`, at most two decimals.
pub(crate) fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

pub(crate) fn percent(v: f64) -> String {
    number((v * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_plainly() {
        assert_eq!(number(800.0), "800");
        assert_eq!(number(12.345), "12.35");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(percent(66.666), "66.7");
    }
}
