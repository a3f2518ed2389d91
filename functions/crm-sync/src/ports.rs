//! The status ledger: per resource (MessageSid, CallSid), the latest status claimed for the CRM
//! and whether it reached it. It only moves forward, and it decides what is pushed.
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
//! - a redelivered event that was pushed or rejected is a [`Claim::Duplicate`]: never rewritten.
//!
//! The alternative, push first then advance the ledger, needs a read before the push: a
//! decision made on a read is not atomic with the write, and a crash after the push leaves no
//! trace that the push happened. Claim-first keeps the decision in one conditional write and
//! leaves a visible `pending` state for an operator.

use crate::update::StatusUpdate;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// What the ledger says about an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
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
#[error("status ledger unavailable ({0}); the record will be retried")]
pub struct LedgerError(pub String);

pub trait StatusLedger: Send + Sync {
    /// Records `update` as the pending target when it moves its resource forward, or when it is
    /// already the pending target (a retry).
    fn claim(
        &self,
        update: &StatusUpdate,
    ) -> impl Future<Output = Result<Claim, LedgerError>> + Send;

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
    ) -> impl Future<Output = Result<Claim, LedgerError>> + Send {
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

/// The decision every ledger makes, given the current row.
pub fn decide(current: Option<&LedgerRow>, update: &StatusUpdate) -> Claim {
    match current {
        None => Claim::Push,
        Some(row) if row.event_id == update.event_id => {
            if row.state == "pending" {
                Claim::Push
            } else {
                Claim::Duplicate
            }
        }
        Some(row) if update.is_ahead_of(row.rank, row.event_time_ms) => Claim::Push,
        Some(_) => Claim::Stale,
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

/// A ledger in memory, for unit tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryStatusLedger {
    rows: Mutex<HashMap<String, LedgerRow>>,
}

impl MemoryStatusLedger {
    pub fn row(&self, sid: &str) -> Option<LedgerRow> {
        self.rows.lock().ok()?.get(sid).cloned()
    }
}

impl StatusLedger for MemoryStatusLedger {
    async fn claim(&self, update: &StatusUpdate) -> Result<Claim, LedgerError> {
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| LedgerError("lock poisoned".into()))?;
        let claim = decide(rows.get(&update.sid), update);
        if claim == Claim::Push {
            rows.insert(update.sid.clone(), LedgerRow::pending(update));
        }
        Ok(claim)
    }

    async fn settle(&self, update: &StatusUpdate, outcome: Settled) -> Result<(), LedgerError> {
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| LedgerError("lock poisoned".into()))?;
        if let Some(row) = rows
            .get_mut(&update.sid)
            .filter(|r| r.event_id == update.event_id)
        {
            row.state = outcome.as_str().into();
        }
        Ok(())
    }
}
