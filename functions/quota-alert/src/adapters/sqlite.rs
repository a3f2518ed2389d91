//! quota-alert inside `twilio-events serve --quotas FILE`: the same core, with a SQLite store
//! in the data directory and alerts printed to stderr and appended to `<data-dir>/alerts.jsonl`.

use crate::alert::{Alert, AlertPublisher, PublishError};
use crate::config::{Config, ConfigError};
use crate::ports::{
    AlertClaim, AlertLedger, Claim, Increment, Recorded, StoreError, UsageCounter, wall_clock,
};
use crate::processor::QuotaAlert;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use twilio_events::jsonl::JsonLines;
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::FileQuarantine;
use twilio_events::stream::BatchProcessor;

/// Setting up the local processor failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds the whole quota-alert processor for `serve`: the quotas from `quotas_file` (validated:
/// a bad file fails here, naming the field), counters in `<data_dir>/quota-alert.sqlite`, alerts
/// to stderr and `<data_dir>/alerts.jsonl`, malformed records to `<data_dir>/quarantine.jsonl`.
pub fn local_processor(
    data_dir: &Path,
    quotas_file: &Path,
) -> Result<impl BatchProcessor + use<>, LocalError> {
    let config = Config::from_file(quotas_file)?;
    let store = SqliteUsageCounter::open(&data_dir.join("quota-alert.sqlite"))?;
    let publisher = FileAlertPublisher::new(data_dir.join("alerts.jsonl"));
    let quarantine = FileQuarantine::new(data_dir.join("quarantine.jsonl"));
    Ok(QuotaAlert::new(
        config, store, publisher, NoMetrics, quarantine,
    ))
}

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

/// Prints each alert to stderr and appends its JSON to a file, one object a line.
#[derive(Debug)]
pub struct FileAlertPublisher {
    file: JsonLines<Alert>,
}

impl FileAlertPublisher {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: JsonLines::new(path),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Every alert written so far.
    pub fn alerts(&self) -> Vec<Alert> {
        self.file.read_all()
    }
}

impl AlertPublisher for FileAlertPublisher {
    async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        self.file.append(alert).map_err(|detail| PublishError {
            quota: alert.quota.clone(),
            detail,
        })?;
        eprintln!("quota alert: {}", alert.summary);
        Ok(())
    }
}
