//! What the core needs from storage, one small trait per concern, so that the core is tested
//! with in-memory fakes and each store (DynamoDB, SQLite) has one adapter.

use crate::alert::Alert;
use std::future::Future;

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

/// Unix seconds now.
pub(crate) fn wall_clock() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
