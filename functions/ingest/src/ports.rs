//! What ingest needs from the outside world, one narrow trait per store, and the rules every
//! implementation shares. The implementations are in [`crate::adapters`]: DynamoDB, Kinesis
//! and Secrets Manager on AWS, SQLite and a secret file under `twilio-events serve`, in-memory
//! fakes for tests.

use futures_util::future::BoxFuture;
use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use twilio_events::signature::{SecretDocumentError, SecretSet};

/// What went wrong underneath a port (an SDK error, a database error), kept as the source.
pub type Cause = Box<dyn Error + Send + Sync>;

/// A claim on one event id, Powertools-style: INPROGRESS with a lease until it is marked
/// COMPLETED (published) or released (publishing failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupClaim {
    /// `<account>#<event id>`: ids are unique per account.
    pub key: String,
    /// Identifies this attempt, so that only it can release its claim.
    pub token: String,
    /// Until when another attempt must treat the event as in progress (ms since the epoch).
    pub lease_until_ms: i64,
    /// When the record stops counting (s since the epoch), checked in code and set as TTL.
    pub expires_at_s: i64,
    /// The claimer's clock (ms since the epoch): records expired or with an expired lease
    /// before it can be claimed again.
    pub now_ms: i64,
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DedupOutcome {
    /// New (or expired, or abandoned by an attempt whose lease ran out): ours to publish.
    Claimed,
    /// Already published.
    Duplicate,
    /// Another attempt holds a live lease: Twilio must retry later.
    InProgress,
    /// The store could not answer for this event (throttling, an outage).
    Failed(DedupStoreError),
}

/// What a dedup store holds for one event id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordState {
    InProgress {
        token: String,
        lease_until_ms: i64,
        expires_at_s: i64,
    },
    Completed {
        expires_at_s: i64,
    },
}

/// Whether `claim` may take the event, given what the store holds for it: the one rule every
/// dedup store follows. The SQLite and in-memory stores call it; the DynamoDB store states the
/// same rule as its PutItem condition.
pub fn claim_decision(existing: Option<&RecordState>, claim: &DedupClaim) -> DedupOutcome {
    let now_s = claim.now_ms.div_euclid(1000);
    match existing {
        None => DedupOutcome::Claimed,
        Some(RecordState::Completed { expires_at_s }) if *expires_at_s <= now_s => {
            DedupOutcome::Claimed
        }
        Some(RecordState::Completed { .. }) => DedupOutcome::Duplicate,
        Some(RecordState::InProgress {
            lease_until_ms,
            expires_at_s,
            ..
        }) if *lease_until_ms <= claim.now_ms || *expires_at_s <= now_s => DedupOutcome::Claimed,
        Some(RecordState::InProgress { .. }) => DedupOutcome::InProgress,
    }
}

/// The dedup store could not do what was asked: for one claim (in [`DedupOutcome::Failed`]) or
/// for a whole call. Cheap to clone, so that one failed round trip can answer every claim in it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DedupStoreError {
    /// The store's backend failed (throttled, unreachable, refused the call): see the source.
    #[error("the dedup store failed: {0}")]
    Backend(#[source] Arc<dyn Error + Send + Sync>),
    /// The store answered fewer claims than it was given; those without an answer are treated
    /// as not claimed, and Twilio's retry claims them again.
    #[error("the dedup store gave no outcome for this claim")]
    NoOutcome,
}

impl DedupStoreError {
    /// A failure of the store's backend, with its cause.
    pub fn backend(cause: impl Into<Cause>) -> Self {
        Self::Backend(Arc::from(cause.into()))
    }
}

/// Errors from backends do not compare, so two failures are equal when they say the same:
/// enough for tests that compare outcomes.
impl PartialEq for DedupStoreError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for DedupStoreError {}

/// Deduplication by event id. Implementations answer a whole delivery in one round trip.
pub trait DedupStore: Send + Sync {
    /// Claims each event; outcomes in the order of `claims`.
    fn claim(&self, claims: &[DedupClaim]) -> impl Future<Output = Vec<DedupOutcome>> + Send;

    /// Marks published events COMPLETED (until `expires_at_s`).
    fn complete(
        &self,
        claims: &[DedupClaim],
    ) -> impl Future<Output = Result<(), DedupStoreError>> + Send;

    /// Gives up claims whose events could not be published, so that Twilio's retry can
    /// claim them again at once instead of waiting for the lease to run out.
    fn release(
        &self,
        claims: &[DedupClaim],
    ) -> impl Future<Output = Result<(), DedupStoreError>> + Send;
}

/// One record for the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutgoingRecord<'a> {
    pub partition_key: &'a str,
    pub data: &'a [u8],
}

/// Why the stream did not store one record of a put (Kinesis answers each entry: its
/// ErrorCode and ErrorMessage). The core retries the record either way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// ProvisionedThroughputExceededException: the shard is over its write limit for now.
    #[error("the shard is over its write throughput: {message}")]
    Throttled { message: String },
    /// InternalFailure, or a code this version does not know.
    #[error("the stream could not store the record ({code}): {message}")]
    Failed { code: String, message: String },
}

impl EntryError {
    /// From an entry's ErrorCode and ErrorMessage.
    pub fn from_code(code: &str, message: &str) -> Self {
        match code {
            "ProvisionedThroughputExceededException" => Self::Throttled {
                message: message.to_owned(),
            },
            _ => Self::Failed {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        }
    }
}

/// The whole put failed (throttled, unreachable, …); nothing of it was stored.
#[derive(Debug, thiserror::Error)]
#[error("the stream did not take the put: {source}")]
pub struct StreamPublishError {
    #[source]
    source: Cause,
}

impl StreamPublishError {
    pub fn new(cause: impl Into<Cause>) -> Self {
        Self {
            source: cause.into(),
        }
    }
}

/// Limits of one put, as Kinesis PutRecords sets them.
pub const MAX_RECORDS_PER_PUT: usize = 500;
pub const MAX_BYTES_PER_PUT: usize = 5 * 1024 * 1024;

/// The stream. One call stores at most [`MAX_RECORDS_PER_PUT`] records and
/// [`MAX_BYTES_PER_PUT`] bytes (data plus partition keys); the core splits and retries.
pub trait EventPublisher: Send + Sync {
    /// Stores `records`, answering each entry in order (Kinesis PutRecords semantics: some
    /// entries may fail while others succeed).
    fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> impl Future<Output = Result<Vec<Result<(), EntryError>>, StreamPublishError>> + Send;

    /// Stores every record and marks `completed` COMPLETED in one atomic step, for a backend
    /// that holds the stream and the dedup records together (the embedded store: one SQLite
    /// transaction), so that a crash between the two can leave no event in the stream whose
    /// claim is still INPROGRESS (which a redelivery after the lease would store again).
    /// `None`: this backend cannot; the core publishes, then completes (the AWS path, with its
    /// documented window). `Some(Err)`: nothing was stored.
    fn put_records_and_complete(
        &self,
        _records: &[OutgoingRecord<'_>],
        _completed: &[DedupClaim],
    ) -> impl Future<Output = Option<Result<(), StreamPublishError>>> + Send {
        std::future::ready(None)
    }
}

/// The time source, injectable so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Where the Twilio secret document is read from: at start, and again when a signature fails
/// and the copy in hand may be older than a rotation (Secrets Manager on AWS, the
/// `--secrets-file` under `serve`).
///
/// Unlike the other ports it returns a boxed future: it is called at most once a minute, and a
/// trait object keeps it out of [`crate::Ingest`]'s type parameters.
pub trait SecretSource: Send + Sync {
    /// The secrets as the source holds them now.
    fn read(&self) -> BoxFuture<'_, Result<SecretSet, SecretSourceError>>;
}

/// The secret could not be read again; the secrets in hand stay in use.
#[derive(Debug, thiserror::Error)]
pub enum SecretSourceError {
    /// Secrets Manager or the file could not be read: see the source.
    #[error("could not read the Twilio secret: {0}")]
    Unreadable(#[source] Cause),
    /// It was read, but is not a secret document this version understands.
    #[error("the Twilio secret cannot be used ({0}); fix it, the secrets in use stay")]
    Document(#[source] SecretDocumentError),
}

/// Whether the secret read at `last_read` may be read again at `now`: only once `every` has
/// passed, so that a burst of forged requests (each a signature failure) costs at most one
/// read per `every` per instance, never one per request.
pub fn secret_refresh_due(last_read: OffsetDateTime, now: OffsetDateTime, every: Duration) -> bool {
    now - last_read >= every
}

/// The quarantine's stable id of an unreadable payload received on `route` (its path) under
/// the secret of `account`: the shared crate's recipe (`QuarantinedItem::stable_id`), so that the
/// dedup claim and the quarantined item name the same thing. Ids are stored: never change it.
pub fn quarantine_id(account: Option<&str>, route: &str, body: &[u8]) -> String {
    twilio_events::quarantine::QuarantinedItem::stable_id(account, route, body)
}

/// The dedup key that claims one quarantined payload, beside the events' `<account>#<id>`
/// keys: retries of the same unreadable delivery find it and keep one item.
pub fn quarantine_claim_key(id: &str) -> String {
    format!("quarantine#{id}")
}

impl<T: DedupStore> DedupStore for Arc<T> {
    fn claim(&self, claims: &[DedupClaim]) -> impl Future<Output = Vec<DedupOutcome>> + Send {
        (**self).claim(claims)
    }

    fn complete(
        &self,
        claims: &[DedupClaim],
    ) -> impl Future<Output = Result<(), DedupStoreError>> + Send {
        (**self).complete(claims)
    }

    fn release(
        &self,
        claims: &[DedupClaim],
    ) -> impl Future<Output = Result<(), DedupStoreError>> + Send {
        (**self).release(claims)
    }
}

impl<T: EventPublisher> EventPublisher for Arc<T> {
    fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> impl Future<Output = Result<Vec<Result<(), EntryError>>, StreamPublishError>> + Send {
        (**self).put_records(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_lease_and_expiry_in_code() {
        let claim = |now_ms| DedupClaim {
            key: "k".into(),
            token: "t".into(),
            lease_until_ms: now_ms + 1000,
            expires_at_s: now_ms / 1000 + 100,
            now_ms,
        };
        let live = RecordState::InProgress {
            token: "x".into(),
            lease_until_ms: 5_000,
            expires_at_s: 100,
        };
        assert_eq!(
            claim_decision(Some(&live), &claim(4_999)),
            DedupOutcome::InProgress
        );
        assert_eq!(
            claim_decision(Some(&live), &claim(5_000)),
            DedupOutcome::Claimed,
            "the lease ran out"
        );
        let done = RecordState::Completed { expires_at_s: 100 };
        assert_eq!(
            claim_decision(Some(&done), &claim(99_999)),
            DedupOutcome::Duplicate
        );
        assert_eq!(
            claim_decision(Some(&done), &claim(100_000)),
            DedupOutcome::Claimed,
            "expired, whatever TTL did"
        );
        assert_eq!(claim_decision(None, &claim(0)), DedupOutcome::Claimed);
    }

    #[test]
    fn the_secret_is_read_again_at_most_once_per_interval() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let minute = Duration::from_secs(60);
        assert!(!secret_refresh_due(t0, t0, minute));
        assert!(!secret_refresh_due(
            t0,
            t0 + Duration::from_secs(59),
            minute
        ));
        assert!(secret_refresh_due(t0, t0 + minute, minute));
        // A clock that went back is not a reason to read.
        assert!(!secret_refresh_due(t0, t0 - minute, minute));
    }

    #[test]
    fn quarantine_ids_are_stable_and_length_prefixed() {
        let id = quarantine_id(Some("AC1"), "/twilio/events", b"{not json");
        assert_eq!(
            id,
            quarantine_id(Some("AC1"), "/twilio/events", b"{not json")
        );
        assert_eq!(id.len(), 64);
        // The shared crate's QuarantinedItem::stable_id gives this for the same fields.
        assert_eq!(
            quarantine_id(None, "/twilio/events", b"{not json"),
            "9751a2f450b3072a922ed610fc83aa643e55f46d0f83e56bd0f39e792880b7b0"
        );
        assert_ne!(
            quarantine_id(Some("AC1"), "/twilio/events", b"x"),
            quarantine_id(Some("AC1/twilio/events"), "", b"x"),
            "moving bytes between fields changes the id"
        );
        assert_ne!(id, quarantine_id(None, "/twilio/events", b"{not json"));
        assert_eq!(quarantine_claim_key("ab"), "quarantine#ab");
    }
}
