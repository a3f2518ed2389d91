//! Twilio's REST API (2010-04-01) over HTTPS: HTTP Basic auth with an API key (or the account's
//! Auth Token), JSON answers, Twilio's JSON error body, lists paged through `next_page_uri`.
//! Credentials never appear in `Debug`, logs or errors.

use crate::ports::{Fetched, ResourceKind, ResourcePage, TwilioApi, TwilioApiError};
use crate::processor::Window;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use twilio_events::reconciled::{CallResource, MessageResource, Resource};

/// Twilio's REST API root.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
/// Resources per list page (Twilio's maximum).
const PAGE_SIZE: &str = "1000";
/// One request's limit: a run has minutes, a request that hangs must not take them all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Who the requests authenticate as: an API key (SID `SK…` and its secret, preferred: it can be
/// revoked alone) or the account SID and its Auth Token. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiCredentials {
    /// The account whose resources are read (`AC…`).
    pub account_sid: String,
    username: String,
    secret: String,
}

impl ApiCredentials {
    pub fn api_key(account_sid: &str, key_sid: &str, key_secret: &str) -> Self {
        Self {
            account_sid: account_sid.to_owned(),
            username: key_sid.to_owned(),
            secret: key_secret.to_owned(),
        }
    }

    pub fn auth_token(account_sid: &str, auth_token: &str) -> Self {
        Self {
            account_sid: account_sid.to_owned(),
            username: account_sid.to_owned(),
            secret: auth_token.to_owned(),
        }
    }

    /// The API key SID, or the account SID with an Auth Token.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The client. Built once; cheap to share.
#[derive(Clone, Debug)]
pub struct TwilioRestClient {
    http: reqwest::Client,
    base: String,
    credentials: ApiCredentials,
}

impl TwilioRestClient {
    /// `base`: Twilio's API root ([`DEFAULT_API_BASE`]), or a proxy or mock of it.
    pub fn new(base: &str, credentials: ApiCredentials) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!(
                "twilio-events-reconcile/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
        })
    }

    fn collection(&self, kind: ResourceKind) -> String {
        let name = match kind {
            ResourceKind::Message => "Messages",
            ResourceKind::Call => "Calls",
        };
        format!(
            "/2010-04-01/Accounts/{}/{name}",
            self.credentials.account_sid
        )
    }

    /// GETs `path`: the body of a 2xx, `None` for a 404, else the error.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Vec<u8>>, TwilioApiError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .basic_auth(&self.credentials.username, Some(&self.credentials.secret))
            .send()
            .await
            .map_err(|source| TwilioApiError::Unreachable { source })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .bytes()
            .await
            .map_err(|source| TwilioApiError::Unreachable { source })?;
        match status {
            200..=299 => Ok(Some(body.to_vec())),
            404 => Ok(None),
            429 => Err(TwilioApiError::Throttled { retry_after }),
            500..=599 => Err(TwilioApiError::Server { status }),
            401 | 403 => Err(TwilioApiError::Unauthorized {
                status,
                detail: error_detail(&body),
            }),
            _ => Err(TwilioApiError::Refused {
                path: path.to_owned(),
                status,
                detail: error_detail(&body),
            }),
        }
    }
}

/// `: message (error code)` from Twilio's JSON error body, when it has one. Twilio's messages
/// name the problem, never the credentials.
fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct TwilioError {
        message: Option<String>,
        code: Option<u64>,
    }
    match serde_json::from_slice::<TwilioError>(body) {
        Ok(TwilioError {
            message: Some(message),
            code,
        }) => match code {
            Some(code) => format!(": {message} (error {code})"),
            None => format!(": {message}"),
        },
        _ => String::new(),
    }
}

/// The path and query of `uri` (unchanged when it has no scheme and host).
fn relative(uri: &str) -> &str {
    match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => uri,
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<MessageResource>,
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct CallPage {
    #[serde(default)]
    calls: Vec<CallResource>,
    next_page_uri: Option<String>,
}

impl TwilioApi for TwilioRestClient {
    async fn fetch(&self, kind: ResourceKind, sid: &str) -> Result<Fetched, TwilioApiError> {
        let path = format!("{}/{sid}.json", self.collection(kind));
        let Some(body) = self.get(&path, &[]).await? else {
            return Ok(Fetched::NotFound);
        };
        let unreadable = |source| TwilioApiError::Unreadable {
            path: path.clone(),
            source,
        };
        Ok(Fetched::Found(Box::new(match kind {
            ResourceKind::Message => {
                Resource::Message(serde_json::from_slice(&body).map_err(unreadable)?)
            }
            ResourceKind::Call => {
                Resource::Call(serde_json::from_slice(&body).map_err(unreadable)?)
            }
        })))
    }

    async fn list(
        &self,
        kind: ResourceKind,
        window: &Window,
        page: Option<&str>,
    ) -> Result<ResourcePage, TwilioApiError> {
        // The next page's URI carries the filters and the page token already.
        let (path, query) = match page {
            // Twilio gives it relative to the API root; an absolute one is taken by its path,
            // so that a proxy or mock given as the base stays in the way.
            Some(next) => (relative(next).to_owned(), Vec::new()),
            None => {
                // `DateSent>` = on or after, `DateSent<` = on or before (Twilio's inequality
                // parameters); messages not sent yet have no DateSent and are not listed.
                let field = match kind {
                    ResourceKind::Message => "DateSent",
                    ResourceKind::Call => "StartTime",
                };
                let after = format!("{field}>");
                let before = format!("{field}<");
                (
                    format!("{}.json", self.collection(kind)),
                    vec![
                        (after, rfc3339(window.since)),
                        (before, rfc3339(window.until)),
                        ("PageSize".to_owned(), PAGE_SIZE.to_owned()),
                    ],
                )
            }
        };
        let query: Vec<(&str, String)> =
            query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let Some(body) = self.get(&path, &query).await? else {
            return Err(TwilioApiError::Refused {
                path,
                status: 404,
                detail: ": the account or the list does not exist".into(),
            });
        };
        let unreadable = |source| TwilioApiError::Unreadable {
            path: path.clone(),
            source,
        };
        Ok(match kind {
            ResourceKind::Message => {
                let page: MessagePage = serde_json::from_slice(&body).map_err(unreadable)?;
                ResourcePage {
                    resources: page.messages.into_iter().map(Resource::Message).collect(),
                    next_page: page.next_page_uri.filter(|u| !u.is_empty()),
                }
            }
            ResourceKind::Call => {
                let page: CallPage = serde_json::from_slice(&body).map_err(unreadable)?;
                ResourcePage {
                    resources: page.calls.into_iter().map(Resource::Call).collect(),
                    next_page: page.next_page_uri.filter(|u| !u.is_empty()),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let c = ApiCredentials::api_key("AC123", "SK456", "very-secret-value");
        let shown = format!("{:?}", TwilioRestClient::new(DEFAULT_API_BASE, c).unwrap());
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("SK456"));
    }

    #[test]
    fn a_next_page_is_followed_on_the_base_given() {
        let next = "/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1&PageToken=PA1";
        assert_eq!(relative(next), next);
        assert_eq!(relative(&format!("https://api.twilio.com{next}")), next);
    }

    #[test]
    fn twilio_error_bodies_give_their_message_and_code() {
        let body =
            br#"{"code": 20404, "message": "The requested resource was not found", "status": 404}"#;
        assert_eq!(
            error_detail(body),
            ": The requested resource was not found (error 20404)"
        );
        assert_eq!(error_detail(b"<html>"), "");
    }
}
