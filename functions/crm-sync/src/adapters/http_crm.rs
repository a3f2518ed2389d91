//! The generic HTTP CRM (README.md, "HTTP contract").

use super::{CrmBuildError, Secret, http_client, retry_after_header, unanswered};
use crate::ports::{Crm, CrmError};
use crate::update::StatusUpdate;

/// Why a string cannot be the HTTP CRM's base URL. The URL itself is not repeated: it may
/// carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum BaseUrlError {
    #[error("is not a URL ({0}); expected https://host/path")]
    NotAUrl(#[source] url::ParseError),
    #[error("must start with https:// (or http:// for a local CRM)")]
    Scheme,
}

/// Whether `base_url` can be the HTTP CRM's base: an http(s) URL.
pub fn check_base_url(base_url: &str) -> Result<(), BaseUrlError> {
    let url = reqwest::Url::parse(base_url).map_err(BaseUrlError::NotAUrl)?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(BaseUrlError::Scheme)
    }
}

/// `PUT {base}/messages/{sid}` or `PUT {base}/calls/{sid}` with the update as JSON, the event id
/// as `Idempotency-Key` and an optional bearer token.
#[derive(Clone, Debug)]
pub struct HttpCrm {
    client: reqwest::Client,
    base: String,
    token: Option<Secret>,
}

impl HttpCrm {
    /// `base_url` must be an http(s) URL ([`check_base_url`]); a trailing slash is ignored.
    pub fn new(base_url: &str, token: Option<Secret>) -> Result<Self, CrmBuildError> {
        check_base_url(base_url)?;
        Ok(Self {
            client: http_client()?,
            base: base_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub fn url_for(&self, update: &StatusUpdate) -> String {
        format!("{}/{}/{}", self.base, update.kind.collection(), update.sid)
    }
}

impl Crm for HttpCrm {
    async fn push(&self, update: &StatusUpdate) -> Result<(), CrmError> {
        let mut request = self
            .client
            .put(self.url_for(update))
            .header("Idempotency-Key", &update.event_id)
            .json(update);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(unanswered)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = retry_after_header(response.headers());
        // The body is not kept: a CRM may echo the update, phone numbers included.
        let detail = status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        Err(CrmError::from_status(status.as_u16(), retry_after, detail))
    }
}
