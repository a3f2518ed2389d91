//! CRM adapters behind one trait. An adapter makes one attempt; the processor retries
//! (with backoff honouring Retry-After, within the invocation's deadline).

pub mod dynamodb;
mod http_crm;
mod salesforce;
#[cfg(feature = "local")]
pub mod sqlite;

pub use http_crm::HttpCrm;
pub use salesforce::{SalesforceCrm, SalesforceSettings};

use crate::update::StatusUpdate;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// A credential: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why one attempt to write to the CRM failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CrmError {
    #[error("the CRM is throttling (HTTP 429); retried after {retry_after:?}")]
    Throttled { retry_after: Option<Duration> },
    #[error("the CRM failed with HTTP {status}; retried")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the CRM did not answer in time; retried")]
    Timeout,
    #[error("could not reach the CRM ({0}); check CRM_URL and the network; retried")]
    Connection(String),
    #[error("could not authenticate with the CRM ({0}); check its credentials; retried")]
    Auth(String),
    #[error(
        "the CRM refused the update for good (HTTP {status}{detail}); it goes to the quarantine"
    )]
    Rejected { status: u16, detail: String },
}

impl CrmError {
    /// Whether a later attempt may succeed. Only [`CrmError::Rejected`] is final.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// The low-cardinality class used as a metric dimension.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::Server { .. } => "server",
            Self::Timeout => "timeout",
            Self::Connection(_) => "connection",
            Self::Auth(_) => "auth",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// What the CRM asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } | Self::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies an HTTP answer that is not 2xx.
    pub fn from_status(status: u16, retry_after: Option<Duration>, detail: String) -> Self {
        match status {
            429 => Self::Throttled { retry_after },
            500..=599 => Self::Server {
                status,
                retry_after,
            },
            _ => Self::Rejected { status, detail },
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            // Without the URL: it may carry credentials.
            Self::Connection(e.without_url().to_string())
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = date - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()
        .and_then(parse_retry_after)
}

/// One CRM.
pub trait Crm: Send + Sync {
    /// One attempt to write `update`; the caller bounds it in time.
    fn push(&self, update: &StatusUpdate) -> impl Future<Output = Result<(), CrmError>> + Send;
}

impl<C: Crm> Crm for std::sync::Arc<C> {
    fn push(&self, update: &StatusUpdate) -> impl Future<Output = Result<(), CrmError>> + Send {
        (**self).push(update)
    }
}

/// The CRM chosen by configuration.
#[derive(Debug)]
pub enum AnyCrm {
    Http(HttpCrm),
    Salesforce(Box<SalesforceCrm>),
    #[cfg(feature = "local")]
    Jsonl(sqlite::JsonlCrm),
}

impl Crm for AnyCrm {
    async fn push(&self, update: &StatusUpdate) -> Result<(), CrmError> {
        match self {
            Self::Http(c) => c.push(update).await,
            Self::Salesforce(c) => c.push(update).await,
            #[cfg(feature = "local")]
            Self::Jsonl(c) => c.push(update).await,
        }
    }
}

/// The HTTP client every adapter uses: rustls, connection pool, bounded connect time.
pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!(
            "twilio-events-crm-sync/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_classified_as_the_contract_says() {
        assert!(CrmError::from_status(429, None, String::new()).is_retryable());
        assert!(CrmError::from_status(503, None, String::new()).is_retryable());
        assert!(CrmError::from_status(500, None, String::new()).is_retryable());
        for status in [400, 401, 403, 404, 409, 422] {
            let e = CrmError::from_status(status, None, String::new());
            assert!(!e.is_retryable(), "{status}");
            assert_eq!(e.class(), "rejected");
        }
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret(<redacted>)"
        );
    }
}
