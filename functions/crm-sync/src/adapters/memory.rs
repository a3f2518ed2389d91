//! In-memory fakes for unit tests and benchmarks (feature `testing`): never part of a deployed
//! build, and production code never imports them.

use crate::ports::{LedgerDecision, LedgerError, LedgerRow, Settled, StatusLedger, decide};
use crate::update::StatusUpdate;
use std::collections::HashMap;
use std::sync::Mutex;

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
    async fn claim(&self, update: &StatusUpdate) -> Result<LedgerDecision, LedgerError> {
        let mut rows = self.rows.lock().map_err(|_| LedgerError::Poisoned)?;
        let decision = decide(rows.get(&update.sid), update);
        if decision == LedgerDecision::Push {
            rows.insert(update.sid.clone(), LedgerRow::pending(update));
        }
        Ok(decision)
    }

    async fn settle(&self, update: &StatusUpdate, outcome: Settled) -> Result<(), LedgerError> {
        let mut rows = self.rows.lock().map_err(|_| LedgerError::Poisoned)?;
        if let Some(row) = rows
            .get_mut(&update.sid)
            .filter(|r| r.event_id == update.event_id)
        {
            row.state = outcome.as_str().into();
        }
        Ok(())
    }
}
