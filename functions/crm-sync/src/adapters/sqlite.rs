//! The status ledger in a SQLite file (feature `local`), for `twilio-events serve`:
//! `<data-dir>/crm-ledger.sqlite3`, one row per resource, the same rule as DynamoDB's
//! ([`crate::ports::decide`]) applied inside a transaction.

use crate::ports::{
    LedgerDecision, LedgerError, LedgerRow, OpenResource, Settled, StatusLedger, decide,
};
use crate::update::{ResourceKind, StatusUpdate};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What went wrong with the SQLite ledger.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error(
        "cannot open the CRM ledger {}: {source}; check that the data directory is writable",
        path.display()
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("CRM ledger query failed: {0}")]
    Query(#[source] rusqlite::Error),
}

/// The status ledger in a SQLite file (WAL).
#[derive(Debug)]
pub struct SqliteStatusLedger {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteStatusLedger {
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        let err = |source: rusqlite::Error| SqliteError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS crm_ledger (
                sid TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, rank INTEGER NOT NULL,
                event_time_ms INTEGER NOT NULL, event_id TEXT NOT NULL, state TEXT NOT NULL,
                updated_at TEXT NOT NULL)",
        )
        .map_err(err)?;
        // Added with reconciliation: a ledger file from before gets the columns; its rows are
        // found open once their resource moves again.
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('crm_ledger')")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .map_err(err)?;
        if !columns.iter().any(|c| c == "open_kind") {
            conn.execute_batch(
                "ALTER TABLE crm_ledger ADD COLUMN open_kind TEXT;
                 ALTER TABLE crm_ledger ADD COLUMN changed_at_ms INTEGER;",
            )
            .map_err(err)?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS crm_ledger_open ON crm_ledger (open_kind, changed_at_ms)
                 WHERE open_kind IS NOT NULL",
        )
        .map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The resources of `kind` that are not final and last changed in `[from_ms, to_ms)`.
    pub fn open_between(
        &self,
        kind: ResourceKind,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<OpenResource>, LedgerError> {
        let conn = self.conn.lock().map_err(|_| LedgerError::Poisoned)?;
        let mut query = conn
            .prepare(
                "SELECT sid, status, rank, changed_at_ms FROM crm_ledger
                 WHERE open_kind = ?1 AND changed_at_ms >= ?2 AND changed_at_ms < ?3
                 ORDER BY changed_at_ms",
            )
            .map_err(sql_error)?;
        let rows = query
            .query_map(rusqlite::params![kind.as_str(), from_ms, to_ms], |r| {
                Ok(OpenResource {
                    sid: r.get(0)?,
                    kind,
                    status: r.get(1)?,
                    rank: r.get(2)?,
                    changed_at_ms: r.get(3)?,
                })
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    }

    pub fn row(&self, sid: &str) -> Result<Option<LedgerRow>, LedgerError> {
        let conn = self.conn.lock().map_err(|_| LedgerError::Poisoned)?;
        read_row(&conn, sid)
    }
}

fn sql_error(e: rusqlite::Error) -> LedgerError {
    LedgerError::unavailable(SqliteError::Query(e))
}

fn read_row(conn: &rusqlite::Connection, sid: &str) -> Result<Option<LedgerRow>, LedgerError> {
    use rusqlite::OptionalExtension as _;
    conn.query_row(
        "SELECT status, rank, event_time_ms, event_id, state FROM crm_ledger WHERE sid = ?1",
        [sid],
        |r| {
            Ok(LedgerRow {
                status: r.get(0)?,
                rank: r.get(1)?,
                event_time_ms: r.get(2)?,
                event_id: r.get(3)?,
                state: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(sql_error)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl StatusLedger for SqliteStatusLedger {
    async fn claim(&self, update: &StatusUpdate) -> Result<LedgerDecision, LedgerError> {
        let mut conn = self.conn.lock().map_err(|_| LedgerError::Poisoned)?;
        let tx = conn.transaction().map_err(sql_error)?;
        let decision = decide(read_row(&tx, &update.sid)?.as_ref(), update);
        if decision == LedgerDecision::Push {
            tx.execute(
                "INSERT INTO crm_ledger (sid, kind, status, rank, event_time_ms, event_id, state,
                   updated_at, open_kind, changed_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)
                 ON CONFLICT(sid) DO UPDATE SET kind = ?2, status = ?3, rank = ?4, event_time_ms = ?5,
                   event_id = ?6, state = 'pending', updated_at = ?7, open_kind = ?8,
                   changed_at_ms = ?9",
                rusqlite::params![
                    update.sid,
                    update.kind.as_str(),
                    update.status,
                    update.rank,
                    update.event_time_ms(),
                    update.event_id,
                    now(),
                    (!update.is_final()).then(|| update.kind.as_str()),
                    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
                ],
            )
            .map_err(sql_error)?;
        }
        tx.commit().map_err(sql_error)?;
        Ok(decision)
    }

    async fn settle(&self, update: &StatusUpdate, outcome: Settled) -> Result<(), LedgerError> {
        let conn = self.conn.lock().map_err(|_| LedgerError::Poisoned)?;
        conn.execute(
            "UPDATE crm_ledger SET state = ?1, updated_at = ?2 WHERE sid = ?3 AND event_id = ?4",
            rusqlite::params![outcome.as_str(), now(), update.sid, update.event_id],
        )
        .map_err(sql_error)?;
        Ok(())
    }
}
