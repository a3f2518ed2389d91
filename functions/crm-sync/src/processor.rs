//! The batch processor: per partition key in order, keys concurrently, failures by sequence
//! number, the unprocessable to the quarantine, everything within the deadline.

use crate::ports::{Crm, CrmError, LedgerDecision, Settled, StatusLedger};
use crate::update::StatusUpdate;
use crate::{SERVICE, retry};
use futures_util::StreamExt as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use twilio_events::CloudEvent;
use twilio_events::metrics::{Metrics, MetricsSink, NAMESPACE, Unit};
use twilio_events::quarantine::{Quarantine, QuarantinedItem};
use twilio_events::stream::{BatchOutcome, BatchProcessor, StreamRecord};

/// Metric names (EMF, namespace `TwilioEvents`, dimension `Service=crm-sync`).
pub mod metric {
    pub const RECORDS: &str = "Records";
    pub const PUSHED: &str = "UpdatesPushed";
    pub const SKIPPED_STALE: &str = "SkippedStale";
    pub const SKIPPED_DUPLICATE: &str = "SkippedDuplicate";
    pub const SKIPPED_NOT_STATUS: &str = "SkippedNotStatus";
    pub const QUARANTINED: &str = "Quarantined";
    pub const RETRIED: &str = "RecordsRetried";
    pub const CRM_LATENCY: &str = "CrmLatency";
    /// Published with a second dimension, `ErrorClass` (throttled, server, timeout, connection,
    /// auth, rejected, ledger, quarantine).
    pub const ERRORS: &str = "Errors";
}

/// Tuning, with defaults fit for a Lambda of a few minutes' timeout.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// Partition keys processed at once.
    pub concurrency: usize,
    /// The longest one CRM attempt may take.
    pub attempt_timeout: Duration,
    /// Attempts per record and invocation before the record is left to the next invocation.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Kept free before the deadline to answer the runtime.
    pub safety_margin: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            attempt_timeout: Duration::from_secs(5),
            max_attempts: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            safety_margin: Duration::from_millis(500),
        }
    }
}

/// The CRM status sync.
#[derive(Debug)]
pub struct CrmSync<L, C, Q, M> {
    pub ledger: L,
    pub crm: C,
    pub quarantine: Q,
    pub metrics: M,
    pub settings: SyncSettings,
}

/// Per-invocation metrics: the main document and errors by class.
struct Tally {
    main: Metrics,
    errors: HashMap<&'static str, usize>,
}

impl Tally {
    fn count(&mut self, name: &str) {
        self.main.count(name, 1);
    }
}

enum Done {
    Yes,
    /// Retry from this record on.
    No,
}

impl<L: StatusLedger, C: Crm, Q: Quarantine, M: MetricsSink> CrmSync<L, C, Q, M> {
    pub fn new(ledger: L, crm: C, quarantine: Q, metrics: M) -> Self {
        Self::with_settings(ledger, crm, quarantine, metrics, SyncSettings::default())
    }

    pub fn with_settings(
        ledger: L,
        crm: C,
        quarantine: Q,
        metrics: M,
        settings: SyncSettings,
    ) -> Self {
        Self {
            ledger,
            crm,
            quarantine,
            metrics,
            settings,
        }
    }

    fn tally(tally: &Mutex<Tally>, f: impl FnOnce(&mut Tally)) {
        if let Ok(mut t) = tally.lock() {
            f(&mut t);
        }
    }

    fn error(tally: &Mutex<Tally>, class: &'static str) {
        Self::tally(tally, |t| *t.errors.entry(class).or_default() += 1);
    }

    async fn quarantine(
        &self,
        record: &StreamRecord,
        reason: &str,
        detail: String,
        tally: &Mutex<Tally>,
    ) -> Done {
        let item = QuarantinedItem::new(SERVICE, reason, detail, &record.data)
            .with_content_type(Some("application/cloudevents+json"))
            .with_reference(format!(
                "partition-key={} sequence-number={}",
                record.partition_key, record.sequence_number
            ));
        match self.quarantine.put(item).await {
            Ok(()) => {
                Self::tally(tally, |t| t.count(metric::QUARANTINED));
                Done::Yes
            }
            Err(e) => {
                tracing::error!(sequence_number = %record.sequence_number, error = %e, "could not quarantine; the record will be retried");
                Self::error(tally, "quarantine");
                Done::No
            }
        }
    }

    /// Pushes with retries until success, a final refusal, `max_attempts` or `stop`.
    async fn push(
        &self,
        update: &StatusUpdate,
        stop: Instant,
        tally: &Mutex<Tally>,
    ) -> Result<(), CrmError> {
        let s = &self.settings;
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let attempt_stop = (started + s.attempt_timeout).min(stop);
            let result =
                match tokio::time::timeout_at(attempt_stop.into(), self.crm.push(update)).await {
                    Ok(result) => result,
                    Err(_) => Err(CrmError::Timeout),
                };
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            Self::tally(tally, |t| {
                t.main.add(metric::CRM_LATENCY, elapsed, Unit::Milliseconds)
            });
            let error = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            Self::error(tally, error.class());
            attempt += 1;
            if !error.is_retryable() || attempt >= s.max_attempts {
                return Err(error);
            }
            let wait = retry::backoff(
                attempt - 1,
                s.backoff_base,
                s.backoff_max,
                error.retry_after(),
            );
            if Instant::now() + wait >= stop {
                return Err(error);
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn handle(&self, record: &StreamRecord, stop: Instant, tally: &Mutex<Tally>) -> Done {
        let seq = record.sequence_number.as_str();
        let text = match std::str::from_utf8(&record.data) {
            Ok(text) => text,
            Err(e) => {
                return self
                    .quarantine(record, "malformed-record", format!("not UTF-8: {e}"), tally)
                    .await;
            }
        };
        let event = match CloudEvent::parse(text) {
            Ok(event) => event,
            Err(e) => {
                return self
                    .quarantine(record, "malformed-record", e.to_string(), tally)
                    .await;
            }
        };
        let update = match StatusUpdate::from_event(&event) {
            Ok(Some(update)) => update,
            Ok(None) => {
                Self::tally(tally, |t| t.count(metric::SKIPPED_NOT_STATUS));
                return Done::Yes;
            }
            Err(e) => {
                return self
                    .quarantine(record, "malformed-record", e.to_string(), tally)
                    .await;
            }
        };
        match self.ledger.claim(&update).await {
            Ok(LedgerDecision::Push) => {}
            Ok(LedgerDecision::Stale) => {
                Self::tally(tally, |t| t.count(metric::SKIPPED_STALE));
                return Done::Yes;
            }
            Ok(LedgerDecision::Duplicate) => {
                Self::tally(tally, |t| t.count(metric::SKIPPED_DUPLICATE));
                return Done::Yes;
            }
            Err(e) => {
                tracing::warn!(sequence_number = seq, event_id = %update.event_id, error = %e, "ledger claim failed");
                Self::error(tally, "ledger");
                return Done::No;
            }
        }
        match self.push(&update, stop, tally).await {
            Ok(()) => {
                Self::tally(tally, |t| t.count(metric::PUSHED));
                if let Err(e) = self.ledger.settle(&update, Settled::Pushed).await {
                    // The retry pushes once more with the same Idempotency-Key.
                    tracing::warn!(sequence_number = seq, event_id = %update.event_id, error = %e, "pushed but not settled");
                    Self::error(tally, "ledger");
                    return Done::No;
                }
                Done::Yes
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(sequence_number = seq, event_id = %update.event_id, sid = %update.sid, error = %e, "CRM update failed; retried from this record");
                Done::No
            }
            Err(e) => {
                tracing::warn!(sequence_number = seq, event_id = %update.event_id, sid = %update.sid, error = %e, "CRM refused the update");
                let done = self
                    .quarantine(record, "crm-rejected", e.to_string(), tally)
                    .await;
                if matches!(done, Done::Yes) {
                    if let Err(e) = self.ledger.settle(&update, Settled::Rejected).await {
                        // Quarantined anyway; a replay would quarantine it again.
                        tracing::warn!(event_id = %update.event_id, error = %e, "rejected but not settled");
                        Self::error(tally, "ledger");
                    }
                }
                done
            }
        }
    }

    /// One partition key's records, in order, up to the first that is not done.
    async fn run_key(
        &self,
        records: &[StreamRecord],
        indices: Vec<usize>,
        done: &[AtomicBool],
        stop: Instant,
        tally: &Mutex<Tally>,
    ) {
        for i in indices {
            if Instant::now() >= stop {
                return;
            }
            match self.handle(&records[i], stop, tally).await {
                Done::Yes => done[i].store(true, Ordering::Relaxed),
                Done::No => return,
            }
        }
    }

    fn publish(&self, tally: Tally) {
        self.metrics.publish(&tally.main);
        for (class, n) in tally.errors {
            let mut m =
                Metrics::with_dimensions(NAMESPACE, &[("Service", SERVICE), ("ErrorClass", class)]);
            m.count(metric::ERRORS, n);
            self.metrics.publish(&m);
        }
    }
}

/// Records grouped by partition key, keys in order of first appearance, records in batch order.
fn group_by_key(records: &[StreamRecord]) -> Vec<Vec<usize>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let g = *index.entry(r.partition_key.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

impl<L: StatusLedger, C: Crm, Q: Quarantine, M: MetricsSink> BatchProcessor
    for CrmSync<L, C, Q, M>
{
    async fn process(&self, records: &[StreamRecord], deadline: Instant) -> BatchOutcome {
        let now = Instant::now();
        let stop = deadline
            .checked_sub(self.settings.safety_margin)
            .unwrap_or(now)
            .max(now);
        let done: Vec<AtomicBool> = records.iter().map(|_| AtomicBool::new(false)).collect();
        let mut main = Metrics::new(SERVICE);
        main.count(metric::RECORDS, records.len());
        let tally = Mutex::new(Tally {
            main,
            errors: HashMap::new(),
        });
        let work = futures_util::stream::iter(group_by_key(records))
            .map(|indices| self.run_key(records, indices, &done, stop, &tally))
            .buffer_unordered(self.settings.concurrency.max(1))
            .for_each(|()| async {});
        // In-flight work still running at the deadline is dropped: the ledger's pending state
        // makes that safe (see `ports`).
        if tokio::time::timeout_at(stop.into(), work).await.is_err() {
            tracing::warn!("deadline reached; unfinished records are retried");
        }
        let mut failed: Vec<String> = Vec::new();
        let mut unnamed = false;
        for (record, done) in records.iter().zip(&done) {
            if !done.load(Ordering::Relaxed) {
                if record.sequence_number.is_empty() {
                    unnamed = true;
                } else {
                    failed.push(record.sequence_number.clone());
                }
            }
        }
        // A failure without a sequence number cannot be named: retry from the batch's start
        // (the ledger makes the replay harmless) rather than acknowledge it.
        if unnamed {
            if let Some(first) = records.iter().find(|r| !r.sequence_number.is_empty()) {
                if !failed.contains(&first.sequence_number) {
                    failed.insert(0, first.sequence_number.clone());
                }
            }
        }
        let mut tally = tally.into_inner().unwrap_or_else(|p| p.into_inner());
        tally.main.count(metric::RETRIED, failed.len());
        self.publish(tally);
        BatchOutcome { failed }
    }
}

#[cfg(test)]
#[path = "processor_tests.rs"]
mod tests;
