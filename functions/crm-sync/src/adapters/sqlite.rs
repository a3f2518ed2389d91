//! `twilio-events serve`: the same processor over a data directory. A SQLite ledger
//! (`<data-dir>/crm-ledger.sqlite3`), and either a real CRM (`--crm-url`) or `<data-dir>/crm.jsonl`,
//! one update a line with the HTTP contract's fields. Refused records go to
//! `<data-dir>/crm-quarantine.jsonl`.

use crate::adapters::{AnyCrm, Crm, CrmError, HttpCrm, Secret};
use crate::ports::{Claim, LedgerError, LedgerRow, Settled, StatusLedger, decide};
use crate::processor::{CrmSync, Settings};
use crate::update::StatusUpdate;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use twilio_events::jsonl::JsonLines;
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::FileQuarantine;

/// Why the local processor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot use the data directory {path}: {why}")]
    DataDir { path: PathBuf, why: String },
    #[error("cannot open the CRM ledger {path}: {why}")]
    Ledger { path: PathBuf, why: String },
    #[error("invalid --crm-url: {0}")]
    CrmUrl(String),
}

/// The status ledger in a SQLite file (WAL), same rules as DynamoDB's.
#[derive(Debug)]
pub struct SqliteStatusLedger {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteStatusLedger {
    pub fn open(path: &Path) -> Result<Self, LocalError> {
        let err = |e: rusqlite::Error| LocalError::Ledger {
            path: path.to_owned(),
            why: e.to_string(),
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
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub fn row(&self, sid: &str) -> Result<Option<LedgerRow>, LedgerError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| LedgerError("lock poisoned".into()))?;
        read_row(&conn, sid)
    }
}

fn sql_error(e: rusqlite::Error) -> LedgerError {
    LedgerError(e.to_string())
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
    async fn claim(&self, update: &StatusUpdate) -> Result<Claim, LedgerError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| LedgerError("lock poisoned".into()))?;
        let tx = conn.transaction().map_err(sql_error)?;
        let claim = decide(read_row(&tx, &update.sid)?.as_ref(), update);
        if claim == Claim::Push {
            tx.execute(
                "INSERT INTO crm_ledger (sid, kind, status, rank, event_time_ms, event_id, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)
                 ON CONFLICT(sid) DO UPDATE SET kind = ?2, status = ?3, rank = ?4, event_time_ms = ?5,
                   event_id = ?6, state = 'pending', updated_at = ?7",
                rusqlite::params![
                    update.sid,
                    update.kind.as_str(),
                    update.status,
                    update.rank,
                    update.event_time_ms(),
                    update.event_id,
                    now()
                ],
            )
            .map_err(sql_error)?;
        }
        tx.commit().map_err(sql_error)?;
        Ok(claim)
    }

    async fn settle(&self, update: &StatusUpdate, outcome: Settled) -> Result<(), LedgerError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| LedgerError("lock poisoned".into()))?;
        conn.execute(
            "UPDATE crm_ledger SET state = ?1, updated_at = ?2 WHERE sid = ?3 AND event_id = ?4",
            rusqlite::params![outcome.as_str(), now(), update.sid, update.event_id],
        )
        .map_err(sql_error)?;
        Ok(())
    }
}

/// A CRM that appends each update it is given to a JSON-lines file.
#[derive(Debug)]
pub struct JsonlCrm {
    file: JsonLines<StatusUpdate>,
}

impl JsonlCrm {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: JsonLines::new(path),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Every update written so far.
    pub fn updates(&self) -> Vec<StatusUpdate> {
        self.file.read_all()
    }
}

impl Crm for JsonlCrm {
    async fn push(&self, update: &StatusUpdate) -> Result<(), CrmError> {
        self.file.append(update).map_err(CrmError::Connection)
    }
}

/// What `serve` runs.
pub type LocalProcessor = CrmSync<SqliteStatusLedger, AnyCrm, FileQuarantine, NoMetrics>;

/// Builds the processor for `twilio-events serve`: an HTTP CRM at `crm_url` (bearer
/// `crm_token`), else `<data_dir>/crm.jsonl`.
pub async fn local_processor(
    data_dir: &Path,
    crm_url: Option<String>,
    crm_token: Option<String>,
) -> Result<LocalProcessor, LocalError> {
    std::fs::create_dir_all(data_dir).map_err(|e| LocalError::DataDir {
        path: data_dir.to_owned(),
        why: e.to_string(),
    })?;
    let crm = match crm_url {
        Some(url) => AnyCrm::Http(
            HttpCrm::new(&url, crm_token.map(Secret::new)).map_err(LocalError::CrmUrl)?,
        ),
        None => AnyCrm::Jsonl(JsonlCrm::new(data_dir.join("crm.jsonl"))),
    };
    Ok(CrmSync::with_settings(
        SqliteStatusLedger::open(&data_dir.join("crm-ledger.sqlite3"))?,
        crm,
        FileQuarantine::new(data_dir.join("crm-quarantine.jsonl")),
        NoMetrics,
        Settings::default(),
    ))
}
