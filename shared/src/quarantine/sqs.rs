use super::{Quarantine, QuarantineError, QuarantinedItem};
use serde::{Deserialize, Serialize};

/// The most an item's message (body plus attributes) may weigh inline, in bytes. SQS refuses
/// messages over 256 KiB (262,144 bytes, body and attributes together; a queue can be set
/// lower, never higher than its limit); this leaves room to spare. A payload grows on its way
/// into a message: JSON escaping up to 6× for control bytes, base64 4/3 for binary.
pub const SQS_INLINE_LIMIT: usize = 240 * 1024;

/// The longest `detail` a pointer repeats (the whole one is in the stored item).
const POINTER_DETAIL_LIMIT: usize = 1024;

/// An SQS queue; each item is one message whose body is the item's JSON, with its id, reason
/// and source as message attributes for filtering and deduplicating a redrive. An item too
/// large for a message goes to the overflow bucket (see
/// [`with_overflow_bucket`](Self::with_overflow_bucket)) as `quarantine/<id>.json`, and the
/// message is a [`QuarantinePointer`] to it (the SQS extended-client pattern).
#[derive(Clone, Debug)]
pub struct SqsQuarantine {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    overflow: Option<OverflowBucket>,
}

#[derive(Clone, Debug)]
struct OverflowBucket {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// Where an item too large for SQS is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Pointer {
    pub bucket: String,
    pub key: String,
}

/// The body of a message that stands for an item stored in S3: where it is, and enough to
/// triage it without fetching it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinePointer {
    pub s3_pointer: S3Pointer,
    pub id: String,
    pub source: String,
    pub reason: String,
    /// The item's detail, cut to 1 KiB.
    pub detail: String,
    pub reference: Option<String>,
    pub quarantined_at: String,
    /// The stored item's size in bytes.
    pub size: usize,
}

/// A quarantine message's body: the item itself, or a pointer to it in S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuarantineMessage {
    Inline(QuarantinedItem),
    Pointer(QuarantinePointer),
}

impl QuarantineMessage {
    /// Reads a message body; a body with an `s3_pointer` field is a pointer.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(body)?;
        if value.get("s3_pointer").is_some() {
            serde_json::from_value(value).map(Self::Pointer)
        } else {
            serde_json::from_value(value).map(Self::Inline)
        }
    }
}

/// Why a quarantine message could not be read back into its item.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineReadError {
    #[error("not a quarantine message (neither an item nor a pointer): {0}")]
    Body(#[source] serde_json::Error),
    #[error(
        "could not fetch s3://{bucket}/{key}: {}; check that the object exists (the bucket's \
         lifecycle may have expired it) and that you may call s3:GetObject on it",
        aws_sdk_s3::error::DisplayErrorContext(.source)
    )]
    Fetch {
        bucket: String,
        key: String,
        #[source]
        source: Box<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>>,
    },
    #[error("could not read the body of s3://{bucket}/{key}: {source}")]
    Download {
        bucket: String,
        key: String,
        #[source]
        source: aws_sdk_s3::primitives::ByteStreamError,
    },
    #[error("s3://{bucket}/{key} is not a quarantined item: {source}")]
    Item {
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("s3://{bucket}/{key} holds item {found}, not item {expected} the pointer names")]
    WrongItem {
        bucket: String,
        key: String,
        expected: String,
        found: String,
    },
}

/// The item a quarantine message body stands for, fetched from S3 when the body is a pointer.
/// For operators' tools (inspecting, redriving) and tests.
pub async fn resolve_message(
    s3: &aws_sdk_s3::Client,
    body: &str,
) -> Result<QuarantinedItem, QuarantineReadError> {
    let pointer = match QuarantineMessage::parse(body).map_err(QuarantineReadError::Body)? {
        QuarantineMessage::Inline(item) => return Ok(item),
        QuarantineMessage::Pointer(pointer) => pointer,
    };
    let S3Pointer { bucket, key } = pointer.s3_pointer;
    let object = match s3.get_object().bucket(&bucket).key(&key).send().await {
        Ok(object) => object,
        Err(source) => {
            return Err(QuarantineReadError::Fetch {
                bucket,
                key,
                source: Box::new(source),
            });
        }
    };
    let bytes = match object.body.collect().await {
        Ok(bytes) => bytes.into_bytes(),
        Err(source) => {
            return Err(QuarantineReadError::Download {
                bucket,
                key,
                source,
            });
        }
    };
    let item: QuarantinedItem = match serde_json::from_slice(&bytes) {
        Ok(item) => item,
        Err(source) => {
            return Err(QuarantineReadError::Item {
                bucket,
                key,
                source,
            });
        }
    };
    if item.id != pointer.id {
        return Err(QuarantineReadError::WrongItem {
            bucket,
            key,
            expected: pointer.id,
            found: item.id,
        });
    }
    Ok(item)
}

impl SqsQuarantine {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            overflow: None,
        }
    }

    /// A deployed function's quarantine: the stack's queue (`QUARANTINE_QUEUE_URL`) and, when the
    /// stack gives one (`QUARANTINE_BUCKET`), its overflow bucket; clients built from `sdk`.
    pub fn deployed(
        sdk: &aws_types::SdkConfig,
        queue_url: impl Into<String>,
        overflow_bucket: Option<&str>,
    ) -> Self {
        let quarantine = Self::new(aws_sdk_sqs::Client::new(sdk), queue_url);
        let Some(bucket) = overflow_bucket else {
            return quarantine;
        };
        // An endpoint override (moto, MinIO, a VPC endpoint URL) serves buckets by path, not by
        // a host name per bucket.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        quarantine.with_overflow_bucket(aws_sdk_s3::Client::from_conf(s3), bucket)
    }

    /// Items too large for an SQS message go to `bucket` under `quarantine/<id>.json`, with a
    /// pointer message in the queue. Without it such an item is refused, never cut.
    pub fn with_overflow_bucket(
        mut self,
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
    ) -> Self {
        self.overflow = Some(OverflowBucket {
            client,
            bucket: bucket.into(),
        });
        self
    }

    async fn send(
        &self,
        id: &str,
        body: String,
        attributes: &[(&str, &str)],
    ) -> Result<(), QuarantineError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body);
        for (name, value) in attributes {
            request = request.message_attributes(*name, attribute(value));
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|source| QuarantineError::Send {
                id: id.to_owned(),
                queue_url: self.queue_url.clone(),
                source: Box::new(source),
            })
    }
}

fn attribute(value: &str) -> aws_sdk_sqs::types::MessageAttributeValue {
    aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap_or_else(|_| unreachable!("data_type is set"))
}

/// What SQS counts: the body, and each attribute's name, type and value.
fn message_size(body: &str, attributes: &[(&str, &str)]) -> usize {
    body.len()
        + attributes
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum::<usize>()
}

/// `text` cut to at most `limit` bytes, on a character boundary.
fn cut(text: &str, limit: usize) -> String {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Quarantine for SqsQuarantine {
    async fn put(&self, item: QuarantinedItem) -> Result<(), QuarantineError> {
        // An item read from an old line may have no id; give it the one it would have now.
        let id = if item.id.is_empty() {
            QuarantinedItem::stable_id(None, &item.source, &item.payload_bytes())
        } else {
            item.id.clone()
        };
        let body = serde_json::to_string(&item).map_err(|source| QuarantineError::Serialize {
            id: id.clone(),
            source,
        })?;
        // SQS refuses an empty attribute value.
        let attributes: Vec<(&str, &str)> = [
            ("id", id.as_str()),
            ("source", item.source.as_str()),
            ("reason", item.reason.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
        let size = message_size(&body, &attributes);
        if size <= SQS_INLINE_LIMIT {
            return self.send(&id, body, &attributes).await;
        }
        let Some(overflow) = &self.overflow else {
            return Err(QuarantineError::TooLargeForQueue {
                id,
                size,
                limit: SQS_INLINE_LIMIT,
            });
        };
        // The key is the id: a retry overwrites the same object instead of adding one.
        let key = format!("quarantine/{id}.json");
        let stored = body.len();
        overflow
            .client
            .put_object()
            .bucket(&overflow.bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await
            .map_err(|source| QuarantineError::Overflow {
                id: id.clone(),
                bucket: overflow.bucket.clone(),
                key: key.clone(),
                source: Box::new(source),
            })?;
        let pointer = QuarantinePointer {
            s3_pointer: S3Pointer {
                bucket: overflow.bucket.clone(),
                key,
            },
            id: id.clone(),
            source: item.source.clone(),
            reason: item.reason.clone(),
            detail: cut(&item.detail, POINTER_DETAIL_LIMIT),
            reference: item.reference.clone(),
            quarantined_at: item.quarantined_at.clone(),
            size: stored,
        };
        let body =
            serde_json::to_string(&pointer).map_err(|source| QuarantineError::Serialize {
                id: id.clone(),
                source,
            })?;
        self.send(&id, body, &attributes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_size_counts_attribute_names_types_and_values() {
        assert_eq!(message_size("abc", &[("id", "x1")]), 3 + 2 + 6 + 2);
    }

    #[test]
    fn a_cut_detail_stays_valid_utf8() {
        assert_eq!(cut("ééé", 3), "é");
        assert_eq!(cut("short", 1024), "short");
    }

    #[test]
    fn a_body_with_an_s3_pointer_parses_as_a_pointer() {
        let item = QuarantinedItem::new("ingest", "malformed", "d", b"x");
        let inline = serde_json::to_string(&item).unwrap();
        assert_eq!(
            QuarantineMessage::parse(&inline).unwrap(),
            QuarantineMessage::Inline(item)
        );
        let pointer = r#"{"s3_pointer":{"bucket":"b","key":"quarantine/i.json"},"id":"i","source":"ingest","reason":"malformed","detail":"d","reference":null,"quarantined_at":"t","size":3}"#;
        let QuarantineMessage::Pointer(p) = QuarantineMessage::parse(pointer).unwrap() else {
            panic!("a pointer");
        };
        assert_eq!(p.s3_pointer.key, "quarantine/i.json");
        assert!(QuarantineMessage::parse("[1]").is_err());
    }
}
