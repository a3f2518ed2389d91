//! What setup's clients of Twilio's REST APIs share ([`super::events_api`],
//! [`super::messaging_api`]): HTTP Basic auth, form-encoded request bodies, JSON answers,
//! Twilio's JSON error body, lists paged through `meta.next_page_url`, and error messages that
//! say what to do and never show the credentials.

use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Which of Twilio's APIs a client talks to: named in messages, with the flag that sets its
/// base URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Events,
    Messaging,
}

impl Api {
    pub fn flag(self) -> &'static str {
        match self {
            Self::Events => "--events-api-base",
            Self::Messaging => "--messaging-api-base",
        }
    }

    pub fn default_base(self) -> &'static str {
        match self {
            Self::Events => super::events_api::DEFAULT_BASE,
            Self::Messaging => super::messaging_api::DEFAULT_BASE,
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Events => "Events API",
            Self::Messaging => "Messaging API",
        })
    }
}

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

/// Why a call to one of Twilio's APIs failed, with what to do about it.
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
    /// An error status without Twilio's JSON error body: often not Twilio's API at all (a
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
        "{method} {path}: cannot reach the {api} at {base}\n  what to do: check {}, your network and proxy settings, then run setup again",
        .api.flag()
    )]
    Transport {
        api: Api,
        method: Method,
        path: String,
        base: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client for the {0}")]
    Client(Api, #[source] reqwest::Error),
    /// A success status with an answer setup cannot read.
    #[error(
        "{method} {path}: the {api} answered {status} with {what} setup cannot read{}\n  what to do: check that {} points at Twilio's {api} (…/v1)",
        body.as_deref().map(|b| format!(": {b}")).unwrap_or_default(),
        .api.flag()
    )]
    Unreadable {
        api: Api,
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
    Forbidden(Api),
    /// The base URL is not the API's: a list that always exists was not found, or something
    /// other than Twilio answered.
    CheckBase(Api),
    /// A named resource (a sink, a subscription, a schema, a Messaging Service) was not found.
    Gone(Api),
    RateLimited,
    Refused,
    TwilioTrouble,
    ReadMessage,
}

impl Hint {
    /// `twilio_body`: the answer was Twilio's JSON error. `collection`: the path names a list
    /// (`/Types`, `/Sinks`, `/Subscriptions`), which a right base always has.
    pub fn for_status(api: Api, status: u16, twilio_body: bool, collection: bool) -> Self {
        match status {
            401 => Self::Credentials,
            403 => Self::Forbidden(api),
            404 if collection || !twilio_body => Self::CheckBase(api),
            404 => Self::Gone(api),
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
            Self::Forbidden(api) => write!(
                f,
                "these credentials may not use the {api}: use the account's Auth Token or a standard (not restricted) API key"
            ),
            Self::CheckBase(api) => write!(
                f,
                "check {}: it must be the {api} root, {} (leave the flag out), or a proxy of it",
                api.flag(),
                api.default_base()
            ),
            Self::Gone(Api::Events) => f.write_str(
                "the resource is gone or belongs to another account: run setup again",
            ),
            Self::Gone(Api::Messaging) => f.write_str(
                "check --status-callbacks: the account of these credentials has no Messaging Service with that SID (Console: Messaging > Services)",
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

/// An HTTP client for one of Twilio's APIs, rooted at its base URL (`…/v1`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct TwilioHttp {
    api: Api,
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
}

impl TwilioHttp {
    pub fn new(api: Api, base: Url, credentials: Credentials) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("twilio-events-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Client(api, e))?;
        Ok(Self {
            api,
            http,
            base,
            credentials,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// One call to `path` below the base; the JSON answer (`Null` for an empty one).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        form: Option<Vec<(&str, String)>>,
    ) -> Result<Value, ApiError> {
        let url = self.url(path, query);
        self.send(method, url, path, form).await
    }

    /// An answer read as `T`.
    pub fn parse<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        value: Value,
    ) -> Result<T, ApiError> {
        serde_json::from_value(value).map_err(|e| ApiError::Unreadable {
            api: self.api,
            method,
            path: path.to_owned(),
            status: 200,
            what: "an answer".into(),
            body: None,
            source: Some(e),
        })
    }

    /// Every item of a paged list: the items under `key`, then `meta.next_page_url` until it is
    /// null. The next page is always asked of the configured base (only its path and query are
    /// taken from Twilio's URL), so the credentials never go anywhere else.
    pub async fn list<T: DeserializeOwned>(
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
                        api: self.api,
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
                        api: self.api,
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
                        api: self.api,
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

    async fn send(
        &self,
        method: Method,
        url: Url,
        shown: &str,
        form: Option<Vec<(&str, String)>>,
    ) -> Result<Value, ApiError> {
        let transport = |source| ApiError::Transport {
            api: self.api,
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
                api: self.api,
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
        let hint = Hint::for_status(self.api, status.as_u16(), error.is_some(), collection);
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
pub fn segment(value: &str) -> String {
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

    fn client(api: Api, base: &str) -> TwilioHttp {
        TwilioHttp::new(
            api,
            Url::parse(base).unwrap(),
            Credentials::new("AC1", "secret"),
        )
        .unwrap()
    }

    #[test]
    fn next_pages_are_asked_of_the_configured_base_only() {
        // GIVEN a client on a local base
        let api = client(Api::Events, "http://127.0.0.1:9/v1");
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
    fn debug_never_shows_the_secret() {
        let text = format!("{:?}", Credentials::new("AC1", "hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("AC1"));
    }

    #[test]
    fn a_404_on_a_list_or_from_something_not_twilio_points_at_the_base_url() {
        let check_base = Hint::CheckBase(Api::Events);
        let hint = |status, twilio_body, path| {
            Hint::for_status(Api::Events, status, twilio_body, is_collection(path))
        };
        // GIVEN a 404 on GET /Types, Twilio's JSON or not: the base is wrong
        assert_eq!(hint(404, true, "/Types"), check_base);
        assert_eq!(hint(404, false, "/Types"), check_base);
        // GIVEN an HTML 404 on a named resource: not Twilio either
        assert_eq!(hint(404, false, "/Sinks/DG1/Test"), check_base);
        // GIVEN Twilio's 404 on a named resource: that resource is gone
        assert_eq!(hint(404, true, "/Sinks/DG1/Test"), Hint::Gone(Api::Events));
        assert!(check_base.to_string().contains("--events-api-base"));
        assert!(
            check_base
                .to_string()
                .contains("https://events.twilio.com/v1")
        );
        assert!(!check_base.to_string().contains("run setup again"));
    }

    #[test]
    fn the_messaging_apis_hints_name_its_own_flags() {
        // GIVEN Twilio's 404 on a Messaging Service: the SID given is not the account's
        let gone = Hint::for_status(Api::Messaging, 404, true, is_collection("/Services/MG1"));
        assert!(gone.to_string().contains("--status-callbacks"), "{gone}");
        // GIVEN an HTML 404 there: the base is wrong
        let base = Hint::for_status(Api::Messaging, 404, false, is_collection("/Services/MG1"));
        assert!(
            base.to_string().contains("--messaging-api-base")
                && base.to_string().contains("https://messaging.twilio.com/v1"),
            "{base}"
        );
    }

    #[test]
    fn an_excerpt_is_one_short_line_without_the_credentials() {
        let api = client(Api::Events, "http://127.0.0.1:9/v1");
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
