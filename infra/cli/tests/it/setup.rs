//! `twilio-events setup` as a user runs it, against a fake of Twilio's Events API and of the
//! Messaging API's Messaging Services: an HTTP server on 127.0.0.1 that keeps sinks,
//! subscriptions and services in memory, answers with the shapes and status codes of Twilio's
//! OpenAPI descriptions (twilio/twilio-oai, spec/json/twilio_events_v1.json and
//! spec/json/twilio_messaging_v1.json; both APIs under /v1 on the one server) and records every
//! call. The last tests put Stoplight Prism, serving those descriptions, in front of the fake or
//! in its place, so that setup's requests are checked against Twilio's own descriptions by
//! something this project did not write.

use crate::prism::{Description, Prism};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ingest::adapters::sqlite::SqliteStore;
use ingest::ports::{EventPublisher, OutgoingRecord};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "setup-test-auth-token-0123456789";
const WEBHOOK: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com/twilio/events";
/// The stack's message-status route beside [`WEBHOOK`].
const MESSAGE_STATUS: &str =
    "https://abc123.execute-api.eu-west-1.amazonaws.com/twilio/message-status";

/// The catalogue `GET /Types` answers, with each schema's latest version.
const TYPES: &[(&str, &str)] = &[
    (
        "com.twilio.messaging.message.queued",
        "Messaging.MessageStatus",
    ),
    (
        "com.twilio.messaging.message.sent",
        "Messaging.MessageStatus",
    ),
    (
        "com.twilio.messaging.message.delivered",
        "Messaging.MessageStatus",
    ),
    (
        "com.twilio.messaging.message.undelivered",
        "Messaging.MessageStatus",
    ),
    (
        "com.twilio.messaging.message.failed",
        "Messaging.MessageStatus",
    ),
    (
        "com.twilio.messaging.message.read",
        "Messaging.MessageStatus",
    ),
    (
        "com.twilio.voice.status-callback.call.initiated",
        "Voice.WebhookEvent",
    ),
    (
        "com.twilio.voice.status-callback.call.ringing",
        "Voice.WebhookEvent",
    ),
    (
        "com.twilio.voice.status-callback.call.answered",
        "Voice.WebhookEvent",
    ),
    (
        "com.twilio.voice.status-callback.call.completed",
        "Voice.WebhookEvent",
    ),
    ("com.twilio.error-logs.error.logged", "ErrorLogs.Error"),
    (
        "com.twilio.apiusage.taskrouter.ratelimits",
        "Twilio.RateLimitResults",
    ),
    (
        "com.twilio.messaging.inbound-message.received",
        "Messaging.InboundMessageV1",
    ),
];
const SCHEMAS: &[(&str, u32)] = &[
    ("Messaging.MessageStatus", 8),
    ("Voice.WebhookEvent", 2),
    ("ErrorLogs.Error", 1),
    ("Twilio.RateLimitResults", 2),
    ("Messaging.InboundMessageV1", 1),
];

/// One request the fake received.
#[derive(Clone, Debug)]
struct Call {
    /// `METHOD /v1/path?query`, as received.
    line: String,
    form: Vec<(String, String)>,
}

impl Call {
    fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or_default()
    }
    fn field(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Clone, Debug)]
struct FakeSink {
    sid: String,
    sink_type: String,
    description: String,
    destination: String,
    status: String,
    test_ids: Vec<String>,
}

#[derive(Clone, Debug)]
struct FakeSubscription {
    sid: String,
    sink_sid: String,
    description: String,
    types: Vec<(String, u32)>,
}

/// A Messaging Service (`MG…`), with what setup reads and writes.
#[derive(Clone, Debug)]
struct FakeService {
    sid: String,
    friendly_name: String,
    status_callback: Option<String>,
}

#[derive(Default)]
struct Fake {
    sinks: Vec<FakeSink>,
    subscriptions: Vec<FakeSubscription>,
    services: Vec<FakeService>,
    calls: Vec<Call>,
    serial: u32,
    /// The status of a new sink (Twilio: webhook sinks start active).
    new_sink_status: String,
    /// Lists answer at most this many items per page.
    page_cap: usize,
    /// Where a local `serve` would receive the test event.
    stream: Option<SqliteStore>,
}

impl Fake {
    fn sid(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}{:032x}", self.serial)
    }
}

type Shared = Arc<Mutex<Fake>>;

struct FakeApi {
    state: Shared,
    base: String,
}

impl FakeApi {
    fn start() -> Self {
        Self::with(|_| {})
    }

    fn with(configure: impl FnOnce(&mut Fake)) -> Self {
        let mut fake = Fake {
            new_sink_status: "active".into(),
            page_cap: 1000,
            ..Fake::default()
        };
        configure(&mut fake);
        let state = Arc::new(Mutex::new(fake));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let url = crate::helpers::serve_in_background(app);
        Self {
            state,
            base: format!("{url}/v1"),
        }
    }

    /// The server's root, without `/v1` (Prism's upstream).
    fn upstream(&self) -> String {
        self.base.trim_end_matches("/v1").to_owned()
    }

    fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    fn lines(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.line).collect()
    }

    fn forget_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    fn sinks(&self) -> Vec<FakeSink> {
        self.state.lock().unwrap().sinks.clone()
    }

    fn subscriptions(&self) -> Vec<FakeSubscription> {
        self.state.lock().unwrap().subscriptions.clone()
    }

    fn add_sink(&self, destination: &str, status: &str) -> String {
        self.add_sink_of_type(destination, status, "webhook")
    }

    fn add_sink_of_type(&self, destination: &str, status: &str, sink_type: &str) -> String {
        let mut fake = self.state.lock().unwrap();
        let sid = fake.sid("DG");
        fake.sinks.push(FakeSink {
            sid: sid.clone(),
            sink_type: sink_type.into(),
            description: "existing".into(),
            destination: destination.into(),
            status: status.into(),
            test_ids: vec![],
        });
        sid
    }

    fn services(&self) -> Vec<FakeService> {
        self.state.lock().unwrap().services.clone()
    }

    /// A Messaging Service, with `status_callback` as its status callback (or none).
    fn add_service(&self, friendly_name: &str, status_callback: Option<&str>) -> String {
        let mut fake = self.state.lock().unwrap();
        let sid = fake.sid("MG");
        fake.services.push(FakeService {
            sid: sid.clone(),
            friendly_name: friendly_name.into(),
            status_callback: status_callback.map(str::to_owned),
        });
        sid
    }

    fn add_subscription(&self, sink_sid: &str, types: &[(&str, u32)]) -> String {
        self.add_described_subscription(sink_sid, "twilio-events", types)
    }

    fn add_described_subscription(
        &self,
        sink_sid: &str,
        description: &str,
        types: &[(&str, u32)],
    ) -> String {
        let mut fake = self.state.lock().unwrap();
        let sid = fake.sid("DF");
        fake.subscriptions.push(FakeSubscription {
            sid: sid.clone(),
            sink_sid: sink_sid.into(),
            description: description.into(),
            types: types.iter().map(|(t, v)| ((*t).into(), *v)).collect(),
        });
        sid
    }

    /// Runs `twilio-events setup` against this fake, credentials from the environment.
    fn setup(&self, extra: &[&str]) -> Run {
        self.setup_at(&self.base, extra)
    }

    /// Runs `twilio-events setup` with another Events API base URL on this fake's server.
    fn setup_at(&self, base: &str, extra: &[&str]) -> Run {
        self.setup_apis(base, &self.base, extra)
    }

    /// Runs `twilio-events setup` with these Events API and Messaging API base URLs.
    fn setup_apis(&self, events_base: &str, messaging_base: &str, extra: &[&str]) -> Run {
        self.setup_with(WEBHOOK, events_base, messaging_base, extra)
    }

    /// Runs `twilio-events setup --webhook-url webhook` with these base URLs.
    fn setup_with(
        &self,
        webhook: &str,
        events_base: &str,
        messaging_base: &str,
        extra: &[&str],
    ) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_twilio-events"));
        for var in [
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_API_KEY",
            "TWILIO_API_SECRET",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("TWILIO_ACCOUNT_SID", ACCOUNT)
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .args(["setup", "--webhook-url", webhook])
            .args(["--events-api-base", events_base])
            .args(["--messaging-api-base", messaging_base])
            .args(extra);
        Run::of(cmd.output().unwrap())
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(output: Output) -> Self {
        let run = Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
            "the auth token was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        run
    }

    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn pairs(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A list page as the spec shapes it: the items under `key`, and `meta` whose
/// `next_page_url` names Twilio's host (the client must ask its own base instead).
fn page(
    fake: &Fake,
    path: &str,
    query: &[(String, String)],
    key: &str,
    items: Vec<Value>,
) -> Response {
    let size = first(query, "PageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(50)
        .min(fake.page_cap);
    let offset = first(query, "PageToken")
        .and_then(|t| t.strip_prefix("PT"))
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (offset + size).min(items.len());
    let filters: String = query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "PageSize" | "Page" | "PageToken"))
        .map(|(k, v)| format!("{k}={v}&"))
        .collect();
    let url = |page: usize, token: Option<usize>| {
        let token = token
            .map(|t| format!("&PageToken=PT{t}"))
            .unwrap_or_default();
        format!("https://events.twilio.com{path}?{filters}PageSize={size}&Page={page}{token}")
    };
    let page_number = offset / size.max(1);
    let next = (end < items.len()).then(|| url(page_number + 1, Some(end)));
    ok(json!({
        key: items[offset.min(items.len())..end],
        "meta": {
            "page": page_number,
            "page_size": size,
            "first_page_url": url(0, None),
            "previous_page_url": null,
            "url": url(page_number, Some(offset)),
            "next_page_url": next,
            "key": key,
        }
    }))
}

fn sink_json(sink: &FakeSink) -> Value {
    let url = format!("https://events.twilio.com/v1/Sinks/{}", sink.sid);
    json!({
        "status": sink.status,
        "sink_configuration": {"destination": sink.destination, "method": "POST", "batch_events": true},
        "description": sink.description,
        "sid": sink.sid,
        "date_created": "2015-07-30T20:00:00Z",
        "sink_type": sink.sink_type,
        "date_updated": "2015-07-30T20:00:00Z",
        "url": url,
        "links": {"sink_test": format!("{url}/Test"), "sink_validate": format!("{url}/Validate")}
    })
}

fn subscription_json(subscription: &FakeSubscription) -> Value {
    let url = format!(
        "https://events.twilio.com/v1/Subscriptions/{}",
        subscription.sid
    );
    json!({
        "account_sid": ACCOUNT,
        "date_created": "2015-07-30T20:00:00Z",
        "date_updated": "2015-07-30T20:01:33Z",
        "sid": subscription.sid,
        "sink_sid": subscription.sink_sid,
        "description": subscription.description,
        "url": url,
        "links": {"subscribed_events": format!("{url}/SubscribedEvents")},
        "receive_events_from_subaccounts": false
    })
}

fn subscribed_json(subscription_sid: &str, event_type: &str, version: u32) -> Value {
    json!({
        "account_sid": ACCOUNT,
        "type": event_type,
        "schema_version": version,
        "subscription_sid": subscription_sid,
        "url": format!("https://events.twilio.com/v1/Subscriptions/{subscription_sid}/SubscribedEvents/{event_type}")
    })
}

/// `messaging.v1.service`, shaped as the description's `fetch` example.
fn service_json(service: &FakeService) -> Value {
    let url = format!("https://messaging.twilio.com/v1/Services/{}", service.sid);
    json!({
        "account_sid": ACCOUNT,
        "sid": service.sid,
        "date_created": "2015-07-30T20:12:31Z",
        "date_updated": "2015-07-30T20:12:33Z",
        "friendly_name": service.friendly_name,
        "inbound_request_url": "https://www.example.com/",
        "inbound_method": "POST",
        "fallback_url": null,
        "fallback_method": "POST",
        "status_callback": service.status_callback,
        "sticky_sender": true,
        "mms_converter": true,
        "smart_encoding": false,
        "fallback_to_long_code": true,
        "area_code_geomatch": true,
        "validity_period": 600,
        "scan_message_content": "inherit",
        "synchronous_validation": true,
        "usecase": "marketing",
        "us_app_to_person_registered": false,
        "use_inbound_webhook_on_number": true,
        "links": {
            "phone_numbers": format!("{url}/PhoneNumbers"),
            "short_codes": format!("{url}/ShortCodes"),
            "alpha_senders": format!("{url}/AlphaSenders"),
            "messages": format!("{url}/Messages"),
            "us_app_to_person": format!("{url}/Compliance/Usa2p"),
            "us_app_to_person_usecases": format!("{url}/Compliance/Usa2p/Usecases"),
            "channel_senders": format!("{url}/ChannelSenders"),
            "destination_alpha_senders": format!("{url}/DestinationAlphaSenders")
        },
        "url": url
    })
}

fn not_found() -> Response {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        "The requested resource was not found",
    )
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = pairs(uri.query().unwrap_or_default());
    let form = pairs(std::str::from_utf8(&body).unwrap_or_default());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    let (response, delivery) = {
        let mut fake = state.lock().unwrap();
        fake.calls.push(Call {
            line: format!("{method} {uri}"),
            form: form.clone(),
        });
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        }
        let path = uri.path().to_owned();
        if let Some(answer) = not_twilio(&path, &headers) {
            return answer;
        }
        let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        route(&mut fake, &method, &path, &segments, &query, &form)
    };
    if let Some((store, record)) = delivery {
        // Twilio delivers the test event to the sink: here, straight into serve's stream.
        let outcome = store
            .put_records(&[OutgoingRecord {
                partition_key: "test",
                data: record.as_bytes(),
            }])
            .await
            .unwrap();
        assert!(outcome.iter().all(Result::is_ok));
    }
    response
}

type Delivery = Option<(SqliteStore, String)>;

/// What answers outside /v1 when the base URL is wrong: a web server's HTML 404, or (under
/// /echo/) a proxy's 502 that echoes the request, credentials included, in a long page.
fn not_twilio(path: &str, headers: &HeaderMap) -> Option<Response> {
    if path.starts_with("/v1/") {
        return None;
    }
    if path.starts_with("/echo/") {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let body = format!(
            "upstream failed\nrequest headers:\n  Authorization: {authorization}\n  token={TOKEN}\n{}END-OF-PAGE",
            "padding ".repeat(200)
        );
        return Some((StatusCode::BAD_GATEWAY, body).into_response());
    }
    let body = "<html>\n<head><title>404 Not Found</title></head>\n<body>\n<center><h1>404 Not Found</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n";
    Some((StatusCode::NOT_FOUND, [("content-type", "text/html")], body).into_response())
}

fn route(
    fake: &mut Fake,
    method: &Method,
    path: &str,
    segments: &[&str],
    query: &[(String, String)],
    form: &[(String, String)],
) -> (Response, Delivery) {
    let plain = |r: Response| (r, None);
    match (method.as_str(), segments) {
        ("GET", ["Types"]) => {
            let items = TYPES
                .iter()
                .map(|(t, schema)| {
                    json!({
                        "date_created": "2020-08-13T13:28:20Z",
                        "date_updated": "2020-08-13T13:28:20Z",
                        "type": t,
                        "schema_id": schema,
                        "public": true,
                        "status": "available",
                        "documentation_url": null,
                        "description": t,
                        "url": format!("https://events.twilio.com/v1/Types/{t}"),
                        "links": {"schema": format!("https://events.twilio.com/v1/Schemas/{schema}/Versions")}
                    })
                })
                .collect();
            plain(page(fake, path, query, "types", items))
        }
        ("GET", ["Schemas", id]) => plain(match SCHEMAS.iter().find(|(s, _)| s == id) {
            Some((id, version)) => ok(json!({
                "id": id,
                "url": format!("https://events.twilio.com/v1/Schemas/{id}"),
                "latest_version_date_created": "2020-07-30T20:00:00Z",
                "latest_version": version,
                "links": {"versions": format!("https://events.twilio.com/v1/Schemas/{id}/Versions")}
            })),
            None => not_found(),
        }),
        ("GET", ["Sinks"]) => {
            let items = fake.sinks.iter().map(sink_json).collect();
            plain(page(fake, path, query, "sinks", items))
        }
        ("POST", ["Sinks"]) => {
            let config = first(form, "SinkConfiguration")
                .and_then(|c| serde_json::from_str::<Value>(c).ok());
            let (Some(description), Some("webhook"), Some(config)) =
                (first(form, "Description"), first(form, "SinkType"), config)
            else {
                return plain(twilio_error(
                    StatusCode::BAD_REQUEST,
                    20001,
                    "Missing or invalid Description, SinkType or SinkConfiguration",
                ));
            };
            let sid = fake.sid("DG");
            let sink = FakeSink {
                sid,
                sink_type: "webhook".into(),
                description: description.into(),
                destination: config["destination"].as_str().unwrap_or_default().into(),
                status: fake.new_sink_status.clone(),
                test_ids: vec![],
            };
            fake.sinks.push(sink.clone());
            plain(created(sink_json(&sink)))
        }
        ("POST", ["Sinks", sid, "Test"]) => {
            let test_id = format!("{:034}", fake.serial + 1);
            fake.serial += 1;
            let Some(sink) = fake.sinks.iter_mut().find(|s| s.sid == *sid) else {
                return plain(not_found());
            };
            sink.test_ids.push(test_id.clone());
            sink.status = "validating".into();
            let event = json!({
                "specversion": "1.0",
                "type": "com.twilio.eventstreams.test-event",
                "source": "Sink",
                "id": format!("{sid}-{test_id}"),
                "dataschema": "https://events-schemas.twilio.com/EventStreams.TestSink/2",
                "datacontenttype": "application/json",
                "time": "2024-01-01T00:00:00.000Z",
                "data": {"test_id": test_id}
            });
            let delivery = fake.stream.clone().map(|store| (store, event.to_string()));
            (created(json!({"result": "submitted"})), delivery)
        }
        ("POST", ["Sinks", sid, "Validate"]) => {
            let Some(sink) = fake.sinks.iter_mut().find(|s| s.sid == *sid) else {
                return plain(not_found());
            };
            match first(form, "TestId") {
                Some(id) if sink.test_ids.last().map(String::as_str) == Some(id) => {
                    sink.status = "active".into();
                    plain(created(json!({"result": "valid"})))
                }
                _ => plain(twilio_error(
                    StatusCode::BAD_REQUEST,
                    20001,
                    "Invalid TestId for this Sink",
                )),
            }
        }
        ("GET", ["Subscriptions"]) => {
            let filter = first(query, "SinkSid");
            let items = fake
                .subscriptions
                .iter()
                .filter(|s| filter.is_none_or(|sid| s.sink_sid == sid))
                .map(subscription_json)
                .collect();
            plain(page(fake, path, query, "subscriptions", items))
        }
        ("POST", ["Subscriptions"]) => {
            let sink_sid = first(form, "SinkSid").unwrap_or_default().to_owned();
            match fake.sinks.iter().find(|s| s.sid == sink_sid) {
                Some(sink) if sink.status == "active" => {}
                _ => {
                    return plain(twilio_error(
                        StatusCode::BAD_REQUEST,
                        20001,
                        "Sink must be active for the subscription to be created",
                    ));
                }
            }
            let mut types = Vec::new();
            for value in form.iter().filter(|(k, _)| k == "Types").map(|(_, v)| v) {
                let Ok(parsed) = serde_json::from_str::<Value>(value) else {
                    return plain(twilio_error(
                        StatusCode::BAD_REQUEST,
                        20001,
                        "Invalid Types",
                    ));
                };
                let (Some(t), Some(v)) =
                    (parsed["type"].as_str(), parsed["schema_version"].as_u64())
                else {
                    return plain(twilio_error(
                        StatusCode::BAD_REQUEST,
                        20001,
                        "Invalid Types",
                    ));
                };
                types.push((t.to_owned(), u32::try_from(v).unwrap()));
            }
            let subscription = FakeSubscription {
                sid: fake.sid("DF"),
                sink_sid,
                description: first(form, "Description").unwrap_or_default().into(),
                types,
            };
            fake.subscriptions.push(subscription.clone());
            plain(created(subscription_json(&subscription)))
        }
        ("GET", ["Subscriptions", sid, "SubscribedEvents"]) => {
            let Some(subscription) = fake.subscriptions.iter().find(|s| s.sid == *sid) else {
                return plain(not_found());
            };
            let items = subscription
                .types
                .iter()
                .map(|(t, v)| subscribed_json(sid, t, *v))
                .collect();
            plain(page(fake, path, query, "types", items))
        }
        ("POST", ["Subscriptions", sid, "SubscribedEvents"]) => {
            let Some(subscription) = fake.subscriptions.iter_mut().find(|s| s.sid == *sid) else {
                return plain(not_found());
            };
            let t = first(form, "Type").unwrap_or_default().to_owned();
            let v = first(form, "SchemaVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            subscription.types.push((t.clone(), v));
            plain(created(subscribed_json(sid, &t, v)))
        }
        ("POST", ["Subscriptions", sid, "SubscribedEvents", t]) => {
            let Some(subscription) = fake.subscriptions.iter_mut().find(|s| s.sid == *sid) else {
                return plain(not_found());
            };
            let v = first(form, "SchemaVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            match subscription.types.iter_mut().find(|(name, _)| name == t) {
                Some(entry) => {
                    entry.1 = v;
                    plain(ok(subscribed_json(sid, t, v)))
                }
                None => plain(not_found()),
            }
        }
        ("DELETE", ["Subscriptions", sid, "SubscribedEvents", t]) => {
            let Some(subscription) = fake.subscriptions.iter_mut().find(|s| s.sid == *sid) else {
                return plain(not_found());
            };
            subscription.types.retain(|(name, _)| name != t);
            plain(StatusCode::NO_CONTENT.into_response())
        }
        // The Messaging API (messaging.twilio.com/v1).
        ("GET", ["Services", sid]) => plain(match fake.services.iter().find(|s| s.sid == *sid) {
            Some(service) => ok(service_json(service)),
            None => not_found(),
        }),
        ("POST", ["Services", sid]) => {
            let Some(service) = fake.services.iter_mut().find(|s| s.sid == *sid) else {
                return plain(not_found());
            };
            // An update changes only the parameters sent.
            if let Some(url) = first(form, "StatusCallback") {
                service.status_callback = Some(url.to_owned());
            }
            plain(ok(service_json(service)))
        }
        _ => plain(not_found()),
    }
}

/// The twelve types the stack consumes, at the fake's latest schema versions.
fn default_types() -> Vec<(String, u32)> {
    TYPES
        .iter()
        .filter(|(t, _)| !t.contains("inbound-message"))
        .map(|(t, schema)| {
            let version = SCHEMAS.iter().find(|(s, _)| s == schema).unwrap().1;
            ((*t).to_owned(), version)
        })
        .collect()
}

fn only_reads(lines: &[String]) -> bool {
    lines.iter().all(|l| l.starts_with("GET "))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("setup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_first_run_creates_the_sink_and_the_subscription_and_a_second_run_only_reads() {
    // GIVEN an account with no sink (Twilio starts webhook sinks active)
    let api = FakeApi::start();

    // WHEN setup runs
    let first = api.setup(&[]);

    // THEN it made exactly the documented calls
    first.assert_code(0);
    let sink_sid = api.sinks()[0].sid.clone();
    assert_eq!(
        api.lines(),
        vec![
            "GET /v1/Types?PageSize=1000",
            "GET /v1/Sinks?PageSize=1000",
            "POST /v1/Sinks",
            "GET /v1/Schemas/Messaging.MessageStatus",
            "GET /v1/Schemas/Voice.WebhookEvent",
            "GET /v1/Schemas/ErrorLogs.Error",
            "GET /v1/Schemas/Twilio.RateLimitResults",
            "POST /v1/Subscriptions",
        ]
    );
    let calls = api.calls();
    let create_sink = &calls[2];
    assert_eq!(create_sink.field("Description"), ["twilio-events"]);
    assert_eq!(create_sink.field("SinkType"), ["webhook"]);
    let config: Value = serde_json::from_str(create_sink.field("SinkConfiguration")[0]).unwrap();
    assert_eq!(
        config,
        json!({"destination": WEBHOOK, "method": "POST", "batch_events": true})
    );
    let create_subscription = &calls[7];
    assert_eq!(create_subscription.field("SinkSid"), [sink_sid.as_str()]);
    assert_eq!(create_subscription.field("Description"), ["twilio-events"]);
    let types: Vec<Value> = create_subscription
        .field("Types")
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let expected: Vec<Value> = default_types()
        .iter()
        .map(|(t, v)| json!({"type": t, "schema_version": v}))
        .collect();
    assert_eq!(types, expected);
    // AND the account holds one sink for the URL and one subscription with the twelve types
    assert_eq!(api.sinks().len(), 1);
    assert_eq!(api.sinks()[0].destination, WEBHOOK);
    assert_eq!(api.subscriptions().len(), 1);
    assert_eq!(api.subscriptions()[0].types, default_types());
    assert!(
        first.stdout.contains(&format!("created {sink_sid}")),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("2 change(s) made"),
        "{}",
        first.stdout
    );

    // WHEN setup runs again
    api.forget_calls();
    let second = api.setup(&[]);

    // THEN it only read, and said there was nothing to do
    second.assert_code(0);
    let subscription_sid = api.subscriptions()[0].sid.clone();
    assert_eq!(
        api.lines(),
        vec![
            "GET /v1/Types?PageSize=1000".to_owned(),
            "GET /v1/Sinks?PageSize=1000".to_owned(),
            format!("GET /v1/Subscriptions?SinkSid={sink_sid}&PageSize=1000"),
            format!("GET /v1/Subscriptions/{subscription_sid}/SubscribedEvents?PageSize=1000"),
        ]
    );
    assert!(
        second.stdout.contains("nothing to change"),
        "{}",
        second.stdout
    );
    assert_eq!(api.sinks().len(), 1);
    assert_eq!(api.subscriptions().len(), 1);
    assert_eq!(api.subscriptions()[0].types, default_types());
}

#[test]
fn a_dry_run_only_reads_and_prints_the_plan() {
    // GIVEN an account with no sink
    let api = FakeApi::start();

    // WHEN setup runs with --dry-run
    let run = api.setup(&["--dry-run"]);

    // THEN it made only GETs, changed nothing, and printed what it would do
    run.assert_code(0);
    assert!(only_reads(&api.lines()), "{:?}", api.lines());
    assert!(api.sinks().is_empty() && api.subscriptions().is_empty());
    assert!(
        run.stdout.contains("would create a webhook sink"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("would create a subscription"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("com.twilio.messaging.message.delivered@8"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("nothing was changed"), "{}", run.stdout);
}

#[test]
fn a_dry_run_on_a_partial_setup_names_the_missing_types() {
    // GIVEN an active sink whose subscription lacks two of the wanted types
    let api = FakeApi::start();
    let sink = api.add_sink(WEBHOOK, "active");
    let present: Vec<(String, u32)> = default_types().into_iter().skip(2).collect();
    let present: Vec<(&str, u32)> = present.iter().map(|(t, v)| (t.as_str(), *v)).collect();
    api.add_subscription(&sink, &present);

    // WHEN setup runs with --dry-run
    let run = api.setup(&["--dry-run"]);

    // THEN it only read, and would add exactly the two missing types
    run.assert_code(0);
    assert!(only_reads(&api.lines()), "{:?}", api.lines());
    assert!(
        run.stdout
            .contains("would add com.twilio.messaging.message.queued@8"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("would add com.twilio.messaging.message.sent@8"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("2 change(s) would be made"),
        "{}",
        run.stdout
    );
    assert_eq!(api.subscriptions()[0].types.len(), 10);
}

#[test]
fn an_existing_subscription_gets_the_missing_types_and_keeps_the_others_unless_pruned() {
    // GIVEN an active sink whose subscription lacks two wanted types and has an extra one
    let api = FakeApi::start();
    let sink = api.add_sink(WEBHOOK, "active");
    let mut present: Vec<(String, u32)> = default_types().into_iter().skip(2).collect();
    present.push(("com.twilio.messaging.inbound-message.received".into(), 1));
    let present: Vec<(&str, u32)> = present.iter().map(|(t, v)| (t.as_str(), *v)).collect();
    let subscription = api.add_subscription(&sink, &present);

    // WHEN setup runs
    let run = api.setup(&[]);

    // THEN it added the two missing types, one POST each, and kept the extra one
    run.assert_code(0);
    let writes: Vec<Call> = api
        .calls()
        .into_iter()
        .filter(|c| c.method() != "GET")
        .collect();
    assert_eq!(writes.len(), 2, "{writes:?}");
    for (call, t) in writes.iter().zip(["queued", "sent"]) {
        assert_eq!(
            call.line,
            format!("POST /v1/Subscriptions/{subscription}/SubscribedEvents")
        );
        assert_eq!(
            call.field("Type"),
            [format!("com.twilio.messaging.message.{t}").as_str()]
        );
        assert_eq!(call.field("SchemaVersion"), ["8"]);
    }
    assert!(
        run.stdout
            .contains("kept com.twilio.messaging.inbound-message.received@1"),
        "{}",
        run.stdout
    );
    assert_eq!(api.subscriptions()[0].types.len(), 13);

    // WHEN setup runs with --prune
    api.forget_calls();
    let pruned = api.setup(&["--prune"]);

    // THEN the one unwanted type is removed, nothing else written
    pruned.assert_code(0);
    let writes: Vec<String> = api
        .lines()
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert_eq!(
        writes,
        [format!(
            "DELETE /v1/Subscriptions/{subscription}/SubscribedEvents/com.twilio.messaging.inbound-message.received"
        )]
    );
    assert_eq!(api.subscriptions()[0].types.len(), 12);

    // WHEN setup runs once more, THEN it only reads
    api.forget_calls();
    api.setup(&["--prune"]).assert_code(0);
    assert!(only_reads(&api.lines()), "{:?}", api.lines());
}

#[test]
fn an_inactive_sink_is_validated_with_the_test_id_given() {
    // GIVEN Twilio creates sinks "initialized" (they need the test event)
    let api = FakeApi::with(|fake| fake.new_sink_status = "initialized".into());

    // WHEN setup runs without a way to learn the test_id
    let first = api.setup(&[]);

    // THEN it created the sink, sent the test event, and stopped before subscribing, saying what to do
    first.assert_code(1);
    let sink = api.sinks()[0].clone();
    assert_eq!(
        api.lines(),
        vec![
            "GET /v1/Types?PageSize=1000".to_owned(),
            "GET /v1/Sinks?PageSize=1000".to_owned(),
            "POST /v1/Sinks".to_owned(),
            format!("POST /v1/Sinks/{}/Test", sink.sid),
        ]
    );
    assert!(first.stderr.contains("--test-id"), "{}", first.stderr);
    assert!(api.subscriptions().is_empty());

    // WHEN setup runs with a wrong test_id
    api.forget_calls();
    let wrong = api.setup(&["--test-id", "not-the-test-id"]);

    // THEN it exits 1 with Twilio's message
    wrong.assert_code(1);
    assert!(
        wrong.stderr.contains("Invalid TestId for this Sink"),
        "{}",
        wrong.stderr
    );
    assert!(wrong.stderr.contains("20001"), "{}", wrong.stderr);

    // WHEN setup runs with the test_id the stack received
    api.forget_calls();
    let test_id = sink.test_ids[0].clone();
    let second = api.setup(&["--test-id", &test_id]);

    // THEN, having read the sink's subscriptions (none), it validated the sink (no new test
    // event), then subscribed it
    second.assert_code(0);
    let lines = api.lines();
    assert_eq!(
        lines[..4],
        [
            "GET /v1/Types?PageSize=1000".to_owned(),
            "GET /v1/Sinks?PageSize=1000".to_owned(),
            format!("GET /v1/Subscriptions?SinkSid={}&PageSize=1000", sink.sid),
            format!("POST /v1/Sinks/{}/Validate", sink.sid),
        ]
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("POST /v1/Subscriptions")
    );
    assert_eq!(api.calls()[3].field("TestId"), [test_id.as_str()]);
    assert_eq!(api.sinks()[0].status, "active");
    assert_eq!(api.subscriptions()[0].types, default_types());

    // WHEN setup runs a third time, THEN it only reads
    api.forget_calls();
    api.setup(&["--test-id", &test_id]).assert_code(0);
    assert!(only_reads(&api.lines()), "{:?}", api.lines());
}

#[test]
fn with_a_data_dir_setup_finds_the_test_id_in_the_local_stream() {
    // GIVEN a local serve's stream, already holding an old test event, that Twilio delivers to
    let dir = temp_dir("data-dir");
    let store = SqliteStore::open(&dir).unwrap();
    let old = json!({"specversion": "1.0", "type": "com.twilio.eventstreams.test-event", "source": "Sink",
        "id": "old", "data": {"test_id": "an-old-test-id"}})
    .to_string();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(store.put_records(&[OutgoingRecord {
            partition_key: "old",
            data: old.as_bytes(),
        }]))
        .unwrap();
    let stream = store.clone();
    let api = FakeApi::with(move |fake| {
        fake.new_sink_status = "initialized".into();
        fake.stream = Some(stream);
    });

    // WHEN setup runs with --data-dir
    let run = api.setup(&["--data-dir", dir.to_str().unwrap(), "--wait", "20"]);

    // THEN it sent the test event, read the new test_id from the stream (not the old one),
    // validated the sink with it and subscribed
    run.assert_code(0);
    let sink = api.sinks()[0].clone();
    let calls = api.calls();
    let test = calls
        .iter()
        .position(|c| c.line == format!("POST /v1/Sinks/{}/Test", sink.sid))
        .unwrap();
    let validate = &calls[test + 1];
    assert_eq!(
        validate.line,
        format!("POST /v1/Sinks/{}/Validate", sink.sid)
    );
    assert_eq!(validate.field("TestId"), [sink.test_ids[0].as_str()]);
    assert!(
        run.stdout
            .contains(&format!("test_id {}", sink.test_ids[0])),
        "{}",
        run.stdout
    );
    assert_eq!(api.sinks()[0].status, "active");
    assert_eq!(api.subscriptions().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_api_error_exits_1_with_twilios_message_and_what_to_do() {
    // GIVEN an Events API that does not accept the credentials
    let api = FakeApi::start();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_twilio-events"));
    cmd.env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env("TWILIO_ACCOUNT_SID", ACCOUNT)
        .env("TWILIO_AUTH_TOKEN", "a-wrong-token")
        .args([
            "setup",
            "--webhook-url",
            WEBHOOK,
            "--events-api-base",
            &api.base,
        ]);

    // WHEN setup runs
    let run = Run::of(cmd.output().unwrap());

    // THEN it stops at the first call with exit 1, Twilio's message and code, and a hint
    run.assert_code(1);
    assert_eq!(api.lines(), ["GET /v1/Types?PageSize=1000"]);
    for needle in [
        "401",
        "Authenticate",
        "error 20003",
        "https://www.twilio.com/docs/errors/20003",
        "TWILIO_AUTH_TOKEN",
    ] {
        assert!(
            run.stderr.contains(needle),
            "{needle} missing from {}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("a-wrong-token"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2_before_any_write() {
    let api = FakeApi::start();

    // GIVEN no credentials at all, WHEN setup runs, THEN exit 2 saying which variables to set
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_twilio-events"));
    for var in [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
    ] {
        cmd.env_remove(var);
    }
    cmd.args([
        "setup",
        "--webhook-url",
        WEBHOOK,
        "--events-api-base",
        &api.base,
    ]);
    let run = Run::of(cmd.output().unwrap());
    run.assert_code(2);
    assert!(run.stderr.contains("TWILIO_ACCOUNT_SID"), "{}", run.stderr);
    assert!(api.lines().is_empty());

    // GIVEN an event type Twilio does not know, WHEN setup runs, THEN exit 2 and nothing written
    let run = api.setup(&[
        "--types",
        "com.twilio.messaging.message.delivered,com.example.nope",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("com.example.nope"), "{}", run.stderr);
    assert!(only_reads(&api.lines()), "{:?}", api.lines());
    assert!(api.sinks().is_empty());

    // GIVEN a bad schema version, WHEN setup runs, THEN exit 2 and no call at all
    api.forget_calls();
    api.setup(&["--types", "com.twilio.messaging.message.delivered@x"])
        .assert_code(2);
    assert!(api.lines().is_empty());
}

#[test]
fn sinks_on_later_pages_are_found_and_pages_are_asked_of_the_configured_base() {
    // GIVEN four sinks, the one for this URL last, and an API answering two per page with
    // next_page_url on Twilio's host
    let api = FakeApi::with(|fake| fake.page_cap = 2);
    for n in 0..3 {
        api.add_sink(&format!("https://other.example/{n}"), "active");
    }
    let sink = api.add_sink(WEBHOOK, "active");
    let subscription =
        api.add_subscription(&sink, &[("com.twilio.messaging.message.delivered", 8)]);

    // WHEN setup runs for one type at an explicit schema version
    let run = api.setup(&["--types", "com.twilio.messaging.message.delivered@8"]);

    // THEN it followed the pages on the local server, found the sink, and wrote nothing
    run.assert_code(0);
    let lines = api.lines();
    assert!(
        lines.contains(&"GET /v1/Sinks?PageSize=2&Page=1&PageToken=PT2".to_owned()),
        "{lines:?}"
    );
    assert!(only_reads(&lines), "{lines:?}");
    assert!(
        run.stdout.contains(&format!("already there: {sink}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("already there: {subscription}")),
        "{}",
        run.stdout
    );
    assert_eq!(api.sinks().len(), 4);
}

#[test]
fn an_explicit_schema_version_moves_a_subscribed_type_to_it() {
    // GIVEN a subscription holding delivered at schema version 3
    let api = FakeApi::start();
    let sink = api.add_sink(WEBHOOK, "active");
    let subscription =
        api.add_subscription(&sink, &[("com.twilio.messaging.message.delivered", 3)]);

    // WHEN setup asks for version 8
    api.setup(&["--types", "com.twilio.messaging.message.delivered@8"])
        .assert_code(0);

    // THEN one update call moved it
    let writes: Vec<Call> = api
        .calls()
        .into_iter()
        .filter(|c| c.method() != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].line,
        format!(
            "POST /v1/Subscriptions/{subscription}/SubscribedEvents/com.twilio.messaging.message.delivered"
        )
    );
    assert_eq!(writes[0].field("SchemaVersion"), ["8"]);
    assert_eq!(
        api.subscriptions()[0].types,
        [("com.twilio.messaging.message.delivered".to_owned(), 8)]
    );
}

#[test]
fn a_404_at_the_events_api_base_says_to_check_events_api_base() {
    let api = FakeApi::start();
    let root = api.base.trim_end_matches("/v1").to_owned();
    for (base, shown) in [
        // GIVEN a base where a web server answers its HTML 404 (the body is shown)
        (format!("{root}/v2"), "<h1>404 Not Found</h1>"),
        // GIVEN a base below which Twilio's own 404 answers the list of types
        (
            format!("{root}/v1/events"),
            "The requested resource was not found",
        ),
    ] {
        // WHEN setup runs against it
        api.forget_calls();
        let run = api.setup_at(&base, &[]);

        // THEN it stops at the first call, exit 1, pointing at --events-api-base, not at a
        // resource that would be gone
        run.assert_code(1);
        assert_eq!(api.lines().len(), 1, "{:?}", api.lines());
        for needle in [
            "404",
            shown,
            "check --events-api-base",
            "https://events.twilio.com/v1",
        ] {
            assert!(
                run.stderr.contains(needle),
                "{needle} missing from {}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("resource is gone"), "{}", run.stderr);
        assert!(api.sinks().is_empty());
    }
}

#[test]
fn an_error_body_not_in_twilios_format_is_shown_shortened_and_without_the_credentials() {
    // GIVEN a proxy answering 502 with a long page that echoes the request's credentials
    let api = FakeApi::start();
    let base = format!("{}/echo/v1", api.base.trim_end_matches("/v1"));

    // WHEN setup runs through it
    let run = api.setup_at(&base, &[]);

    // THEN it exits 1 showing the start of the page on one line, the credentials blanked out
    run.assert_code(1);
    assert!(run.stderr.contains("502"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "upstream failed request headers: Authorization: Basic <redacted> token=<redacted>"
        ),
        "{}",
        run.stderr
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    assert!(!run.stderr.contains(&basic), "{}", run.stderr);
    assert!(!run.stderr.contains("END-OF-PAGE"), "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("upstream failed"))
        .unwrap();
    let excerpt = &line[line.find("upstream failed").unwrap()..];
    assert!(excerpt.chars().count() <= 201, "{excerpt}");
}

#[test]
fn the_sink_type_twilio_gives_is_printed_and_only_a_webhook_sink_is_used() {
    // GIVEN a Kinesis sink Twilio lists with the webhook URL as its destination
    let api = FakeApi::start();
    let kinesis = api.add_sink_of_type(WEBHOOK, "active", "kinesis");

    // WHEN setup runs
    let run = api.setup(&[]);

    // THEN it names that sink with its real type, leaves it alone, and creates a webhook sink
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("{kinesis} (kinesis) also names {WEBHOOK}")),
        "{}",
        run.stdout
    );
    let created = api.sinks()[1].sid.clone();
    assert!(
        run.stdout
            .contains(&format!("created {created} (webhook, active)")),
        "{}",
        run.stdout
    );
    assert_eq!(api.subscriptions()[0].sink_sid, created);

    // WHEN setup runs again, THEN the webhook sink found is shown with its type
    let again = api.setup(&[]);
    again.assert_code(0);
    assert!(
        again
            .stdout
            .contains(&format!("already there: {created} (webhook, active)")),
        "{}",
        again.stdout
    );
}

#[test]
fn prune_changes_only_the_subscription_setup_manages_and_says_what_it_left_alone() {
    // GIVEN setup's subscription and a hand-made one on the same sink, each holding the
    // inbound-message type that is not wanted
    let api = FakeApi::start();
    let sink = api.add_sink(WEBHOOK, "active");
    let inbound = ("com.twilio.messaging.inbound-message.received", 1);
    let mut ours: Vec<(String, u32)> = default_types();
    ours.push((inbound.0.into(), inbound.1));
    let ours: Vec<(&str, u32)> = ours.iter().map(|(t, v)| (t.as_str(), *v)).collect();
    let managed = api.add_subscription(&sink, &ours);
    let hand_made = api.add_described_subscription(&sink, "hand-made", &[inbound]);

    // WHEN setup runs with --prune
    let run = api.setup(&["--prune"]);

    // THEN it removed the type from its own subscription only
    run.assert_code(0);
    let writes: Vec<String> = api
        .lines()
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert_eq!(
        writes,
        [format!(
            "DELETE /v1/Subscriptions/{managed}/SubscribedEvents/com.twilio.messaging.inbound-message.received"
        )]
    );
    let subscriptions = api.subscriptions();
    assert_eq!(subscriptions[0].types, default_types());
    assert_eq!(subscriptions[1].types, [(inbound.0.to_owned(), 1)]);
    // AND it said what it left alone, and why
    assert!(
        run.stdout.contains(&format!(
            "left alone: com.twilio.messaging.inbound-message.received@1 in {hand_made}"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\"hand-made\""), "{}", run.stdout);
}

/// The endpoint a call went to, its ids replaced by placeholders: `POST /Sinks/{Sid}/Test`.
fn endpoint(line: &str) -> String {
    let (method, target) = line.split_once(' ').unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    let named: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, segment)| match (i, segments[0]) {
            (1, "Sinks") => "{Sid}",
            (1, "Schemas") => "{Id}",
            (1, "Services") => "{Sid}",
            (1, "Subscriptions") => "{SubscriptionSid}",
            (3, "Subscriptions") => "{Type}",
            _ => segment,
        })
        .collect();
    format!("{method} /{}", named.join("/"))
}

#[test]
fn every_request_setup_sends_conforms_to_twilios_openapi_description() {
    // GIVEN Prism validating against Twilio's description between setup and the fake, where
    // new sinks start "initialized" and the subscription will hold an old version and an
    // extra type
    let api = FakeApi::with(|fake| fake.new_sink_status = "initialized".into());
    let prism = Prism::proxy(Description::EventsV1, &api.upstream());

    // WHEN setup creates and tests the sink, then validates it and subscribes
    api.setup_at(&prism.base, &[]).assert_code(1);
    let test_id = api.sinks()[0].test_ids[0].clone();
    api.setup_at(&prism.base, &["--test-id", &test_id])
        .assert_code(0);
    // AND, once the subscription holds an extra type and an old version, setup adds a missing
    // type, moves the old one and prunes the extra one
    {
        let mut fake = api.state.lock().unwrap();
        let types = &mut fake.subscriptions[0].types;
        types.retain(|(t, _)| t != "com.twilio.messaging.message.read");
        types[0].1 = 3;
        types.push(("com.twilio.messaging.inbound-message.received".into(), 1));
    }
    api.setup_at(&prism.base, &["--prune"]).assert_code(0);
    let old = format!("{}@8", default_types()[0].0);
    api.setup_at(&prism.base, &["--types", &old]).assert_code(0);

    // THEN Prism saw every call the fake received and found nothing against the description
    // but Prism's own limitation with repeated form keys, once per subscription created
    let lines = api.lines();
    assert_eq!(prism.requests(), lines.len(), "{}", prism.output());
    let (known, other): (Vec<String>, Vec<String>) = prism
        .violations()
        .into_iter()
        .partition(|v| v == PRISM_REPEATED_KEYS);
    assert!(
        other.is_empty(),
        "violations of Twilio's description:\n{}",
        other.join("\n")
    );
    let created = lines
        .iter()
        .filter(|l| *l == "POST /v1/Subscriptions")
        .count();
    assert_eq!(known.len(), created);
    // AND each `Types` item has the keys of the description's own example
    let example_keys = description_example_type_keys();
    for call in api
        .calls()
        .iter()
        .filter(|c| c.line == "POST /v1/Subscriptions")
    {
        for item in call.field("Types") {
            let item: Value = serde_json::from_str(item).unwrap();
            let keys: Vec<String> = item.as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys, example_keys, "{item}");
        }
    }
    // AND those calls covered every Events API operation setup uses
    let mut endpoints: Vec<String> = lines.iter().map(|l| endpoint(l)).collect();
    endpoints.sort();
    endpoints.dedup();
    assert_eq!(
        endpoints,
        [
            "DELETE /Subscriptions/{SubscriptionSid}/SubscribedEvents/{Type}",
            "GET /Schemas/{Id}",
            "GET /Sinks",
            "GET /Subscriptions",
            "GET /Subscriptions/{SubscriptionSid}/SubscribedEvents",
            "GET /Types",
            "POST /Sinks",
            "POST /Sinks/{Sid}/Test",
            "POST /Sinks/{Sid}/Validate",
            "POST /Subscriptions",
            "POST /Subscriptions/{SubscriptionSid}/SubscribedEvents",
            "POST /Subscriptions/{SubscriptionSid}/SubscribedEvents/{Type}",
        ]
    );
    // AND the account ended as setup wants it
    assert_eq!(api.sinks()[0].status, "active");
    let mut types = api.subscriptions()[0].types.clone();
    types.sort();
    let mut wanted = default_types();
    wanted.sort();
    assert_eq!(types, wanted);
}

/// What Prism says of a list sent as repeated form keys (see tests/it/prism.rs).
const PRISM_REPEATED_KEYS: &str = "request.body.Types Request body property Types must be array";

/// The keys of the `Types` items in the description's example of creating a subscription.
fn description_example_type_keys() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/twilio/openapi/twilio_events_v1.json"
    );
    let description: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let example = &description["paths"]["/v1/Subscriptions"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["examples"]["create"]["value"]["Types"][0];
    let item: Value = serde_json::from_str(example.as_str().unwrap()).unwrap();
    let mut keys: Vec<String> = item.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn prism_reports_a_request_that_breaks_twilios_description() {
    // GIVEN the same validating proxy (a check that the check above can fail)
    let api = FakeApi::start();
    let prism = Prism::proxy(Description::EventsV1, &api.upstream());
    let client = reqwest::Client::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // WHEN a sink is created without its SinkConfiguration, and a list asks for too big a page
    runtime.block_on(async {
        client
            .post(format!("{}/Sinks", prism.base))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(&[("Description", "twilio-events"), ("SinkType", "webhook")])
            .send()
            .await
            .unwrap();
        client
            .get(format!("{}/Sinks?PageSize=5000", prism.base))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .send()
            .await
            .unwrap();
    });

    // THEN Prism reports both requests, naming what is wrong (and the fake's 400, a status the
    // description leaves out)
    let violations: Vec<String> = prism
        .violations()
        .into_iter()
        .filter(|v| v.starts_with("request."))
        .collect();
    assert_eq!(violations.len(), 2, "{}", prism.output());
    assert!(
        violations[0].contains("SinkConfiguration"),
        "{violations:?}"
    );
    assert!(
        violations[1].to_lowercase().contains("pagesize"),
        "{violations:?}"
    );
}

#[test]
fn against_prisms_mock_of_twilios_description_setup_sends_only_valid_requests() {
    // GIVEN Prism's mock generated from Twilio's description alone, whose example type
    // catalogue is empty
    let api = FakeApi::start();
    let prism = Prism::mock(Description::EventsV1);

    // WHEN setup plans against it
    let run = api.setup_at(&prism.base, &["--dry-run"]);

    // THEN each request setup sent passed Prism's validation, and setup refused the types the
    // catalogue lacks (exit 2, nothing written)
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("com.twilio.messaging.message.delivered"),
        "{}",
        run.stderr
    );
    let passed = prism
        .output()
        .matches("The request passed the validation rules")
        .count();
    assert!(passed >= 1, "{}", prism.output());
    assert_eq!(passed, prism.requests(), "{}", prism.output());
    assert!(prism.errors().is_empty(), "{}", prism.errors().join("\n"));
}

/// The calls that write (all but GETs).
fn writes(api: &FakeApi) -> Vec<Call> {
    api.calls()
        .into_iter()
        .filter(|c| c.method() != "GET")
        .collect()
}

/// An account where setup's sink and subscription are already there.
fn set_up_account() -> FakeApi {
    let api = FakeApi::start();
    api.setup(&[]).assert_code(0);
    api.forget_calls();
    api
}

#[test]
fn status_callbacks_dry_run_only_reads_the_named_service_and_prints_its_old_and_new_url() {
    // GIVEN a Messaging Service posting its statuses to the team's old endpoint, and another
    // service not named on the command line
    let api = set_up_account();
    let old = "https://old.example.com/sms/status";
    let named = api.add_service("Notifications", Some(old));
    let other = api.add_service("Marketing", Some("https://other.example.com/status"));

    // WHEN setup plans with --status-callbacks and --dry-run
    let run = api.setup(&["--status-callbacks", &named, "--dry-run"]);

    // THEN it only read, the named service among what it read and the other one not at all
    run.assert_code(0);
    let lines = api.lines();
    assert!(only_reads(&lines), "{lines:?}");
    assert!(
        lines.contains(&format!("GET /v1/Services/{named}")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains(&other)), "{lines:?}");
    // AND it printed what the status callback is and what it would become
    assert!(
        run.stdout.contains(&format!(
            "would change the status callback of {named} (\"Notifications\") from {old} to {MESSAGE_STATUS}"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("1 change(s) would be made"),
        "{}",
        run.stdout
    );
    assert_eq!(api.services()[0].status_callback.as_deref(), Some(old));
}

#[test]
fn status_callbacks_a_real_run_posts_only_the_status_callback_and_a_second_run_only_reads() {
    // GIVEN a Messaging Service without a status callback
    let api = set_up_account();
    let service = api.add_service("Notifications", None);

    // WHEN setup runs with --status-callbacks
    let run = api.setup(&["--status-callbacks", &service]);

    // THEN it made one write: POST /Services/{Sid} with exactly StatusCallback=<the route>
    run.assert_code(0);
    let writes = writes(&api);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].line, format!("POST /v1/Services/{service}"));
    assert_eq!(
        writes[0].form,
        [("StatusCallback".to_owned(), MESSAGE_STATUS.to_owned())]
    );
    assert_eq!(
        api.services()[0].status_callback.as_deref(),
        Some(MESSAGE_STATUS)
    );
    assert!(
        run.stdout.contains(&format!(
            "status callback of {service} (\"Notifications\") set to {MESSAGE_STATUS} (it had none)"
        )),
        "{}",
        run.stdout
    );

    // WHEN setup runs again
    api.forget_calls();
    let again = api.setup(&["--status-callbacks", &service]);

    // THEN it only read, and said the service is set up
    again.assert_code(0);
    assert!(only_reads(&api.lines()), "{:?}", api.lines());
    assert!(
        again.stdout.contains(&format!(
            "already there: {service} (\"Notifications\") sends its message statuses to {MESSAGE_STATUS}"
        )),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
}

#[test]
fn status_callbacks_a_service_pointing_elsewhere_is_changed_and_its_old_url_printed() {
    // GIVEN two services: one posting to another URL, one already at the stack
    let api = set_up_account();
    let old = "https://old.example.com/sms/status";
    let elsewhere = api.add_service("Notifications", Some(old));
    let there = api.add_service("Alerts", Some(MESSAGE_STATUS));

    // WHEN setup runs for both (repeated flag and a comma list alike)
    let run = api.setup(&[
        "--status-callbacks",
        &elsewhere,
        "--status-callbacks",
        &format!("{there},{elsewhere}"),
    ]);

    // THEN only the one pointing elsewhere changed, once, and the old URL was printed
    run.assert_code(0);
    let writes = writes(&api);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].line, format!("POST /v1/Services/{elsewhere}"));
    assert!(
        run.stdout.contains(&format!(
            "status callback of {elsewhere} (\"Notifications\") changed from {old} to {MESSAGE_STATUS}"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("already there: {there}")),
        "{}",
        run.stdout
    );
    let services = api.services();
    assert_eq!(services[0].status_callback.as_deref(), Some(MESSAGE_STATUS));
    assert_eq!(services[1].status_callback.as_deref(), Some(MESSAGE_STATUS));
}

#[test]
fn status_callbacks_with_a_bad_service_sid_is_a_usage_error_before_any_request() {
    let api = FakeApi::start();
    for sid in [
        "MG123",
        "AC0123456789abcdef0123456789abcdef",
        "MG0123456789abcdef0123456789abcdeg",
    ] {
        // WHEN setup runs with a value that is not a Messaging Service SID
        let run = api.setup(&["--status-callbacks", sid]);

        // THEN exit 2 naming the flag and the value, and no request at all
        run.assert_code(2);
        assert!(
            run.stderr.contains("--status-callbacks") && run.stderr.contains(sid),
            "{}",
            run.stderr
        );
        assert!(api.lines().is_empty(), "{:?}", api.lines());
    }
}

#[test]
fn status_callbacks_need_a_webhook_url_ending_in_twilio_events() {
    // GIVEN a webhook URL that is not the stack's /twilio/events route
    let api = FakeApi::start();
    let service = api.add_service("Notifications", None);
    let webhook = "https://abc123.execute-api.eu-west-1.amazonaws.com/hooks/twilio";

    // WHEN setup runs with --status-callbacks
    let run = api.setup_with(
        webhook,
        &api.base,
        &api.base,
        &["--status-callbacks", &service],
    );

    // THEN exit 2 saying why, before any request
    run.assert_code(2);
    assert!(
        run.stderr.contains("--webhook-url")
            && run.stderr.contains("/twilio/events")
            && run.stderr.contains(webhook),
        "{}",
        run.stderr
    );
    assert!(api.lines().is_empty(), "{:?}", api.lines());
    // AND without --status-callbacks that URL is still fine
    api.setup_with(webhook, &api.base, &api.base, &[])
        .assert_code(0);
    assert_eq!(api.services()[0].status_callback, None);
}

#[test]
fn every_request_setup_status_callbacks_sends_conforms_to_twilios_messaging_description() {
    // GIVEN Prism validating against Twilio's description of the Messaging API between setup
    // and the fake's services, and three services: none, another URL, the stack's
    let api = set_up_account();
    let none = api.add_service("Notifications", None);
    let elsewhere = api.add_service("Marketing", Some("https://old.example.com/sms/status"));
    let there = api.add_service("Alerts", Some(MESSAGE_STATUS));
    let prism = Prism::proxy(Description::MessagingV1, &api.upstream());
    let flags = [
        "--status-callbacks",
        none.as_str(),
        "--status-callbacks",
        elsewhere.as_str(),
        "--status-callbacks",
        there.as_str(),
    ];

    // WHEN setup plans, applies, and runs again, its Messaging API calls through Prism
    api.setup_apis(
        &api.base,
        &prism.base,
        &[&flags[..], &["--dry-run"]].concat(),
    )
    .assert_code(0);
    api.setup_apis(&api.base, &prism.base, &flags)
        .assert_code(0);
    api.setup_apis(&api.base, &prism.base, &flags)
        .assert_code(0);

    // THEN Prism saw every call to the services and found nothing against the description
    let service_lines: Vec<String> = api
        .lines()
        .into_iter()
        .filter(|l| l.contains("/v1/Services/"))
        .collect();
    assert_eq!(service_lines.len(), 3 * 3 + 2, "{service_lines:?}");
    assert_eq!(prism.requests(), service_lines.len(), "{}", prism.output());
    let violations = prism.violations();
    assert!(
        violations.is_empty(),
        "violations of Twilio's description:\n{}",
        violations.join("\n")
    );
    assert!(prism.errors().is_empty(), "{}", prism.errors().join("\n"));
    // AND those calls covered both Messaging API operations setup uses
    let mut endpoints: Vec<String> = service_lines.iter().map(|l| endpoint(l)).collect();
    endpoints.sort();
    endpoints.dedup();
    assert_eq!(endpoints, ["GET /Services/{Sid}", "POST /Services/{Sid}"]);
    // AND every named service ended at the stack's route
    assert!(
        api.services()
            .iter()
            .all(|s| s.status_callback.as_deref() == Some(MESSAGE_STATUS))
    );
}

#[test]
fn prism_reports_a_request_that_breaks_twilios_messaging_description() {
    // GIVEN the Messaging API's validating proxy (a check that the check above can fail)
    let api = FakeApi::start();
    let service = api.add_service("Notifications", None);
    let prism = Prism::proxy(Description::MessagingV1, &api.upstream());
    let client = reqwest::Client::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // WHEN a service is updated with a StatusCallback that is not a URL, and one is read by a
    // SID that is not a Messaging Service's
    runtime.block_on(async {
        client
            .post(format!("{}/Services/{service}", prism.base))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(&[("StatusCallback", "not a url")])
            .send()
            .await
            .unwrap();
        client
            .get(format!("{}/Services/{ACCOUNT}", prism.base))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .send()
            .await
            .unwrap();
    });

    // THEN Prism reports both requests, naming what is wrong
    let violations: Vec<String> = prism
        .violations()
        .into_iter()
        .filter(|v| v.starts_with("request."))
        .collect();
    assert_eq!(violations.len(), 2, "{}", prism.output());
    assert!(violations[0].contains("StatusCallback"), "{violations:?}");
    assert!(
        violations[1].starts_with("request.path.sid")
            && violations[1].contains("^MG[0-9a-fA-F]{32}$"),
        "{violations:?}"
    );
}
