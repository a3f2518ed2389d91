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
    /// Twilio answered with an error status (its JSON error body when it sent one).
    #[error(
        "{method} {path}: Twilio answered {status}: {message}{}{}\n  what to do: {}",
        code.map(|c| format!(" (error {c})")).unwrap_or_default(),
        more_info.as_deref().map(|m| format!(", see {m}")).unwrap_or_default(),
        hint(*status)
    )]
    Twilio {
        method: Method,
        path: String,
        status: u16,
        code: Option<u64>,
        message: String,
        more_info: Option<String>,
    },
    #[error(
        "{method} {path}: cannot reach the Events API at {base}: {detail}\n  what to do: check --events-api-base, your network and proxy settings, then run setup again"
    )]
    Transport {
        method: Method,
        path: String,
        base: String,
        detail: String,
    },
    #[error(
        "{method} {path}: the Events API answered {status} with a body setup cannot read ({detail})\n  what to do: check that --events-api-base points at Twilio's Events API (…/v1)"
    )]
    Unexpected {
        method: Method,
        path: String,
        status: u16,
        detail: String,
    },
}

fn hint(status: u16) -> &'static str {
    match status {
        401 => {
            "check the credentials: --account-sid and --auth-token (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN), or --api-key and --api-secret of the same account"
        }
        403 => {
            "these credentials may not use the Events API: use the account's Auth Token or a standard (not restricted) API key"
        }
        404 => "the resource is gone or belongs to another account: run setup again",
        429 => "Twilio is rate limiting this account: wait a minute and run setup again",
        400 | 409 | 422 => {
            "Twilio refused the request: read Twilio's message above (the error page explains it), fix the cause and run setup again"
        }
        500..=599 => "Twilio had a problem: wait a moment and run setup again (it is idempotent)",
        _ => "read Twilio's message above, fix the cause and run setup again",
    }
}

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
#[derive(Clone, Debug, Deserialize)]
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

    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some("active")
    }

    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("unknown")
    }
}

/// `events.v1.subscription`.
#[derive(Clone, Debug, Deserialize)]
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
            .map_err(|e| ApiError::Transport {
                method: Method::GET,
                path: "/".into(),
                base: base.to_string(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
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
                    serde_json::from_value(list.clone()).map_err(|e| ApiError::Unexpected {
                        method: Method::GET,
                        path: shown.clone(),
                        status: 200,
                        detail: format!("`{key}`: {e}"),
                    })?
                }
                None => {
                    return Err(ApiError::Unexpected {
                        method: Method::GET,
                        path: shown,
                        status: 200,
                        detail: format!("no `{key}` list"),
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
                    url = self.rebase(next).ok_or_else(|| ApiError::Unexpected {
                        method: Method::GET,
                        path: shown.clone(),
                        status: 200,
                        detail: format!("a next_page_url outside /v1: {next}"),
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
        let transport = |detail: String| ApiError::Transport {
            method: method.clone(),
            path: shown.to_owned(),
            base: self.base.to_string(),
            detail,
        };
        let mut request = self
            .http
            .request(method.clone(), url)
            .basic_auth(&self.credentials.username, Some(&self.credentials.secret))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(form) = &form {
            request = request.form(form);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null); // 204 No Content
            }
            return serde_json::from_slice(&body).map_err(|e| ApiError::Unexpected {
                method,
                path: shown.to_owned(),
                status: status.as_u16(),
                detail: e.to_string(),
            });
        }
        let error: Option<TwilioError> = serde_json::from_slice(&body).ok();
        let (code, message, more_info) = match error {
            Some(e) => (e.code, e.message, e.more_info),
            None => (None, None, None),
        };
        Err(ApiError::Twilio {
            method,
            path: shown.to_owned(),
            status: status.as_u16(),
            code,
            message: message.unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("no error message")
                    .to_owned()
            }),
            more_info,
        })
    }
}

/// The `SinkConfiguration` of a webhook sink (a JSON string in the form).
pub fn webhook_sink_configuration(destination: &str) -> Value {
    serde_json::json!({"destination": destination, "method": "POST", "batch_events": true})
}

fn parse<T: DeserializeOwned>(method: Method, path: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Unexpected {
        method,
        path: path.to_owned(),
        status: 200,
        detail: e.to_string(),
    })
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

/// An error and its causes, on one line (reqwest's own message alone is often "error sending
/// request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            segment("com.twilio.voice.status-callback.call.initiated"),
            "com.twilio.voice.status-callback.call.initiated"
        );
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
