//! What the core needs from the outside, one small trait per concern (counting, the alert
//! ledger, publishing alerts), and the pure rules every adapter of a port applies, written
//! once here: when an event counts as already recorded, and who wins an alert's claim.

use crate::alert::Alert;
use std::error::Error;
use std::fmt;
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

/// The cause of a port's failure as its adapter met it (an SDK error, a SQLite error, an I/O
/// error…), kept whole for [`Error::source`].
pub type Cause = Box<dyn Error + Send + Sync + 'static>;

/// An error and its causes, `: `-separated: an SDK error says little at the top (`service
/// error`); the detail is further down its chain.
struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// The usage counter failed. Transient as far as the core knows: the record is retried.
#[derive(Debug, thiserror::Error)]
#[error(
    "the usage counter failed during {operation}: {} (the record will be retried; if this persists, check the table or database named in the configuration, its region and permissions)",
    Chain(.source.as_ref())
)]
pub struct CounterError {
    pub operation: &'static str,
    #[source]
    pub source: Cause,
}

impl CounterError {
    pub fn new(operation: &'static str, source: impl Into<Cause>) -> Self {
        Self {
            operation,
            source: source.into(),
        }
    }
}

/// Idempotent counting.
pub trait UsageCounter: Send + Sync {
    /// Atomically records `event_id` (kept until `event_expires_at`, unix seconds) and applies
    /// every increment; does nothing and answers [`Recorded::Duplicate`] if the id is recorded
    /// (see [`is_recorded`]).
    fn record(
        &self,
        event_id: &str,
        event_expires_at: i64,
        increments: &[Increment],
    ) -> impl Future<Output = Result<Recorded, CounterError>> + Send;

    /// The sum of a counter's buckets from `first_bucket` to `last_bucket` inclusive, read
    /// after every write acknowledged so far.
    fn usage(
        &self,
        counter: &str,
        first_bucket: i64,
        last_bucket: i64,
    ) -> impl Future<Output = Result<f64, CounterError>> + Send;
}

/// The idempotency rule every counter applies: an event id whose memory expires at
/// `expires_at` (unix seconds; `None`: never seen) is still recorded at wall-clock `now` until
/// then, even where the store's TTL has not deleted it yet, and no longer after, even where it
/// has not. The DynamoDB adapter says the same as its condition
/// (`attribute_not_exists(pk) OR expires_at < :now` lets a new record in).
pub fn is_recorded(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|expires| expires >= now)
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
pub enum AlertClaimOutcome {
    /// The caller holds the claim and must publish, then confirm (or release on failure).
    Claimed,
    /// The alert was already sent for this window.
    AlreadySent,
    /// Another attempt holds an unconfirmed claim: retry later.
    InFlight,
}

/// An alert's claim as a ledger holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldAlertClaim {
    pub rearm_at: i64,
    pub lease_until: i64,
    /// Confirmed: the alert went out.
    pub sent: bool,
}

/// The claim rule every ledger applies: a new claim wins when no claim is held, when the held
/// one has re-armed (the new claim's event time reached its `rearm_at`), or when it was never
/// confirmed and its lease ran out before wall-clock `now` (its claimant crashed before
/// publishing). Otherwise the held claim stands: sent, or in flight. The DynamoDB adapter says
/// the same as its condition, and applies this rule to the item that refused it.
pub fn decide_alert_claim(
    held: Option<&HeldAlertClaim>,
    claim: &AlertClaim,
    now: i64,
) -> AlertClaimOutcome {
    match held {
        Some(held) if held.rearm_at > claim.at && held.sent => AlertClaimOutcome::AlreadySent,
        Some(held) if held.rearm_at > claim.at && held.lease_until >= now => {
            AlertClaimOutcome::InFlight
        }
        _ => AlertClaimOutcome::Claimed,
    }
}

/// The alert ledger failed. Transient as far as the core knows: the record is retried.
#[derive(Debug, thiserror::Error)]
#[error(
    "the alert ledger failed during {operation}: {} (the record will be retried; if this persists, check the table or database named in the configuration, its region and permissions)",
    Chain(.source.as_ref())
)]
pub struct AlertLedgerError {
    pub operation: &'static str,
    #[source]
    pub source: Cause,
}

impl AlertLedgerError {
    pub fn new(operation: &'static str, source: impl Into<Cause>) -> Self {
        Self {
            operation,
            source: source.into(),
        }
    }
}

/// The ledger of alerts sent, which makes each alert go out once (see [`decide_alert_claim`]).
pub trait AlertLedger: Send + Sync {
    fn claim(
        &self,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<AlertClaimOutcome, AlertLedgerError>> + Send;
    /// The alert went out: the claim holds until it re-arms.
    fn confirm(
        &self,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<(), AlertLedgerError>> + Send;
    /// Publishing failed: give the claim back so that a retry can send the alert.
    fn release(
        &self,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<(), AlertLedgerError>> + Send;
}

/// Publishing failed; the alert's claim is released and the record retried.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not publish the alert for quota {quota}: {} (it will be retried; if this persists, check ALERT_TOPIC_ARN and the function's sns:Publish permission, or under serve that the data directory is writable)",
    Chain(.source.as_ref())
)]
pub struct AlertPublishError {
    pub quota: String,
    #[source]
    pub source: Cause,
}

impl AlertPublishError {
    pub fn new(quota: &str, source: impl Into<Cause>) -> Self {
        Self {
            quota: quota.to_owned(),
            source: source.into(),
        }
    }
}

/// Where alerts go: SNS in AWS, stderr and `alerts.jsonl` locally.
pub trait AlertPublisher: Send + Sync {
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), AlertPublishError>> + Send;
}

/// Unix seconds now.
pub(crate) fn wall_clock() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim_at(at: i64) -> AlertClaim {
        AlertClaim {
            key: "alert#q#day#0#80.0".into(),
            at,
            rearm_at: at + 100,
            lease_until: 0,
            claim_id: "c".into(),
            event_id: "e".into(),
            used: 1.0,
        }
    }

    #[test]
    fn an_alert_claim_stands_until_it_rearms_or_its_claimant_is_gone() {
        let now = 1_000;
        let held = |rearm_at, lease_until, sent| HeldAlertClaim {
            rearm_at,
            lease_until,
            sent,
        };
        let cases = [
            // nothing held: claimed
            (None, 50, AlertClaimOutcome::Claimed),
            // sent in this window: sent
            (Some(held(100, 0, true)), 50, AlertClaimOutcome::AlreadySent),
            // sent, but the event is in the next window: re-armed
            (Some(held(100, 0, true)), 100, AlertClaimOutcome::Claimed),
            // unconfirmed and its lease still running: in flight
            (Some(held(100, now, false)), 50, AlertClaimOutcome::InFlight),
            // unconfirmed and its lease over: abandoned, claimed
            (
                Some(held(100, now - 1, false)),
                50,
                AlertClaimOutcome::Claimed,
            ),
        ];
        for (held, at, expected) in cases {
            assert_eq!(
                decide_alert_claim(held.as_ref(), &claim_at(at), now),
                expected,
                "{held:?} at {at}"
            );
        }
    }

    #[test]
    fn an_event_id_is_recorded_until_its_memory_expires() {
        assert!(!is_recorded(None, 10));
        assert!(is_recorded(Some(10), 10));
        assert!(!is_recorded(Some(9), 10));
    }

    #[test]
    fn a_port_error_says_what_caused_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("service error")]
        struct Outer(#[source] std::io::Error);
        let error = CounterError::new("record", Outer(std::io::Error::other("throttled")));
        assert!(
            error
                .to_string()
                .starts_with("the usage counter failed during record: service error: throttled ("),
            "{error}"
        );
        assert!(error.source().is_some());
    }
}
