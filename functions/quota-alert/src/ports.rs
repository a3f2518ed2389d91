//! What the core needs from storage, one small trait per concern, so that the core is tested
//! with in-memory fakes and each store (DynamoDB, SQLite) has one adapter.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// One counter bucket to add to.
#[derive(Clone, Debug, PartialEq)]
pub struct Increment {
    /// The counter (one per quota and window kind).
    pub counter: String,
    /// Unix seconds of the bucket's start.
    pub bucket: i64,
    pub amount: f64,
    /// When the bucket may be deleted (unix seconds).
    pub expires_at: i64,
}

/// What recording an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// First sight of the event: every increment was applied, together with its id.
    Counted,
    /// The event id was already recorded: nothing was added.
    Duplicate,
}

/// The storage failed. Transient as far as the core knows: the record is retried.
#[derive(Debug, thiserror::Error)]
#[error(
    "the usage store failed during {operation}: {detail} (the record will be retried; if this persists, check the table or database named in the configuration, its region and permissions)"
)]
pub struct StoreError {
    pub operation: &'static str,
    pub detail: String,
}

impl StoreError {
    pub fn new(operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            operation,
            detail: detail.into(),
        }
    }
}

/// Idempotent counting.
pub trait UsageCounter: Send + Sync {
    /// Atomically records `event_id` (kept until `event_expires_at`, unix seconds) and applies
    /// every increment; does nothing and answers [`Recorded::Duplicate`] if the id is recorded
    /// and not yet expired.
    fn record(
        &self,
        event_id: &str,
        event_expires_at: i64,
        increments: &[Increment],
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// The sum of a counter's buckets from `first_bucket` to `last_bucket` inclusive, read
    /// after every write acknowledged so far.
    fn usage(
        &self,
        counter: &str,
        first_bucket: i64,
        last_bucket: i64,
    ) -> impl Future<Output = Result<f64, StoreError>> + Send;
}

/// One alert's right to be sent: one per quota, window and threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertClaim {
    pub key: String,
    /// The event time the alert is for (unix seconds).
    pub at: i64,
    /// From this event time on, the same key may alert again (a calendar window's end; 24
    /// hours later for a rolling window).
    pub rearm_at: i64,
    /// Wall-clock unix seconds until which an unconfirmed claim holds off other claimants
    /// (a claimant that crashed before publishing loses its claim after that).
    pub lease_until: i64,
    /// Unique per attempt: only the claimant may release or confirm its claim.
    pub claim_id: String,
    pub event_id: String,
    pub used: f64,
}

/// What claiming found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the claim and must publish, then confirm (or release on failure).
    Claimed,
    /// The alert was already sent for this window.
    AlreadySent,
    /// Another attempt holds an unconfirmed claim: retry later.
    InFlight,
}

/// The ledger of alerts sent, which makes each alert go out once.
pub trait AlertLedger: Send + Sync {
    fn claim(&self, claim: &AlertClaim) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// The alert went out: the claim holds until it re-arms.
    fn confirm(&self, claim: &AlertClaim) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Publishing failed: give the claim back so that a retry can send the alert.
    fn release(&self, claim: &AlertClaim) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Unix seconds now.
pub(crate) fn wall_clock() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[derive(Debug, Clone)]
struct MemoryClaim {
    claim_id: String,
    rearm_at: i64,
    lease_until: i64,
    sent: bool,
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

fn poisoned(operation: &'static str) -> StoreError {
    StoreError::new(operation, "lock poisoned")
}

impl UsageCounter for MemoryStore {
    async fn record(
        &self,
        event_id: &str,
        event_expires_at: i64,
        increments: &[Increment],
    ) -> Result<Recorded, StoreError> {
        self.bump(|w| w.transactions += 1);
        let mut events = self.events.lock().map_err(|_| poisoned("record"))?;
        if events
            .get(event_id)
            .is_some_and(|&expires| expires >= wall_clock())
        {
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
    ) -> Result<f64, StoreError> {
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
    async fn claim(&self, claim: &AlertClaim) -> Result<Claim, StoreError> {
        self.bump(|w| w.alert_writes += 1);
        let mut claims = self.claims.lock().map_err(|_| poisoned("claim"))?;
        if let Some(old) = claims.get(&claim.key) {
            let rearmed = old.rearm_at <= claim.at;
            let abandoned = !old.sent && old.lease_until < wall_clock();
            if !rearmed && !abandoned {
                return Ok(if old.sent {
                    Claim::AlreadySent
                } else {
                    Claim::InFlight
                });
            }
        }
        claims.insert(
            claim.key.clone(),
            MemoryClaim {
                claim_id: claim.claim_id.clone(),
                rearm_at: claim.rearm_at,
                lease_until: claim.lease_until,
                sent: false,
            },
        );
        Ok(Claim::Claimed)
    }

    async fn confirm(&self, claim: &AlertClaim) -> Result<(), StoreError> {
        self.bump(|w| w.alert_writes += 1);
        let mut claims = self.claims.lock().map_err(|_| poisoned("confirm"))?;
        if let Some(c) = claims
            .get_mut(&claim.key)
            .filter(|c| c.claim_id == claim.claim_id)
        {
            c.sent = true;
        }
        Ok(())
    }

    async fn release(&self, claim: &AlertClaim) -> Result<(), StoreError> {
        self.bump(|w| w.alert_writes += 1);
        let mut claims = self.claims.lock().map_err(|_| poisoned("release"))?;
        if claims
            .get(&claim.key)
            .is_some_and(|c| c.claim_id == claim.claim_id)
        {
            claims.remove(&claim.key);
        }
        Ok(())
    }
}
