//! The SQLite adapter of `twilio-events serve --quotas FILE`: counters, event ids and alert
//! claims in one database in the data directory.

use crate::ports::{
    AlertClaim, AlertClaimOutcome, AlertLedger, AlertLedgerError, CounterError, HeldAlertClaim,
    Increment, Recorded, UsageCounter, decide_alert_claim, is_recorded, wall_clock,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What went wrong with the database; the ports' errors carry it as their cause.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot create the data directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the quota database {path}: {source} (check the data directory)")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("the database connection is unusable: a thread panicked while holding it; restart")]
    Poisoned,
}

/// Counters, event ids and alert claims in SQLite (WAL), with the DynamoDB adapter's contract.
#[derive(Debug)]
pub struct SqliteUsageCounter {
    conn: Mutex<Connection>,
}

impl SqliteUsageCounter {
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| SqliteError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| SqliteError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS quota_events (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS quota_usage (counter TEXT NOT NULL, bucket INTEGER NOT NULL,
                 used REAL NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (counter, bucket));
             CREATE TABLE IF NOT EXISTS quota_alerts (key TEXT PRIMARY KEY, claim_id TEXT NOT NULL,
                 event_id TEXT NOT NULL, used REAL NOT NULL, at INTEGER NOT NULL,
                 rearm_at INTEGER NOT NULL, lease_until INTEGER NOT NULL, sent INTEGER NOT NULL);",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, SqliteError> {
        let mut conn = self.conn.lock().map_err(|_| SqliteError::Poisoned)?;
        Ok(f(&mut conn)?)
    }
}

impl UsageCounter for SqliteUsageCounter {
    async fn record(
        &self,
        event_id: &str,
        event_expires_at: i64,
        increments: &[Increment],
    ) -> Result<Recorded, CounterError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let seen: Option<i64> = tx
                .query_row(
                    "SELECT expires_at FROM quota_events WHERE id = ?1",
                    params![event_id],
                    |r| r.get(0),
                )
                .optional()?;
            if is_recorded(seen, wall_clock()) {
                return Ok(Recorded::Duplicate);
            }
            tx.execute(
                "INSERT OR REPLACE INTO quota_events (id, expires_at) VALUES (?1, ?2)",
                params![event_id, event_expires_at],
            )?;
            for inc in increments {
                tx.execute(
                    "INSERT INTO quota_usage (counter, bucket, used, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (counter, bucket) DO UPDATE SET used = used + excluded.used,
                     expires_at = excluded.expires_at",
                    params![inc.counter, inc.bucket, inc.amount, inc.expires_at],
                )?;
            }
            tx.commit()?;
            Ok(Recorded::Counted)
        })
        .map_err(|e| CounterError::new("record", e))
    }

    async fn usage(
        &self,
        counter: &str,
        first_bucket: i64,
        last_bucket: i64,
    ) -> Result<f64, CounterError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT COALESCE(SUM(used), 0) FROM quota_usage WHERE counter = ?1 AND bucket BETWEEN ?2 AND ?3",
                params![counter, first_bucket, last_bucket],
                |r| r.get(0),
            )
        })
        .map_err(|e| CounterError::new("usage", e))
    }
}

impl AlertLedger for SqliteUsageCounter {
    async fn claim(&self, claim: &AlertClaim) -> Result<AlertClaimOutcome, AlertLedgerError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let held = tx
                .query_row(
                    "SELECT rearm_at, lease_until, sent FROM quota_alerts WHERE key = ?1",
                    params![claim.key],
                    |r| {
                        Ok(HeldAlertClaim {
                            rearm_at: r.get(0)?,
                            lease_until: r.get(1)?,
                            sent: r.get(2)?,
                        })
                    },
                )
                .optional()?;
            let outcome = decide_alert_claim(held.as_ref(), claim, wall_clock());
            if outcome != AlertClaimOutcome::Claimed {
                return Ok(outcome);
            }
            tx.execute(
                "INSERT OR REPLACE INTO quota_alerts (key, claim_id, event_id, used, at, rearm_at, lease_until, sent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![
                    claim.key,
                    claim.claim_id,
                    claim.event_id,
                    claim.used,
                    claim.at,
                    claim.rearm_at,
                    claim.lease_until
                ],
            )?;
            tx.commit()?;
            Ok(AlertClaimOutcome::Claimed)
        })
        .map_err(|e| AlertLedgerError::new("claim", e))
    }

    async fn confirm(&self, claim: &AlertClaim) -> Result<(), AlertLedgerError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE quota_alerts SET sent = 1 WHERE key = ?1 AND claim_id = ?2",
                params![claim.key, claim.claim_id],
            )
            .map(|_| ())
        })
        .map_err(|e| AlertLedgerError::new("confirm", e))
    }

    async fn release(&self, claim: &AlertClaim) -> Result<(), AlertLedgerError> {
        self.with(|conn| {
            conn.execute(
                "DELETE FROM quota_alerts WHERE key = ?1 AND claim_id = ?2",
                params![claim.key, claim.claim_id],
            )
            .map(|_| ())
        })
        .map_err(|e| AlertLedgerError::new("release", e))
    }
}
