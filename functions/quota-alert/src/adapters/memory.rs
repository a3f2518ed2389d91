//! In-memory fakes of every port, for unit tests, integration tests and the benchmark (feature
//! `testing`): the same contracts as the real adapters.

use crate::alert::Alert;
use crate::ports::{
    AlertClaim, AlertClaimOutcome, AlertLedger, AlertLedgerError, AlertPublishError,
    AlertPublisher, CounterError, HeldAlertClaim, Increment, Recorded, UsageCounter,
    decide_alert_claim, is_recorded, wall_clock,
};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct MemoryClaim {
    claim_id: String,
    held: HeldAlertClaim,
}

/// An in-memory store, for unit tests and benchmarks: the same contract as the real ones.
/// It counts the writes it is asked for, so tests can check how many an event costs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    events: Mutex<HashMap<String, i64>>,
    buckets: Mutex<HashMap<(String, i64), f64>>,
    claims: Mutex<HashMap<String, MemoryClaim>>,
    writes: Mutex<WriteCounts>,
}

/// Calls made to a store, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// `record` calls (one DynamoDB transaction each).
    pub transactions: u64,
    /// `usage` calls (one read each).
    pub reads: u64,
    /// `claim`, `confirm` and `release` calls.
    pub alert_writes: u64,
}

impl MemoryStore {
    pub fn counts(&self) -> WriteCounts {
        self.writes.lock().map(|w| *w).unwrap_or_default()
    }

    fn bump(&self, f: impl FnOnce(&mut WriteCounts)) {
        if let Ok(mut w) = self.writes.lock() {
            f(&mut w);
        }
    }
}

fn poisoned(operation: &'static str) -> CounterError {
    CounterError::new(operation, "lock poisoned")
}

fn ledger_poisoned(operation: &'static str) -> AlertLedgerError {
    AlertLedgerError::new(operation, "lock poisoned")
}

impl UsageCounter for MemoryStore {
    async fn record(
        &self,
        event_id: &str,
        event_expires_at: i64,
        increments: &[Increment],
    ) -> Result<Recorded, CounterError> {
        self.bump(|w| w.transactions += 1);
        let mut events = self.events.lock().map_err(|_| poisoned("record"))?;
        if is_recorded(events.get(event_id).copied(), wall_clock()) {
            return Ok(Recorded::Duplicate);
        }
        events.insert(event_id.to_owned(), event_expires_at);
        let mut buckets = self.buckets.lock().map_err(|_| poisoned("record"))?;
        for inc in increments {
            *buckets
                .entry((inc.counter.clone(), inc.bucket))
                .or_default() += inc.amount;
        }
        Ok(Recorded::Counted)
    }

    async fn usage(
        &self,
        counter: &str,
        first_bucket: i64,
        last_bucket: i64,
    ) -> Result<f64, CounterError> {
        self.bump(|w| w.reads += 1);
        let buckets = self.buckets.lock().map_err(|_| poisoned("usage"))?;
        Ok(buckets
            .iter()
            .filter(|((c, b), _)| c == counter && (first_bucket..=last_bucket).contains(b))
            .map(|(_, v)| v)
            .sum())
    }
}

impl AlertLedger for MemoryStore {
    async fn claim(&self, claim: &AlertClaim) -> Result<AlertClaimOutcome, AlertLedgerError> {
        self.bump(|w| w.alert_writes += 1);
        let mut claims = self.claims.lock().map_err(|_| ledger_poisoned("claim"))?;
        let held = claims.get(&claim.key).map(|c| &c.held);
        let outcome = decide_alert_claim(held, claim, wall_clock());
        if outcome == AlertClaimOutcome::Claimed {
            claims.insert(
                claim.key.clone(),
                MemoryClaim {
                    claim_id: claim.claim_id.clone(),
                    held: HeldAlertClaim {
                        rearm_at: claim.rearm_at,
                        lease_until: claim.lease_until,
                        sent: false,
                    },
                },
            );
        }
        Ok(outcome)
    }

    async fn confirm(&self, claim: &AlertClaim) -> Result<(), AlertLedgerError> {
        self.bump(|w| w.alert_writes += 1);
        let mut claims = self.claims.lock().map_err(|_| ledger_poisoned("confirm"))?;
        if let Some(c) = claims
            .get_mut(&claim.key)
            .filter(|c| c.claim_id == claim.claim_id)
        {
            c.held.sent = true;
        }
        Ok(())
    }

    async fn release(&self, claim: &AlertClaim) -> Result<(), AlertLedgerError> {
        self.bump(|w| w.alert_writes += 1);
        let mut claims = self.claims.lock().map_err(|_| ledger_poisoned("release"))?;
        if claims
            .get(&claim.key)
            .is_some_and(|c| c.claim_id == claim.claim_id)
        {
            claims.remove(&claim.key);
        }
        Ok(())
    }
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
    async fn publish(&self, alert: &Alert) -> Result<(), AlertPublishError> {
        let fail = match self.failures_left.lock() {
            Ok(mut left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        if fail {
            return Err(AlertPublishError::new(&alert.quota, "injected failure"));
        }
        self.alerts
            .lock()
            .map_err(|_| AlertPublishError::new(&alert.quota, "lock poisoned"))?
            .push(alert.clone());
        Ok(())
    }
}
