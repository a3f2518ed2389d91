//! The alert a threshold crossing sends, and where it goes.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Mutex;

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

/// Publishing failed; the alert's claim is released and the record retried.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not publish the alert for quota {quota}: {detail} (it will be retried; if this persists, check ALERT_TOPIC_ARN and the function's sns:Publish permission)"
)]
pub struct PublishError {
    pub quota: String,
    pub detail: String,
}

/// Where alerts go: SNS in AWS, stderr and `alerts.jsonl` locally.
pub trait AlertPublisher: Send + Sync {
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Keeps alerts in memory, for tests; can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    alerts: Mutex<Vec<Alert>>,
    failures_left: Mutex<u32>,
}

impl MemoryPublisher {
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// The next `n` publishes fail.
    pub fn fail_next(&self, n: u32) {
        if let Ok(mut f) = self.failures_left.lock() {
            *f = n;
        }
    }
}

impl AlertPublisher for MemoryPublisher {
    async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let fail = match self.failures_left.lock() {
            Ok(mut left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        if fail {
            return Err(PublishError {
                quota: alert.quota.clone(),
                detail: "injected failure".into(),
            });
        }
        self.alerts
            .lock()
            .map_err(|_| PublishError {
                quota: alert.quota.clone(),
                detail: "lock poisoned".into(),
            })?
            .push(alert.clone());
        Ok(())
    }
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
