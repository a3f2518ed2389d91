use super::*;
use crate::adapters::memory::{MemoryDedupStore, MemoryPublisher, MemorySecretSource};
use crate::config::IngestSettings;
use crate::ports::RecordState;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::signature::{SecretSet, SigningKey, sign};

const TOKEN: &str = "test-auth-token";
/// A Usage Trigger callback as Twilio posts it.
const USAGE_TRIGGER_FORM: &str = "AccountSid=AC00000000000000000000000000000001&UsageTriggerSid=UT00000000000000000000000000000001&UsageCategory=sms&TriggerBy=count&TriggerValue=1000&CurrentValue=1003&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&IdempotencyToken=abc";
const BASE: &str = "https://hooks.example.com/prod";

/// A clock tests move forward (by whole seconds).
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.0.load(Ordering::SeqCst))
    }
}

type TestIngest = Ingest<
    Arc<MemoryDedupStore>,
    Arc<MemoryPublisher>,
    Arc<MemoryQuarantine>,
    Arc<MemorySink>,
    TestClock,
>;

struct World {
    ingest: TestIngest,
    dedup: Arc<MemoryDedupStore>,
    stream: Arc<MemoryPublisher>,
    quarantine: Arc<MemoryQuarantine>,
    metrics: Arc<MemorySink>,
    clock: TestClock,
}

fn world_with(settings: IngestSettings) -> World {
    world_with_secrets(settings, SecretSet::new().with_auth_token(TOKEN))
}

fn world_with_secrets(settings: IngestSettings, secrets: SecretSet) -> World {
    let dedup = Arc::new(MemoryDedupStore::default());
    let stream = Arc::new(MemoryPublisher::default());
    let quarantine = Arc::new(MemoryQuarantine::default());
    let metrics = Arc::new(MemorySink::default());
    let clock = TestClock::default();
    let ingest = Ingest::with_clock(
        settings,
        Verifier::new(secrets),
        dedup.clone(),
        stream.clone(),
        quarantine.clone(),
        metrics.clone(),
        clock.clone(),
    );
    World {
        ingest,
        dedup,
        stream,
        quarantine,
        metrics,
        clock,
    }
}

impl World {
    /// Nothing of any request is stored anywhere: stream, quarantine, dedup records.
    fn assert_nothing_stored(&self) {
        assert!(self.stream.stored().is_empty(), "nothing in the stream");
        assert!(self.quarantine.items().is_empty(), "nothing quarantined");
        assert_eq!(
            self.dedup.calls.load(Ordering::SeqCst),
            0,
            "no dedup record claimed"
        );
    }

    /// Whether a published metrics document carries `"key":"value"`.
    fn has_property(&self, key: &str, value: &str) -> bool {
        let wanted = format!("\"{key}\":\"{value}\"");
        self.metrics
            .published()
            .iter()
            .any(|m| m.to_emf(OffsetDateTime::now_utc()).contains(&wanted))
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

/// The dedup key ingest claims for an event: its account and the fact it reports.
fn dedup_key(event_json: &str) -> String {
    twilio_events::event::CloudEvent::parse(event_json)
        .unwrap()
        .dedup_key()
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
    signed_with(TOKEN, route, body, encoding, sink_query)
}

fn signed_with(
    token: &str,
    route: Route,
    body: Vec<u8>,
    encoding: BodyEncoding,
    sink_query: Option<&str>,
) -> Signed {
    let path = route.path();
    let url = match sink_query {
        Some(q) => format!("{BASE}{path}?{q}"),
        None => format!("{BASE}{path}"),
    };
    let delivery = sign(&SigningKey::AuthToken(token.into()), &url, &body, encoding);
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
            idempotency_token: None,
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
        w.dedup.state(&dedup_key(&events[0])),
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
            idempotency_token: None,
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
        w.dedup
            .state(&dedup_key(&message_event("EZ1", "SM1", "sent"))),
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
        key: dedup_key(&message_event("EZ1", "SM1", "sent")),
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
    let form = USAGE_TRIGGER_FORM.as_bytes().to_vec();
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
    assert_eq!(stored[0].0, "UT00000000000000000000000000000001");
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

// ----- issue 12: what a captured request, a tenant's token or a stale secret cannot do -----

/// The form body whose one parameter name is `?<query>`: with the sink URL before it, the
/// string a form signature covers is exactly "<url>?<query>", the string Twilio signed for the
/// JSON delivery whose query that is.
fn form_spelling_the_query(query: &str) -> Vec<u8> {
    let name: String = form_urlencoded::byte_serialize(format!("?{query}").as_bytes()).collect();
    format!("{name}=").into_bytes()
}

#[tokio::test]
async fn a_captured_event_streams_signature_replayed_as_a_form_is_refused_before_anything_is_stored()
 {
    // GIVEN a captured Event Streams delivery (its signature covers the URL with bodySHA256)
    let w = world();
    let captured = signed_events(&[message_event("EZ1", "SM1", "sent")]);
    // WHEN it is replayed without its query, as a form whose one parameter spells the query
    let replay = Signed {
        query: String::new(),
        signature: captured.signature.clone(),
        body: form_spelling_the_query(&captured.query),
    };
    let response = deliver(
        &w,
        Route::Events,
        &replay,
        "application/x-www-form-urlencoded",
    )
    .await;
    // THEN it is refused with a 4xx Twilio does not retry, counted with its class, and nothing
    // is stored (the old code verified it as a form and quarantined it with a 200)
    assert_eq!(response.status, 415, "{}", response.body);
    assert_eq!(w.metrics.total("Refused"), 1.0);
    assert!(w.has_property("refusal", "content-type"));
    w.assert_nothing_stored();
    // AND claiming JSON does not help: the events route is JSON with bodySHA256 only
    let lying = deliver(&w, Route::Events, &replay, "application/json").await;
    assert_eq!(lying.status, 503);
    assert!(w.has_property("signatureFailure", "missing-body-hash"));
    w.assert_nothing_stored();
}

#[tokio::test]
async fn each_route_takes_its_own_content_type_only() {
    let w = world();
    let delivery = signed_events(&[message_event("EZ1", "SM1", "sent")]);
    for wrong in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        assert_eq!(
            deliver(&w, Route::Events, &delivery, wrong).await.status,
            415,
            "{wrong}"
        );
    }
    let form = signed(
        Route::UsageTriggers,
        USAGE_TRIGGER_FORM.as_bytes().to_vec(),
        BodyEncoding::Form,
        None,
    );
    assert_eq!(
        deliver(&w, Route::UsageTriggers, &form, "application/json")
            .await
            .status,
        415
    );
    w.assert_nothing_stored();
    assert_eq!(w.metrics.total("Refused"), 4.0);
    // Parameters and case do not matter; the right type gets in.
    assert_eq!(
        deliver(
            &w,
            Route::Events,
            &delivery,
            "Application/JSON; charset=utf-8"
        )
        .await
        .status,
        200
    );
    assert_eq!(
        deliver(
            &w,
            Route::UsageTriggers,
            &form,
            "application/x-www-form-urlencoded; charset=UTF-8"
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn a_re_split_usage_trigger_callback_is_never_a_new_event() {
    // GIVEN a genuine Usage Trigger callback, accepted
    let w = world();
    let genuine = signed(
        Route::UsageTriggers,
        USAGE_TRIGGER_FORM.as_bytes().to_vec(),
        BodyEncoding::Form,
        None,
    );
    let form_ct = "application/x-www-form-urlencoded";
    assert_eq!(
        deliver(&w, Route::UsageTriggers, &genuine, form_ct)
            .await
            .status,
        200
    );
    // WHEN it is replayed re-split with its signature: DateFired's name swallows the start of
    // its value ("DateFiredFri" = ", 27 Nov 2026 …"), which keeps the signed string
    let resplit = Signed {
        body: USAGE_TRIGGER_FORM
            .replace("DateFired=Fri%2C", "DateFiredFri=%2C")
            .into_bytes(),
        ..Signed {
            query: genuine.query.clone(),
            signature: genuine.signature.clone(),
            body: Vec::new(),
        }
    };
    let response = deliver(&w, Route::UsageTriggers, &resplit, form_ct).await;
    // THEN it is refused, naming the field, and neither streamed nor quarantined (the old code
    // made it a new event, timed at its arrival)
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.body.contains("DateFired"), "{}", response.body);
    assert!(w.has_property("refusal", "invalid-callback"));
    assert_eq!(w.stream.stored().len(), 1, "only the genuine callback");
    assert!(w.quarantine.items().is_empty());
    // AND the genuine event's time is when the trigger fired
    let stored = w.stream.stored();
    let event = CloudEvent::parse(std::str::from_utf8(&stored[0].1).unwrap()).unwrap();
    assert_eq!(event.time.as_deref(), Some("2026-11-27T09:12:44Z"));
}

const ACCOUNT_A: &str = "AC0000000000000000000000000000000a";
const SUBACCOUNT_OF_A: &str = "AC000000000000000000000000000000a1";
const ACCOUNT_B: &str = "AC0000000000000000000000000000000b";

fn event_of(account: &str, id: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/2010-04-01/Accounts/{account}/Messages/SM{id}.json","id":"{id}","time":"2026-11-20T10:00:00.000Z","data":{{"messageSid":"SM{id}","accountSid":"{account}","messageStatus":"SENT"}}}}"#
    )
}

/// Accounts A (token "tok-a", subaccount listed) and B (token "tok-b"), each bound.
fn tenants(settings: IngestSettings) -> World {
    world_with_secrets(
        settings,
        SecretSet::new()
            .with_account_auth_token(ACCOUNT_A, "tok-a")
            .with_subaccount(ACCOUNT_A, SUBACCOUNT_OF_A)
            .with_account_auth_token(ACCOUNT_B, "tok-b"),
    )
}

fn signed_by(token: &str, events: &[String]) -> Signed {
    let body = format!("[{}]", events.join(",")).into_bytes();
    signed_with(token, Route::Events, body, BodyEncoding::Json, None)
}

#[tokio::test]
async fn a_tenants_token_signs_for_its_account_and_listed_subaccounts_only() {
    let w = tenants(IngestSettings::for_base_url(BASE));
    // A's token, A's and its listed subaccount's events: accepted.
    let own = signed_by(
        "tok-a",
        &[
            event_of(ACCOUNT_A, "EZa1"),
            event_of(SUBACCOUNT_OF_A, "EZs1"),
        ],
    );
    let response = deliver_events(&w, &own).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(body(&response)["accepted"], 2);
    // WHEN A's token signs a delivery that also carries an event claiming account B
    let forged = signed_by(
        "tok-a",
        &[event_of(ACCOUNT_A, "EZa2"), event_of(ACCOUNT_B, "EZb1")],
    );
    let response = deliver_events(&w, &forged).await;
    // THEN the whole delivery is refused (503: a genuine one from an unlisted subaccount is
    // retried until the document lists it), counted, and none of it is stored
    assert_eq!(
        (response.status, response.retry_after_secs),
        (503, Some(60)),
        "{}",
        response.body
    );
    assert!(w.has_property("refusal", "foreign-account"));
    assert_eq!(w.stream.stored().len(), 2, "only the first delivery");
    assert_eq!(
        w.dedup.state(&dedup_key(&event_of(ACCOUNT_A, "EZa2"))),
        None
    );
    // AND B's own token signs B's events
    assert_eq!(
        deliver_events(&w, &signed_by("tok-b", &[event_of(ACCOUNT_B, "EZb1")]))
            .await
            .status,
        200
    );
    // AND an event that names no account cannot be attributed to A: refused too
    let anonymous = r#"{"specversion":"1.0","type":"com.twilio.studio.flow.execution.started","source":"/v2/Flows/FW1","id":"EZn1","data":{}}"#;
    assert_eq!(
        deliver_events(&w, &signed_by("tok-a", &[anonymous.to_owned()]))
            .await
            .status,
        503
    );
    // AND the sink test event, whose id is the account's SID, belongs to that account
    let test_event = format!(
        r#"{{"specversion":"1.0","type":"com.twilio.eventstreams.test-event","source":"Sink","id":"{ACCOUNT_A}","data":{{"test_id":"t-1"}}}}"#
    );
    assert_eq!(
        deliver_events(&w, &signed_by("tok-a", std::slice::from_ref(&test_event)))
            .await
            .status,
        200
    );
    assert_eq!(
        deliver_events(&w, &signed_by("tok-b", &[test_event]))
            .await
            .status,
        503
    );
    assert_eq!(w.stream.stored().len(), 4);
    assert_eq!(w.metrics.total("Refused"), 3.0);
}

#[tokio::test]
async fn a_foreign_account_is_answered_like_a_bad_signature() {
    let mut settings = IngestSettings::for_base_url(BASE);
    settings.signature_failure = SignatureFailureAnswer::Forbidden;
    let w = tenants(settings);
    let forged = signed_by("tok-a", &[event_of(ACCOUNT_B, "EZb1")]);
    assert_eq!(deliver_events(&w, &forged).await.status, 403);
    // A Usage Trigger callback of B signed with A's token: refused the same way.
    let form = USAGE_TRIGGER_FORM.replace("AC00000000000000000000000000000001", ACCOUNT_B);
    let callback = signed_with(
        "tok-a",
        Route::UsageTriggers,
        form.into_bytes(),
        BodyEncoding::Form,
        None,
    );
    assert_eq!(
        deliver(
            &w,
            Route::UsageTriggers,
            &callback,
            "application/x-www-form-urlencoded"
        )
        .await
        .status,
        403
    );
    w.assert_nothing_stored();
}

#[tokio::test]
async fn a_flat_token_binds_to_no_account() {
    // The plain and `auth_tokens` forms stay as they were: any account.
    let w = world();
    let delivery = signed_events(&[event_of(ACCOUNT_A, "EZa1"), event_of(ACCOUNT_B, "EZb1")]);
    assert_eq!(deliver_events(&w, &delivery).await.status, 200);
    assert_eq!(w.stream.stored().len(), 2);
}

#[tokio::test]
async fn a_rotated_token_is_learnt_within_the_refresh_interval_with_nothing_lost() {
    // GIVEN a warm instance that read the secret {old} from its store
    let store = MemorySecretSource::new(SecretSet::new().with_auth_token("old"));
    let w = world_with_secrets(
        IngestSettings::for_base_url(BASE),
        SecretSet::new().with_auth_token("old"),
    );
    let w = World {
        ingest: w.ingest.with_secret_source(store.clone()),
        ..w
    };
    // WHEN the token is rotated (the store now holds {new}) and Twilio signs with the new one
    store.put(SecretSet::new().with_auth_token("new"));
    let delivery = signed_by("new", &[message_event("EZ1", "SM1", "sent")]);
    // THEN within the interval the delivery is answered 503 (Twilio retries) and the store is
    // not read again, however many requests fail
    for _ in 0..5 {
        assert_eq!(deliver_events(&w, &delivery).await.status, 503);
    }
    w.clock.advance(59);
    assert_eq!(deliver_events(&w, &delivery).await.status, 503);
    assert_eq!(store.reads.load(Ordering::SeqCst), 0);
    // AND once the copy in hand is a minute old, the next failure reads the store again and
    // the retry is accepted
    w.clock.advance(1);
    let response = deliver_events(&w, &delivery).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    assert_eq!(w.metrics.total("SecretRefreshes"), 1.0);
    assert_eq!(w.stream.stored().len(), 1, "nothing lost, nothing twice");
    // AND forged requests read it at most once per interval
    let forged = signed_by("forged", &[message_event("EZ2", "SM2", "sent")]);
    for _ in 0..10 {
        assert_eq!(deliver_events(&w, &forged).await.status, 503);
    }
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    w.clock.advance(60);
    assert_eq!(deliver_events(&w, &forged).await.status, 503);
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_secret_store_keeps_the_secrets_in_hand() {
    let store = MemorySecretSource::new(SecretSet::new().with_auth_token(TOKEN));
    let w = world();
    let w = World {
        ingest: w.ingest.with_secret_source(store.clone()),
        ..w
    };
    store.unreachable.store(true, Ordering::SeqCst);
    w.clock.advance(61);
    let forged = signed_by("forged", &[message_event("EZ1", "SM1", "sent")]);
    assert_eq!(deliver_events(&w, &forged).await.status, 503);
    assert_eq!(w.metrics.total("SecretRefreshFailures"), 1.0);
    assert_eq!(
        deliver_events(&w, &signed_events(&[message_event("EZ2", "SM2", "sent")]))
            .await
            .status,
        200,
        "the token in hand still verifies"
    );
    // A failed read counts as a read: the next is a minute later.
    assert_eq!(deliver_events(&w, &forged).await.status, 503);
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    // reload_secrets reads at once (serve, when its file changes).
    store.unreachable.store(false, Ordering::SeqCst);
    store.put(SecretSet::new().with_auth_token("forged"));
    w.ingest.reload_secrets().await.unwrap();
    assert_eq!(deliver_events(&w, &forged).await.status, 200);
}

#[tokio::test]
async fn retries_of_an_unreadable_delivery_keep_one_quarantined_copy() {
    // GIVEN a signed delivery that cannot be parsed, and one with a good and a bad event
    let w = world();
    let garbage = signed(
        Route::Events,
        b"[{\"id\": truncated".to_vec(),
        BodyEncoding::Json,
        None,
    );
    let good = message_event("EZ1", "SM1", "sent");
    let bad = r#"{"type":"com.twilio.messaging.message.sent","data":{}}"#.to_owned();
    let mixed = signed_events(&[good, bad]);
    // WHEN Twilio delivers each three times (a retry after a lost answer, a replay)
    for _ in 0..3 {
        let response = deliver_events(&w, &garbage).await;
        assert_eq!(response.status, 200);
        assert_eq!(body(&response)["quarantined"], 1);
        assert_eq!(deliver_events(&w, &mixed).await.status, 200);
    }
    // THEN the quarantine holds one copy of each (the old code kept six), the good event is
    // in the stream once, and the claims are completed
    assert_eq!(w.quarantine.items().len(), 2, "{:?}", w.quarantine.items());
    assert_eq!(w.stream.stored().len(), 1);
    let id = quarantine_id(None, Route::Events.path(), &garbage.body);
    assert!(matches!(
        w.dedup.state(&quarantine_claim_key(&id)),
        Some(RecordState::Completed { .. })
    ));
    // AND the kept item carries that id (account, route, bytes), which a redrive deduplicates by
    let ids: Vec<String> = w.quarantine.items().into_iter().map(|i| i.id).collect();
    assert!(ids.contains(&id), "{ids:?} lacks {id}");
    assert_eq!(w.metrics.total("Quarantined"), 2.0);
    assert_eq!(w.metrics.total("QuarantineDuplicates"), 4.0);
}

/// A quarantine that fails its next puts (SQS unavailable), then keeps items in memory.
#[derive(Default)]
struct FlakyQuarantine {
    inner: MemoryQuarantine,
    fail_next: std::sync::atomic::AtomicUsize,
}

impl Quarantine for FlakyQuarantine {
    async fn put(
        &self,
        item: QuarantinedItem,
    ) -> Result<(), twilio_events::quarantine::QuarantineError> {
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            // Any failure will do: the core only sees that the quarantine refused.
            return Err(twilio_events::quarantine::QuarantineError::Poisoned);
        }
        self.inner.put(item).await
    }
}

#[tokio::test]
async fn a_quarantine_that_fails_gets_503_and_the_retry_keeps_one_copy() {
    let dedup = Arc::new(MemoryDedupStore::default());
    let quarantine = Arc::new(FlakyQuarantine::default());
    quarantine.fail_next.store(1, Ordering::SeqCst);
    let ingest = Ingest::new(
        IngestSettings::for_base_url(BASE),
        Verifier::new(SecretSet::new().with_auth_token(TOKEN)),
        dedup.clone(),
        Arc::new(MemoryPublisher::default()),
        quarantine.clone(),
        twilio_events::metrics::NoMetrics,
    );
    let garbage = signed(
        Route::Events,
        b"{not json".to_vec(),
        BodyEncoding::Json,
        None,
    );
    let request = IngestRequest {
        route: Route::Events,
        raw_query: Some(&garbage.query),
        content_type: Some("application/json"),
        signature: Some(&garbage.signature),
        signature_settings: None,
        body: &garbage.body,
        request_id: "q",
        deadline: Instant::now() + Duration::from_secs(3),
        public_base_url: None,
        idempotency_token: None,
    };
    // The quarantine fails: 503, and the claim is released for the retry.
    let response = ingest.handle(request).await;
    assert_eq!(
        (response.status, response.retry_after_secs),
        (503, Some(TROUBLE_RETRY_SECS))
    );
    let key = quarantine_claim_key(&quarantine_id(None, "/twilio/events", &garbage.body));
    assert_eq!(dedup.state(&key), None, "released");
    // Twilio's retries: the first keeps it, the next finds it kept.
    assert_eq!(ingest.handle(request).await.status, 200);
    assert_eq!(ingest.handle(request).await.status, 200);
    assert_eq!(quarantine.inner.items().len(), 1);
}
