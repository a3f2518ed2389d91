//! Where what cannot be processed is kept, whole, for an operator to inspect and replay: a
//! malformed delivery with a valid signature, an event a CRM refuses for good.
//!
//! In AWS this is an SQS queue (`SqsQuarantine`, feature `aws`): it keeps messages 14 days,
//! shows its depth as a CloudWatch metric an alarm can watch, and can be read, redriven or
//! purged from the console or the CLI. Locally it is a JSON-lines file in the data directory.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Mutex;

/// One quarantined payload and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedItem {
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
    pub fn new(source: &str, reason: &str, detail: impl Into<String>, payload: &[u8]) -> Self {
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
#[error("could not write to the quarantine: {0}")]
pub struct QuarantineError(pub String);

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
            .map_err(|_| QuarantineError("lock poisoned".into()))?
            .push(item);
        Ok(())
    }
}

mod file;
#[cfg(feature = "aws")]
mod sqs;

pub use file::FileQuarantine;
#[cfg(feature = "aws")]
pub use sqs::SqsQuarantine;

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
}
