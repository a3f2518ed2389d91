//! The ingest function against real local services: moto_server for DynamoDB, Kinesis and SQS,
//! driven by API Gateway v2 events carrying deliveries signed by Twilio's official Python
//! library. Faults are injected by wrapping the real adapters, and every fault test ends with
//! Twilio's retries and a look at the stream: every event there, exactly once.

use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::adapters::kinesis::KinesisPublisher;
use ingest::config::IngestSettings;
use ingest::lambda::handle_lambda;
use ingest::ports::{
    Clock, DedupClaim, DedupOutcome, DedupStore, DedupStoreError, EntryError, EventPublisher,
    OutgoingRecord, StreamPublishError,
};
use ingest::{Ingest, IngestRequest, Route};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::SqsQuarantine;
use twilio_events::signature::{BodyEncoding, SecretSet, SigningKey, Verifier, sign};
use twilio_events_testkit::aws::{
    create_dedup_table, create_queue, create_stream, drain_queue, moto_endpoint, read_stream,
    sdk_config, unique,
};

struct Services {
    ddb: aws_sdk_dynamodb::Client,
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
    table: String,
    stream: String,
    queue: String,
}

async fn services() -> Services {
    let config = sdk_config(&moto_endpoint()).await;
    let s = Services {
        ddb: aws_sdk_dynamodb::Client::new(&config),
        kinesis: aws_sdk_kinesis::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        table: unique("dedup"),
        stream: unique("events"),
        queue: String::new(),
    };
    create_dedup_table(&s.ddb, &s.table).await;
    create_stream(&s.kinesis, &s.stream, 2).await;
    let queue = create_queue(&s.sqs, &unique("quarantine")).await;
    Services { queue, ..s }
}

/// A clock tests can move forward (by whole seconds).
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicI64>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::from_secs(self.0.load(Ordering::SeqCst) as u64)
    }
}

type AwsIngest<D, P> = Ingest<D, P, SqsQuarantine, Arc<MemorySink>, TestClock>;

fn ingest_with<D: DedupStore, P: EventPublisher>(
    s: &Services,
    public_url: &str,
    token: &str,
    dedup: D,
    publisher: P,
    clock: TestClock,
) -> AwsIngest<D, P> {
    let mut settings = IngestSettings::for_base_url("https://unused.example.com");
    settings.events_url = public_url.to_owned();
    Ingest::with_clock(
        settings,
        Verifier::new(SecretSet::new().with_auth_token(token)),
        dedup,
        publisher,
        SqsQuarantine::new(s.sqs.clone(), &s.queue),
        Arc::new(MemorySink::default()),
        clock,
    )
}

fn real_ingest(
    s: &Services,
    public_url: &str,
    token: &str,
) -> AwsIngest<DynamoDedupStore, KinesisPublisher> {
    ingest_with(
        s,
        public_url,
        token,
        dedup(s),
        publisher(s),
        TestClock::default(),
    )
}

fn dedup(s: &Services) -> DynamoDedupStore {
    DynamoDedupStore::new(s.ddb.clone(), &s.table)
}

fn publisher(s: &Services) -> KinesisPublisher {
    KinesisPublisher::new(s.kinesis.clone(), &s.stream)
}

struct Fixture {
    name: String,
    public_url: String,
    auth_token: String,
    event: serde_json::Value,
}

fn fixtures() -> Vec<Fixture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/apigw");
    let mut fixtures: Vec<Fixture> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            Fixture {
                name: path.file_stem().unwrap().to_string_lossy().into_owned(),
                public_url: doc["public_url"].as_str().unwrap().to_owned(),
                auth_token: doc["auth_token"].as_str().unwrap().to_owned(),
                event: doc["event"].clone(),
            }
        })
        .collect();
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        fixtures.len(),
        4,
        "stage, custom domain, sink query, base64 body"
    );
    fixtures
}

fn fixture_body(event: &serde_json::Value) -> Vec<u8> {
    let body = event["body"].as_str().unwrap();
    if event["isBase64Encoded"].as_bool() == Some(true) {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

async fn invoke<D: DedupStore, P: EventPublisher>(
    ingest: &AwsIngest<D, P>,
    event: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle_lambda(ingest, request).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    (status, body)
}

#[tokio::test]
async fn deliveries_signed_by_twilio_python_behind_api_gateway_are_accepted_once() {
    for fixture in fixtures() {
        // GIVEN ingest configured with the public URL Twilio calls, on its own table and stream
        let s = services().await;
        let ingest = real_ingest(&s, &fixture.public_url, &fixture.auth_token);
        // WHEN API Gateway hands over the delivery, and then the same delivery again
        let (status, body) = invoke(&ingest, &fixture.event).await;
        assert_eq!(status, 200, "{}: {body}", fixture.name);
        let (again, body_again) = invoke(&ingest, &fixture.event).await;
        // THEN the first is accepted, the second a duplicate
        assert_eq!(
            (
                body["accepted"].as_u64(),
                again,
                body_again["duplicates"].as_u64()
            ),
            (Some(1), 200, Some(1)),
            "{}",
            fixture.name
        );
        // AND the stream holds the event once, byte for byte, keyed by its MessageSid
        let stored = read_stream(&s.kinesis, &s.stream).await;
        assert_eq!(stored.len(), 1, "{}", fixture.name);
        let body = fixture_body(&fixture.event);
        assert_eq!(
            stored[0].1,
            body[1..body.len() - 1].to_vec(),
            "{}",
            fixture.name
        );
        assert_eq!(stored[0].0, "SM7d6c5b4a39281706f5e4d3c2b1a09f8e");
    }
}

#[tokio::test]
async fn public_base_url_auto_takes_the_url_from_api_gateways_request_context() {
    let s = services().await;
    let fixtures = fixtures();
    let by_name = |name: &str| fixtures.iter().find(|f| f.name == name).unwrap();
    let auto = |token: &str| {
        let mut settings = IngestSettings::for_base_url("https://not-used.example.com");
        settings.base_url_from_request = true;
        Ingest::with_clock(
            settings,
            Verifier::new(SecretSet::new().with_auth_token(token)),
            dedup(&s),
            publisher(&s),
            SqsQuarantine::new(s.sqs.clone(), &s.queue),
            Arc::new(MemorySink::default()),
            TestClock::default(),
        )
    };
    // The default execute-api endpoint with a stage: domain + stage is what Twilio called.
    let stage = by_name("stage");
    assert_eq!(invoke(&auto(&stage.auth_token), &stage.event).await.0, 200);
    // A custom domain with a base path mapping: the request context cannot know the base path,
    // so auto refuses it (the deploy guide says to set PUBLIC_BASE_URL then).
    let custom = by_name("custom-domain");
    assert_eq!(
        invoke(&auto(&custom.auth_token), &custom.event).await.0,
        503
    );
}

#[tokio::test]
async fn the_same_delivery_changed_in_any_byte_is_refused() {
    let s = services().await;
    for fixture in fixtures() {
        let ingest = real_ingest(&s, &fixture.public_url, &fixture.auth_token);
        let body = fixture_body(&fixture.event);
        let mut variants = Vec::new();
        // Every 7th byte of the body (and the first and last).
        for i in (0..body.len()).step_by(7).chain([body.len() - 1]) {
            let mut changed = body.clone();
            changed[i] ^= 0x01;
            let mut event = fixture.event.clone();
            event["body"] = {
                use base64::Engine as _;
                serde_json::Value::String(
                    base64::engine::general_purpose::STANDARD.encode(&changed),
                )
            };
            event["isBase64Encoded"] = serde_json::Value::Bool(true);
            variants.push(event);
        }
        // Each character of the query string, and of the signature.
        let query = fixture.event["rawQueryString"].as_str().unwrap().to_owned();
        for i in 0..query.len() {
            let mut event = fixture.event.clone();
            let mut changed = query.clone().into_bytes();
            changed[i] = if changed[i] == b'0' { b'1' } else { b'0' };
            event["rawQueryString"] =
                serde_json::Value::String(String::from_utf8(changed).unwrap());
            variants.push(event);
        }
        let signature = fixture.event["headers"]["x-twilio-signature"]
            .as_str()
            .unwrap()
            .to_owned();
        for i in 0..signature.len() - 1 {
            let mut event = fixture.event.clone();
            let mut changed = signature.clone().into_bytes();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            event["headers"]["x-twilio-signature"] =
                serde_json::Value::String(String::from_utf8(changed).unwrap());
            variants.push(event);
        }
        for event in &variants {
            let (status, _) = invoke(&ingest, event).await;
            assert_eq!(
                status, 503,
                "{}: a changed request must not get in",
                fixture.name
            );
        }
    }
    assert!(
        read_stream(&s.kinesis, &s.stream).await.is_empty(),
        "nothing forged reached the stream"
    );
}

// ----- fault injection around the real adapters -----

fn message(i: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/2010-04-01/Accounts/AC9/Messages/SM{i:032}.json","id":"EZ{i:032}","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{i:032}","accountSid":"AC9","messageStatus":"SENT"}}}}"#
    )
}

const TOKEN: &str = "fault-token";
const URL: &str = "https://hooks.example.com/twilio/events";

struct Delivery {
    query: String,
    signature: String,
    body: Vec<u8>,
}

fn delivery(events: &[String]) -> Delivery {
    let body = format!("[{}]", events.join(",")).into_bytes();
    let signed = sign(
        &SigningKey::AuthToken(TOKEN.into()),
        URL,
        &body,
        BodyEncoding::Json,
    );
    Delivery {
        query: signed.url.split_once('?').unwrap().1.to_owned(),
        signature: signed.signature,
        body,
    }
}

async fn deliver_once<D: DedupStore, P: EventPublisher>(
    ingest: &AwsIngest<D, P>,
    d: &Delivery,
    budget: Duration,
) -> u16 {
    ingest
        .handle(IngestRequest {
            route: Route::Events,
            raw_query: Some(&d.query),
            content_type: Some("application/json"),
            signature: Some(&d.signature),
            signature_settings: None,
            body: &d.body,
            request_id: "fault-test",
            deadline: Instant::now() + budget,
            public_base_url: None,
            idempotency_token: None,
        })
        .await
        .status
}

/// Delivers as Twilio does: retries on 429 and 5xx (with a short backoff here), stops on
/// anything else. Returns the final status and the number of attempts.
async fn deliver_like_twilio<D: DedupStore, P: EventPublisher>(
    ingest: &AwsIngest<D, P>,
    d: &Delivery,
    on_retry: impl Fn(u32),
) -> (u16, u32) {
    let mut wait = Duration::from_millis(20);
    for attempt in 1..=40 {
        let status = deliver_once(ingest, d, Duration::from_secs(3)).await;
        if status != 429 && status < 500 {
            return (status, attempt);
        }
        on_retry(attempt);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(300));
    }
    panic!("still failing after 40 attempts");
}

async fn assert_each_once(s: &Services, events: &[String]) {
    let mut stored: Vec<Vec<u8>> = read_stream(&s.kinesis, &s.stream)
        .await
        .into_iter()
        .map(|(_, d, _)| d)
        .collect();
    stored.sort();
    let mut expected: Vec<Vec<u8>> = events.iter().map(|e| e.clone().into_bytes()).collect();
    expected.sort();
    assert_eq!(stored.len(), expected.len(), "lost or duplicated events");
    assert_eq!(stored, expected);
}

/// Stores only every other record of its first `faulty_calls` puts and reports the rest failed,
/// as Kinesis does under partial throttling.
struct PartialPuts<P> {
    inner: P,
    faulty_calls: AtomicUsize,
}

impl<P: EventPublisher> EventPublisher for PartialPuts<P> {
    async fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> Result<Vec<Result<(), EntryError>>, StreamPublishError> {
        if self.faulty_calls.load(Ordering::SeqCst) == 0 {
            return self.inner.put_records(records).await;
        }
        self.faulty_calls.fetch_sub(1, Ordering::SeqCst);
        let kept: Vec<OutgoingRecord<'_>> = records.iter().step_by(2).copied().collect();
        let results = self.inner.put_records(&kept).await?;
        let mut kept_results = results.into_iter();
        Ok((0..records.len())
            .map(|i| {
                if i % 2 == 0 {
                    kept_results.next().unwrap_or(Ok(()))
                } else {
                    Err(EntryError::from_code(
                        "ProvisionedThroughputExceededException",
                        "",
                    ))
                }
            })
            .collect())
    }
}

#[tokio::test]
async fn kinesis_rejecting_some_records_of_a_put_loses_nothing() {
    let s = services().await;
    let flaky = PartialPuts {
        inner: publisher(&s),
        faulty_calls: AtomicUsize::new(2),
    };
    let ingest = ingest_with(&s, URL, TOKEN, dedup(&s), flaky, TestClock::default());
    let events: Vec<String> = (0..20).map(message).collect();
    let (status, attempts) = deliver_like_twilio(&ingest, &delivery(&events), |_| {}).await;
    assert_eq!(
        (status, attempts),
        (200, 1),
        "retried inside the invocation"
    );
    assert_each_once(&s, &events).await;
}

/// Fails every put while `down` is set: Kinesis throttling every call for a while.
struct Outage<P> {
    inner: P,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl<P: EventPublisher> EventPublisher for Outage<P> {
    async fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> Result<Vec<Result<(), EntryError>>, StreamPublishError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StreamPublishError::new(
                "ProvisionedThroughputExceededException: Rate exceeded for stream",
            ));
        }
        self.inner.put_records(records).await
    }
}

#[tokio::test]
async fn kinesis_throttling_every_call_for_a_while_loses_nothing() {
    let s = services().await;
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ingest = ingest_with(
        &s,
        URL,
        TOKEN,
        dedup(&s),
        Outage {
            inner: publisher(&s),
            down: Arc::clone(&down),
        },
        TestClock::default(),
    );
    let events: Vec<String> = (100..105).map(message).collect();
    // Twilio retries; the outage ends after the third attempt.
    let (status, attempts) = deliver_like_twilio(&ingest, &delivery(&events), |attempt| {
        if attempt == 3 {
            down.store(false, Ordering::SeqCst);
        }
    })
    .await;
    assert_eq!((status, attempts), (200, 4));
    assert_each_once(&s, &events).await;
}

/// Fails the first `remaining` claim calls as a throttled DynamoDB would.
struct Throttled<D> {
    inner: D,
    remaining: AtomicUsize,
}

impl<D: DedupStore> DedupStore for Throttled<D> {
    async fn claim(&self, claims: &[DedupClaim]) -> Vec<DedupOutcome> {
        if self.remaining.load(Ordering::SeqCst) > 0 {
            self.remaining.fetch_sub(1, Ordering::SeqCst);
            return claims
                .iter()
                .map(|_| {
                    DedupOutcome::Failed(DedupStoreError::backend(
                        "ProvisionedThroughputExceededException",
                    ))
                })
                .collect();
        }
        self.inner.claim(claims).await
    }
    async fn complete(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        self.inner.complete(claims).await
    }
    async fn release(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
        self.inner.release(claims).await
    }
}

#[tokio::test]
async fn dynamodb_throttling_loses_nothing() {
    let s = services().await;
    let ingest = ingest_with(
        &s,
        URL,
        TOKEN,
        Throttled {
            inner: dedup(&s),
            remaining: AtomicUsize::new(3),
        },
        publisher(&s),
        TestClock::default(),
    );
    let events: Vec<String> = (200..203).map(message).collect();
    let (status, attempts) = deliver_like_twilio(&ingest, &delivery(&events), |_| {}).await;
    assert_eq!((status, attempts), (200, 4));
    assert_each_once(&s, &events).await;
}

/// Never answers its first put: the invocation is cut off between claim and publish.
struct HangsOnce<P> {
    inner: P,
    hung: std::sync::atomic::AtomicBool,
}

impl<P: EventPublisher> EventPublisher for HangsOnce<P> {
    async fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> Result<Vec<Result<(), EntryError>>, StreamPublishError> {
        if !self.hung.swap(true, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.put_records(records).await
    }
}

#[tokio::test]
async fn running_out_of_time_between_claim_and_publish_loses_nothing() {
    let s = services().await;
    let clock = TestClock::default();
    let ingest = ingest_with(
        &s,
        URL,
        TOKEN,
        dedup(&s),
        HangsOnce {
            inner: publisher(&s),
            hung: Default::default(),
        },
        clock.clone(),
    );
    let events: Vec<String> = (300..302).map(message).collect();
    let d = delivery(&events);
    // GIVEN an invocation killed (its future dropped) after claiming, before publishing
    let killed = tokio::time::timeout(
        Duration::from_millis(500),
        deliver_once(&ingest, &d, Duration::from_secs(3)),
    )
    .await;
    assert!(killed.is_err(), "the first attempt must be cut off");
    // WHEN Twilio retries while the dead attempt's lease lasts: 503, retry later
    assert_eq!(deliver_once(&ingest, &d, Duration::from_secs(3)).await, 503);
    // AND retries again once the lease has run out (the lease outlives the deadline by seconds)
    clock.0.store(60, Ordering::SeqCst);
    assert_eq!(deliver_once(&ingest, &d, Duration::from_secs(3)).await, 200);
    // THEN every event is in the stream, once
    assert_each_once(&s, &events).await;
}

#[tokio::test]
async fn the_same_event_twice_at_once_is_published_once() {
    let s = services().await;
    let ingest = Arc::new(real_ingest(&s, URL, TOKEN));
    let events: Vec<String> = (400..403).map(message).collect();
    let d = Arc::new(delivery(&events));
    let attempts = (0..2).map(|_| {
        let (ingest, d) = (Arc::clone(&ingest), Arc::clone(&d));
        async move { deliver_like_twilio(&ingest, &d, |_| {}).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "{results:?}"
    );
    assert_each_once(&s, &events).await;
}

#[tokio::test]
async fn a_malformed_delivery_lands_in_the_sqs_quarantine() {
    let s = services().await;
    let ingest = real_ingest(&s, URL, TOKEN);
    let body = b"[{\"specversion\":\"1.0\",\"type\":\"x\",\"id\":".to_vec();
    let signed = sign(
        &SigningKey::AuthToken(TOKEN.into()),
        URL,
        &body,
        BodyEncoding::Json,
    );
    let d = Delivery {
        query: signed.url.split_once('?').unwrap().1.to_owned(),
        signature: signed.signature,
        body: body.clone(),
    };
    assert_eq!(deliver_once(&ingest, &d, Duration::from_secs(3)).await, 200);
    let messages = drain_queue(&s.sqs, &s.queue).await;
    assert_eq!(messages.len(), 1);
    let item: twilio_events::quarantine::QuarantinedItem =
        serde_json::from_str(&messages[0]).unwrap();
    assert_eq!(item.payload_bytes(), body, "kept whole for replay");
    assert_eq!(
        (item.source.as_str(), item.reason.as_str()),
        ("ingest", "malformed")
    );
    assert!(read_stream(&s.kinesis, &s.stream).await.is_empty());
}

#[tokio::test]
async fn round_trips_stay_at_three_whatever_the_batch_size() {
    // Counting calls through the real adapters: claim, put, complete.
    struct Counting<T> {
        inner: T,
        calls: Arc<AtomicUsize>,
    }
    impl<D: DedupStore> DedupStore for Counting<D> {
        async fn claim(&self, claims: &[DedupClaim]) -> Vec<DedupOutcome> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.claim(claims).await
        }
        async fn complete(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.complete(claims).await
        }
        async fn release(&self, claims: &[DedupClaim]) -> Result<(), DedupStoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.release(claims).await
        }
    }
    impl<P: EventPublisher> EventPublisher for Counting<P> {
        async fn put_records(
            &self,
            records: &[OutgoingRecord<'_>],
        ) -> Result<Vec<Result<(), EntryError>>, StreamPublishError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.put_records(records).await
        }
    }
    let s = services().await;
    for size in [1, 10, 60] {
        let calls = Arc::new(AtomicUsize::new(0));
        let ingest = ingest_with(
            &s,
            URL,
            TOKEN,
            Counting {
                inner: dedup(&s),
                calls: Arc::clone(&calls),
            },
            Counting {
                inner: publisher(&s),
                calls: Arc::clone(&calls),
            },
            TestClock::default(),
        );
        let events: Vec<String> = (1000 * size..1000 * size + size).map(message).collect();
        assert_eq!(
            deliver_once(&ingest, &delivery(&events), Duration::from_secs(3)).await,
            200
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "{size} events: claim, put, complete"
        );
    }
}
