//! The function binaries (their real `main.rs`: configuration from the environment, the
//! secret read at start, lambda_http / lambda_runtime) under cargo-lambda's Runtime API
//! emulator, with the environment template.yaml gives each function and the resources it names
//! created in the AWS emulators (tests/src/lambda_runtime.rs).
//!
//! - ingest answers API Gateway v2 events: a signed delivery 200, its redelivery a duplicate,
//!   a tampered one refused, an unsigned one 401; what it wrote to Kinesis is then
//! - handed to crm-sync and quota-alert as Kinesis events, which answer partial batch
//!   responses (a record the CRM refuses for now is named by its sequence number);
//! - reconcile, invoked by a scheduled event, looks up a stuck message in a stub of Twilio's REST
//!   API and stores its final status in the stream, with its `Repaired` metric;
//! - kafka-forward, handed a Kinesis event, produces to a real broker (Tansu) and quarantines
//!   what is not a CloudEvent;
//! - a missing or malformed setting makes each binary report an init error to the Runtime API,
//!   with a JSON log line naming the variable.
//!
//! The binaries are the workspace's own (`target/<profile>/{ingest,crm-sync,quota-alert,reconcile,kafka-forward}`),
//! built by `cargo test --workspace --all-targets` before any test runs.

use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twilio_events::signature::{BodyEncoding, SigningKey, sign};
use twilio_events_testkit::aws::{moto_endpoint, read_stream, sdk_config};
use twilio_events_testkit::events::{StatusEvent, kinesis_event};
use twilio_events_testkit::lambda_runtime::{EmulatedStack, FunctionProcess, RuntimeEmulator};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const PUBLIC_BASE: &str = "https://abc123xyz.execute-api.us-east-1.amazonaws.com/prod";

/// A workspace binary beside this test's executable (`target/<profile>/deps/it-…`).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the suite with `cargo test --workspace --all-targets` \
         (infra/scripts/test.sh), which builds the function binaries first",
        path.display()
    );
    path
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An API Gateway HTTP API (payload 2.0) event for a POST of `body` to `/prod<path>`.
fn api_gateway_event(path: &str, body: &[u8], headers: &[(&str, &str)], query: &str) -> Value {
    let mut header_map = serde_json::Map::new();
    header_map.insert("content-type".into(), json!("application/json"));
    header_map.insert(
        "host".into(),
        json!("abc123xyz.execute-api.us-east-1.amazonaws.com"),
    );
    for (k, v) in headers {
        header_map.insert(k.to_ascii_lowercase(), json!(v));
    }
    json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": format!("/prod{path}"),
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123xyz",
            "domainName": "abc123xyz.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123xyz",
            "http": {"method": "POST", "path": format!("/prod{path}"), "protocol": "HTTP/1.1",
                     "sourceIp": "35.90.102.130", "userAgent": "Twilio-Events/1.0"},
            "requestId": "req-1",
            "routeKey": format!("POST {path}"),
            "stage": "prod",
            "time": "30/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_796_032_800_000_u64
        },
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false
    })
}

/// A signed Event Streams delivery of `events` as API Gateway hands it to ingest.
fn signed_delivery(events: &[Vec<u8>]) -> (Value, Vec<u8>, String, String) {
    let mut body = b"[".to_vec();
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.push(b']');
    let url = format!("{PUBLIC_BASE}/twilio/events");
    let signed = sign(
        &SigningKey::AuthToken(TOKEN.into()),
        &url,
        &body,
        BodyEncoding::Json,
    );
    let query = signed
        .url
        .split_once('?')
        .map(|(_, q)| q.to_owned())
        .unwrap_or_default();
    let event = api_gateway_event(
        "/twilio/events",
        &body,
        &[("x-twilio-signature", &signed.signature)],
        &query,
    );
    (event, body, signed.signature, query)
}

/// A CRM on the generic HTTP contract (functions/crm-sync/README.md) that records each PUT's
/// path and answers 503 for paths containing `refuse`.
struct RecordingCrm {
    url: String,
    puts: Arc<Mutex<Vec<String>>>,
}

impl RecordingCrm {
    fn start(refuse: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let puts = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&puts);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve_one(stream, refuse, &seen));
            }
        });
        Self { url, puts }
    }

    fn puts(&self) -> Vec<String> {
        self.puts.lock().unwrap().clone()
    }
}

/// One connection: reads requests (headers, then Content-Length bytes) and answers each.
fn serve_one(mut stream: std::net::TcpStream, refuse: &str, seen: &Mutex<Vec<String>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buffer.extend_from_slice(&chunk[..n]);
                    continue;
                }
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..end + 4 + length);
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        let answer: &[u8] = if request_line.contains(refuse) {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
        } else {
            seen.lock().unwrap().push(request_line);
            b"HTTP/1.1 204 No Content\r\n\r\n"
        };
        if stream.write_all(answer).is_err() {
            return;
        }
    }
}

fn ingest_parameters() -> BTreeMap<String, String> {
    params(&[("PublicBaseUrl", PUBLIC_BASE)])
}

fn ingest_secrets() -> BTreeMap<String, String> {
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "TwilioSecret".to_owned(),
        json!({"auth_tokens": [TOKEN], "shared_keys": {}}).to_string(),
    );
    secrets
}

fn status(answer: &Value) -> u64 {
    answer["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("no statusCode in {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_binaries_run_under_the_runtime_api_from_delivery_to_crm_and_quota() {
    // GIVEN ingest's binary with the template's environment and its resources
    let stack =
        EmulatedStack::for_function("IngestFunction", &ingest_parameters(), &ingest_secrets())
            .await;
    let emulator = RuntimeEmulator::start();
    let ingest = FunctionProcess::spawn(&binary("ingest"), &stack.env, &emulator);
    let delivered = "SM00000000000000000000000000000001";
    let refused_later = "SM00000000000000000000000000000002";
    let events = vec![
        StatusEvent::message(delivered, "delivered").to_bytes(),
        StatusEvent::message(refused_later, "sent").to_bytes(),
    ];
    let (delivery, body, signature, query) = signed_delivery(&events);

    // WHEN Twilio delivers, redelivers, and someone replays it tampered or unsigned
    let first = emulator.invoke(&delivery).await;
    let again = emulator.invoke(&delivery).await;
    let mut tampered_body = body.clone();
    let at = tampered_body.len() / 2;
    tampered_body[at] ^= 0x01;
    let tampered = emulator
        .invoke(&api_gateway_event(
            "/twilio/events",
            &tampered_body,
            &[("x-twilio-signature", &signature)],
            &query,
        ))
        .await;
    let unsigned = emulator
        .invoke(&api_gateway_event("/twilio/events", &body, &[], &query))
        .await;

    // THEN 200 once, a duplicate, a refusal Twilio retries (the template's 503), and 401
    assert_eq!(
        status(&first),
        200,
        "{first} / {:?}",
        ingest.output().lines()
    );
    let summary: Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(summary["accepted"], 2, "{summary}");
    let summary: Value = serde_json::from_str(again["body"].as_str().unwrap()).unwrap();
    assert_eq!(status(&again), 200);
    assert_eq!(summary["duplicates"], 2, "{summary}");
    assert_eq!(stack.env["SIGNATURE_FAILURE_STATUS"], "503");
    assert_eq!(status(&tampered), 503, "{tampered}");
    assert_eq!(status(&unsigned), 401, "{unsigned}");
    // AND the stream holds each event once, keyed by its SID
    let moto = sdk_config(&moto_endpoint()).await;
    let stream_name = stack.physical("EventStream").to_owned();
    let written = read_stream(&aws_sdk_kinesis::Client::new(&moto), &stream_name).await;
    assert_eq!(written.len(), 2, "{written:?}");
    let keys: Vec<&str> = written.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(
        keys.contains(&delivered) && keys.contains(&refused_later),
        "{keys:?}"
    );
    drop(ingest);

    // GIVEN crm-sync with a CRM that refuses one message for now
    let crm = RecordingCrm::start(refused_later);
    let crm_stack = EmulatedStack::for_function(
        "CrmSyncFunction",
        &params(&[("CrmKind", "http"), ("CrmUrl", &crm.url)]),
        &BTreeMap::new(),
    )
    .await;
    let crm_emulator = RuntimeEmulator::start();
    let crm_sync = FunctionProcess::spawn(&binary("crm-sync"), &crm_stack.env, &crm_emulator);
    // WHEN it gets what ingest wrote, as a Kinesis event
    let answer = crm_emulator
        .invoke(&kinesis_event(&stream_name, &written))
        .await;
    // THEN the delivered message reached the CRM and the refused one is a batch item failure
    let refused_sequence = &written
        .iter()
        .find(|(k, _, _)| k == refused_later)
        .expect("the refused message's record")
        .2;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": refused_sequence}]}),
        "{:?}",
        crm_sync.output().lines()
    );
    let puts = crm.puts();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(
        puts[0].starts_with(&format!("PUT /messages/{delivered}")),
        "{puts:?}"
    );
    drop(crm_sync);

    // GIVEN quota-alert counting sent messages, limit 1
    let quotas = json!({"quotas": [{"name": "sms-hour", "counts": "messages", "window": "hour",
                                    "limit": 1, "thresholds": [1.0]}]})
    .to_string();
    let quota_stack = EmulatedStack::for_function(
        "QuotaAlertFunction",
        &params(&[("QuotasJson", &quotas)]),
        &BTreeMap::new(),
    )
    .await;
    let quota_emulator = RuntimeEmulator::start();
    let quota_alert =
        FunctionProcess::spawn(&binary("quota-alert"), &quota_stack.env, &quota_emulator);
    // WHEN it gets the same records
    let answer = quota_emulator
        .invoke(&kinesis_event(&stream_name, &written))
        .await;
    // THEN no record failed, and its EMF line reports the quota's use
    assert_eq!(
        answer,
        json!({"batchItemFailures": []}),
        "{:?}",
        quota_alert.output().lines()
    );
    let emf = quota_alert
        .output()
        .json_lines()
        .into_iter()
        .find(|l| l.get("QuotaName").and_then(Value::as_str) == Some("sms-hour"));
    let emf = emf.unwrap_or_else(|| panic!("no EMF line: {:?}", quota_alert.output().lines()));
    assert_eq!(emf["Used"], 1.0, "{emf}");
}

/// Starts `binary` with the function's template environment minus or plus one change, and
/// checks that it stops, logs a JSON error line naming `variable`, and reports an init error.
async fn refuses_to_start(
    function_id: &str,
    binary_name: &str,
    parameters: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    variable: &str,
    value: Option<&str>,
) {
    let stack = EmulatedStack::for_function(function_id, &parameters, &secrets).await;
    let mut env = stack.env.clone();
    assert!(
        env.contains_key(variable),
        "template.yaml no longer gives {function_id} the variable {variable}"
    );
    match value {
        Some(v) => env.insert(variable.to_owned(), v.to_owned()),
        None => env.remove(variable),
    };
    let emulator = RuntimeEmulator::start();
    let mut process = FunctionProcess::spawn(&binary(binary_name), &env, &emulator);
    let exit = process.wait_exit(Duration::from_secs(30));
    assert!(
        matches!(exit, Some(status) if !status.success()),
        "{binary_name} without a valid {variable} should stop: {exit:?}, {:?}",
        process.output().lines()
    );
    let logged = process.output().json_lines().into_iter().any(|line| {
        line["level"] == "ERROR"
            && line["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(variable))
    });
    assert!(
        logged,
        "no JSON error line naming {variable}: {:?}",
        process.output().lines()
    );
    assert!(
        emulator.received_init_error(),
        "the Runtime API got no init error from {binary_name}: {:?}",
        emulator.output().lines()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_binary_reports_a_missing_or_malformed_setting_as_an_init_error() {
    let none = BTreeMap::new;
    let crm = || params(&[("CrmKind", "http"), ("CrmUrl", "http://127.0.0.1:9")]);
    refuses_to_start(
        "IngestFunction",
        "ingest",
        ingest_parameters(),
        ingest_secrets(),
        "DEDUP_TABLE",
        None,
    )
    .await;
    refuses_to_start(
        "IngestFunction",
        "ingest",
        ingest_parameters(),
        ingest_secrets(),
        "DEDUP_WINDOW_HOURS",
        Some("two days"),
    )
    .await;
    refuses_to_start(
        "CrmSyncFunction",
        "crm-sync",
        crm(),
        none(),
        "LEDGER_TABLE",
        None,
    )
    .await;
    refuses_to_start(
        "CrmSyncFunction",
        "crm-sync",
        crm(),
        none(),
        "CRM_URL",
        Some("not a url"),
    )
    .await;
    refuses_to_start(
        "QuotaAlertFunction",
        "quota-alert",
        none(),
        none(),
        "COUNTER_TABLE",
        None,
    )
    .await;
    refuses_to_start(
        "ReconcileFunction",
        "reconcile",
        params(&[
            (
                "TwilioApiSecretArn",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
            ),
            ("CrmKind", "http"),
            ("CrmUrl", "http://127.0.0.1:9"),
        ]),
        none(),
        "LEDGER_TABLE",
        None,
    )
    .await;
    refuses_to_start(
        "QuotaAlertFunction",
        "quota-alert",
        none(),
        none(),
        "QUOTAS_JSON",
        Some("{\"quotas\": [{}]}"),
    )
    .await;
    refuses_to_start(
        "KafkaForwardFunction",
        "kafka-forward",
        params(&[("KafkaBootstrapServers", "127.0.0.1:9092")]),
        none(),
        "KAFKA_SECURITY_PROTOCOL",
        Some("TLS"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_forward_runs_under_the_runtime_api_and_produces_to_the_broker() {
    use twilio_events_testkit::kafka::Broker;
    // GIVEN a broker with the topic, and kafka-forward's binary with the template's environment
    // for a plaintext broker
    let broker = Broker::start();
    broker.create_topic("twilio-events", 3).await;
    let stack = EmulatedStack::for_function(
        "KafkaForwardFunction",
        &params(&[
            ("KafkaBootstrapServers", &broker.bootstrap()),
            ("KafkaSecurityProtocol", "PLAINTEXT"),
        ]),
        &BTreeMap::new(),
    )
    .await;
    let emulator = RuntimeEmulator::start();
    let forward = FunctionProcess::spawn(&binary("kafka-forward"), &stack.env, &emulator);
    // WHEN it gets a Kinesis event of two status events and a record that is not a CloudEvent
    let first = "SM00000000000000000000000000000001";
    let second = "SM00000000000000000000000000000002";
    let records = vec![
        (
            first.to_owned(),
            StatusEvent::message(first, "sent").to_bytes(),
            "49590338271490256608559692538361571095921575989136588801".to_owned(),
        ),
        (
            "garbage".to_owned(),
            b"not an event".to_vec(),
            "49590338271490256608559692538361571095921575989136588802".to_owned(),
        ),
        (
            second.to_owned(),
            StatusEvent::message(second, "delivered").to_bytes(),
            "49590338271490256608559692538361571095921575989136588803".to_owned(),
        ),
    ];
    let answer = emulator
        .invoke(&kinesis_event("twilio-events", &records))
        .await;
    // THEN no record is reported back
    assert_eq!(
        answer,
        json!({"batchItemFailures": []}),
        "{:?}",
        forward.output().lines()
    );
    // AND the two events are on the topic, keyed, byte for byte
    let consumed = broker.read_all("twilio-events", 3);
    let mut landed: Vec<(Vec<u8>, Vec<u8>)> = consumed
        .into_iter()
        .map(|m| (m.key.unwrap_or_default(), m.value))
        .collect();
    landed.sort();
    assert_eq!(
        landed,
        vec![
            (first.as_bytes().to_vec(), records[0].1.clone()),
            (second.as_bytes().to_vec(), records[2].1.clone()),
        ]
    );
    // AND the garbage is in the quarantine queue, and the EMF line counts both
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&moto_endpoint()).await);
    let quarantined =
        twilio_events_testkit::aws::drain_queue(&sqs, &stack.env["QUARANTINE_QUEUE_URL"]).await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(
        quarantined[0].contains("malformed-record"),
        "{quarantined:?}"
    );
    let emf = forward
        .output()
        .json_lines()
        .into_iter()
        .find(|l| l.get("Service").and_then(Value::as_str) == Some("kafka-forward"))
        .unwrap_or_else(|| panic!("no EMF line: {:?}", forward.output().lines()));
    assert_eq!(
        (emf["Forwarded"].as_f64(), emf["Quarantined"].as_f64()),
        (Some(2.0), Some(1.0)),
        "{emf}"
    );
}

/// Twilio's REST API for one run of reconcile: every message is `delivered`, the lists are
/// empty; HTTP Basic auth with [`twilio_events_testkit::events::ACCOUNT_SID`] and [`TOKEN`].
/// Records each request line.
struct TwilioRestStub {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TwilioRestStub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    seen.lock().unwrap().push(line.clone());
                    let account = twilio_events_testkit::events::ACCOUNT_SID;
                    let auth = base64::engine::general_purpose::STANDARD
                        .encode(format!("{account}:{TOKEN}"));
                    let (status, body) = if !head.contains(&format!("Basic {auth}")) {
                        (
                            "401 Unauthorized",
                            json!({"code": 20003, "message": "Authenticate"}),
                        )
                    } else if let Some(sid) = line
                        .split("/Messages/")
                        .nth(1)
                        .and_then(|rest| rest.split(".json").next())
                    {
                        let message = json!({
                            "sid": sid, "account_sid": account, "status": "delivered",
                            "date_updated": "Mon, 30 Nov 2026 09:00:00 +0000",
                            "date_sent": "Mon, 30 Nov 2026 08:59:58 +0000", "error_code": null,
                        });
                        ("200 OK", message)
                    } else {
                        let name = if line.contains("/Calls.json") {
                            "calls"
                        } else {
                            "messages"
                        };
                        ("200 OK", json!({ name: [], "next_page_uri": null }))
                    };
                    let body = body.to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_runs_under_the_runtime_api_on_its_schedule_and_stores_what_the_stream_missed() {
    // GIVEN reconcile's binary with the template's environment: crm-sync's ledger (with its
    // open index), ingest's dedup table, the stream, and the REST API credentials secret
    let moto = sdk_config(&moto_endpoint()).await;
    let secret = aws_sdk_secretsmanager::Client::new(&moto)
        .create_secret()
        .name(twilio_events_testkit::aws::unique("twilio-api"))
        .secret_string(
            json!({"account_sid": twilio_events_testkit::events::ACCOUNT_SID, "auth_token": TOKEN})
                .to_string(),
        )
        .send()
        .await
        .expect("create the credentials secret");
    let parameters = params(&[
        ("TwilioApiSecretArn", secret.arn().unwrap()),
        ("CrmKind", "http"),
        ("CrmUrl", "http://127.0.0.1:9"),
    ]);
    let stack =
        EmulatedStack::for_function("ReconcileFunction", &parameters, &BTreeMap::new()).await;
    let twilio = TwilioRestStub::start();
    let mut env = stack.env.clone();
    env.insert("TWILIO_API_BASE".into(), twilio.url.clone());
    // AND the ledger holding a message at `sent`, last moved 16 minutes ago (due: it crossed
    // the 15-minute step since the previous run)
    let sid = "SM00000000000000000000000000000016";
    let changed = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 16 * 60 * 1000;
    let ddb = sdk_config(&twilio_events_testkit::aws::ddb_local_endpoint()).await;
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    let n = |v: i64| aws_sdk_dynamodb::types::AttributeValue::N(v.to_string());
    aws_sdk_dynamodb::Client::new(&ddb)
        .put_item()
        .table_name(stack.physical("LedgerTable"))
        .item("sid", s(sid))
        .item("kind", s("message"))
        .item("status", s("sent"))
        .item("rank", n(4))
        .item("event_time_ms", n(changed))
        .item("event_id", s("EZsent"))
        .item("state", s("pushed"))
        .item("open_kind", s("message"))
        .item("changed_at_ms", n(changed))
        .send()
        .await
        .expect("seed the ledger");
    let emulator = RuntimeEmulator::start();
    let reconcile = FunctionProcess::spawn(&binary("reconcile"), &env, &emulator);

    // WHEN EventBridge's schedule invokes it
    let answer = emulator
        .invoke(&json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-30T09:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/twilio-events-reconcile"],
            "detail": {}
        }))
        .await;

    // THEN it looked the message up, found it delivered, and stored that once in the stream
    assert_eq!(
        answer["looked_up"],
        1,
        "{answer} / {:?}",
        reconcile.output().lines()
    );
    assert_eq!(answer["stored"], 1, "{answer}");
    assert!(
        twilio
            .requests()
            .iter()
            .any(|r| r.contains(&format!("/Messages/{sid}.json"))),
        "{:?}",
        twilio.requests()
    );
    let written = read_stream(
        &aws_sdk_kinesis::Client::new(&moto),
        stack.physical("EventStream"),
    )
    .await;
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].0, sid);
    let event: Value = serde_json::from_slice(&written[0].1).unwrap();
    assert_eq!(event["type"], "com.twilio.messaging.message.delivered");
    // AND its metrics say a status was repaired (the alarm's metric)
    let emf = reconcile
        .output()
        .json_lines()
        .into_iter()
        .find(|l| l.get("_aws").is_some() && l.get("Repaired").is_some())
        .unwrap_or_else(|| panic!("no EMF line: {:?}", reconcile.output().lines()));
    assert_eq!(emf["Repaired"], 1.0, "{emf}");
    assert_eq!(emf["Service"], "reconcile", "{emf}");
}

/// CPU time of every thread of process `pid` so far (`/proc/<pid>/task/*/schedstat`, ns).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Peak resident memory of process `pid` (`VmHWM`, kB).
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A function binary started as FunctionProcess does, but optionally inside a CPU cgroup
/// (`TWILIO_EVENTS_LATENCY_CGROUP`: a cgroup v1 `cpu` directory whose quota gives the share
/// Lambda gives a memory size) before its first instruction, for infra/latency/measure.sh.
fn spawn_measured(
    binary: &std::path::Path,
    env: &BTreeMap<String, String>,
    emulator: &RuntimeEmulator,
) -> std::process::Child {
    let mut command = match std::env::var("TWILIO_EVENTS_LATENCY_CGROUP") {
        Ok(cgroup) => {
            let mut c = std::process::Command::new("sh");
            c.arg("-c")
                .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$1""#)
                .arg(cgroup)
                .arg(binary);
            c
        }
        Err(_) => std::process::Command::new(binary),
    };
    command
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api())
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// Waits until the function asks the Runtime API for its first invocation: its init is over.
fn wait_for_first_next(emulator: &RuntimeEmulator, within: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if emulator
            .output()
            .lines()
            .iter()
            .any(|l| l.contains("/runtime/invocation/next"))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!(
        "the function never asked for an invocation: {:?}",
        emulator.output().lines()
    );
}

/// Init and per-invocation figures of ingest under the Runtime API emulator, which the latency
/// model of docs/cost.md starts from: init (process start to its first `invocation/next`), CPU
/// per delivery, wall time per invocation, peak RSS. Each delivery is a new event (claim,
/// publish, complete). infra/latency/measure.sh runs it with the release binary
/// (`TWILIO_EVENTS_LATENCY_BINARY`), more deliveries (`TWILIO_EVENTS_LATENCY_DELIVERIES`) and
/// under CPU quotas, and reads the `LATENCY {json}` line it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_init_and_invocation_figures_under_the_runtime_api() {
    let deliveries: usize = std::env::var("TWILIO_EVENTS_LATENCY_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let path = std::env::var("TWILIO_EVENTS_LATENCY_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| binary("ingest"));
    // GIVEN ingest with the template's environment, started from nothing
    let stack =
        EmulatedStack::for_function("IngestFunction", &ingest_parameters(), &ingest_secrets())
            .await;
    let emulator = RuntimeEmulator::start();
    let started = std::time::Instant::now();
    let mut child = spawn_measured(&path, &stack.env, &emulator);
    let pid = child.id();
    wait_for_first_next(&emulator, Duration::from_secs(30));
    let init_ms = started.elapsed().as_secs_f64() * 1000.0;
    let init_cpu_ms = cpu_ns(pid) as f64 / 1e6;

    // WHEN Twilio delivers one new event at a time
    let run = format!("{:08x}", std::process::id());
    let mut walls = Vec::with_capacity(deliveries);
    let mut first_cpu_ms = 0.0;
    let cpu_before = cpu_ns(pid);
    let mut cpu_after_first = cpu_before;
    for i in 0..deliveries {
        let sid = format!("SM{run}{i:024x}");
        let (delivery, _, _, _) =
            signed_delivery(&[StatusEvent::message(&sid, "delivered").to_bytes()]);
        let sent = std::time::Instant::now();
        let answer = emulator.invoke(&delivery).await;
        walls.push(sent.elapsed().as_secs_f64() * 1000.0);
        // THEN each is accepted
        assert_eq!(status(&answer), 200, "{answer}");
        if i == 0 {
            cpu_after_first = cpu_ns(pid);
            first_cpu_ms = (cpu_after_first - cpu_before) as f64 / 1e6;
        }
    }
    let warm = deliveries.saturating_sub(1).max(1) as f64;
    let cpu_per_delivery_ms = (cpu_ns(pid) - cpu_after_first) as f64 / 1e6 / warm;
    let rss_kb = peak_rss_kb(pid);
    let _ = child.kill();
    let _ = child.wait();

    let first_ms = walls[0];
    let mut warm_walls: Vec<f64> = walls.iter().skip(1).copied().collect();
    if warm_walls.is_empty() {
        warm_walls.push(first_ms);
    }
    warm_walls.sort_by(f64::total_cmp);
    let figures = json!({
        "deliveries": deliveries,
        "cgroup": std::env::var("TWILIO_EVENTS_LATENCY_CGROUP").ok(),
        "init_ms": init_ms,
        "init_cpu_ms": init_cpu_ms,
        "first_invocation_ms": first_ms,
        "first_invocation_cpu_ms": first_cpu_ms,
        "cpu_per_delivery_ms": cpu_per_delivery_ms,
        "invocation_p50_ms": percentile(&warm_walls, 50.0),
        "invocation_p99_ms": percentile(&warm_walls, 99.0),
        "invocation_max_ms": warm_walls[warm_walls.len() - 1],
        "peak_rss_mb": rss_kb as f64 / 1024.0,
    });
    println!("LATENCY {figures}");
    // AND, loosely (a shared CI machine), far inside the 4 s timeout and Twilio's 5 s
    assert!(init_ms < 4000.0, "{figures}");
    assert!(percentile(&warm_walls, 99.0) < 2000.0, "{figures}");
}

/// CPU per record of the two consumers under the Runtime API emulator, for their MemorySize
/// (docs/cost.md §3): batches of 100 new status events as the event source mapping hands them
/// over; crm-sync with a CRM that answers at once, quota-alert with the template's default quota
/// (most events count for nothing) and with one that counts every message (a transaction per
/// record). `TWILIO_EVENTS_LATENCY_BATCHES` batches each (default 3); prints `CONSUMERS {json}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_cpu_per_record_under_the_runtime_api() {
    let batches: usize = std::env::var("TWILIO_EVENTS_LATENCY_BATCHES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let binary_of = |name: &str| {
        std::env::var("TWILIO_EVENTS_LATENCY_BIN_DIR")
            .map(|dir| PathBuf::from(dir).join(name))
            .unwrap_or_else(|_| binary(name))
    };
    let crm = RecordingCrm::start("never-refused");
    let every_message = json!({"quotas": [{"name": "sms-hour", "counts": "messages",
                                           "window": "hour", "limit": 1_000_000}]})
    .to_string();
    let runs = [
        (
            "crm-sync",
            "CrmSyncFunction",
            params(&[("CrmKind", "http"), ("CrmUrl", &crm.url)]),
        ),
        ("quota-alert", "QuotaAlertFunction", params(&[])),
        (
            "quota-alert",
            "QuotaAlertFunction",
            params(&[("QuotasJson", &every_message)]),
        ),
    ];
    let run_id = format!("{:08x}", std::process::id());
    let mut figures = Vec::new();
    for (n, (name, function_id, parameters)) in runs.iter().enumerate() {
        // GIVEN the consumer, started from nothing
        let stack = EmulatedStack::for_function(function_id, parameters, &BTreeMap::new()).await;
        let emulator = RuntimeEmulator::start();
        let started = std::time::Instant::now();
        let mut child = spawn_measured(&binary_of(name), &stack.env, &emulator);
        let pid = child.id();
        wait_for_first_next(&emulator, Duration::from_secs(30));
        let init_ms = started.elapsed().as_secs_f64() * 1000.0;
        let init_cpu_ms = cpu_ns(pid) as f64 / 1e6;
        // WHEN it gets batches of 100 new events (the first batch warms it up)
        let mut walls = Vec::new();
        let mut cpu_after_first = 0;
        for b in 0..=batches {
            let records: Vec<(String, Vec<u8>, String)> = (0..100)
                .map(|i| {
                    let sid = format!("SM{run_id}{n:04x}{b:08x}{i:012x}");
                    let data = StatusEvent::message(&sid, "sent").to_bytes();
                    (sid, data, format!("{:056}", b * 100 + i))
                })
                .collect();
            let sent = std::time::Instant::now();
            let answer = emulator.invoke(&kinesis_event("measured", &records)).await;
            walls.push(sent.elapsed().as_secs_f64() * 1000.0);
            // THEN no record failed
            assert_eq!(answer, json!({"batchItemFailures": []}), "{name}");
            if b == 0 {
                cpu_after_first = cpu_ns(pid);
            }
        }
        let cpu_per_record_ms =
            (cpu_ns(pid) - cpu_after_first) as f64 / 1e6 / (batches.max(1) * 100) as f64;
        let rss_kb = peak_rss_kb(pid);
        let _ = child.kill();
        let _ = child.wait();
        let warm: Vec<f64> = walls.iter().skip(1).copied().collect();
        figures.push(json!({
            "function": name,
            "quotas": if *function_id == "QuotaAlertFunction" {
                if parameters.is_empty() { "template default" } else { "every message counted" }
            } else { "" },
            "init_ms": init_ms,
            "init_cpu_ms": init_cpu_ms,
            "cpu_per_record_ms": cpu_per_record_ms,
            "batch_of_100_mean_ms": warm.iter().sum::<f64>() / warm.len().max(1) as f64,
            "peak_rss_mb": rss_kb as f64 / 1024.0,
        }));
    }
    println!("CONSUMERS {}", Value::Array(figures));
}
