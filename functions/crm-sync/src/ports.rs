//! The ports: what the processor needs from the outside world, as traits, and the pure rules
//! every adapter of a port shares.
//!
//! - [`Crm`]: one attempt to write an update to the CRM, failing with a [`CrmError`] that says
//!   whether a retry may succeed ([`CrmError::from_status`] is the HTTP contract's rule).
//! - [`StatusLedger`]: per resource (MessageSid, CallSid), the latest status claimed for the CRM
//!   and whether it reached it. It only moves forward, and it decides what is pushed; every
//!   ledger (DynamoDB, SQLite, memory) decides with the one rule [`decide`].
//!
//! # Why claim, push, then settle
//!
//! Each update goes through three steps:
//! 1. [`StatusLedger::claim`]: one conditional write records the update as the resource's
//!    *pending* target if it moves the resource forward (higher rank, or equal rank and later
//!    event time). A stale update is refused here, before any CRM side effect, so a regression
//!    can never be pushed on the strength of an earlier read.
//! 2. the CRM push.
//! 3. [`StatusLedger::settle`]: marks that target `pushed` (or `rejected` when the CRM refused
//!    it for good and it went to the quarantine), on condition that it is still the target.
//!
//! A claim also succeeds for the very event that is still pending, so:
//! - a CRM failure (or a crash, or a deadline) between 1 and 2 loses nothing: the record is
//!   reported failed, the retry finds its own event pending and pushes it, once;
//! - a crash between 2 and 3 makes the retry push the same update again with the same
//!   `Idempotency-Key` (the CRM deduplicates; this window is one request wide and cannot be
//!   closed without the CRM taking part in a transaction);
//! - a redelivered event that was pushed or rejected is a [`LedgerDecision::Duplicate`]: never
//!   rewritten.
//!
//! The alternative, push first then advance the ledger, needs a read before the push: a
//! decision made on a read is not atomic with the write, and a crash after the push leaves no
//! trace that the push happened. Claim-first keeps the decision in one conditional write and
//! leaves a visible `pending` state for an operator.

use crate::update::{ResourceKind, StatusUpdate};
use std::future::Future;
use std::time::Duration;

/// One CRM.
pub trait Crm: Send + Sync {
    /// One attempt to write `update`; the caller bounds it in time.
    fn push(&self, update: &StatusUpdate) -> impl Future<Output = Result<(), CrmError>> + Send;
}

impl<C: Crm> Crm for std::sync::Arc<C> {
    fn push(&self, update: &StatusUpdate) -> impl Future<Output = Result<(), CrmError>> + Send {
        (**self).push(update)
    }
}

/// Why one attempt to write to the CRM failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CrmError {
    #[error("the CRM is throttling (HTTP 429); retried after {retry_after:?}")]
    Throttled { retry_after: Option<Duration> },
    #[error("the CRM failed with HTTP {status}; retried")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the CRM did not answer in time; retried")]
    Timeout,
    #[error("could not reach the CRM ({0}); check CRM_URL and the network; retried")]
    Connection(String),
    #[error("could not authenticate with the CRM ({0}); check its credentials; retried")]
    Auth(String),
    #[error(
        "the CRM refused the update for good (HTTP {status}{detail}); it goes to the quarantine"
    )]
    Rejected { status: u16, detail: String },
}

impl CrmError {
    /// Whether a later attempt may succeed. Only [`CrmError::Rejected`] is final.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// The low-cardinality class used as a metric dimension.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::Server { .. } => "server",
            Self::Timeout => "timeout",
            Self::Connection(_) => "connection",
            Self::Auth(_) => "auth",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// What the CRM asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } | Self::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies an HTTP answer that is not 2xx (README.md, "HTTP contract").
    pub fn from_status(status: u16, retry_after: Option<Duration>, detail: String) -> Self {
        match status {
            429 => Self::Throttled { retry_after },
            500..=599 => Self::Server {
                status,
                retry_after,
            },
            _ => Self::Rejected { status, detail },
        }
    }
}

/// What the ledger says about an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerDecision {
    /// It is the resource's pending target now: push it.
    Push,
    /// The resource is already at a later status: skip it.
    Stale,
    /// This very event was already pushed (or rejected): skip it.
    Duplicate,
}

/// How a claimed update ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    Pushed,
    /// The CRM refused it for good; it is in the quarantine.
    Rejected,
}

impl Settled {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pushed => "pushed",
            Self::Rejected => "rejected",
        }
    }
}

/// The ledger could not be read or written: the record is retried.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed; the adapter's error (which names the store) is the source.
    #[error("status ledger unavailable ({source}); the record will be retried")]
    Unavailable {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A task panicked while it held an in-process ledger's lock.
    #[error(
        "status ledger lock poisoned by a panicked task; the record will be retried \
         (restart the process if this repeats)"
    )]
    Poisoned,
}

impl LedgerError {
    /// The store failed with `source`.
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable {
            source: Box::new(source),
        }
    }
}

/// The per-resource record of the latest status, which only moves forward and decides what is
/// pushed (claim, push, settle: see the module documentation).
pub trait StatusLedger: Send + Sync {
    /// Records `update` as the pending target when it moves its resource forward, or when it is
    /// already the pending target (a retry).
    fn claim(
        &self,
        update: &StatusUpdate,
    ) -> impl Future<Output = Result<LedgerDecision, LedgerError>> + Send;

    /// Marks `update` settled if it is still its resource's target (else does nothing).
    fn settle(
        &self,
        update: &StatusUpdate,
        outcome: Settled,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

impl<L: StatusLedger> StatusLedger for std::sync::Arc<L> {
    fn claim(
        &self,
        update: &StatusUpdate,
    ) -> impl Future<Output = Result<LedgerDecision, LedgerError>> + Send {
        (**self).claim(update)
    }

    fn settle(
        &self,
        update: &StatusUpdate,
        outcome: Settled,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send {
        (**self).settle(update, outcome)
    }
}

/// One resource's row, as every ledger stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    pub status: String,
    pub rank: u8,
    pub event_time_ms: i64,
    pub event_id: String,
    /// `pending`, `pushed` or `rejected`.
    pub state: String,
}

/// A resource whose last status is not final, as a ledger lists it for reconciliation (see
/// `reconcile`): ledgers keep such rows in an index by when they last changed (DynamoDB: the
/// sparse global secondary index [`OPEN_INDEX`]; SQLite: a partial index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenResource {
    pub sid: String,
    pub kind: ResourceKind,
    pub status: String,
    pub rank: u8,
    /// When the ledger last moved it forward (milliseconds since the epoch).
    pub changed_at_ms: i64,
}

/// The DynamoDB ledger's index of resources that are not final: partition key `open_kind`
/// (`message` or `call`, present only while the status is not final), sort key
/// `changed_at_ms`. template.yaml declares it on the ledger table.
pub const OPEN_INDEX: &str = "open-by-change";

/// The decision every ledger makes, given the current row.
pub fn decide(current: Option<&LedgerRow>, update: &StatusUpdate) -> LedgerDecision {
    match current {
        None => LedgerDecision::Push,
        Some(row) if row.event_id == update.event_id => {
            if row.state == "pending" {
                LedgerDecision::Push
            } else {
                LedgerDecision::Duplicate
            }
        }
        Some(row) if update.is_ahead_of(row.rank, row.event_time_ms) => LedgerDecision::Push,
        Some(_) => LedgerDecision::Stale,
    }
}

impl LedgerRow {
    pub fn pending(update: &StatusUpdate) -> Self {
        Self {
            status: update.status.clone(),
            rank: update.rank,
            event_time_ms: update.event_time_ms(),
            event_id: update.event_id.clone(),
            state: "pending".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_classified_as_the_contract_says() {
        assert!(CrmError::from_status(429, None, String::new()).is_retryable());
        assert!(CrmError::from_status(503, None, String::new()).is_retryable());
        assert!(CrmError::from_status(500, None, String::new()).is_retryable());
        for status in [400, 401, 403, 404, 409, 422] {
            let e = CrmError::from_status(status, None, String::new());
            assert!(!e.is_retryable(), "{status}");
            assert_eq!(e.class(), "rejected");
        }
    }
}
