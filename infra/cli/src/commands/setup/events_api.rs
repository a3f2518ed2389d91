//! A small client for Twilio's Events API (`https://events.twilio.com/v1`), as Twilio's
//! published OpenAPI description (twilio/twilio-oai, `spec/json/twilio_events_v1.json`)
//! describes it: HTTP Basic auth, form-encoded request bodies, JSON answers, lists paged
//! through `meta.next_page_url`.
//!
//! Only what `twilio-events setup` needs: event types and schemas, webhook sinks (create, test,
//! validate), subscriptions and their subscribed events.

use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Twilio's production Events API.
pub const DEFAULT_BASE: &str = "https://events.twilio.com/v1";

/// The most items one list page may hold (the spec's `PageSize` maximum is 1000).
const PAGE_SIZE: &str = "1000";

/// Who the requests authenticate as: an Account SID and its Auth Token, or an API key SID and
/// its secret. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    secret: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a call to the Events API failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Twilio answered with an error status and its JSON error body.
    #[error(
        "{method} {path}: Twilio answered {status}: {message}{}{}\n  what to do: {hint}",
        code.map(|c| format!(" (error {c})")).unwrap_or_default(),
        more_info.as_deref().map(|m| format!(", see {m}")).unwrap_or_default()
    )]
    Twilio {
        method: Method,
        path: String,
        status: u16,
        code: Option<u64>,
        message: String,
        more_info: Option<String>,
        hint: Hint,
    },
    /// An error status without Twilio's JSON error body: often not the Events API at all (a
    /// wrong base URL, a proxy). The body is shown, shortened, the credentials blanked out.
    #[error(
        "{method} {path}: {base} answered {status} {reason}, not with Twilio's JSON error: {body}\n  what to do: {hint}"
    )]
    NotTwilio {
        method: Method,
        path: String,
        base: String,
        status: u16,
        reason: &'static str,
        body: String,
        hint: Hint,
    },
    #[error(
        "{method} {path}: cannot reach the Events API at {base}\n  what to do: check --events-api-base, your network and proxy settings, then run setup again"
    )]
    Transport {
        method: Method,
        path: String,
        base: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client for the Events API")]
    Client(#[source] reqwest::Error),
    /// A success status with an answer setup cannot read.
    #[error(
        "{method} {path}: the Events API answered {status} with {what} setup cannot read{}\n  what to do: check that --events-api-base points at Twilio's Events API (…/v1)",
        body.as_deref().map(|b| format!(": {b}")).unwrap_or_default()
    )]
    Unreadable {
        method: Method,
        path: String,
        status: u16,
        what: String,
        /// The body, shortened and with the credentials blanked out, when it is not JSON.
        body: Option<String>,
        #[source]
        source: Option<serde_json::Error>,
    },
}

/// What to do about an error status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    Credentials,
    Forbidden,
    /// The base URL is not the Events API: a list that always exists was not found, or
    /// something other than Twilio answered.
    CheckBase,
    /// A named resource (a sink, a subscription, a schema) was not found.
    Gone,
    RateLimited,
    Refused,
    TwilioTrouble,
    ReadMessage,
}

impl Hint {
    /// `twilio_body`: the answer was Twilio's JSON error. `collection`: the path names a list
    /// (`/Types`, `/Sinks`, `/Subscriptions`), which a right base always has.
    fn for_status(status: u16, twilio_body: bool, collection: bool) -> Self {
        match status {
            401 => Self::Credentials,
            403 => Self::Forbidden,
            404 if collection || !twilio_body => Self::CheckBase,
            404 => Self::Gone,
            429 => Self::RateLimited,
            400 | 409 | 422 => Self::Refused,
            500..=599 => Self::TwilioTrouble,
            _ => Self::ReadMessage,
        }
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credentials => f.write_str(
                "check the credentials: --account-sid and --auth-token (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN), or --api-key and --api-secret of the same account",
            ),
            Self::Forbidden => f.write_str(
                "these credentials may not use the Events API: use the account's Auth Token or a standard (not restricted) API key",
            ),
            Self::CheckBase => write!(
                f,
                "check --events-api-base: it must be the Events API root, {DEFAULT_BASE} (leave the flag out), or a proxy of it"
            ),
            Self::Gone => f.write_str(
                "the resource is gone or belongs to another account: run setup again",
            ),
            Self::RateLimited => f.write_str(
                "Twilio is rate limiting this account: wait a minute and run setup again",
            ),
            Self::Refused => f.write_str(
                "Twilio refused the request: read Twilio's message above (the error page explains it), fix the cause and run setup again",
            ),
            Self::TwilioTrouble => f.write_str(
                "Twilio had a problem: wait a moment and run setup again (it is idempotent)",
            ),
            Self::ReadMessage => {
                f.write_str("read the message above, fix the cause and run setup again")
            }
        }
    }
}

/// How much of an unexpected answer's body an error shows.
const EXCERPT_CHARS: usize = 200;

/// Twilio's error body: `{"code": 20003, "message": "Authenticate", "more_info": …, "status": 401}`.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
    message: Option<String>,
    more_info: Option<String>,
}

/// `events.v1.event_type`.
#[derive(Clone, Debug, Deserialize)]
pub struct EventType {
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_id: Option<String>,
    /// `available`, `deprecated`, `restricted`, `discontinued`.
    pub status: Option<String>,
}

/// `events.v1.schema`.
#[derive(Clone, Debug, Deserialize)]
pub struct Schema {
    #[serde(default)]
    pub latest_version: u32,
}

/// `events.v1.sink`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Sink {
    pub sid: String,
    pub sink_type: Option<String>,
    /// `initialized`, `validating`, `active` or `failed`.
    pub status: Option<String>,
    pub sink_configuration: Option<Value>,
}

impl Sink {
    /// The webhook destination, whether Twilio answers the configuration as an object (as in
    /// the spec's examples) or as the JSON string it was created from.
    pub fn destination(&self) -> Option<String> {
        let config = match self.sink_configuration.as_ref()? {
            Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
            other => other.clone(),
        };
        config.get("destination")?.as_str().map(str::to_owned)
    }

    pub fn is_webhook(&self) -> bool {
        self.sink_type.as_deref() == Some("webhook")
    }

    /// The type Twilio gives (`webhook`, `kinesis`, `segment`), as it gives it.
    pub fn sink_type(&self) -> &str {
        self.sink_type.as_deref().unwrap_or("type not given")
    }

    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some("active")
    }

    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("unknown")
    }
}

/// `events.v1.subscription`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Subscription {
    pub sid: String,
    pub sink_sid: Option<String>,
    pub description: Option<String>,
}

/// `events.v1.subscription.subscribed_event`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SubscribedEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub schema_version: u32,
}

/// `events.v1.sink.sink_test` and `events.v1.sink.sink_validate`.
#[derive(Deserialize)]
struct SinkResult {
    result: Option<String>,
}

/// A configured client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventsApi {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
}

impl EventsApi {
    /// `base` is the API root, `https://events.twilio.com/v1` in production.
    pub fn new(base: Url, credentials: Credentials) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("twilio-events-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ApiError::Client)?;
        Ok(Self {
            http,
            base,
            credentials,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `GET /Types`, every page.
    pub async fn list_types(&self) -> Result<Vec<EventType>, ApiError> {
        self.list("/Types", &[("PageSize", PAGE_SIZE)], "types")
            .await
    }

    /// `GET /Schemas/{Id}`.
    pub async fn fetch_schema(&self, id: &str) -> Result<Schema, ApiError> {
        let path = format!("/Schemas/{}", segment(id));
        let value = self.call(Method::GET, &path, &[], None).await?;
        parse(Method::GET, &path, value)
    }

    /// `GET /Sinks`, every page.
    pub async fn list_sinks(&self) -> Result<Vec<Sink>, ApiError> {
        self.list("/Sinks", &[("PageSize", PAGE_SIZE)], "sinks")
            .await
    }

    /// `POST /Sinks` (201): a webhook sink posting batches of events to `destination`.
    pub async fn create_webhook_sink(
        &self,
        description: &str,
        destination: &str,
    ) -> Result<Sink, ApiError> {
        let path = "/Sinks";
        let form = vec![
            ("Description", description.to_owned()),
            ("SinkType", "webhook".to_owned()),
            (
                "SinkConfiguration",
                webhook_sink_configuration(destination).to_string(),
            ),
        ];
        let value = self.call(Method::POST, path, &[], Some(form)).await?;
        parse(Method::POST, path, value)
    }

    /// `POST /Sinks/{Sid}/Test` (201): Twilio sends the test event to the sink. The `result`.
    pub async fn test_sink(&self, sink_sid: &str) -> Result<String, ApiError> {
        let path = format!("/Sinks/{}/Test", segment(sink_sid));
        let value = self.call(Method::POST, &path, &[], Some(vec![])).await?;
        let result: SinkResult = parse(Method::POST, &path, value)?;
        Ok(result.result.unwrap_or_default())
    }

    /// `POST /Sinks/{Sid}/Validate` with `TestId` (201). The `result` (`valid` when it worked).
    pub async fn validate_sink(&self, sink_sid: &str, test_id: &str) -> Result<String, ApiError> {
        let path = format!("/Sinks/{}/Validate", segment(sink_sid));
        let form = vec![("TestId", test_id.to_owned())];
        let value = self.call(Method::POST, &path, &[], Some(form)).await?;
        let result: SinkResult = parse(Method::POST, &path, value)?;
        Ok(result.result.unwrap_or_default())
    }

    /// `GET /Subscriptions?SinkSid=…`, every page.
    pub async fn list_subscriptions(&self, sink_sid: &str) -> Result<Vec<Subscription>, ApiError> {
        self.list(
            "/Subscriptions",
            &[("SinkSid", sink_sid), ("PageSize", PAGE_SIZE)],
            "subscriptions",
        )
        .await
    }

    /// `POST /Subscriptions` (201), `Types` repeated, each a JSON object as a string.
    pub async fn create_subscription(
        &self,
        description: &str,
        sink_sid: &str,
        types: &[(String, u32)],
    ) -> Result<Subscription, ApiError> {
        let path = "/Subscriptions";
        let mut form = vec![
            ("Description", description.to_owned()),
            ("SinkSid", sink_sid.to_owned()),
        ];
        form.extend(types.iter().map(|(event_type, version)| {
            (
                "Types",
                serde_json::json!({"type": event_type, "schema_version": version}).to_string(),
            )
        }));
        let value = self.call(Method::POST, path, &[], Some(form)).await?;
        parse(Method::POST, path, value)
    }

    /// `GET /Subscriptions/{Sid}/SubscribedEvents`, every page.
    pub async fn list_subscribed_events(
        &self,
        subscription_sid: &str,
    ) -> Result<Vec<SubscribedEvent>, ApiError> {
        let path = format!(
            "/Subscriptions/{}/SubscribedEvents",
            segment(subscription_sid)
        );
        self.list(&path, &[("PageSize", PAGE_SIZE)], "types").await
    }

    /// `POST /Subscriptions/{Sid}/SubscribedEvents` with `Type` and `SchemaVersion` (201).
    pub async fn add_subscribed_event(
        &self,
        subscription_sid: &str,
        event_type: &str,
        schema_version: u32,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/Subscriptions/{}/SubscribedEvents",
            segment(subscription_sid)
        );
        let form = vec![
            ("Type", event_type.to_owned()),
            ("SchemaVersion", schema_version.to_string()),
        ];
        self.call(Method::POST, &path, &[], Some(form)).await?;
        Ok(())
    }

    /// `POST /Subscriptions/{Sid}/SubscribedEvents/{Type}` with `SchemaVersion` (200).
    pub async fn update_subscribed_event(
        &self,
        subscription_sid: &str,
        event_type: &str,
        schema_version: u32,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/Subscriptions/{}/SubscribedEvents/{}",
            segment(subscription_sid),
            segment(event_type)
        );
        let form = vec![("SchemaVersion", schema_version.to_string())];
        self.call(Method::POST, &path, &[], Some(form)).await?;
        Ok(())
    }

    /// `DELETE /Subscriptions/{Sid}/SubscribedEvents/{Type}` (204).
    pub async fn delete_subscribed_event(
        &self,
        subscription_sid: &str,
        event_type: &str,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/Subscriptions/{}/SubscribedEvents/{}",
            segment(subscription_sid),
            segment(event_type)
        );
        self.call(Method::DELETE, &path, &[], None).await?;
        Ok(())
    }

    /// Every item of a paged list: the items under `key`, then `meta.next_page_url` until it is
    /// null. The next page is always asked of the configured base (only its path and query are
    /// taken from Twilio's URL), so the credentials never go anywhere else.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: &str,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut url = self.url(path, query);
        loop {
            let shown = shown_path(&url);
            let value = self.send(Method::GET, url, &shown, None).await?;
            let page: Vec<T> = match value.get(key) {
                Some(list) => {
                    serde_json::from_value(list.clone()).map_err(|e| ApiError::Unreadable {
                        method: Method::GET,
                        path: shown.clone(),
                        status: 200,
                        what: format!("a `{key}` list"),
                        body: None,
                        source: Some(e),
                    })?
                }
                None => {
                    return Err(ApiError::Unreadable {
                        method: Method::GET,
                        path: shown,
                        status: 200,
                        what: format!("no `{key}` list, an answer"),
                        body: None,
                        source: None,
                    });
                }
            };
            items.extend(page);
            let next = value
                .get("meta")
                .and_then(|meta| meta.get("next_page_url"))
                .and_then(Value::as_str);
            match next {
                Some(next) if !next.is_empty() => {
                    url = self.rebase(next).ok_or_else(|| ApiError::Unreadable {
                        method: Method::GET,
                        path: shown.clone(),
                        status: 200,
                        what: format!("a next_page_url outside /v1 ({next}), a page"),
                        body: None,
                        source: None,
                    })?;
                }
                _ => return Ok(items),
            }
        }
    }

    /// `next_page_url`'s path below `/v1` and its query, on the configured base.
    fn rebase(&self, next: &str) -> Option<Url> {
        let next = Url::parse(next).or_else(|_| self.base.join(next)).ok()?;
        let below = next.path().strip_prefix("/v1")?;
        let mut url = self.url(below, &[]);
        url.set_query(next.query());
        Some(url)
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        form: Option<Vec<(&str, String)>>,
    ) -> Result<Value, ApiError> {
        let url = self.url(path, query);
        self.send(method, url, path, form).await
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        shown: &str,
        form: Option<Vec<(&str, String)>>,
    ) -> Result<Value, ApiError> {
        let transport = |source| ApiError::Transport {
            method: method.clone(),
            path: shown.to_owned(),
            base: self.base.to_string(),
            source,
        };
        let collection = is_collection(self.below_base(&url));
        let mut request = self
            .http
            .request(method.clone(), url)
            .basic_auth(&self.credentials.username, Some(&self.credentials.secret))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(form) = &form {
            request = request.form(form);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null); // 204 No Content
            }
            return serde_json::from_slice(&body).map_err(|e| ApiError::Unreadable {
                method,
                path: shown.to_owned(),
                status: status.as_u16(),
                what: "a body".into(),
                body: Some(self.excerpt(&body)),
                source: Some(e),
            });
        }
        // Twilio's error body has at least a code or a message; anything else is not Twilio's.
        let error = serde_json::from_slice::<TwilioError>(&body)
            .ok()
            .filter(|e| e.code.is_some() || e.message.is_some());
        let hint = Hint::for_status(status.as_u16(), error.is_some(), collection);
        let reason = status.canonical_reason().unwrap_or("");
        match error {
            Some(error) => Err(ApiError::Twilio {
                method,
                path: shown.to_owned(),
                status: status.as_u16(),
                code: error.code,
                message: error.message.unwrap_or_else(|| reason.to_owned()),
                more_info: error.more_info,
                hint,
            }),
            None => Err(ApiError::NotTwilio {
                method,
                path: shown.to_owned(),
                base: self.base.to_string(),
                status: status.as_u16(),
                reason,
                body: self.excerpt(&body),
                hint,
            }),
        }
    }

    /// The URL's path below the base (`/Types`, `/Sinks/DG…/Test`).
    fn below_base<'u>(&self, url: &'u Url) -> &'u str {
        let base = self.base.path().trim_end_matches('/');
        url.path().strip_prefix(base).unwrap_or(url.path())
    }

    /// An answer's body as an error shows it: on one line, at most [`EXCERPT_CHARS`]
    /// characters, the credentials blanked out (a proxy or a debugging server may echo the
    /// request, Authorization header included).
    fn excerpt(&self, body: &[u8]) -> String {
        let secret = &self.credentials.secret;
        let basic = base64(format!("{}:{secret}", self.credentials.username).as_bytes());
        excerpt(body, &[basic.as_str(), secret.as_str()])
    }
}

/// The `SinkConfiguration` of a webhook sink (a JSON string in the form).
pub fn webhook_sink_configuration(destination: &str) -> Value {
    serde_json::json!({"destination": destination, "method": "POST", "batch_events": true})
}

fn parse<T: DeserializeOwned>(method: Method, path: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Unreadable {
        method,
        path: path.to_owned(),
        status: 200,
        what: "an answer".into(),
        body: None,
        source: Some(e),
    })
}

/// A path below the base naming a list every account has (`/Types`, `/Sinks`,
/// `/Subscriptions`), not a named resource.
fn is_collection(below_base: &str) -> bool {
    !below_base.trim_start_matches('/').contains('/')
}

/// `body` as text on one line, `hidden` values replaced, cut at [`EXCERPT_CHARS`].
fn excerpt(body: &[u8], hidden: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for value in hidden.iter().filter(|v| !v.is_empty()) {
        text = text.replace(value, "<redacted>");
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let line: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if line.is_empty() {
        return "(an empty body)".to_owned();
    }
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// Standard base64 with padding: how the Basic Authorization header carries the credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A path segment, percent-encoded where needed (SIDs and event types need nothing, but a
/// user-typed value must not change the path).
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path shown in messages: below `/v1`, with the query.
fn shown_path(url: &Url) -> String {
    let path = url.path();
    let path = path
        .find("/v1/")
        .map_or(path, |at| &path[at + "/v1".len()..]);
    match url.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> EventsApi {
        EventsApi::new(Url::parse(base).unwrap(), Credentials::new("AC1", "secret")).unwrap()
    }

    #[test]
    fn next_pages_are_asked_of_the_configured_base_only() {
        // GIVEN a client on a local base
        let api = api("http://127.0.0.1:9/v1");
        // WHEN Twilio's next_page_url names its own host
        let next = api
            .rebase("https://events.twilio.com/v1/Sinks?PageSize=2&Page=1&PageToken=PT1")
            .unwrap();
        // THEN the request goes to the configured base, with Twilio's path and query
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:9/v1/Sinks?PageSize=2&Page=1&PageToken=PT1"
        );
        assert!(api.rebase("https://evil.example/v2/Sinks").is_none());
    }

    #[test]
    fn the_sink_destination_is_read_from_an_object_or_a_json_string() {
        let object: Sink = serde_json::from_value(serde_json::json!({
            "sid": "DG1", "sink_type": "webhook", "status": "active",
            "sink_configuration": {"destination": "https://a/twilio/events", "method": "POST", "batch_events": true}
        }))
        .unwrap();
        let string: Sink = serde_json::from_value(serde_json::json!({
            "sid": "DG2", "sink_type": "webhook", "status": "active",
            "sink_configuration": "{\"destination\":\"https://b/twilio/events\"}"
        }))
        .unwrap();
        assert_eq!(
            object.destination().as_deref(),
            Some("https://a/twilio/events")
        );
        assert_eq!(
            string.destination().as_deref(),
            Some("https://b/twilio/events")
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let text = format!("{:?}", Credentials::new("AC1", "hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("AC1"));
    }

    #[test]
    fn a_404_on_a_list_or_from_something_not_twilio_points_at_the_base_url() {
        let check_base = Hint::CheckBase;
        // GIVEN a 404 on GET /Types, Twilio's JSON or not: the base is wrong
        assert_eq!(
            Hint::for_status(404, true, is_collection("/Types")),
            check_base
        );
        assert_eq!(
            Hint::for_status(404, false, is_collection("/Types")),
            check_base
        );
        // GIVEN an HTML 404 on a named resource: not Twilio either
        assert_eq!(
            Hint::for_status(404, false, is_collection("/Sinks/DG1/Test")),
            check_base
        );
        // GIVEN Twilio's 404 on a named resource: that resource is gone
        assert_eq!(
            Hint::for_status(404, true, is_collection("/Sinks/DG1/Test")),
            Hint::Gone
        );
        assert!(check_base.to_string().contains("--events-api-base"));
        assert!(!check_base.to_string().contains("run setup again"));
    }

    #[test]
    fn an_excerpt_is_one_short_line_without_the_credentials() {
        let api = api("http://127.0.0.1:9/v1");
        let basic = base64(b"AC1:secret");
        let body = format!(
            "<html>\n<h1>Bad Gateway</h1>\n<pre>Authorization: Basic {basic}\ntoken=secret</pre>{}</html>",
            "x".repeat(500)
        );
        let shown = api.excerpt(body.as_bytes());
        assert!(
            shown.starts_with("<html> <h1>Bad Gateway</h1> <pre>Authorization: Basic <redacted> token=<redacted></pre>"),
            "{shown}"
        );
        assert_eq!(shown.chars().count(), EXCERPT_CHARS + 1, "{shown}");
        assert!(shown.ends_with('…'));
        assert!(
            !shown.contains("secret") && !shown.contains(&basic),
            "{shown}"
        );
        assert_eq!(api.excerpt(b" \n"), "(an empty body)");
    }

    #[test]
    fn base64_is_the_standard_alphabet_with_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"AC1:secret"), "QUMxOnNlY3JldA==");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            segment("com.twilio.voice.status-callback.call.initiated"),
            "com.twilio.voice.status-callback.call.initiated"
        );
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
