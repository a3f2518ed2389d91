//! The adapters: one file per backend behind the ports of [`crate::ports`].
//!
//! - Status ledgers: [`dynamodb`] (AWS), `sqlite` (`twilio-events serve`, feature `local`),
//!   `memory` (tests and benchmarks, feature `testing`).
//! - CRMs: [`http_crm`] (the generic HTTP contract), [`salesforce`], `jsonl_crm` (a file, for
//!   `twilio-events serve`, feature `local`), and [`AnyCrm`], the one configuration chooses.
//!
//! A CRM adapter makes one attempt; the processor retries (with backoff honouring Retry-After,
//! within the invocation's deadline).

pub mod dynamodb;
pub mod http_crm;
#[cfg(feature = "local")]
pub mod jsonl_crm;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod salesforce;
#[cfg(feature = "local")]
pub mod sqlite;

use crate::ports::{Crm, CrmError};
use crate::update::StatusUpdate;
use http_crm::{BaseUrlError, HttpCrm};
use salesforce::SalesforceCrm;
use std::fmt;
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

/// Why a CRM adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CrmBuildError {
    #[error("the CRM's base URL {0}")]
    BaseUrl(#[from] BaseUrlError),
    #[error("cannot build the HTTP client ({0}); check the TLS setup of this host")]
    HttpClient(#[source] reqwest::Error),
}

/// The CRM chosen by configuration.
#[derive(Debug)]
pub enum AnyCrm {
    Http(HttpCrm),
    Salesforce(Box<SalesforceCrm>),
    #[cfg(feature = "local")]
    Jsonl(jsonl_crm::JsonlCrm),
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
fn http_client() -> Result<reqwest::Client, CrmBuildError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!(
            "twilio-events-crm-sync/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(CrmBuildError::HttpClient)
}

/// A request that got no HTTP answer.
fn unanswered(e: reqwest::Error) -> CrmError {
    if e.is_timeout() {
        CrmError::Timeout
    } else {
        // Without the URL: it may carry credentials.
        CrmError::Connection(e.without_url().to_string())
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

fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()
        .and_then(parse_retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

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
