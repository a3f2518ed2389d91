//! The core: for each record of a batch, which quotas the event counts for, idempotent
//! counting, threshold checks, alerts once per quota, window and threshold, and EMF metrics.

use crate::alert::{Alert, number, percent};
use crate::ports::{
    AlertClaim, AlertClaimOutcome, AlertLedger, AlertLedgerError, AlertPublishError,
    AlertPublisher, CounterError, Increment, Recorded, UsageCounter,
};
use crate::quotas::{Counts, Quota, Quotas};
use crate::window::{WindowSpan, forecast_exhausted_at, rfc3339};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use twilio_events::CloudEvent;
use twilio_events::event::Detail;
use twilio_events::metrics::{Metrics, MetricsSink, NAMESPACE, Unit};
use twilio_events::quarantine::{Quarantine, QuarantineError, QuarantinedItem};
use twilio_events::status::{CallStatus, MessageStatus};
use twilio_events::stream::{BatchOutcome, BatchProcessor, StreamRecord};

/// The service name in logs, metrics and quarantined items.
pub const SERVICE: &str = "quota-alert";

/// How long an event id is remembered at least (Kinesis's default retention is 24 hours and
/// its extended one 7 days; Twilio replays up to 4 hours).
const EVENT_MEMORY_S: i64 = 8 * 86_400;
/// How long an unconfirmed alert claim holds off others.
const CLAIM_LEASE_S: i64 = 120;
const DAY_S: i64 = 86_400;

/// Why a record could not be processed now; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Counter(#[from] CounterError),
    #[error(transparent)]
    AlertLedger(#[from] AlertLedgerError),
    #[error(transparent)]
    AlertPublish(#[from] AlertPublishError),
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
    #[error(
        "another invocation is sending the alert {0} right now; the record is retried after its claim is confirmed or expires"
    )]
    AlertInFlight(String),
}

/// What one event did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventOutcome {
    /// How many quotas the event concerned.
    pub matched: usize,
    pub duplicate: bool,
    pub alerts: Vec<Alert>,
}

/// How an event adds to a quota.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Contribution {
    /// Add this much to the quota's counter.
    Count(f64),
    /// The event reports the level itself, and possibly its own limit.
    Gauge { used: f64, limit: f64 },
}

/// Latest observation of a quota during one invocation, for its EMF document.
#[derive(Clone, Copy, Debug)]
struct Observation {
    used: f64,
    limit: f64,
    window_start: i64,
}

/// The quota-alert stream consumer.
pub struct QuotaAlert<C, A, M, Q> {
    quotas: Vec<Quota>,
    store: C,
    publisher: A,
    metrics: M,
    quarantine: Q,
    /// Alert keys known to be sent, with the event time from which they re-arm: saves a
    /// conditional write per event once a threshold has been crossed.
    sent: Mutex<HashMap<String, i64>>,
    /// Stop starting records this long before the deadline.
    safety_margin: Duration,
    claims: AtomicU64,
}

impl<C, A, M, Q> QuotaAlert<C, A, M, Q>
where
    C: UsageCounter + AlertLedger,
    A: AlertPublisher,
    M: MetricsSink,
    Q: Quarantine,
{
    pub fn new(quotas: Quotas, store: C, publisher: A, metrics: M, quarantine: Q) -> Self {
        Self {
            quotas: quotas.into_vec(),
            store,
            publisher,
            metrics,
            quarantine,
            sent: Mutex::new(HashMap::new()),
            safety_margin: Duration::from_secs(2),
            claims: AtomicU64::new(0),
        }
    }

    /// Stop starting records this long before the deadline (default 2 s).
    pub fn with_safety_margin(mut self, margin: Duration) -> Self {
        self.safety_margin = margin;
        self
    }

    pub fn store(&self) -> &C {
        &self.store
    }

    pub fn publisher(&self) -> &A {
        &self.publisher
    }

    pub fn metrics(&self) -> &M {
        &self.metrics
    }

    pub fn quarantine(&self) -> &Q {
        &self.quarantine
    }

    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    /// Processes one parsed event. `fallback_time` (unix seconds) is used when the event has no
    /// `time` (the record's arrival time, else now).
    pub async fn process_event(
        &self,
        event: &CloudEvent<'_>,
        fallback_time: i64,
    ) -> Result<EventOutcome, ProcessError> {
        let mut observations = HashMap::new();
        self.handle(event, fallback_time, &mut observations).await
    }

    async fn handle(
        &self,
        event: &CloudEvent<'_>,
        fallback_time: i64,
        observations: &mut HashMap<usize, Observation>,
    ) -> Result<EventOutcome, ProcessError> {
        let at = event
            .timestamp()
            .map_or(fallback_time, |t| t.unix_timestamp());
        let matched: Vec<(usize, Contribution, WindowSpan)> = self
            .quotas
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                contribution(q, event).map(|c| (i, c, WindowSpan::at(q.window, at)))
            })
            .collect();
        let mut outcome = EventOutcome {
            matched: matched.len(),
            ..EventOutcome::default()
        };
        if matched.is_empty() {
            return Ok(outcome);
        }

        let increments: Vec<Increment> = matched
            .iter()
            .filter_map(|(i, c, span)| match c {
                Contribution::Count(amount) => Some(Increment {
                    counter: counter_key(&self.quotas[*i]),
                    bucket: span.bucket,
                    amount: *amount,
                    // Never already expired, even for an old event: a store that applies TTL
                    // (DynamoDB, DynamoDB Local) would delete the counter mid-count.
                    expires_at: span
                        .bucket_expiry()
                        .max(crate::ports::wall_clock() + EVENT_MEMORY_S),
                }),
                Contribution::Gauge { .. } => None,
            })
            .collect();
        if !increments.is_empty() {
            let remember_until = matched
                .iter()
                .filter_map(|(_, _, span)| span.end)
                .max()
                .map_or(0, |end| end + DAY_S)
                .max(crate::ports::wall_clock() + EVENT_MEMORY_S);
            // A duplicate adds nothing, but its quotas are still checked below: if the first
            // delivery counted and then failed to publish, the retry sends the alert.
            outcome.duplicate = self
                .store
                .record(&event.id, remember_until, &increments)
                .await?
                == Recorded::Duplicate;
        }

        for (i, contribution, span) in matched {
            let quota = &self.quotas[i];
            if outcome.duplicate
                && matches!(contribution, Contribution::Count(_))
                && quota
                    .thresholds
                    .iter()
                    .all(|&t| self.known_sent(&alert_key(quota, t, &span, at).0, at))
            {
                // A replay after every alert of its window went out: nothing left to do.
                continue;
            }
            let (used, limit) = match contribution {
                Contribution::Count(_) => (
                    self.store
                        .usage(&counter_key(quota), span.first_bucket, span.last_bucket)
                        .await?,
                    quota.limit.unwrap_or(f64::INFINITY),
                ),
                Contribution::Gauge { used, limit } => (used, quota.limit.unwrap_or(limit)),
            };
            if !(limit.is_finite() && limit > 0.0) {
                continue;
            }
            observations.insert(
                i,
                Observation {
                    used,
                    limit,
                    window_start: span.start,
                },
            );
            for &threshold in &quota.thresholds {
                if used + 1e-9 < threshold * limit {
                    break;
                }
                if let Some(alert) = self
                    .alert_once(quota, threshold, used, limit, &span, at, &event.id)
                    .await?
                {
                    outcome.alerts.push(alert);
                }
            }
        }
        Ok(outcome)
    }

    /// Sends the alert for `quota`, this window and `threshold` unless it was sent already.
    #[allow(clippy::too_many_arguments)]
    async fn alert_once(
        &self,
        quota: &Quota,
        threshold: f64,
        used: f64,
        limit: f64,
        span: &WindowSpan,
        at: i64,
        event_id: &str,
    ) -> Result<Option<Alert>, ProcessError> {
        let (key, rearm_at) = alert_key(quota, threshold, span, at);
        if self.known_sent(&key, at) {
            return Ok(None);
        }
        let claim = AlertClaim {
            key: key.clone(),
            at,
            rearm_at,
            lease_until: crate::ports::wall_clock() + CLAIM_LEASE_S,
            claim_id: format!(
                "{}-{}-{}",
                std::process::id(),
                self.claims.fetch_add(1, Ordering::Relaxed),
                time::OffsetDateTime::now_utc().unix_timestamp_nanos()
            ),
            event_id: event_id.to_owned(),
            used,
        };
        match self.store.claim(&claim).await? {
            AlertClaimOutcome::AlreadySent => {
                self.remember_sent(key, rearm_at);
                return Ok(None);
            }
            AlertClaimOutcome::InFlight => return Err(ProcessError::AlertInFlight(key)),
            AlertClaimOutcome::Claimed => {}
        }
        let alert = build_alert(quota, threshold, used, limit, span, at, event_id);
        if let Err(error) = self.publisher.publish(&alert).await {
            if let Err(release) = self.store.release(&claim).await {
                tracing::error!(quota = %quota.name, error = %release, "could not release the alert claim; it is retried once its lease expires");
            }
            return Err(error.into());
        }
        if let Err(error) = self.store.confirm(&claim).await {
            // The alert went out; an unconfirmed claim only risks a repeat after its lease.
            tracing::warn!(quota = %quota.name, error = %error, "alert sent but its claim could not be confirmed");
        }
        tracing::info!(
            quota = %quota.name,
            threshold = threshold,
            used = used,
            limit = limit,
            event_id = %event_id,
            "quota threshold crossed; alert published"
        );
        self.remember_sent(key, rearm_at);
        Ok(Some(alert))
    }

    fn known_sent(&self, key: &str, at: i64) -> bool {
        self.sent
            .lock()
            .map(|s| s.get(key).is_some_and(|&rearm| at < rearm))
            .unwrap_or(false)
    }

    fn remember_sent(&self, key: String, rearm_at: i64) {
        if let Ok(mut sent) = self.sent.lock() {
            if sent.len() > 10_000 {
                sent.clear();
            }
            sent.insert(key, rearm_at);
        }
    }

    fn publish_metrics(&self, observations: &HashMap<usize, Observation>, stats: &Metrics) {
        for (&i, obs) in observations {
            let quota = &self.quotas[i];
            let mut m = Metrics::with_dimensions(NAMESPACE, &[("QuotaName", &quota.name)]);
            let unit = if quota.counts.is_gauge() {
                Unit::None
            } else {
                Unit::Count
            };
            m.add("Used", obs.used, unit);
            m.add("Limit", obs.limit, unit);
            m.add("Utilization", obs.used / obs.limit * 100.0, Unit::Percent);
            m.property("Window", quota.window.as_str());
            m.property("WindowStart", rfc3339(obs.window_start));
            self.metrics.publish(&m);
        }
        if !stats.is_empty() {
            self.metrics.publish(stats);
        }
    }
}

/// The key of one alert (quota, window, threshold) and the event time from which it re-arms.
fn alert_key(quota: &Quota, threshold: f64, span: &WindowSpan, at: i64) -> (String, i64) {
    let threshold_key = format!("{:.1}", threshold * 100.0);
    match span.end {
        Some(end) => (
            format!(
                "alert#{}#{}#{}#{threshold_key}",
                quota.name, quota.window, span.start
            ),
            end,
        ),
        // A rolling window has no end: alert at most once per 24 hours per threshold.
        None => (
            format!("alert#{}#{}#{threshold_key}", quota.name, quota.window),
            at + DAY_S,
        ),
    }
}

/// The counter a quota adds to; the window kind is part of it, so changing a quota's window
/// starts afresh instead of mixing bucket sizes. Public for `serve`'s console, which reads the
/// current window's use.
pub fn counter_key(quota: &Quota) -> String {
    format!("usage#{}#{}", quota.name, quota.window)
}

/// How `event` adds to `quota`, if at all.
fn contribution(quota: &Quota, event: &CloudEvent<'_>) -> Option<Contribution> {
    if let Some(account) = &quota.account {
        if event.account() != Some(account.as_str()) {
            return None;
        }
    }
    let count = |n: f64| (n > 0.0).then_some(Contribution::Count(n));
    match (quota.counts, &event.detail) {
        (Counts::Messages, Detail::Message(m)) if m.status == MessageStatus::Sent => count(1.0),
        (Counts::Segments, Detail::Message(m)) if m.status == MessageStatus::Sent => {
            count(f64::from(m.segments.unwrap_or(1).max(1)))
        }
        (Counts::Calls, Detail::Call(c)) if c.status == CallStatus::Completed => count(1.0),
        (Counts::CallMinutes, Detail::Call(c)) if c.status == CallStatus::Completed => {
            count(f64::from(c.duration.unwrap_or(0).div_ceil(60)))
        }
        (Counts::ErrorCodes, Detail::ErrorLog(e)) => e
            .error_code
            .filter(|code| quota.codes.contains(code))
            .and_then(|_| count(1.0)),
        (Counts::UsageTrigger, Detail::UsageTrigger(u))
            if quota
                .category
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(&u.usage_category)) =>
        {
            Some(Contribution::Gauge {
                used: u.current_value,
                limit: u.trigger_value,
            })
        }
        (Counts::RateLimit, Detail::RateLimit(r)) => Some(Contribution::Gauge {
            used: r.current_rate,
            limit: r.rate_limit,
        }),
        _ => None,
    }
}

fn build_alert(
    quota: &Quota,
    threshold: f64,
    used: f64,
    limit: f64,
    span: &WindowSpan,
    at: i64,
    event_id: &str,
) -> Alert {
    let utilization = used / limit * 100.0;
    let forecast = if quota.counts == Counts::RateLimit {
        // A rate is not cumulative: it is either at its limit now or not forecastable.
        (used >= limit).then_some(at)
    } else {
        forecast_exhausted_at(used, limit, span, at)
    };
    let what = match quota.counts {
        Counts::Messages => "messages sent",
        Counts::Segments => "message segments sent",
        Counts::Calls => "calls completed",
        Counts::CallMinutes => "call minutes",
        Counts::ErrorCodes => "limit errors",
        Counts::UsageTrigger => "usage (Usage Trigger)",
        Counts::RateLimit => "requests per second (rate limit)",
    };
    let window = match span.end {
        Some(end) => format!(
            "the {} window {} to {}",
            quota.window,
            rfc3339(span.start),
            rfc3339(end)
        ),
        None => format!("the 24 hours to {}", rfc3339(at)),
    };
    let outlook = match (forecast, span.end) {
        (Some(f), _) if used >= limit => format!("the limit was reached at {}", rfc3339(f)),
        (Some(f), _) => format!(
            "at the current rate the limit will be reached at {}",
            rfc3339(f)
        ),
        (None, Some(end)) => format!(
            "at the current rate the limit will not be reached before the window resets at {}",
            rfc3339(end)
        ),
        (None, None) => "at the current rate the limit will not be reached within 24 hours".into(),
    };
    let summary = format!(
        "Quota {}{}: {} of {} {} ({}%) in {}, past the {}% threshold; {}.",
        quota.name,
        quota
            .account
            .as_deref()
            .map(|a| format!(" (account {a})"))
            .unwrap_or_default(),
        number(used),
        number(limit),
        what,
        percent(utilization),
        window,
        percent(threshold * 100.0),
        outlook
    );
    Alert {
        quota: quota.name.clone(),
        counts: quota.counts.as_str().to_owned(),
        window: quota.window.as_str().to_owned(),
        account: quota.account.clone(),
        threshold,
        used,
        limit,
        utilization_percent: utilization,
        window_start: rfc3339(span.start),
        window_end: span.end.map(rfc3339),
        forecast_exhausted_at: forecast.map(rfc3339),
        event_id: event_id.to_owned(),
        event_time: rfc3339(at),
        summary,
    }
}

impl<C, A, M, Q> BatchProcessor for QuotaAlert<C, A, M, Q>
where
    C: UsageCounter + AlertLedger,
    A: AlertPublisher,
    M: MetricsSink,
    Q: Quarantine,
{
    async fn process(&self, records: &[StreamRecord], deadline: Instant) -> BatchOutcome {
        let mut observations: HashMap<usize, Observation> = HashMap::new();
        let mut stats = Metrics::new(SERVICE);
        let mut failed_at = None;
        for (index, record) in records.iter().enumerate() {
            if Instant::now() + self.safety_margin >= deadline {
                tracing::warn!(
                    remaining = records.len() - index,
                    "deadline near: leaving the rest of the batch for a retry"
                );
                failed_at = Some(index);
                break;
            }
            let fallback = record
                .arrived_at
                .map_or_else(crate::ports::wall_clock, |t| t.unix_timestamp());
            let result = match std::str::from_utf8(&record.data)
                .map_err(|e| e.to_string())
                .and_then(|text| CloudEvent::parse(text).map_err(|e| e.to_string()))
            {
                Ok(event) => self.handle(&event, fallback, &mut observations).await,
                Err(detail) => {
                    // Malformed records cannot get better by retrying: keep them and move on.
                    tracing::warn!(sequence_number = %record.sequence_number, error = %detail, "malformed record quarantined");
                    let item =
                        QuarantinedItem::new(SERVICE, "malformed-record", detail, &record.data)
                            .with_content_type(Some("application/json"))
                            .with_reference(record.sequence_number.clone());
                    match self.quarantine.put(item).await {
                        Ok(()) => {
                            stats.count("Quarantined", 1);
                            continue;
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            };
            match result {
                Ok(outcome) => {
                    stats.count("Records", 1);
                    if outcome.matched == 0 {
                        stats.count("Ignored", 1);
                    } else if outcome.duplicate {
                        stats.count("Duplicates", 1);
                    } else {
                        stats.count("Counted", 1);
                    }
                    if !outcome.alerts.is_empty() {
                        stats.count("AlertsPublished", outcome.alerts.len());
                    }
                }
                Err(error) => {
                    tracing::error!(sequence_number = %record.sequence_number, error = %error, "record failed; it and the rest of the batch will be retried");
                    failed_at = Some(index);
                    break;
                }
            }
        }
        let failed: Vec<String> = failed_at
            .map(|i| {
                records[i..]
                    .iter()
                    .map(|r| r.sequence_number.clone())
                    .collect()
            })
            .unwrap_or_default();
        if !failed.is_empty() {
            stats.count("Failed", failed.len());
        }
        self.publish_metrics(&observations, &stats);
        BatchOutcome { failed }
    }
}

#[cfg(test)]
#[path = "processor_tests.rs"]
mod tests;
