//! The embedded store `twilio-events serve` runs on: one SQLite database holding the dedup
//! records, the stream and the consumers' checkpoints.
//!
//! Why SQLite: durable (WAL, `synchronous=FULL`: a delivery answered 200 survives a crash or a
//! power cut), a single file an operator can open with `sqlite3` to look at the stream or the
//! dedup records, and everywhere already. One writer thread commits whatever requests are
//! waiting in one transaction (group commit), so each fsync serves many deliveries.

use crate::ports::{
    DedupClaim, DedupOutcome, DedupStore, DedupStoreError, EntryError, EventPublisher,
    OutgoingRecord, RecordState, StreamPublishError, claim_decision,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, oneshot};
use twilio_events::stream::StreamRecord;

/// How many waiting requests one transaction takes at most.
const MAX_GROUP: usize = 512;

/// What went wrong with the embedded store.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot start the store's writer thread: {0}")]
    StartWriter(#[source] std::io::Error),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("the store's reader is unusable after a panic while reading: restart")]
    ReaderPoisoned,
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction a request was part of could not commit: nothing of it was written.
    #[error("the store could not commit: {0}")]
    Commit(#[source] Arc<rusqlite::Error>),
}

type Reply<T> = oneshot::Sender<Result<T, SqliteError>>;

enum Job {
    Claim(Vec<DedupClaim>, Reply<Vec<DedupOutcome>>),
    Complete(Vec<DedupClaim>, Reply<()>),
    Release(Vec<DedupClaim>, Reply<()>),
    Append(Vec<(String, Vec<u8>)>, Reply<()>),
    /// An append and the completion of its claims, in one savepoint: both or neither.
    AppendAndComplete(Vec<(String, Vec<u8>)>, Vec<DedupClaim>, Reply<()>),
    Checkpoint(String, i64, Reply<()>),
}

/// The database file under a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("twilio-events.db")
}

fn open(path: &Path) -> Result<Connection, SqliteError> {
    let open_error = |source| SqliteError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(open_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_error)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS dedup (
             key TEXT PRIMARY KEY,
             status TEXT NOT NULL,
             token TEXT,
             lease_until_ms INTEGER,
             expires_at_s INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS stream (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             partition_key TEXT NOT NULL,
             data BLOB NOT NULL,
             arrived_at_ms INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS checkpoints (
             consumer TEXT PRIMARY KEY,
             seq INTEGER NOT NULL
         );",
    )
    .map_err(open_error)?;
    Ok(conn)
}

/// The store: dedup records, the stream, checkpoints. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
    appended: Arc<Notify>,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in `data_dir` and starts its writer thread.
    pub fn open(data_dir: &Path) -> Result<Self, SqliteError> {
        std::fs::create_dir_all(data_dir).map_err(|source| SqliteError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = database_path(data_dir);
        let writer = open(&path)?;
        let reader = open(&path)?;
        let (jobs, queue) = mpsc::channel();
        let appended = Arc::new(Notify::new());
        let notify = Arc::clone(&appended);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(writer, queue, notify))
            .map_err(SqliteError::StartWriter)?;
        Ok(Self {
            jobs,
            path,
            appended,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, SqliteError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .map_err(|_| SqliteError::WriterGone)?;
        answer.await.map_err(|_| SqliteError::WriterGone)?
    }

    /// Resolves when records were appended since the last call (or at once if some were).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }

    /// Up to `limit` records after sequence number `after`, in order.
    pub fn read_after(&self, after: i64, limit: usize) -> Result<Vec<StreamRecord>, SqliteError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| SqliteError::ReaderPoisoned)?;
        let mut statement = conn.prepare_cached("SELECT seq, partition_key, data, arrived_at_ms FROM stream WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = statement.query_map(params![after, limit as i64], |row| {
            let arrived_ms: i64 = row.get(3)?;
            Ok(StreamRecord {
                sequence_number: row.get::<_, i64>(0)?.to_string(),
                partition_key: row.get(1)?,
                data: row.get(2)?,
                arrived_at: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(arrived_ms) * 1_000_000,
                )
                .ok(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last sequence number of a record that arrived before `at` (0 for none): where a
    /// consumer's checkpoint goes to replay what arrived from `at` on.
    pub fn sequence_before(&self, at: time::OffsetDateTime) -> Result<i64, SqliteError> {
        let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
        let conn = self
            .reader
            .lock()
            .map_err(|_| SqliteError::ReaderPoisoned)?;
        Ok(conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM stream WHERE arrived_at_ms < ?1",
            [at_ms],
            |r| r.get(0),
        )?)
    }

    /// How many records come after sequence number `after`.
    pub fn count_after(&self, after: i64) -> Result<u64, SqliteError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| SqliteError::ReaderPoisoned)?;
        let count: i64 =
            conn.query_row("SELECT COUNT(*) FROM stream WHERE seq > ?1", [after], |r| {
                r.get(0)
            })?;
        Ok(count.max(0).unsigned_abs())
    }

    /// A consumer's checkpoint: the last sequence number it finished (0 for none).
    pub fn checkpoint(&self, consumer: &str) -> Result<i64, SqliteError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| SqliteError::ReaderPoisoned)?;
        Ok(conn
            .query_row(
                "SELECT seq FROM checkpoints WHERE consumer = ?1",
                [consumer],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    pub async fn save_checkpoint(&self, consumer: &str, seq: i64) -> Result<(), SqliteError> {
        let consumer = consumer.to_owned();
        self.submit(|reply| Job::Checkpoint(consumer, seq, reply))
            .await
    }
}

fn write_loop(mut conn: Connection, queue: mpsc::Receiver<Job>, appended: Arc<Notify>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut any_append = false;
        let result = (|| -> Result<Vec<Result<JobOutput, SqliteError>>, rusqlite::Error> {
            let mut tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut outputs = Vec::with_capacity(group.len());
            for job in &group {
                any_append |= matches!(job, Job::Append(..) | Job::AppendAndComplete(..));
                // Each job in its own savepoint: one that fails leaves nothing half-done.
                let savepoint = tx.savepoint()?;
                match apply(&savepoint, job) {
                    Ok(output) => {
                        savepoint.commit()?;
                        outputs.push(Ok(output));
                    }
                    Err(error) => outputs.push(Err(SqliteError::Sqlite(error))),
                }
            }
            tx.commit()?;
            Ok(outputs)
        })();
        match result {
            Ok(outputs) => {
                for (job, output) in group.into_iter().zip(outputs) {
                    reply(job, output);
                }
                if any_append {
                    appended.notify_waiters();
                    appended.notify_one();
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for job in group {
                    reply(job, Err(SqliteError::Commit(Arc::clone(&error))));
                }
            }
        }
    }
}

enum JobOutput {
    Claims(Vec<DedupOutcome>),
    Done,
}

fn apply(tx: &Connection, job: &Job) -> Result<JobOutput, rusqlite::Error> {
    match job {
        Job::Claim(claims, _) => {
            let mut outcomes = Vec::with_capacity(claims.len());
            for claim in claims {
                let existing = tx
                    .query_row(
                        "SELECT status, token, lease_until_ms, expires_at_s FROM dedup WHERE key = ?1",
                        [&claim.key],
                        |row| {
                            let status: String = row.get(0)?;
                            let expires_at_s: i64 = row.get(3)?;
                            Ok(if status == "COMPLETED" {
                                RecordState::Completed { expires_at_s }
                            } else {
                                RecordState::InProgress {
                                    token: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                                    lease_until_ms: row.get::<_, Option<i64>>(2)?.unwrap_or(0),
                                    expires_at_s,
                                }
                            })
                        },
                    )
                    .optional()?;
                let outcome = claim_decision(existing.as_ref(), claim);
                if matches!(outcome, DedupOutcome::Claimed) {
                    tx.execute(
                        "INSERT OR REPLACE INTO dedup (key, status, token, lease_until_ms, expires_at_s) VALUES (?1, 'INPROGRESS', ?2, ?3, ?4)",
                        params![claim.key, claim.token, claim.lease_until_ms, claim.expires_at_s],
                    )?;
                }
                outcomes.push(outcome);
            }
            Ok(JobOutput::Claims(outcomes))
        }
        Job::Complete(claims, _) => {
            complete(tx, claims)?;
            Ok(JobOutput::Done)
        }
        Job::Release(claims, _) => {
            for claim in claims {
                tx.execute(
                    "DELETE FROM dedup WHERE key = ?1 AND status = 'INPROGRESS' AND token = ?2",
                    params![claim.key, claim.token],
                )?;
            }
            Ok(JobOutput::Done)
        }
        Job::Append(records, _) => {
            append(tx, records)?;
            Ok(JobOutput::Done)
        }
        Job::AppendAndComplete(records, claims, _) => {
            append(tx, records)?;
            complete(tx, claims)?;
            Ok(JobOutput::Done)
        }
        Job::Checkpoint(consumer, seq, _) => {
            tx.execute(
                "INSERT OR REPLACE INTO checkpoints (consumer, seq) VALUES (?1, ?2)",
                params![consumer, seq],
            )?;
            Ok(JobOutput::Done)
        }
    }
}

fn append(tx: &Connection, records: &[(String, Vec<u8>)]) -> Result<(), rusqlite::Error> {
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let mut insert = tx.prepare_cached(
        "INSERT INTO stream (partition_key, data, arrived_at_ms) VALUES (?1, ?2, ?3)",
    )?;
    for (key, data) in records {
        insert.execute(params![key, data, now_ms])?;
    }
    Ok(())
}

fn complete(tx: &Connection, claims: &[DedupClaim]) -> Result<(), rusqlite::Error> {
    for claim in claims {
        tx.execute(
            "INSERT OR REPLACE INTO dedup (key, status, token, lease_until_ms, expires_at_s) VALUES (?1, 'COMPLETED', NULL, NULL, ?2)",
            params![claim.key, claim.expires_at_s],
        )?;
    }
    Ok(())
}

fn reply(job: Job, output: Result<JobOutput, SqliteError>) {
    // A caller that stopped waiting (its request timed out) is not an error here.
    match job {
        Job::Claim(_, tx) => {
            let _ = tx.send(output.map(|o| match o {
                JobOutput::Claims(c) => c,
                JobOutput::Done => Vec::new(),
            }));
        }
        Job::Complete(_, tx)
        | Job::Release(_, tx)
        | Job::Append(_, tx)
        | Job::AppendAndComplete(_, _, tx)
        | Job::Checkpoint(_, _, tx) => {
            let _ = tx.send(output.map(|_| ()));
        }
    }
}

impl DedupStore for SqliteStore {
    async fn claim(&self, claims: &[DedupClaim]) -> Vec<DedupOutcome> {
        let claims_owned = claims.to_vec();
        match self.submit(|reply| Job::Claim(claims_owned, reply)).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                let error = DedupStoreError::backend(error);
                claims
                    .iter()
                    .map(|_| DedupOutcome::Failed(error.clone()))
                    .collect()
            }
        }
    }

    async fn complete(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        let claims = claims.to_vec();
        self.submit(|reply| Job::Complete(claims, reply))
            .await
            .map_err(DedupStoreError::backend)
    }

    async fn release(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        let claims = claims.to_vec();
        self.submit(|reply| Job::Release(claims, reply))
            .await
            .map_err(DedupStoreError::backend)
    }
}

impl EventPublisher for SqliteStore {
    async fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> Result<Vec<Result<(), EntryError>>, StreamPublishError> {
        let owned: Vec<(String, Vec<u8>)> = records
            .iter()
            .map(|r| (r.partition_key.to_owned(), r.data.to_vec()))
            .collect();
        let n = owned.len();
        self.submit(|reply| Job::Append(owned, reply))
            .await
            .map_err(StreamPublishError::new)?;
        Ok(vec![Ok(()); n])
    }

    async fn put_records_and_complete(
        &self,
        records: &[OutgoingRecord<'_>],
        completed: &[DedupClaim],
    ) -> Option<Result<(), StreamPublishError>> {
        let owned: Vec<(String, Vec<u8>)> = records
            .iter()
            .map(|r| (r.partition_key.to_owned(), r.data.to_vec()))
            .collect();
        let claims = completed.to_vec();
        Some(
            self.submit(|reply| Job::AppendAndComplete(owned, claims, reply))
                .await
                .map_err(StreamPublishError::new),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(key: &str, now_ms: i64) -> DedupClaim {
        DedupClaim {
            key: key.into(),
            token: format!("t-{now_ms}"),
            lease_until_ms: now_ms + 5_000,
            expires_at_s: now_ms / 1000 + 3_600,
            now_ms,
        }
    }

    #[tokio::test]
    async fn an_append_and_the_completion_of_its_claims_are_one_transaction() {
        let dir =
            std::env::temp_dir().join(format!("local-store-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).unwrap();
        let record = OutgoingRecord {
            partition_key: "SM1",
            data: b"{\"id\":\"a\"}",
        };
        // GIVEN a claimed event, WHEN it is appended and completed in one step
        assert_eq!(
            store.claim(&[claim("a", 1_000)]).await,
            vec![DedupOutcome::Claimed]
        );
        let done = store
            .put_records_and_complete(&[record], &[claim("a", 1_000)])
            .await;
        // THEN both happened: the record is in the stream and, past the lease, the event is
        // a duplicate (COMPLETED), not claimable again
        assert!(matches!(done, Some(Ok(()))));
        assert_eq!(store.read_after(0, 10).unwrap().len(), 1);
        assert_eq!(
            store.claim(&[claim("a", 60_000)]).await,
            vec![DedupOutcome::Duplicate]
        );

        // GIVEN the completion cannot be written (a trigger refuses it, as a full disk would)
        Connection::open(database_path(&dir))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse_completion BEFORE INSERT ON dedup
                 WHEN NEW.status = 'COMPLETED' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        assert_eq!(
            store.claim(&[claim("b", 1_000)]).await,
            vec![DedupOutcome::Claimed]
        );
        let refused = store
            .put_records_and_complete(
                &[OutgoingRecord {
                    partition_key: "SM2",
                    data: b"{\"id\":\"b\"}",
                }],
                &[claim("b", 1_000)],
            )
            .await;
        // THEN neither happened: no record in the stream, the claim still in progress
        assert!(matches!(refused, Some(Err(_))));
        assert_eq!(store.read_after(0, 10).unwrap().len(), 1);
        assert_eq!(
            store.claim(&[claim("b", 2_000)]).await,
            vec![DedupOutcome::InProgress]
        );
    }

    #[tokio::test]
    async fn dedup_and_stream_survive_a_reopen() {
        let dir =
            std::env::temp_dir().join(format!("local-store-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            // GIVEN an event claimed, published and completed
            let store = SqliteStore::open(&dir).unwrap();
            assert_eq!(
                store.claim(&[claim("a", 1_000)]).await,
                vec![DedupOutcome::Claimed]
            );
            let record = OutgoingRecord {
                partition_key: "SM1",
                data: b"{\"id\":\"a\"}",
            };
            assert_eq!(store.put_records(&[record]).await.unwrap(), vec![Ok(())]);
            store.complete(&[claim("a", 1_000)]).await.unwrap();
            assert_eq!(
                store.claim(&[claim("b", 1_000)]).await,
                vec![DedupOutcome::Claimed]
            );
            store.save_checkpoint("crm-sync", 1).await.unwrap();
        }
        // WHEN the store is opened again
        let store = SqliteStore::open(&dir).unwrap();
        // THEN the completed event is a duplicate, the live claim in progress, the stream intact
        assert_eq!(
            store.claim(&[claim("a", 2_000)]).await,
            vec![DedupOutcome::Duplicate]
        );
        assert_eq!(
            store.claim(&[claim("b", 2_000)]).await,
            vec![DedupOutcome::InProgress]
        );
        assert_eq!(
            store.claim(&[claim("b", 7_000)]).await,
            vec![DedupOutcome::Claimed],
            "its lease ran out"
        );
        let records = store.read_after(0, 10).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (
                records[0].partition_key.as_str(),
                records[0].data.as_slice()
            ),
            ("SM1", &b"{\"id\":\"a\"}"[..])
        );
        assert_eq!(store.checkpoint("crm-sync").unwrap(), 1);
        assert_eq!(store.checkpoint("other").unwrap(), 0);
    }

    #[tokio::test]
    async fn a_release_only_drops_its_own_claim() {
        let dir =
            std::env::temp_dir().join(format!("local-store-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).unwrap();
        let mine = claim("k", 1_000);
        store.claim(std::slice::from_ref(&mine)).await;
        let mut other = mine.clone();
        other.token = "someone-else".into();
        store.release(&[other]).await.unwrap();
        assert_eq!(
            store.claim(&[claim("k", 1_500)]).await,
            vec![DedupOutcome::InProgress]
        );
        store.release(&[mine]).await.unwrap();
        assert_eq!(
            store.claim(&[claim("k", 1_500)]).await,
            vec![DedupOutcome::Claimed]
        );
    }
}
