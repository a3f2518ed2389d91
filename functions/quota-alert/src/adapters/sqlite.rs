//! The SQLite adapter of `twilio-events serve --quotas FILE`: counters, event ids and alert
//! claims in one database in the data directory.

use crate::ports::{
    AlertClaim, AlertLedger, Claim, Increment, Recorded, StoreError, UsageCounter, wall_clock,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// Counters, event ids and alert claims in SQLite (WAL), with the DynamoDB adapter's contract.
#[derive(Debug)]
pub struct SqliteUsageCounter {
    conn: Mutex<Connection>,
}

fn sql(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::new(operation, e.to_string())
}

impl SqliteUsageCounter {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::new("open", format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::new("open", format!("{}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("open"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("open"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("open"))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS quota_events (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS quota_usage (counter TEXT NOT NULL, bucket INTEGER NOT NULL,
                 used REAL NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (counter, bucket));
             CREATE TABLE IF NOT EXISTS quota_alerts (key TEXT PRIMARY KEY, claim_id TEXT NOT NULL,
                 event_id TEXT NOT NULL, used REAL NOT NULL, at INTEGER NOT NULL,
                 rearm_at INTEGER NOT NULL, lease_until INTEGER NOT NULL, sent INTEGER NOT NULL);",
        )
        .map_err(sql("open"))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::new(operation, "lock poisoned"))?;
        f(&mut conn).map_err(sql(operation))
    }
}

impl UsageCounter for SqliteUsageCounter {
    async fn record(
        &self,
        event_id: &str,
        event_expires_at: i64,
        increments: &[Increment],
    ) -> Result<Recorded, StoreError> {
        self.with("record", |conn| {
            let tx = conn.transaction()?;
            let seen: Option<i64> = tx
                .query_row(
                    "SELECT expires_at FROM quota_events WHERE id = ?1",
                    params![event_id],
                    |r| r.get(0),
                )
                .optional()?;
            if seen.is_some_and(|expires| expires >= wall_clock()) {
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
    }

    async fn usage(
        &self,
        counter: &str,
        first_bucket: i64,
        last_bucket: i64,
    ) -> Result<f64, StoreError> {
        self.with("usage", |conn| {
            conn.query_row(
                "SELECT COALESCE(SUM(used), 0) FROM quota_usage WHERE counter = ?1 AND bucket BETWEEN ?2 AND ?3",
                params![counter, first_bucket, last_bucket],
                |r| r.get(0),
            )
        })
    }
}

impl AlertLedger for SqliteUsageCounter {
    async fn claim(&self, claim: &AlertClaim) -> Result<Claim, StoreError> {
        self.with("claim", |conn| {
            let tx = conn.transaction()?;
            let old: Option<(i64, i64, bool)> = tx
                .query_row(
                    "SELECT rearm_at, lease_until, sent FROM quota_alerts WHERE key = ?1",
                    params![claim.key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((rearm_at, lease_until, sent)) = old {
                let rearmed = rearm_at <= claim.at;
                let abandoned = !sent && lease_until < wall_clock();
                if !rearmed && !abandoned {
                    return Ok(if sent {
                        Claim::AlreadySent
                    } else {
                        Claim::InFlight
                    });
                }
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
            Ok(Claim::Claimed)
        })
    }

    async fn confirm(&self, claim: &AlertClaim) -> Result<(), StoreError> {
        self.with("confirm", |conn| {
            conn.execute(
                "UPDATE quota_alerts SET sent = 1 WHERE key = ?1 AND claim_id = ?2",
                params![claim.key, claim.claim_id],
            )
            .map(|_| ())
        })
    }

    async fn release(&self, claim: &AlertClaim) -> Result<(), StoreError> {
        self.with("release", |conn| {
            conn.execute(
                "DELETE FROM quota_alerts WHERE key = ?1 AND claim_id = ?2",
                params![claim.key, claim.claim_id],
            )
            .map(|_| ())
        })
    }
}
