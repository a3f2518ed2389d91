//! A message or call as Twilio's REST API shows it (`GET /2010-04-01/Accounts/{AccountSid}/
//! Messages/{Sid}.json`, `.../Calls/{Sid}.json`, and the list pages of both), turned into the
//! event Event Streams sends when the resource reaches that status, so that a status Twilio's
//! sink dropped can be put back into the stream with the meaning every consumer already knows.
//!
//! The event is shaped like the classic callback's for the same fact ([`crate::classic`]):
//! - `type` `com.twilio.messaging.message.<status>` or
//!   `com.twilio.voice.status-callback.call.<initiated|ringing|answered|completed>`;
//! - `data` in the Event Streams schema's field names (Messaging.MessageStatus; for calls
//!   Voice.WebhookEvent, whose `request.parameters` carry `CallStatus`);
//! - `twilioreconciled` (a CloudEvents extension attribute): `rest-api`, marking that the event
//!   was read back from Twilio's REST API rather than delivered by Twilio;
//! - `id` `reconciled-` and a hash of the account, SID and status, so every run that reads the
//!   same status builds the same event; and, like every message or call event, its dedup identity
//!   is the fact (`message:SID:status`), so the same status from the sink, a callback or a
//!   reconciliation is stored once;
//! - `time` the resource's `date_updated` (when Twilio last changed it), else `date_sent` /
//!   `end_time` / `start_time`, else when it was read.
//!
//! `Debug` never shows the phone numbers.

use crate::classic::{fact_event_id, insert_some, rfc3339};
use crate::event::{CloudEvent, ParseError, Redacted};
use crate::status::{CallStatus, MessageStatus};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// The CloudEvents extension attribute marking an event read back from Twilio's REST API.
pub const RECONCILED_ATTRIBUTE: &str = "twilioreconciled";
/// Its value.
pub const RECONCILED_VALUE: &str = "rest-api";

/// A Message resource: the fields reconciliation uses.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct MessageResource {
    pub sid: String,
    pub account_sid: String,
    pub status: String,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default)]
    pub date_sent: Option<String>,
    #[serde(default)]
    pub from: Option<Redacted<String>>,
    #[serde(default)]
    pub to: Option<Redacted<String>>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub num_segments: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
}

/// A Call resource: the fields reconciliation uses.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CallResource {
    pub sid: String,
    pub account_sid: String,
    pub status: String,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub from: Option<Redacted<String>>,
    #[serde(default)]
    pub to: Option<Redacted<String>>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
}

/// A message or a call read from the REST API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    Message(MessageResource),
    Call(CallResource),
}

impl Resource {
    pub fn sid(&self) -> &str {
        match self {
            Self::Message(m) => &m.sid,
            Self::Call(c) => &c.sid,
        }
    }

    pub fn account_sid(&self) -> &str {
        match self {
            Self::Message(m) => &m.account_sid,
            Self::Call(c) => &c.account_sid,
        }
    }

    /// Lowercase, as the REST API spells it.
    pub fn status(&self) -> &str {
        match self {
            Self::Message(m) => &m.status,
            Self::Call(c) => &c.status,
        }
    }

    /// The status's precedence (docs/twilio.md §5); `None` for a status outside an outbound
    /// lifecycle (an inbound message's `received`, a status this version does not know).
    pub fn rank(&self) -> Option<u8> {
        match self {
            Self::Message(m) => MessageStatus::parse(&m.status).rank(),
            Self::Call(c) => CallStatus::parse(&c.status).rank(),
        }
    }

    /// Whether no later status is expected.
    pub fn is_final(&self) -> bool {
        match self {
            Self::Message(m) => MessageStatus::parse(&m.status).is_final(),
            Self::Call(c) => CallStatus::parse(&c.status).is_final(),
        }
    }

    /// When Twilio last changed the resource, as the REST API says it (RFC 2822).
    fn changed_at(&self) -> Option<OffsetDateTime> {
        let candidates: [Option<&String>; 3] = match self {
            Self::Message(m) => [m.date_updated.as_ref(), m.date_sent.as_ref(), None],
            Self::Call(c) => [
                c.date_updated.as_ref(),
                c.end_time.as_ref(),
                c.start_time.as_ref(),
            ],
        };
        candidates
            .into_iter()
            .flatten()
            .find_map(|t| OffsetDateTime::parse(t, &Rfc2822).ok())
    }

    /// The event Event Streams sends for this resource at this status (see the module
    /// documentation); `read_at` stands for its time when the resource carries none.
    pub fn event(&self, read_at: OffsetDateTime) -> Result<CloudEvent<'static>, ParseError> {
        let time = self.changed_at().unwrap_or(read_at);
        let account = self.account_sid();
        let sid = self.sid();
        let status = self.status().to_ascii_lowercase();
        let (event_type, source, data) = match self {
            Self::Message(m) => {
                let event_type = format!("com.twilio.messaging.message.{status}");
                let mut data = Map::new();
                data.insert("messageSid".into(), json!(sid));
                data.insert("accountSid".into(), json!(account));
                data.insert("eventName".into(), json!(event_type));
                data.insert("apiVersion".into(), json!("2010-04-01"));
                data.insert("messageStatus".into(), json!(status.to_ascii_uppercase()));
                data.insert("timestamp".into(), json!(rfc3339(time)));
                insert_some(&mut data, "from", m.from.as_ref().map(|v| json!(v.0)));
                insert_some(&mut data, "to", m.to.as_ref().map(|v| json!(v.0)));
                insert_some(
                    &mut data,
                    "messagingServiceSid",
                    m.messaging_service_sid.as_ref().map(|v| json!(v)),
                );
                // The REST API says 0-or-null for "no error"; Event Streams leaves it out.
                insert_some(
                    &mut data,
                    "errorCode",
                    m.error_code.filter(|c| *c > 0).map(|v| json!(v)),
                );
                insert_some(
                    &mut data,
                    "numberOfSegments",
                    m.num_segments
                        .as_deref()
                        .and_then(|n| n.parse::<u64>().ok())
                        .map(|v| json!(v)),
                );
                (
                    event_type,
                    format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
                    Value::Object(data),
                )
            }
            Self::Call(c) => {
                let mut parameters = Map::new();
                parameters.insert("CallSid".into(), json!(sid));
                parameters.insert("AccountSid".into(), json!(account));
                parameters.insert("CallStatus".into(), json!(status));
                parameters.insert("ApiVersion".into(), json!("2010-04-01"));
                insert_some(&mut parameters, "From", c.from.as_ref().map(|v| json!(v.0)));
                insert_some(&mut parameters, "To", c.to.as_ref().map(|v| json!(v.0)));
                insert_some(
                    &mut parameters,
                    "Direction",
                    c.direction.as_ref().map(|v| json!(v)),
                );
                insert_some(
                    &mut parameters,
                    "CallDuration",
                    c.duration
                        .as_deref()
                        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()) && !d.is_empty())
                        .map(|v| json!(v)),
                );
                let source = format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json");
                let data = json!({
                    "sid": sid,
                    "timestamp": rfc3339(time),
                    // Voice.WebhookEvent describes the request that carried the status; here
                    // it is the REST API read that found it.
                    "request": {"method": "GET", "url": source, "parameters": parameters},
                });
                (
                    format!(
                        "com.twilio.voice.status-callback.call.{}",
                        crate::classic::call_type_status(&status)
                    ),
                    source,
                    data,
                )
            }
        };
        let event = json!({
            "specversion": "1.0",
            "type": event_type,
            "source": source,
            "id": reconciled_event_id(account, sid, &status),
            "time": rfc3339(time),
            "datacontenttype": "application/json",
            RECONCILED_ATTRIBUTE: RECONCILED_VALUE,
            "data": data,
        });
        CloudEvent::parse_owned(event.to_string())
    }
}

/// `reconciled-` plus a hash of the account, the SID and the status. Stored: never change it.
fn reconciled_event_id(account: &str, sid: &str, status: &str) -> String {
    fact_event_id("reconciled", [account, sid, status])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classic::{ClassicRequest, ClassicWebhook, classic_event};
    use crate::event::{Detail, Kind};

    const ACCOUNT: &str = "AC6efc9b5850127eaea3c1e8dea35cdf4a";
    const SM: &str = "SM1a4d7f0c3e6b9d2f5a8c1e4b7d0f3a6c";
    const CA: &str = "CA0d3a6c9f2b5e8d1a4c7f0b3e6a9d2c5f";

    fn read_at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap()
    }

    fn message(status: &str) -> Resource {
        Resource::Message(
            serde_json::from_value(json!({
                "sid": SM, "account_sid": ACCOUNT, "status": status, "error_code": null,
                "date_updated": "Fri, 27 Nov 2026 09:12:44 +0000", "from": "+12065550123",
                "to": "+14155550987", "num_segments": "1", "body": "not read",
            }))
            .unwrap(),
        )
    }

    #[test]
    fn a_message_read_back_is_the_event_streams_event_for_its_status() {
        let e = message("delivered").event(read_at()).unwrap();
        assert_eq!(e.event_type, "com.twilio.messaging.message.delivered");
        assert_eq!(e.kind(), Kind::Message);
        assert_eq!(e.resource_key(), SM);
        assert_eq!(e.account(), Some(ACCOUNT));
        assert_eq!(e.status(), Some("delivered"));
        assert_eq!(e.time.as_deref(), Some("2026-11-27T09:12:44Z"));
        let json: Value = serde_json::from_str(e.raw_json()).unwrap();
        assert_eq!(json[RECONCILED_ATTRIBUTE], RECONCILED_VALUE);
        assert_eq!(json["data"]["messageStatus"], "DELIVERED");
        assert!(json["data"].get("errorCode").is_none());
        assert!(!e.raw_json().contains("not read"), "the body stays out");
        // The same run or the next builds the same event.
        assert_eq!(e.id, message("delivered").event(read_at()).unwrap().id);
        assert_ne!(e.id, message("sent").event(read_at()).unwrap().id);
    }

    #[test]
    fn a_reconciled_status_and_the_callback_of_the_same_fact_are_one_for_dedup() {
        let reconciled = message("delivered").event(read_at()).unwrap();
        let form = format!(
            "AccountSid={ACCOUNT}&MessageSid={SM}&SmsSid={SM}&MessageStatus=delivered&SmsStatus=delivered&ApiVersion=2010-04-01"
        );
        let callback = classic_event(&ClassicRequest {
            webhook: ClassicWebhook::MessageStatus,
            url: "https://x.example.com/twilio/message-status",
            form_body: form.as_bytes(),
            idempotency_token: None,
            received_at: read_at(),
        })
        .unwrap();
        assert_eq!(reconciled.dedup_key(), callback.dedup_key());
    }

    #[test]
    fn a_call_read_back_carries_its_precise_status_in_the_parameters() {
        let call = Resource::Call(
            serde_json::from_value(json!({
                "sid": CA, "account_sid": ACCOUNT, "status": "no-answer",
                "start_time": "Fri, 27 Nov 2026 09:12:44 +0000", "end_time": null,
                "date_updated": null, "duration": "0", "direction": "outbound-api",
            }))
            .unwrap(),
        );
        assert!(call.is_final());
        let e = call.event(read_at()).unwrap();
        assert_eq!(
            e.event_type,
            "com.twilio.voice.status-callback.call.completed"
        );
        match &e.detail {
            Detail::Call(c) => {
                assert_eq!(c.call_sid, CA);
                assert_eq!(c.status, CallStatus::NoAnswer);
            }
            other => panic!("not a call: {other:?}"),
        }
        assert_eq!(e.dedup_identity(), format!("call:{CA}:completed"));
        assert_eq!(e.time.as_deref(), Some("2026-11-27T09:12:44Z"));
    }

    #[test]
    fn without_any_date_the_time_is_when_it_was_read() {
        let mut m = message("sent");
        if let Resource::Message(m) = &mut m {
            m.date_updated = None;
        }
        let e = m.event(read_at()).unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-30T00:53:20Z"));
        assert!(!m.is_final());
        assert_eq!(m.rank(), MessageStatus::Sent.rank());
    }

    #[test]
    fn debug_never_shows_the_phone_numbers() {
        let shown = format!("{:?}", message("sent"));
        assert!(!shown.contains("2065550123"), "{shown}");
        assert!(shown.contains(SM));
    }
}
