//! Issue 12 against the ingest handler on its AWS adapters: API Gateway v2 events through
//! `handle_lambda`, the core wired by `startup::aws` from a `Config` (as the Lambda is) on
//! moto_server's DynamoDB, Kinesis, SQS and Secrets Manager; the quarantine's dedup on
//! DynamoDB Local, whose conditional writes are AWS's own. Each attack is first shown to
//! verify as Twilio signed it; each test ends with a look at what was stored. The last test
//! takes the classic webhook routes (issue 13) through the same Lambda path.

use base64::Engine as _;
use ingest::Ingest;
use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::adapters::kinesis::KinesisPublisher;
use ingest::config::{Config, IngestSettings};
use ingest::lambda::handle_lambda;
use ingest::ports::{DedupStore, EventPublisher, SystemClock};
use ingest::startup::{self, AwsIngest};
use std::time::{Duration, Instant};
use twilio_events::metrics::{MetricsSink, NoMetrics};
use twilio_events::quarantine::{Quarantine, SqsQuarantine};
use twilio_events::signature::{BodyEncoding, SigningKey, sign};
use twilio_events_testkit::aws::{
    create_dedup_table, create_queue, create_stream, ddb_local_endpoint, drain_queue,
    moto_endpoint, read_stream, sdk_config, unique,
};

const BASE: &str = "https://abc123xyz.execute-api.us-east-1.amazonaws.com/prod";
const ACCOUNT_A: &str = "AC0000000000000000000000000000000a";
const SUBACCOUNT_OF_A: &str = "AC000000000000000000000000000000a1";
const ACCOUNT_B: &str = "AC0000000000000000000000000000000b";

/// One deployment's resources in moto: table, stream, queue and the Twilio secret.
struct Stack {
    sdk: aws_config::SdkConfig,
    ddb: aws_sdk_dynamodb::Client,
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
    secrets: aws_sdk_secretsmanager::Client,
    table: String,
    stream: String,
    queue: String,
    secret_arn: String,
}

async fn stack(secret: &str) -> Stack {
    let sdk = sdk_config(&moto_endpoint()).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let table = unique("hardening-dedup");
    let stream = unique("hardening-events");
    create_dedup_table(&ddb, &table).await;
    create_stream(&kinesis, &stream, 1).await;
    let queue = create_queue(&sqs, &unique("hardening-quarantine")).await;
    let secret_arn = secrets
        .create_secret()
        .name(unique("hardening-twilio"))
        .secret_string(secret)
        .send()
        .await
        .expect("create the Twilio secret in moto")
        .arn()
        .unwrap_or_default()
        .to_owned();
    Stack {
        sdk,
        ddb,
        kinesis,
        sqs,
        secrets,
        table,
        stream,
        queue,
        secret_arn,
    }
}

impl Stack {
    /// The core as the Lambda starts it: its configuration read from these variables.
    async fn ingest(&self, extra: &[(&str, &str)]) -> AwsIngest {
        let mut vars: Vec<(String, String)> = [
            ("PUBLIC_BASE_URL", BASE),
            ("DEDUP_TABLE", self.table.as_str()),
            ("STREAM_NAME", self.stream.as_str()),
            ("QUARANTINE_QUEUE_URL", self.queue.as_str()),
            ("TWILIO_SECRET_ARN", self.secret_arn.as_str()),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        vars.reverse(); // extra wins
        let config = Config::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("a valid configuration");
        startup::aws(&config, &self.sdk)
            .await
            .expect("ingest starts")
    }

    async fn rotate(&self, secret: &str) {
        self.secrets
            .put_secret_value()
            .secret_id(&self.secret_arn)
            .secret_string(secret)
            .send()
            .await
            .expect("put the new secret value");
    }

    async fn stream(&self) -> Vec<String> {
        read_stream(&self.kinesis, &self.stream)
            .await
            .into_iter()
            .map(|(_, data, _)| String::from_utf8(data).unwrap())
            .collect()
    }

    async fn quarantined(&self) -> Vec<String> {
        drain_queue(&self.sqs, &self.queue).await
    }

    async fn dedup_records(&self) -> usize {
        self.ddb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap()
            .items()
            .len()
    }

    /// Nothing of any request was stored: no event, no quarantined item, no dedup record.
    async fn assert_nothing_stored(&self) {
        assert!(self.stream().await.is_empty(), "nothing in the stream");
        assert!(self.quarantined().await.is_empty(), "nothing quarantined");
        assert_eq!(self.dedup_records().await, 0, "no dedup record");
    }
}

/// An API Gateway HTTP API (v2) event for a POST to `path` below the stage, as API Gateway
/// hands it to the function (the body base64-encoded, so any bytes pass).
fn apigw(
    path: &str,
    query: &str,
    content_type: &str,
    signature: &str,
    body: &[u8],
) -> serde_json::Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": format!("/prod{path}"),
        "rawQueryString": query,
        "headers": {
            "content-type": content_type,
            "host": "abc123xyz.execute-api.us-east-1.amazonaws.com",
            "x-twilio-signature": signature,
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123xyz",
            "domainName": "abc123xyz.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123xyz",
            "http": {
                "method": "POST",
                "path": format!("/prod{path}"),
                "protocol": "HTTP/1.1",
                "sourceIp": "35.90.102.130",
                "userAgent": "Twilio-Event-Streams/1.0"
            },
            "requestId": "hardening-request",
            "routeKey": format!("POST {path}"),
            "stage": "prod",
            "time": "26/Nov/2026:18:04:12 +0000",
            "timeEpoch": 1795802652000u64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// A request as Twilio sends it: signed for `path`, with the route's content type.
fn twilio_request(token: &str, path: &str, body: &[u8]) -> serde_json::Value {
    // Every route but Event Streams' is a form route.
    let (encoding, content_type) = if path == "/twilio/events" {
        (BodyEncoding::Json, "application/json")
    } else {
        (BodyEncoding::Form, "application/x-www-form-urlencoded")
    };
    let signed = sign(
        &SigningKey::AuthToken(token.into()),
        &format!("{BASE}{path}"),
        body,
        encoding,
    );
    let query = signed.url.split_once('?').map(|(_, q)| q).unwrap_or("");
    apigw(path, query, content_type, &signed.signature, body)
}

async fn invoke<D, P, Q, M>(
    ingest: &Ingest<D, P, Q, M, SystemClock>,
    event: &serde_json::Value,
) -> (u16, String)
where
    D: DedupStore,
    P: EventPublisher,
    Q: Quarantine,
    M: MetricsSink,
{
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle_lambda(ingest, request).await;
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    (response.status().as_u16(), body)
}

/// Delivers as Twilio does: retries 429 and 5xx, stops at anything else or at `until`.
async fn deliver_like_twilio<D, P, Q, M>(
    ingest: &Ingest<D, P, Q, M, SystemClock>,
    event: &serde_json::Value,
    until: Instant,
) -> (u16, u32)
where
    D: DedupStore,
    P: EventPublisher,
    Q: Quarantine,
    M: MetricsSink,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, _) = invoke(ingest, event).await;
        if (status != 429 && status < 500) || Instant::now() >= until {
            return (status, attempts);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn event_of(account: &str, id: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/2010-04-01/Accounts/{account}/Messages/SM{id}.json","id":"{id}","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{id}","accountSid":"{account}","messageStatus":"SENT"}}}}"#
    )
}

fn batch(events: &[String]) -> Vec<u8> {
    format!("[{}]", events.join(",")).into_bytes()
}

/// The string a form signature covers: the URL, then each parameter's name and value, sorted.
fn form_signed_string(url: &str, body: &[u8]) -> String {
    let mut params: Vec<(String, String)> = url_form(body);
    params.sort();
    params
        .into_iter()
        .fold(url.to_owned(), |s, (k, v)| s + &k + &v)
}

fn url_form(body: &[u8]) -> Vec<(String, String)> {
    // The same decoding as Twilio's helpers: '+' is a space, %XX a byte.
    let text = String::from_utf8_lossy(body).replace('+', " ");
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const FLAT: &str = r#"{"auth_tokens": ["hardening-token"]}"#;
const TOKEN: &str = "hardening-token";

#[tokio::test]
async fn an_event_streams_signature_replayed_as_a_form_is_refused_before_anything_is_stored() {
    let s = stack(FLAT).await;
    let ingest = s.ingest(&[]).await;
    // GIVEN a captured delivery; its signature covers "<url>?bodySHA256=<hash>"
    let captured = twilio_request(
        TOKEN,
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZ1")]),
    );
    let query = captured["rawQueryString"].as_str().unwrap().to_owned();
    let signature = captured["headers"]["x-twilio-signature"]
        .as_str()
        .unwrap()
        .to_owned();
    // WHEN it is replayed without the query, as a form whose one parameter name is the query
    let body = format!("{}=", percent_encode(&format!("?{query}"))).into_bytes();
    let url = format!("{BASE}/twilio/events");
    assert_eq!(form_signed_string(&url, &body), format!("{url}?{query}"));
    let replay = apigw(
        "/twilio/events",
        "",
        "application/x-www-form-urlencoded",
        &signature,
        &body,
    );
    let (status, answer) = invoke(&ingest, &replay).await;
    // THEN 415, and nothing is stored (the old code quarantined it in SQS and answered 200)
    assert_eq!(status, 415, "{answer}");
    // AND claiming JSON does not help: the events route needs bodySHA256
    let lying = apigw("/twilio/events", "", "application/json", &signature, &body);
    assert_eq!(invoke(&ingest, &lying).await.0, 503);
    s.assert_nothing_stored().await;
}

const USAGE_TRIGGER_FORM: &str = "AccountSid=AC0000000000000000000000000000000a&CurrentValue=1003&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&IdempotencyToken=4e33&Recurring=daily&TriggerBy=count&TriggerValue=1000&UsageCategory=sms&UsageTriggerSid=UT00000000000000000000000000000001";

#[tokio::test]
async fn a_re_split_usage_trigger_callback_is_refused_and_the_genuine_one_is_timed_when_it_fired() {
    let s = stack(FLAT).await;
    let ingest = s.ingest(&[]).await;
    let genuine = twilio_request(
        TOKEN,
        "/twilio/usage-triggers",
        USAGE_TRIGGER_FORM.as_bytes(),
    );
    assert_eq!(invoke(&ingest, &genuine).await.0, 200);
    // GIVEN the callback re-split: DateFired's name takes the start of its value
    let resplit = USAGE_TRIGGER_FORM.replace("DateFired=Fri%2C", "DateFiredFri=%2C");
    let url = format!("{BASE}/twilio/usage-triggers");
    assert_eq!(
        form_signed_string(&url, resplit.as_bytes()),
        form_signed_string(&url, USAGE_TRIGGER_FORM.as_bytes()),
        "the genuine signature covers it"
    );
    let mut replay = genuine.clone();
    replay["body"] = base64::engine::general_purpose::STANDARD
        .encode(resplit.as_bytes())
        .into();
    // WHEN it is replayed; THEN refused (the old code made it a new reading at arrival time)
    let (status, answer) = invoke(&ingest, &replay).await;
    assert_eq!(status, 400, "{answer}");
    let stream = s.stream().await;
    assert_eq!(stream.len(), 1, "the genuine callback only");
    let event: serde_json::Value = serde_json::from_str(&stream[0]).unwrap();
    assert_eq!(event["time"], "2026-11-27T09:12:44Z");
    assert!(s.quarantined().await.is_empty());
}

/// Accounts A and B, each with its own token (a form the old code read too).
fn tenants(token_a: &str) -> String {
    format!(
        r#"{{"accounts": {{
            "{ACCOUNT_A}": {{"auth_tokens": ["{token_a}"]}},
            "{ACCOUNT_B}": {{"auth_tokens": ["tok-b"]}}
        }}}}"#
    )
}

#[tokio::test]
async fn a_tenants_token_from_secrets_manager_signs_for_its_own_account_only() {
    // GIVEN the per-account secret document in Secrets Manager
    let s = stack(&tenants("tok-a")).await;
    let ingest = s.ingest(&[]).await;
    // WHEN A's token signs a delivery carrying an event that claims account B
    let forged = twilio_request(
        "tok-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZa1"), event_of(ACCOUNT_B, "EZb1")]),
    );
    let (status, answer) = invoke(&ingest, &forged).await;
    // THEN the whole delivery is refused, nothing stored (the old code accepted it: every
    // account's tokens were one flat list)
    assert_eq!(status, 503, "{answer}");
    s.assert_nothing_stored().await;
    // AND A's token carries A's events, B's token B's
    let own = twilio_request(
        "tok-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZa1")]),
    );
    assert_eq!(invoke(&ingest, &own).await.0, 200);
    let b = twilio_request(
        "tok-b",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_B, "EZb1")]),
    );
    assert_eq!(invoke(&ingest, &b).await.0, 200);
    assert_eq!(s.stream().await.len(), 2);
}

#[tokio::test]
async fn a_parents_token_signs_for_the_subaccounts_listed_under_it() {
    // GIVEN a parent's sink subscribed with ReceiveEventsFromSubaccounts: its subaccount's
    // events come signed with the parent's token, and the document lists the subaccount
    let s = stack(&format!(
        r#"{{"accounts": {{"{ACCOUNT_A}": {{"auth_tokens": ["tok-a"], "subaccounts": ["{SUBACCOUNT_OF_A}"]}}}}}}"#
    ))
    .await;
    let ingest = s.ingest(&[]).await;
    let family = twilio_request(
        "tok-a",
        "/twilio/events",
        &batch(&[
            event_of(ACCOUNT_A, "EZa1"),
            event_of(SUBACCOUNT_OF_A, "EZs1"),
        ]),
    );
    assert_eq!(invoke(&ingest, &family).await.0, 200);
    // An account not listed under A is still refused.
    let other = twilio_request(
        "tok-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_B, "EZb1")]),
    );
    assert_eq!(invoke(&ingest, &other).await.0, 503);
    assert_eq!(s.stream().await.len(), 2);
}

#[tokio::test]
async fn a_token_rotated_in_secrets_manager_is_learnt_within_the_refresh_interval_with_nothing_lost()
 {
    // GIVEN a warm instance that read {A: old} at start, re-reading at most every 2 s
    let s = stack(&tenants("old-a")).await;
    let ingest = s.ingest(&[("SECRET_REFRESH_SECONDS", "2")]).await;
    let before = twilio_request(
        "old-a",
        "/twilio/events",
        &batch(&[event_of(ACCOUNT_A, "EZ1")]),
    );
    assert_eq!(invoke(&ingest, &before).await.0, 200);
    // WHEN the token is rotated mid-run: Twilio signs with the new one at once
    s.rotate(&tenants("new-a")).await;
    let rotated_at = Instant::now();
    let during: Vec<serde_json::Value> = (2..6)
        .map(|i| {
            twilio_request(
                "new-a",
                "/twilio/events",
                &batch(&[event_of(ACCOUNT_A, &format!("EZ{i}"))]),
            )
        })
        .collect();
    // THEN each delivery, retried as Twilio does, is accepted within the interval (plus
    // Twilio's backoff), without a restart (the old code answered 503 until recycled)
    for delivery in &during {
        let (status, _) =
            deliver_like_twilio(&ingest, delivery, rotated_at + Duration::from_secs(15)).await;
        assert_eq!(status, 200);
    }
    assert!(
        rotated_at.elapsed() < Duration::from_secs(6),
        "learnt in {:?}",
        rotated_at.elapsed()
    );
    // AND every event is in the stream once
    let mut ids: Vec<String> = s
        .stream()
        .await
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["EZ1", "EZ2", "EZ3", "EZ4", "EZ5"]);
}

#[tokio::test]
async fn retries_of_an_unreadable_delivery_leave_one_message_in_the_sqs_quarantine() {
    // GIVEN ingest on its AWS adapters, deduplicating on DynamoDB Local
    let s = stack(FLAT).await;
    let local = sdk_config(&ddb_local_endpoint()).await;
    let ddb_local = aws_sdk_dynamodb::Client::new(&local);
    let table = unique("hardening-quarantine-dedup");
    create_dedup_table(&ddb_local, &table).await;
    let ingest = Ingest::new(
        IngestSettings::for_base_url(BASE),
        twilio_events::signature::Verifier::new(
            twilio_events::signature::SecretSet::new().with_auth_token(TOKEN),
        ),
        DynamoDedupStore::new(ddb_local.clone(), &table),
        KinesisPublisher::new(s.kinesis.clone(), &s.stream),
        SqsQuarantine::new(s.sqs.clone(), &s.queue),
        NoMetrics,
    );
    let garbage = twilio_request(TOKEN, "/twilio/events", b"[{\"id\": truncated");
    let mixed = twilio_request(
        TOKEN,
        "/twilio/events",
        format!(
            "[{},{}]",
            event_of(ACCOUNT_A, "EZ1"),
            r#"{"type":"com.twilio.messaging.message.sent","data":{}}"#
        )
        .as_bytes(),
    );
    // WHEN Twilio delivers each three times
    for _ in 0..3 {
        assert_eq!(invoke(&ingest, &garbage).await.0, 200);
        assert_eq!(invoke(&ingest, &mixed).await.0, 200);
    }
    // THEN the queue holds one message for each (the old code sent six) and the good event is
    // in the stream once
    let messages = s.quarantined().await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(s.stream().await.len(), 1);
    let items = ddb_local
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
        .filter(|pk| pk.starts_with("quarantine#"))
        .count();
    assert_eq!(items, 2, "one claim per quarantined payload");
}

#[tokio::test]
async fn an_unreadable_delivery_too_large_for_sqs_is_kept_in_the_stacks_bucket_and_acknowledged() {
    // GIVEN a signed delivery of 200 KiB (under the 256 KiB body limit) that cannot be parsed,
    // mostly quotes: JSON escaping doubles it past SQS's 256 KiB message
    let s = stack(FLAT).await;
    let mut body = b"[{\"id\": \"EZ1\", \"data\": ".to_vec();
    body.extend(std::iter::repeat_n(b'"', 200 * 1024));
    let garbage = twilio_request(TOKEN, "/twilio/events", &body);

    // WHEN ingest runs without the stack's bucket (as before it was in the template)
    let without = s.ingest(&[]).await;
    // THEN the quarantine cannot take it: 503, and Twilio would retry it for 4 hours, then drop
    assert_eq!(invoke(&without, &garbage).await.0, 503);

    // WHEN ingest runs as the stack starts it now, with QUARANTINE_BUCKET, and Twilio retries
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&s.sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique("hardening-overflow");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let ingest = s.ingest(&[("QUARANTINE_BUCKET", bucket.as_str())]).await;
    assert_eq!(invoke(&ingest, &garbage).await.0, 200);
    assert_eq!(invoke(&ingest, &garbage).await.0, 200);

    // THEN the bucket holds the payload once, the queue one pointer to it, which resolves to
    // the delivery's bytes
    let objects: Vec<String> = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let messages = s.quarantined().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let item = twilio_events::quarantine::resolve_message(&s3, &messages[0])
        .await
        .unwrap();
    assert_eq!(item.payload_bytes(), body);
    assert_eq!(objects[0], format!("quarantine/{}.json", item.id));
    assert!(s.stream().await.is_empty());
}

#[tokio::test]
async fn classic_webhooks_through_the_lambda_become_events_and_an_inbound_message_gets_twiml() {
    // GIVEN ingest as the Lambda starts it, and an inbound SMS then its reply's status callback
    let s = stack(FLAT).await;
    let ingest = s.ingest(&[]).await;
    let sm = "SM6f9c2e5b8a1d4f7c0b3e6a9d2c5f8b1e";
    let inbound = format!(
        "AccountSid={ACCOUNT_A}&MessageSid={sm}&SmsSid={sm}&SmsMessageSid={sm}&From=%2B12065550123&To=%2B14255550142&Body=Ol%C3%A1&NumMedia=0&NumSegments=1&ApiVersion=2010-04-01"
    );
    let reply = "SM0d3a6c9f2b5e8d1a4c7f0b3e6a9d2c5f";
    let status = format!(
        "AccountSid={ACCOUNT_A}&MessageSid={reply}&SmsSid={reply}&MessageStatus=delivered&SmsStatus=delivered&From=%2B14255550142&To=%2B12065550123&ApiVersion=2010-04-01"
    );

    // WHEN each is posted to its route through API Gateway
    let request = twilio_request(TOKEN, "/twilio/inbound-messages", inbound.as_bytes());
    let response = handle_lambda(
        &ingest,
        lambda_http::request::from_str(&request.to_string()).unwrap(),
    )
    .await;
    // THEN the inbound message is answered with empty TwiML, as Twilio expects
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/xml");
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    assert!(body.contains("<Response/>"), "{body}");
    let (code, answer) = invoke(
        &ingest,
        &twilio_request(TOKEN, "/twilio/message-status", status.as_bytes()),
    )
    .await;
    assert_eq!(code, 200, "{answer}");

    // AND both are in Kinesis as the Event Streams events of the same facts
    let mut types: Vec<String> = s
        .stream()
        .await
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "com.twilio.messaging.inbound-message.received",
            "com.twilio.messaging.message.delivered"
        ]
    );
}
