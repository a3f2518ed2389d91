//! A small client for Twilio's Events API (`https://events.twilio.com/v1`), as Twilio's
//! published OpenAPI description (twilio/twilio-oai, `spec/json/twilio_events_v1.json`)
//! describes it, on the plumbing setup's Twilio clients share ([`super::twilio_http`]).
//!
//! Only what `twilio-events setup` needs: event types and schemas, webhook sinks (create, test,
//! validate), subscriptions and their subscribed events.

use super::twilio_http::{Api, ApiError, Credentials, TwilioHttp, segment};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::Value;

/// Twilio's production Events API.
pub const DEFAULT_BASE: &str = "https://events.twilio.com/v1";

/// The most items one list page may hold (the spec's `PageSize` maximum is 1000).
const PAGE_SIZE: &str = "1000";

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
    http: TwilioHttp,
}

impl EventsApi {
    /// `base` is the API root, `https://events.twilio.com/v1` in production.
    pub fn new(base: Url, credentials: Credentials) -> Result<Self, ApiError> {
        Ok(Self {
            http: TwilioHttp::new(Api::Events, base, credentials)?,
        })
    }

    pub fn base(&self) -> &Url {
        self.http.base()
    }

    /// `GET /Types`, every page.
    pub async fn list_types(&self) -> Result<Vec<EventType>, ApiError> {
        self.http
            .list("/Types", &[("PageSize", PAGE_SIZE)], "types")
            .await
    }

    /// `GET /Schemas/{Id}`.
    pub async fn fetch_schema(&self, id: &str) -> Result<Schema, ApiError> {
        let path = format!("/Schemas/{}", segment(id));
        let value = self.http.call(Method::GET, &path, &[], None).await?;
        self.http.parse(Method::GET, &path, value)
    }

    /// `GET /Sinks`, every page.
    pub async fn list_sinks(&self) -> Result<Vec<Sink>, ApiError> {
        self.http
            .list("/Sinks", &[("PageSize", PAGE_SIZE)], "sinks")
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
        let value = self.http.call(Method::POST, path, &[], Some(form)).await?;
        self.http.parse(Method::POST, path, value)
    }

    /// `POST /Sinks/{Sid}/Test` (201): Twilio sends the test event to the sink. The `result`.
    pub async fn test_sink(&self, sink_sid: &str) -> Result<String, ApiError> {
        let path = format!("/Sinks/{}/Test", segment(sink_sid));
        let value = self
            .http
            .call(Method::POST, &path, &[], Some(vec![]))
            .await?;
        let result: SinkResult = self.http.parse(Method::POST, &path, value)?;
        Ok(result.result.unwrap_or_default())
    }

    /// `POST /Sinks/{Sid}/Validate` with `TestId` (201). The `result` (`valid` when it worked).
    pub async fn validate_sink(&self, sink_sid: &str, test_id: &str) -> Result<String, ApiError> {
        let path = format!("/Sinks/{}/Validate", segment(sink_sid));
        let form = vec![("TestId", test_id.to_owned())];
        let value = self.http.call(Method::POST, &path, &[], Some(form)).await?;
        let result: SinkResult = self.http.parse(Method::POST, &path, value)?;
        Ok(result.result.unwrap_or_default())
    }

    /// `GET /Subscriptions?SinkSid=…`, every page.
    pub async fn list_subscriptions(&self, sink_sid: &str) -> Result<Vec<Subscription>, ApiError> {
        self.http
            .list(
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
        let value = self.http.call(Method::POST, path, &[], Some(form)).await?;
        self.http.parse(Method::POST, path, value)
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
        self.http
            .list(&path, &[("PageSize", PAGE_SIZE)], "types")
            .await
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
        self.http.call(Method::POST, &path, &[], Some(form)).await?;
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
        self.http.call(Method::POST, &path, &[], Some(form)).await?;
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
        self.http.call(Method::DELETE, &path, &[], None).await?;
        Ok(())
    }
}

/// The `SinkConfiguration` of a webhook sink (a JSON string in the form).
pub fn webhook_sink_configuration(destination: &str) -> Value {
    serde_json::json!({"destination": destination, "method": "POST", "batch_events": true})
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
