//! A scripted fake of Twilio's REST API (2010-04-01 Messages and Calls) for exact scenarios:
//! an HTTP server on 127.0.0.1 holding messages and calls as the API shows them (the fields and
//! formats of twilio/twilio-oai's spec/json/twilio_api_v2010.json: RFC 2822 dates, lowercase
//! statuses), answering `GET …/Messages/{Sid}.json` and `…/Calls/{Sid}.json`, `GET
//! …/Messages.json` and `…/Calls.json` (the `DateSent>`/`DateSent<` and
//! `StartTime>`/`StartTime<` filters, pages through `next_page_uri`), with HTTP Basic auth,
//! 429s scripted per SID, 404 for what it does not hold, and every request recorded.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

pub const ACCOUNT: &str = twilio_events_testkit::events::ACCOUNT_SID;
pub const TOKEN: &str = "reconcile-test-auth-token-0123456";

#[derive(Default)]
struct Held {
    account: String,
    messages: BTreeMap<String, Value>,
    calls: BTreeMap<String, Value>,
    /// 429s still to answer, per SID.
    throttle: HashMap<String, u32>,
    requests: Vec<String>,
    page_size: usize,
}

type Shared = Arc<Mutex<Held>>;

pub struct RestFake {
    state: Shared,
    /// The API root (`--api-base`).
    pub base: String,
}

/// A message as the REST API shows it.
pub fn message_json(
    sid: &str,
    status: &str,
    sent: OffsetDateTime,
    updated: OffsetDateTime,
) -> Value {
    let date = |t: OffsetDateTime| t.format(&Rfc2822).unwrap();
    let failed = matches!(status, "failed" | "undelivered");
    json!({
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": "Your code is 123456",
        "date_created": date(sent),
        "date_sent": date(sent),
        "date_updated": date(updated),
        "direction": "outbound-api",
        "error_code": if failed { json!(30003) } else { Value::Null },
        "error_message": if failed { json!("Unreachable destination handset") } else { Value::Null },
        "from": "+15550001111",
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media.json")},
        "to": "+15550002222",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"),
    })
}

fn by_sid(items: impl IntoIterator<Item = Value>) -> BTreeMap<String, Value> {
    items
        .into_iter()
        .map(|m| (m["sid"].as_str().unwrap().to_owned(), m))
        .collect()
}

impl RestFake {
    /// Messages of [`ACCOUNT`], no calls.
    pub fn start(messages: impl IntoIterator<Item = Value>, page_size: usize) -> Self {
        Self::holding(ACCOUNT, by_sid(messages), BTreeMap::new(), page_size)
    }

    /// What `twilio-events simulate --resources FILE` wrote: its messages and calls, of its
    /// account (the Auth Token is still [`TOKEN`]).
    pub fn from_simulated(file: &std::path::Path, page_size: usize) -> Self {
        let text = std::fs::read_to_string(file).unwrap();
        let resources: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let account = resources[0]["account_sid"].as_str().unwrap().to_owned();
        let (messages, calls): (Vec<Value>, Vec<Value>) =
            resources.into_iter().partition(|r| r["kind"] == "message");
        Self::holding(&account, by_sid(messages), by_sid(calls), page_size)
    }

    fn holding(
        account: &str,
        messages: BTreeMap<String, Value>,
        calls: BTreeMap<String, Value>,
        page_size: usize,
    ) -> Self {
        let state = Arc::new(Mutex::new(Held {
            account: account.to_owned(),
            messages,
            calls,
            page_size,
            ..Held::default()
        }));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        Self {
            state,
            base: crate::helpers::serve_in_background(app),
        }
    }

    /// Answer the next `times` requests for `sid` with 429.
    pub fn throttle(&self, sid: &str, times: u32) {
        self.state
            .lock()
            .unwrap()
            .throttle
            .insert(sid.to_owned(), times);
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn forget_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: &Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        "The requested resource was not found",
    )
}

async fn handle(State(state): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut fake = state.lock().unwrap();
    fake.requests.push(uri.to_string());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{TOKEN}", fake.account))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let prefix = format!("/2010-04-01/Accounts/{}/", fake.account);
    let Some(rest) = uri.path().strip_prefix(&prefix) else {
        return not_found();
    };
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["Messages.json"] => list(&fake, &fake.messages, "messages", "DateSent", &uri),
        ["Calls.json"] => list(&fake, &fake.calls, "calls", "StartTime", &uri),
        [collection @ ("Messages" | "Calls"), file] => {
            let sid = file.trim_end_matches(".json").to_owned();
            if let Some(left) = fake.throttle.get_mut(&sid).filter(|n| **n > 0) {
                *left -= 1;
                let mut response =
                    twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
                response
                    .headers_mut()
                    .insert("retry-after", "1".parse().unwrap());
                return response;
            }
            let held = if *collection == "Messages" {
                &fake.messages
            } else {
                &fake.calls
            };
            held.get(&sid).map_or_else(not_found, ok)
        }
        _ => not_found(),
    }
}

/// `<field>>` (on or after) and `<field><` (on or before) on `DateSent` (messages) or
/// `StartTime` (calls); `Page`/`PageToken` as Twilio pages.
fn list(
    fake: &Held,
    held: &BTreeMap<String, Value>,
    name: &str,
    field: &str,
    uri: &Uri,
) -> Response {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let (after_key, before_key) = (format!("{field}>"), format!("{field}<"));
    let time = |k: &str| get(k).and_then(|v| OffsetDateTime::parse(&v, &Rfc3339).ok());
    let (Some(after), Some(before)) = (time(&after_key), time(&before_key)) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            "the date filters must be ISO 8601 times",
        );
    };
    let date_field = if field == "DateSent" {
        "date_sent"
    } else {
        "start_time"
    };
    let page: usize = get("Page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let size = get("PageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50)
        .min(fake.page_size);
    let matching: Vec<&Value> = held
        .values()
        .filter(|m| {
            let at = OffsetDateTime::parse(m[date_field].as_str().unwrap(), &Rfc2822).unwrap();
            at >= after && at <= before
        })
        .collect();
    let start = page * size;
    let items: Vec<&Value> = matching.iter().skip(start).take(size).copied().collect();
    let more = start + items.len() < matching.len();
    let path = uri.path();
    let encode = |v: String| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let filters = format!(
        "{field}%3E={}&{field}%3C={}&PageSize={size}",
        encode(get(&after_key).unwrap_or_default()),
        encode(get(&before_key).unwrap_or_default()),
    );
    let next = more.then(|| {
        format!(
            "{path}?{filters}&Page={}&PageToken=PA{}",
            page + 1,
            start + size
        )
    });
    ok(&json!({
        name: items,
        "next_page_uri": next,
        "previous_page_uri": null,
        "first_page_uri": format!("{path}?{filters}&Page=0"),
        "page": page,
        "page_size": size,
        "start": start,
        "end": start + items.len(),
        "uri": uri.to_string(),
    }))
}
