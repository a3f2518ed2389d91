//! The SQS quarantine against moto_server: small items inline, items too large for an SQS
//! message in S3 behind a pointer, never cut, always carrying their id.

use crate::helpers::{moto_clients, moto_sdk, unique};
use aws_sdk_sqs::types::Message;
use twilio_events::quarantine::{
    Quarantine, QuarantineError, QuarantineMessage, QuarantinedItem, SQS_INLINE_LIMIT,
    SqsQuarantine, resolve_message,
};

struct Setup {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    queue_url: String,
    bucket: String,
}

async fn setup() -> Setup {
    let (sqs, s3) = moto_clients().await;
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("quarantine"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let bucket = unique("quarantine-overflow");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    Setup {
        sqs,
        s3,
        queue_url,
        bucket,
    }
}

impl Setup {
    fn quarantine(&self) -> SqsQuarantine {
        SqsQuarantine::new(self.sqs.clone(), &self.queue_url)
            .with_overflow_bucket(self.s3.clone(), &self.bucket)
    }

    /// Every message waiting, with its attributes.
    async fn drain(&self) -> Vec<Message> {
        let mut messages = Vec::new();
        loop {
            let page = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            if page.messages().is_empty() {
                return messages;
            }
            for message in page.messages() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                messages.push(message.clone());
            }
        }
    }

    async fn objects(&self) -> Vec<String> {
        self.s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

fn attribute<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message.message_attributes()?.get(name)?.string_value()
}

/// A delivery that is not JSON, `size` bytes of printable text.
fn large_text(size: usize) -> Vec<u8> {
    let mut body = b"[{\"id\":\"EZ1\",\"data\":\"".to_vec();
    body.extend((0..size - body.len()).map(|i| b'a' + (i % 26) as u8));
    body
}

/// `size` bytes that are not UTF-8, so the item keeps them as base64.
fn large_binary(size: usize) -> Vec<u8> {
    (0..size).map(|i| 0x80 | (i % 127) as u8).collect()
}

async fn round_trips_through_a_pointer(payload: Vec<u8>) {
    // GIVEN a quarantine with an overflow bucket
    let s = setup().await;
    let item = QuarantinedItem::new("ingest", "malformed", "the delivery: not JSON", &payload)
        .with_reference("req-1");
    // WHEN the item is too large for an SQS message
    s.quarantine().put(item.clone()).await.unwrap();
    // THEN the queue holds a pointer, carrying the item's id, to quarantine/<id>.json
    let messages = s.drain().await;
    assert_eq!(messages.len(), 1);
    let body = messages[0].body().unwrap();
    assert!(body.len() < 4096, "a small pointer, not the payload");
    let QuarantineMessage::Pointer(pointer) = QuarantineMessage::parse(body).unwrap() else {
        panic!("a pointer: {body}");
    };
    assert_eq!(pointer.id, item.id);
    assert_eq!(
        (
            pointer.s3_pointer.bucket.as_str(),
            pointer.s3_pointer.key.as_str()
        ),
        (
            s.bucket.as_str(),
            format!("quarantine/{}.json", item.id).as_str()
        )
    );
    assert_eq!(
        (pointer.source.as_str(), pointer.reason.as_str()),
        ("ingest", "malformed")
    );
    assert_eq!(attribute(&messages[0], "id"), Some(item.id.as_str()));
    assert_eq!(attribute(&messages[0], "reason"), Some("malformed"));
    // AND the pointer resolves back to the whole item, payload byte for byte
    let resolved = resolve_message(&s.s3, body).await.unwrap();
    assert_eq!(resolved, item);
    assert_eq!(resolved.payload_bytes(), payload);
}

#[tokio::test]
async fn a_300_kib_payload_round_trips_through_an_s3_pointer() {
    round_trips_through_a_pointer(large_text(300 * 1024)).await;
}

#[tokio::test]
async fn a_300_kib_binary_payload_round_trips_through_an_s3_pointer_as_base64() {
    let payload = large_binary(300 * 1024);
    assert_eq!(
        QuarantinedItem::new("x", "x", "", &payload).encoding,
        "base64"
    );
    round_trips_through_a_pointer(payload).await;
}

#[tokio::test]
async fn a_payload_that_fits_raw_but_not_once_json_escaped_goes_to_s3() {
    // 60 KiB of control characters: each becomes the six characters \u0001 in JSON.
    let payload = vec![1u8; 60 * 1024];
    let json = serde_json::to_string(&QuarantinedItem::new("x", "x", "", &payload)).unwrap();
    assert!(json.len() > 256 * 1024, "{}", json.len());
    round_trips_through_a_pointer(payload).await;
}

#[tokio::test]
async fn a_small_payload_stays_inline_with_its_id_as_an_attribute() {
    let s = setup().await;
    let item = QuarantinedItem::new("crm-sync", "crm-rejected", "400", b"{\"sid\":\"SM1\"}");
    s.quarantine().put(item.clone()).await.unwrap();
    let messages = s.drain().await;
    assert_eq!(messages.len(), 1);
    let body = messages[0].body().unwrap();
    assert_eq!(
        QuarantineMessage::parse(body).unwrap(),
        QuarantineMessage::Inline(item.clone())
    );
    assert_eq!(attribute(&messages[0], "id"), Some(item.id.as_str()));
    assert_eq!(attribute(&messages[0], "source"), Some("crm-sync"));
    assert_eq!(resolve_message(&s.s3, body).await.unwrap(), item);
    assert!(s.objects().await.is_empty(), "nothing in S3");
}

#[tokio::test]
async fn a_payload_just_under_the_inline_limit_stays_inline_and_sqs_takes_it() {
    let s = setup().await;
    let overhead = serde_json::to_string(&QuarantinedItem::new("ingest", "malformed", "", b""))
        .unwrap()
        .len();
    let item = QuarantinedItem::new(
        "ingest",
        "malformed",
        "",
        &large_text(SQS_INLINE_LIMIT - overhead - 200),
    );
    s.quarantine().put(item.clone()).await.unwrap();
    let messages = s.drain().await;
    assert_eq!(
        QuarantineMessage::parse(messages[0].body().unwrap()).unwrap(),
        QuarantineMessage::Inline(item)
    );
    assert!(s.objects().await.is_empty());
}

#[tokio::test]
async fn a_retry_of_a_large_item_overwrites_its_object_and_both_messages_carry_the_id() {
    let s = setup().await;
    let q = s.quarantine();
    let payload = large_text(300 * 1024);
    for detail in ["first try", "retry"] {
        q.put(QuarantinedItem::new(
            "ingest",
            "malformed",
            detail,
            &payload,
        ))
        .await
        .unwrap();
    }
    let messages = s.drain().await;
    let ids: Vec<Option<&str>> = messages.iter().map(|m| attribute(m, "id")).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "a redrive can drop the second by its id");
    assert_eq!(s.objects().await.len(), 1);
}

#[tokio::test]
async fn without_an_overflow_bucket_a_large_payload_is_refused_never_cut() {
    // GIVEN a quarantine with no overflow bucket
    let s = setup().await;
    let q = SqsQuarantine::new(s.sqs.clone(), &s.queue_url);
    // WHEN an item too large for SQS is put
    let item = QuarantinedItem::new("ingest", "malformed", "", &large_text(300 * 1024));
    let error = q.put(item.clone()).await.unwrap_err();
    // THEN the caller gets an error naming the fix (so it does not acknowledge), and nothing
    // partial was sent
    assert!(
        matches!(&error, QuarantineError::TooLargeForQueue { id, .. } if *id == item.id),
        "{error:?}"
    );
    assert!(error.to_string().contains("overflow bucket"), "{error}");
    assert!(s.drain().await.is_empty());
}

#[tokio::test]
async fn an_unreachable_overflow_bucket_is_an_error_not_a_lost_item() {
    let s = setup().await;
    let q = SqsQuarantine::new(s.sqs.clone(), &s.queue_url)
        .with_overflow_bucket(s.s3.clone(), unique("no-such-bucket"));
    let error = q
        .put(QuarantinedItem::new(
            "ingest",
            "malformed",
            "",
            &large_text(300 * 1024),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(error, QuarantineError::Overflow { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("s3:PutObject"), "{error}");
    assert!(s.drain().await.is_empty(), "no pointer to nothing");
}

#[tokio::test]
async fn a_deployed_quarantine_keeps_a_large_item_in_the_stacks_bucket() {
    // GIVEN the quarantine a function builds from QUARANTINE_QUEUE_URL and QUARANTINE_BUCKET,
    // its SDK pointed at an endpoint override (which serves buckets by path)
    let s = setup().await;
    let quarantine = SqsQuarantine::deployed(&moto_sdk().await, &s.queue_url, Some(&s.bucket));
    let payload = large_text(300 * 1024);
    let item = QuarantinedItem::new("crm-sync", "refused", "the CRM said 422", &payload);

    // WHEN an item too large for an SQS message is put
    quarantine.put(item.clone()).await.unwrap();

    // THEN the bucket holds it and the queue a pointer that resolves to it
    assert_eq!(s.objects().await, [format!("quarantine/{}.json", item.id)]);
    let messages = s.drain().await;
    assert_eq!(messages.len(), 1);
    let resolved = resolve_message(&s.s3, messages[0].body().unwrap())
        .await
        .unwrap();
    assert_eq!(resolved.payload_bytes(), payload);
}

#[tokio::test]
async fn a_deployed_quarantine_without_a_bucket_refuses_a_large_item() {
    // GIVEN a function deployed without QUARANTINE_BUCKET
    let s = setup().await;
    let quarantine = SqsQuarantine::deployed(&moto_sdk().await, &s.queue_url, None);
    let item = QuarantinedItem::new("ingest", "malformed", "not JSON", &large_text(300 * 1024));

    // WHEN an item too large for an SQS message is put, THEN it is refused, and nothing is sent
    assert!(quarantine.put(item).await.is_err());
    assert!(s.drain().await.is_empty());
    assert!(s.objects().await.is_empty());
}
