//! Where what cannot be processed is kept, whole, for an operator to inspect and replay: a
//! malformed delivery with a valid signature, an event a CRM refuses for good.
//!
//! In AWS this is an SQS queue (`SqsQuarantine`, feature `aws`): it keeps messages 14 days,
//! shows its depth as a CloudWatch metric an alarm can watch, and can be read, redriven or
//! purged from the console or the CLI. An item too large for an SQS message goes to an S3
//! bucket, with a pointer to it in the queue. Locally it is a JSON-lines file in the data
//! directory (`FileQuarantine`).
//!
//! Every item has a stable [`id`](QuarantinedItem::id) derived from what was received, so a
//! retry of the same unreadable delivery is the same item: the file keeps one line per id, and
//! the queue's messages carry the id for a redrive to deduplicate.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Mutex;

/// One quarantined payload and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedItem {
    /// Stable across retries of the same payload (see [`QuarantinedItem::stable_id`]); empty
    /// in lines written before items had one.
    #[serde(default)]
    pub id: String,
    /// Which component set it aside: `ingest`, `crm-sync`, `quota-alert`.
    pub source: String,
    /// A short machine-readable class (`malformed-delivery`, `crm-rejected`, …).
    pub reason: String,
    /// The human-readable detail (no secrets, no personal data).
    pub detail: String,
    /// The payload as received, UTF-8 when it is, else base64 (see `encoding`).
    pub payload: String,
    /// `utf-8` or `base64`.
    pub encoding: String,
    pub content_type: Option<String>,
    /// The request or record it came from.
    pub reference: Option<String>,
    /// RFC 3339.
    pub quarantined_at: String,
}

impl QuarantinedItem {
    /// An item for `payload`, with the id `stable_id(None, source, payload)`: the same payload
    /// set aside by the same component is the same item. A caller that knows the account and
    /// route sets a finer id with [`with_id`](Self::with_id).
    pub fn new(source: &str, reason: &str, detail: impl Into<String>, payload: &[u8]) -> Self {
        let id = Self::stable_id(None, source, payload);
        let (payload, encoding) = match std::str::from_utf8(payload) {
            Ok(text) => (text.to_owned(), "utf-8"),
            Err(_) => {
                use base64::Engine as _;
                (
                    base64::engine::general_purpose::STANDARD.encode(payload),
                    "base64",
                )
            }
        };
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Self {
            id,
            source: source.to_owned(),
            reason: reason.to_owned(),
            detail: detail.into(),
            payload,
            encoding: encoding.to_owned(),
            content_type: None,
            reference: None,
            quarantined_at: now,
        }
    }

    /// The hex SHA-256 that identifies a payload received on `route` for `account`, the same
    /// for every retry of it. The hash covers each field length-prefixed, so no two different
    /// field splits collide: the account as one byte (0 absent, 1 present) followed, when
    /// present, by its length and bytes; then the route, then the body, each as its length (8
    /// bytes, big-endian) and bytes. Ids are stored: never change this.
    pub fn stable_id(account: Option<&str>, route: &str, body: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        fn field(hash: &mut Sha256, bytes: &[u8]) {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        }
        let mut hash = Sha256::new();
        match account {
            None => hash.update([0]),
            Some(account) => {
                hash.update([1]);
                field(&mut hash, account.as_bytes());
            }
        }
        field(&mut hash, route.as_bytes());
        field(&mut hash, body);
        hex::encode(hash.finalize())
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    pub fn with_content_type(mut self, content_type: Option<&str>) -> Self {
        self.content_type = content_type.map(str::to_owned);
        self
    }

    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// The payload's original bytes.
    pub fn payload_bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        match self.encoding.as_str() {
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(&self.payload)
                .unwrap_or_default(),
            _ => self.payload.clone().into_bytes(),
        }
    }
}

/// Could not quarantine: the caller must not acknowledge what it failed to keep.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("could not write to the quarantine file: {0}")]
    File(#[from] crate::jsonl::JsonLinesError),
    #[error("could not serialise the quarantined item {id}: {source}")]
    Serialize {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[cfg(feature = "aws")]
    #[error(
        "could not send quarantined item {id} to the queue {queue_url}: {}; check \
         QUARANTINE_QUEUE_URL and that the function may call sqs:SendMessage on it",
        aws_sdk_sqs::error::DisplayErrorContext(.source)
    )]
    Send {
        id: String,
        queue_url: String,
        #[source]
        source: Box<
            aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::send_message::SendMessageError>,
        >,
    },
    /// Never truncated, never dropped: without a bucket a large item cannot be kept.
    #[cfg(feature = "aws")]
    #[error(
        "quarantined item {id} is {size} bytes as an SQS message, more than the {limit} bytes \
         kept under SQS's 256 KiB limit, and the quarantine has no overflow bucket: configure \
         one (QUARANTINE_BUCKET, wired with SqsQuarantine::with_overflow_bucket) so large items \
         go to S3 with a pointer in the queue"
    )]
    TooLargeForQueue {
        id: String,
        size: usize,
        limit: usize,
    },
    #[cfg(feature = "aws")]
    #[error(
        "could not store quarantined item {id} as s3://{bucket}/{key}: {}; check that the \
         bucket exists and that the function may call s3:PutObject on it",
        aws_sdk_s3::error::DisplayErrorContext(.source)
    )]
    Overflow {
        id: String,
        bucket: String,
        key: String,
        #[source]
        source: Box<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::put_object::PutObjectError>>,
    },
    #[error("the in-memory quarantine's lock is poisoned (a test panicked while holding it)")]
    Poisoned,
    /// A core that never quarantines was asked to (see [`NoQuarantine`]).
    #[error(
        "item {0} cannot be quarantined: this function has no quarantine (a bug: it only \
         stores events it built itself)"
    )]
    NotConfigured(String),
}

pub trait Quarantine: Send + Sync {
    fn put(
        &self,
        item: QuarantinedItem,
    ) -> impl Future<Output = Result<(), QuarantineError>> + Send;
}

impl<T: Quarantine> Quarantine for std::sync::Arc<T> {
    fn put(
        &self,
        item: QuarantinedItem,
    ) -> impl Future<Output = Result<(), QuarantineError>> + Send {
        (**self).put(item)
    }
}

/// The quarantine of a core that never quarantines anything (reconciliation hands ingest's
/// core only events it built itself): refuses every item, so that a bug shows as a failure
/// rather than as data kept nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoQuarantine;

impl Quarantine for NoQuarantine {
    async fn put(&self, item: QuarantinedItem) -> Result<(), QuarantineError> {
        Err(QuarantineError::NotConfigured(item.id))
    }
}

/// Keeps items in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryQuarantine {
    items: Mutex<Vec<QuarantinedItem>>,
}

impl MemoryQuarantine {
    pub fn items(&self) -> Vec<QuarantinedItem> {
        self.items.lock().map(|i| i.clone()).unwrap_or_default()
    }
}

impl Quarantine for MemoryQuarantine {
    async fn put(&self, item: QuarantinedItem) -> Result<(), QuarantineError> {
        self.items
            .lock()
            .map_err(|_| QuarantineError::Poisoned)?
            .push(item);
        Ok(())
    }
}

mod file;
#[cfg(feature = "aws")]
mod sqs;

pub use file::FileQuarantine;
#[cfg(feature = "aws")]
pub use sqs::{
    QuarantineMessage, QuarantinePointer, QuarantineReadError, S3Pointer, SQS_INLINE_LIMIT,
    SqsQuarantine, resolve_message,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_payloads_survive_as_base64() {
        let item = QuarantinedItem::new("ingest", "malformed-delivery", "not UTF-8", b"\xff\x00ok");
        assert_eq!(item.encoding, "base64");
        assert_eq!(item.payload_bytes(), b"\xff\x00ok");
        let text = QuarantinedItem::new("ingest", "x", "", b"[1]");
        assert_eq!(
            (text.encoding.as_str(), text.payload.as_str()),
            ("utf-8", "[1]")
        );
    }

    #[test]
    fn the_stable_id_is_pinned_because_ids_are_stored() {
        assert_eq!(
            QuarantinedItem::stable_id(Some("AC1"), "/events", b"[1]"),
            // SHA-256(01 | len 3 | "AC1" | len 7 | "/events" | len 3 | "[1]"), computed
            // independently with Python's hashlib.
            "e4fb32f77e19ef4ff508a03a5d193154b606e807d60acef0b05d48d14375d3ed"
        );
    }

    #[test]
    fn the_stable_id_separates_fields_so_no_two_splits_collide() {
        let id = QuarantinedItem::stable_id;
        assert_ne!(id(Some("ab"), "c", b""), id(Some("a"), "bc", b""));
        assert_ne!(id(Some(""), "r", b"x"), id(None, "r", b"x"));
        assert_ne!(id(None, "r", b"x"), id(None, "rx", b""));
        assert_eq!(id(None, "r", b"x"), id(None, "r", b"x"));
    }

    #[test]
    fn an_item_gets_an_id_from_its_source_and_payload() {
        let a = QuarantinedItem::new("ingest", "malformed", "first try", b"{not json");
        let b = QuarantinedItem::new("ingest", "malformed", "a retry", b"{not json");
        assert_eq!(a.id, b.id, "a retry of the same payload is the same item");
        assert_eq!(
            a.id,
            QuarantinedItem::stable_id(None, "ingest", b"{not json")
        );
        assert_ne!(
            a.id,
            QuarantinedItem::new("crm-sync", "x", "", b"{not json").id
        );
        assert_eq!(a.with_id("x").id, "x");
    }

    #[test]
    fn lines_written_before_items_had_an_id_still_read() {
        let old = r#"{"source":"ingest","reason":"malformed","detail":"","payload":"x","encoding":"utf-8","content_type":null,"reference":null,"quarantined_at":"2025-01-01T00:00:00Z"}"#;
        let item: QuarantinedItem = serde_json::from_str(old).unwrap();
        assert_eq!((item.id.as_str(), item.payload.as_str()), ("", "x"));
    }
}
