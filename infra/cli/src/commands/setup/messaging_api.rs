//! A small client for Twilio's Messaging API (`https://messaging.twilio.com/v1`), as Twilio's
//! published OpenAPI description (twilio/twilio-oai, `spec/json/twilio_messaging_v1.json`)
//! describes it, on the plumbing setup's Twilio clients share ([`super::twilio_http`]).
//!
//! Only what `twilio-events setup --status-callbacks` needs: read a Messaging Service and set
//! its status callback.

use super::twilio_http::{Api, ApiError, Credentials, TwilioHttp, segment};
use reqwest::{Method, Url};
use serde::Deserialize;

/// Twilio's production Messaging API.
pub const DEFAULT_BASE: &str = "https://messaging.twilio.com/v1";

/// `messaging.v1.service`: the fields setup reads.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct MessagingService {
    pub sid: String,
    pub friendly_name: Option<String>,
    /// Where Twilio posts the status of the messages sent through the service (nullable).
    pub status_callback: Option<String>,
}

impl MessagingService {
    /// The status callback, `None` when Twilio gives none or an empty one.
    pub fn status_callback(&self) -> Option<&str> {
        self.status_callback
            .as_deref()
            .filter(|url| !url.is_empty())
    }
}

/// A configured client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MessagingApi {
    http: TwilioHttp,
}

impl MessagingApi {
    /// `base` is the API root, `https://messaging.twilio.com/v1` in production.
    pub fn new(base: Url, credentials: Credentials) -> Result<Self, ApiError> {
        Ok(Self {
            http: TwilioHttp::new(Api::Messaging, base, credentials)?,
        })
    }

    pub fn base(&self) -> &Url {
        self.http.base()
    }

    /// `GET /Services/{Sid}`.
    pub async fn fetch_service(&self, sid: &str) -> Result<MessagingService, ApiError> {
        let path = format!("/Services/{}", segment(sid));
        let value = self.http.call(Method::GET, &path, &[], None).await?;
        self.http.parse(Method::GET, &path, value)
    }

    /// `POST /Services/{Sid}` with `StatusCallback` only (200): every other setting of the
    /// service stays as it is.
    pub async fn set_status_callback(
        &self,
        sid: &str,
        url: &str,
    ) -> Result<MessagingService, ApiError> {
        let path = format!("/Services/{}", segment(sid));
        let form = vec![("StatusCallback", url.to_owned())];
        let value = self.http.call(Method::POST, &path, &[], Some(form)).await?;
        self.http.parse(Method::POST, &path, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_read_from_twilios_example_with_or_without_a_status_callback() {
        // The fields of the description's `fetch` example that setup reads.
        let set: MessagingService = serde_json::from_value(serde_json::json!({
            "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "sid": "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "friendly_name": "My Service!",
            "status_callback": "https://www.example.com",
            "sticky_sender": true
        }))
        .unwrap();
        assert_eq!(set.status_callback(), Some("https://www.example.com"));
        let unset: MessagingService = serde_json::from_value(serde_json::json!({
            "sid": "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "friendly_name": null,
            "status_callback": null
        }))
        .unwrap();
        assert_eq!(unset.status_callback(), None);
        let empty = MessagingService {
            status_callback: Some(String::new()),
            ..unset
        };
        assert_eq!(empty.status_callback(), None);
    }
}
