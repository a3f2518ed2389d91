//! Salesforce: upsert by external id through the REST API, with an OAuth 2.0 client-credentials
//! token fetched once, cached, and refreshed when Salesforce answers 401 (README.md).

use super::{CrmBuildError, Secret, http_client, retry_after_header, unanswered};
use crate::ports::{Crm, CrmError};
use crate::update::{ResourceKind, StatusUpdate};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

/// Where and what to write. Object and field names are the API names (`Twilio_Message__c`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalesforceSettings {
    /// `https://<MyDomain>.my.salesforce.com`: where the token comes from.
    pub login_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// `v60.0`.
    pub api_version: String,
    pub message_object: String,
    pub message_id_field: String,
    pub call_object: String,
    pub call_id_field: String,
    pub status_field: String,
    /// Optional fields: left out of the upsert when `None`.
    pub rank_field: Option<String>,
    pub error_code_field: Option<String>,
    pub event_time_field: Option<String>,
    pub event_id_field: Option<String>,
}

impl SalesforceSettings {
    /// The defaults documented in README.md, for a given org and connected app.
    pub fn with_defaults(login_url: &str, client_id: &str, client_secret: Secret) -> Self {
        Self {
            login_url: login_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            api_version: "v60.0".into(),
            message_object: "Twilio_Message__c".into(),
            message_id_field: "Message_Sid__c".into(),
            call_object: "Twilio_Call__c".into(),
            call_id_field: "Call_Sid__c".into(),
            status_field: "Status__c".into(),
            rank_field: Some("Status_Rank__c".into()),
            error_code_field: Some("Error_Code__c".into()),
            event_time_field: Some("Status_Time__c".into()),
            event_id_field: Some("Last_Event_Id__c".into()),
        }
    }
}

#[derive(Clone, Deserialize)]
struct Token {
    access_token: String,
    instance_url: String,
}

/// The Salesforce adapter.
pub struct SalesforceCrm {
    client: reqwest::Client,
    settings: SalesforceSettings,
    token: RwLock<Option<(u64, Token)>>,
}

impl std::fmt::Debug for SalesforceCrm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceCrm")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SalesforceCrm {
    pub fn new(settings: SalesforceSettings) -> Result<Self, CrmBuildError> {
        Ok(Self {
            client: http_client()?,
            settings,
            token: RwLock::new(None),
        })
    }

    /// The cached token (with its generation), or a new one.
    async fn token(&self) -> Result<(u64, Token), CrmError> {
        if let Some(cached) = self.token.read().await.clone() {
            return Ok(cached);
        }
        self.refresh(None).await
    }

    /// Fetches a token unless another task already replaced generation `stale`.
    async fn refresh(&self, stale: Option<u64>) -> Result<(u64, Token), CrmError> {
        let mut slot = self.token.write().await;
        if let Some((generation, token)) = slot.as_ref() {
            if Some(*generation) != stale {
                return Ok((*generation, token.clone()));
            }
        }
        let s = &self.settings;
        let response = self
            .client
            .post(format!("{}/services/oauth2/token", s.login_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", s.client_id.as_str()),
                ("client_secret", s.client_secret.expose()),
            ])
            .send()
            .await
            .map_err(unanswered)?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(CrmError::from_status(
                status.as_u16(),
                retry_after_header(response.headers()),
                String::new(),
            ));
        }
        if !status.is_success() {
            // A wrong secret or app: every record would fail alike, so this is retried, not
            // quarantined; the error metric and the logs say what to fix.
            return Err(CrmError::Auth(format!(
                "the token endpoint answered HTTP {}: check SALESFORCE_CLIENT_ID, the secret and the connected app's client-credentials flow",
                status.as_u16()
            )));
        }
        let token: Token = response
            .json()
            .await
            .map_err(|e| CrmError::Auth(format!("unreadable token answer: {}", e.without_url())))?;
        let generation = slot.as_ref().map_or(1, |(g, _)| g + 1);
        *slot = Some((generation, token.clone()));
        Ok((generation, token))
    }

    fn body(&self, update: &StatusUpdate) -> Value {
        let s = &self.settings;
        let mut fields = Map::new();
        fields.insert(s.status_field.clone(), update.status.clone().into());
        if let Some(f) = &s.rank_field {
            fields.insert(f.clone(), update.rank.into());
        }
        if let Some(f) = &s.error_code_field {
            fields.insert(
                f.clone(),
                update.error_code.map_or(Value::Null, Value::from),
            );
        }
        if let Some(f) = &s.event_time_field {
            fields.insert(
                f.clone(),
                update.event_time.clone().map_or(Value::Null, Value::from),
            );
        }
        if let Some(f) = &s.event_id_field {
            fields.insert(f.clone(), update.event_id.clone().into());
        }
        Value::Object(fields)
    }

    pub fn path_for(&self, update: &StatusUpdate) -> String {
        let s = &self.settings;
        let (object, field) = match update.kind {
            ResourceKind::Message => (&s.message_object, &s.message_id_field),
            ResourceKind::Call => (&s.call_object, &s.call_id_field),
        };
        format!(
            "/services/data/{}/sobjects/{object}/{field}/{}",
            s.api_version, update.sid
        )
    }

    async fn upsert(
        &self,
        token: &Token,
        update: &StatusUpdate,
    ) -> Result<reqwest::Response, CrmError> {
        self.client
            .patch(format!(
                "{}{}",
                token.instance_url.trim_end_matches('/'),
                self.path_for(update)
            ))
            .bearer_auth(&token.access_token)
            .json(&self.body(update))
            .send()
            .await
            .map_err(unanswered)
    }
}

impl Crm for SalesforceCrm {
    async fn push(&self, update: &StatusUpdate) -> Result<(), CrmError> {
        let (generation, token) = self.token().await?;
        let mut response = self.upsert(&token, update).await?;
        if response.status().as_u16() == 401 {
            // The session expired or was revoked: one new token, one more try.
            let (_, token) = self.refresh(Some(generation)).await?;
            response = self.upsert(&token, update).await?;
        }
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = retry_after_header(response.headers());
        let code = status.as_u16();
        // Salesforce's error bodies are `[{"errorCode": "...", "message": "..."}]`.
        let text = response.text().await.unwrap_or_default();
        let error_code = serde_json::from_str::<Vec<SalesforceError>>(&text)
            .ok()
            .and_then(|e| e.into_iter().next())
            .map(|e| e.error_code)
            .unwrap_or_default();
        match (code, error_code.as_str()) {
            // API request limits answer 403 REQUEST_LIMIT_EXCEEDED: wait, do not quarantine.
            (403, "REQUEST_LIMIT_EXCEEDED") => Err(CrmError::Throttled { retry_after }),
            (401, _) => Err(CrmError::Auth("HTTP 401 with a fresh token".into())),
            _ => Err(CrmError::from_status(
                code,
                retry_after,
                if error_code.is_empty() {
                    String::new()
                } else {
                    format!(" {error_code}")
                },
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SalesforceError {
    #[serde(default)]
    error_code: String,
}
