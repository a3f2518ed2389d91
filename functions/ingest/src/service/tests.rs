use super::*;
use crate::adapters::memory::{MemoryDedupStore, MemoryPublisher};
use crate::config::IngestSettings;
use crate::ports::RecordState;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::signature::{SecretSet, SigningKey, sign};

const TOKEN: &str = "test-auth-token";
const BASE: &str = "https://hooks.example.com/prod";

type TestIngest =
    Ingest<Arc<MemoryDedupStore>, Arc<MemoryPublisher>, Arc<MemoryQuarantine>, Arc<MemorySink>>;

struct World {
    ingest: TestIngest,
    dedup: Arc<MemoryDedupStore>,
    stream: Arc<MemoryPublisher>,
    quarantine: Arc<MemoryQuarantine>,
    metrics: Arc<MemorySink>,
}

fn world_with(settings: IngestSettings) -> World {
    let dedup = Arc::new(MemoryDedupStore::default());
    let stream = Arc::new(MemoryPublisher::default());
    let quarantine = Arc::new(MemoryQuarantine::default());
    let metrics = Arc::new(MemorySink::default());
    let verifier = Verifier::new(SecretSet::new().with_auth_token(TOKEN));
    let ingest = Ingest::new(
        settings,
        verifier,
        dedup.clone(),
        stream.clone(),
        quarantine.clone(),
        metrics.clone(),
    );
    World {
        ingest,
        dedup,
        stream,
        quarantine,
        metrics,
    }
}

fn world() -> World {
    world_with(IngestSettings::for_base_url(BASE))
}

fn message_event(id: &str, sid: &str, status: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.{status}","source":"/2010-04-01/Accounts/AC1/Messages/{sid}.json","id":"{id}","time":"2026-11-20T10:00:00.000Z","data":{{"messageSid":"{sid}","accountSid":"AC1","messageStatus":"{}","to":"+15550001111"}}}}"#,
        status.to_uppercase()
    )
}

/// A delivery signed as Twilio signs it: the URL (with bodySHA256), the signature, the body.
struct Signed {
    query: String,
    signature: String,
    body: Vec<u8>,
}

fn signed_events(events: &[String]) -> Signed {
    let body = format!("[{}]", events.join(","));
    signed(Route::Events, body.into_bytes(), BodyEncoding::Json, None)
}

fn signed(route: Route, body: Vec<u8>, encoding: BodyEncoding, sink_query: Option<&str>) -> Signed {
    let path = match route {
        Route::Events => "/twilio/events",
        Route::UsageTriggers => "/twilio/usage-triggers",
    };
    let url = match sink_query {
        Some(q) => format!("{BASE}{path}?{q}"),
        None => format!("{BASE}{path}"),
    };
    let delivery = sign(&SigningKey::AuthToken(TOKEN.into()), &url, &body, encoding);
    Signed {
        query: delivery
            .url
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default(),
        signature: delivery.signature,
        body,
    }
}

async fn deliver(
    world: &World,
    route: Route,
    signed: &Signed,
    content_type: &str,
) -> IngestResponse {
    world
        .ingest
        .handle(IngestRequest {
            route,
            raw_query: Some(&signed.query),
            content_type: Some(content_type),
            signature: Some(&signed.signature),
            signature_settings: None,
            body: &signed.body,
            request_id: "req-1",
            deadline: Instant::now() + Duration::from_secs(3),
            public_base_url: None,
        })
        .await
}

async fn deliver_events(world: &World, signed: &Signed) -> IngestResponse {
    deliver(world, Route::Events, signed, "application/json").await
}

fn body(response: &IngestResponse) -> serde_json::Value {
    serde_json::from_str(&response.body).unwrap()
}

#[tokio::test]
async fn a_signed_delivery_is_published_byte_for_byte_and_answered_200() {
    // GIVEN a delivery of two events signed with the configured token
    let w = world();
    let events = [
        message_event("EZ1", "SM1", "sent"),
        message_event("EZ2", "SM2", "delivered"),
    ];
    let delivery = signed_events(&events);
    // WHEN Twilio delivers it
    let response = deliver_events(&w, &delivery).await;
    // THEN it is accepted, and each event is in the stream as sent, keyed by its MessageSid
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(body(&response)["accepted"], 2);
    let stored = w.stream.stored();
    assert_eq!(
        stored,
        vec![
            ("SM1".to_owned(), events[0].clone().into_bytes()),
            ("SM2".to_owned(), events[1].clone().into_bytes())
        ]
    );
    assert!(matches!(
        w.dedup.state("AC1#EZ1"),
        Some(RecordState::Completed { .. })
    ));
    assert_eq!(w.metrics.total("Accepted"), 2.0);
    assert_eq!(w.metrics.total("Received"), 2.0);
    assert_eq!(
        w.metrics.published().len(),
        1,
        "one EMF document per request"
    );
    assert!(w.metrics.published()[0].get("Latency").is_some());
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_not_published_again() {
    let w = world();
    let delivery = signed_events(&[message_event("EZ1", "SM1", "sent")]);
    assert_eq!(deliver_events(&w, &delivery).await.status, 200);
    // WHEN Twilio delivers the same event again
    let again = deliver_events(&w, &delivery).await;
    // THEN 200 (so Twilio stops), counted as a duplicate, and the stream holds it once
    assert_eq!(again.status, 200);
    assert_eq!(body(&again)["duplicates"], 1);
    assert_eq!(w.stream.stored().len(), 1);
    assert_eq!(w.metrics.total("Duplicates"), 1.0);
}

#[tokio::test]
async fn the_same_id_twice_in_one_delivery_is_published_once() {
    let w = world();
    let event = message_event("EZ1", "SM1", "sent");
    let response = deliver_events(&w, &signed_events(&[event.clone(), event])).await;
    assert_eq!(response.status, 200);
    assert_eq!(w.stream.stored().len(), 1);
}

#[tokio::test]
async fn signature_failures_never_get_in() {
    let w = world();
    let mut delivery = signed_events(&[message_event("EZ1", "SM1", "sent")]);
    // No signature at all: 401.
    let unsigned = w
        .ingest
        .handle(IngestRequest {
            route: Route::Events,
            raw_query: Some(&delivery.query),
            content_type: Some("application/json"),
            signature: None,
            signature_settings: None,
            body: &delivery.body,
            request_id: "r",
            deadline: Instant::now() + Duration::from_secs(3),
            public_base_url: None,
        })
        .await;
    assert_eq!(unsigned.status, 401);
    // A body changed in one byte: 503 with Retry-After by default (a new token may be at play).
    delivery.body[5] ^= 1;
    let tampered = deliver_events(&w, &delivery).await;
    assert_eq!(
        (tampered.status, tampered.retry_after_secs),
        (503, Some(60))
    );
    assert!(w.stream.stored().is_empty());
    assert_eq!(w.metrics.total("SignatureFailures"), 2.0);

    let mut settings = IngestSettings::for_base_url(BASE);
    settings.signature_failure = SignatureFailureAnswer::Forbidden;
    let strict = world_with(settings);
    assert_eq!(deliver_events(&strict, &delivery).await.status, 403);
}

#[tokio::test]
async fn the_signature_covers_the_sink_urls_own_query_string() {
    let w = world();
    let body = format!("[{}]", message_event("EZ1", "SM1", "sent")).into_bytes();
    let delivery = signed(
        Route::Events,
        body,
        BodyEncoding::Json,
        Some("tenant=acme&region=us%2Deast"),
    );
    assert!(
        delivery
            .query
            .starts_with("tenant=acme&region=us%2Deast&bodySHA256=")
    );
    assert_eq!(deliver_events(&w, &delivery).await.status, 200);
    let mut altered = delivery;
    altered.query = altered.query.replace("acme", "acne");
    assert_eq!(deliver_events(&w, &altered).await.status, 503);
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let mut settings = IngestSettings::for_base_url(BASE);
    settings.max_body_bytes = 1024;
    let w = world_with(settings);
    let events: Vec<String> = (0..10)
        .map(|i| message_event(&format!("EZ{i}"), "SM1", "sent"))
        .collect();
    assert_eq!(
        deliver_events(&w, &signed_events(&events)).await.status,
        413
    );
    assert_eq!(w.metrics.total("BodyTooLarge"), 1.0);
}

#[tokio::test]
async fn a_malformed_body_with_a_valid_signature_is_quarantined_and_acknowledged() {
    let w = world();
    let delivery = signed(
        Route::Events,
        b"[{\"id\": truncated".to_vec(),
        BodyEncoding::Json,
        None,
    );
    let response = deliver_events(&w, &delivery).await;
    assert_eq!(
        response.status, 200,
        "a retry of the same bytes could never succeed"
    );
    let kept = w.quarantine.items();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].payload_bytes(),
        delivery.body,
        "kept whole, for replay"
    );
    assert_eq!(kept[0].reason, "malformed");
    assert_eq!(w.metrics.total("Quarantined"), 1.0);
}

#[tokio::test]
async fn one_bad_event_does_not_hold_back_the_good_ones() {
    let w = world();
    let bad = r#"{"type":"com.twilio.messaging.message.sent","data":{}}"#.to_owned();
    let good = message_event("EZ1", "SM1", "sent");
    let response = deliver_events(&w, &signed_events(&[good.clone(), bad.clone()])).await;
    assert_eq!(response.status, 200);
    assert_eq!(body(&response)["quarantined"], 1);
    assert_eq!(w.stream.stored()[0].1, good.into_bytes());
    assert_eq!(w.quarantine.items()[0].payload, bad);
    assert!(
        w.quarantine.items()[0]
            .detail
            .contains("event #1, field `id`")
    );
}

#[tokio::test]
async fn kinesis_rejecting_some_entries_is_retried_until_all_are_in() {
    let w = world();
    w.stream.fail_every.store(3, Ordering::SeqCst);
    let events: Vec<String> = (0..10)
        .map(|i| message_event(&format!("EZ{i}"), &format!("SM{i}"), "sent"))
        .collect();
    let response = deliver_events(&w, &signed_events(&events)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let mut stored: Vec<Vec<u8>> = w.stream.stored().into_iter().map(|(_, d)| d).collect();
    stored.sort();
    let mut expected: Vec<Vec<u8>> = events.into_iter().map(String::into_bytes).collect();
    expected.sort();
    assert_eq!(stored, expected, "each exactly once");
    assert!(w.metrics.total("PublishRetries") >= 3.0);
}

#[tokio::test]
async fn a_stream_that_stays_down_gets_503_and_loses_nothing() {
    let w = world();
    w.stream.fail_next_puts.store(1_000, Ordering::SeqCst);
    let delivery = signed_events(&[message_event("EZ1", "SM1", "sent")]);
    let response = deliver_events(&w, &delivery).await;
    assert_eq!(
        (response.status, response.retry_after_secs),
        (503, Some(TROUBLE_RETRY_SECS))
    );
    assert_eq!(
        w.dedup.state("AC1#EZ1"),
        None,
        "the claim is released so the retry can publish"
    );
    // WHEN the stream recovers and Twilio retries
    w.stream.fail_next_puts.store(0, Ordering::SeqCst);
    assert_eq!(deliver_events(&w, &delivery).await.status, 200);
    assert_eq!(w.stream.stored().len(), 1);
}

#[tokio::test]
async fn a_throttled_dedup_store_gets_503_then_the_retry_goes_through() {
    let w = world();
    w.dedup.fail_next_claims.store(1, Ordering::SeqCst);
    let delivery = signed_events(&[message_event("EZ1", "SM1", "sent")]);
    assert_eq!(deliver_events(&w, &delivery).await.status, 503);
    assert!(w.stream.stored().is_empty());
    assert_eq!(deliver_events(&w, &delivery).await.status, 200);
    assert_eq!(w.stream.stored().len(), 1);
}

#[tokio::test]
async fn an_event_in_progress_elsewhere_is_retried_not_dropped() {
    let w = world();
    // GIVEN another attempt claimed EZ1 and is still within its lease
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let other = DedupClaim {
        key: "AC1#EZ1".into(),
        token: "other".into(),
        lease_until_ms: now_ms + 60_000,
        expires_at_s: now_ms / 1000 + 86_400,
        now_ms,
    };
    assert_eq!(
        w.dedup.claim(std::slice::from_ref(&other)).await,
        vec![DedupOutcome::Claimed]
    );
    let response = deliver_events(&w, &signed_events(&[message_event("EZ1", "SM1", "sent")])).await;
    assert_eq!(
        (response.status, response.retry_after_secs),
        (503, Some(IN_PROGRESS_RETRY_SECS))
    );
    assert!(w.stream.stored().is_empty());
}

#[tokio::test]
async fn a_usage_trigger_callback_becomes_one_event_and_its_retry_a_duplicate() {
    let w = world();
    let form = b"AccountSid=AC1&UsageTriggerSid=UT1&UsageCategory=sms&TriggerBy=count&TriggerValue=1000&CurrentValue=1003&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&IdempotencyToken=abc".to_vec();
    let delivery = signed(Route::UsageTriggers, form, BodyEncoding::Form, None);
    let form_ct = "application/x-www-form-urlencoded";
    assert_eq!(
        deliver(&w, Route::UsageTriggers, &delivery, form_ct)
            .await
            .status,
        200
    );
    assert_eq!(
        body(&deliver(&w, Route::UsageTriggers, &delivery, form_ct).await)["duplicates"],
        1
    );
    let stored = w.stream.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, "UT1");
    let event = CloudEvent::parse(std::str::from_utf8(&stored[0].1).unwrap()).unwrap();
    assert_eq!(event.event_type, twilio_events::event::USAGE_TRIGGER_TYPE);
}

#[test]
fn puts_are_split_at_500_records_and_5_mib() {
    let big = vec![b'x'; 1024 * 1024];
    let records: Vec<OutgoingRecord<'_>> = (0..12)
        .map(|_| OutgoingRecord {
            partition_key: "k",
            data: &big,
        })
        .collect();
    let pending: Vec<usize> = (0..records.len()).collect();
    let sizes: Vec<usize> = chunks(&records, &pending).iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 4, 4], "4 MiB + keys fits, a fifth MiB would not");
    let small: Vec<OutgoingRecord<'_>> = (0..1200)
        .map(|_| OutgoingRecord {
            partition_key: "k",
            data: b"{}",
        })
        .collect();
    let pending: Vec<usize> = (0..small.len()).collect();
    let sizes: Vec<usize> = chunks(&small, &pending).iter().map(Vec::len).collect();
    assert_eq!(sizes, [500, 500, 200]);
}
