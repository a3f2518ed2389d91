//! Status events as Twilio's Event Streams deliver them (docs/twilio.md §1, §4): the CloudEvent
//! of a message's or a call's status, built from the few values a test cares about (the SID, the
//! status, the event time, the account), as the JSON bytes a sink or a Kinesis record carries.
//!
//! ```
//! use twilio_events_testkit::events::{self, StatusEvent};
//! let sid = "SM0123456789abcdef0123456789abcdef";
//! let time = "2024-05-01T10:00:00.000Z";
//! let bytes = events::message_status_event(sid, "delivered", time, events::ACCOUNT_SID);
//! let same = StatusEvent::message(sid, "delivered").at(time).to_bytes();
//! assert_eq!(bytes, same);
//! ```

use serde_json::{Value, json};

/// The account of the events built here unless told otherwise.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// The sender and recipient of the events built here (fictional numbers).
pub const FROM: &str = "+15550001111";
pub const TO: &str = "+15550002222";
/// The event time unless told otherwise.
pub const TIME: &str = "2024-05-01T10:00:00.000Z";

/// The CloudEvent of a message status (`com.twilio.messaging.message.<status>`).
pub fn message_status_event(sid: &str, status: &str, time: &str, account: &str) -> Vec<u8> {
    StatusEvent::message(sid, status)
        .at(time)
        .account(account)
        .to_bytes()
}

/// The CloudEvent of a call status (`com.twilio.voice.status-callback.call.<event>`).
pub fn call_status_event(sid: &str, status: &str, time: &str, account: &str) -> Vec<u8> {
    StatusEvent::call(sid, status)
        .at(time)
        .account(account)
        .to_bytes()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    Message,
    Call,
}

/// One status event, to adjust before [`StatusEvent::to_bytes`].
///
/// Defaults: account [`ACCOUNT_SID`], time [`TIME`], from [`FROM`], to [`TO`], id
/// `EZ<sid><status>` (one id per resource and status, so a repeated status is a redelivery),
/// `data` as an object, and for messages an `errorCode` of 30003 when the status is `failed` or
/// `undelivered` (Twilio sets one on those), else `null`.
#[derive(Clone, Debug)]
pub struct StatusEvent {
    resource: Resource,
    sid: String,
    status: String,
    time: String,
    account: String,
    id: Option<String>,
    error_code: Option<Option<u32>>,
    data_as_string: bool,
}

impl StatusEvent {
    /// A message's status: `status` as the REST API spells it (`queued`, `sent`, `delivered`,
    /// `undelivered`, `failed`, `read`…); the event carries it UPPERCASE in `messageStatus`.
    pub fn message(sid: &str, status: &str) -> Self {
        Self::new(Resource::Message, sid, status)
    }

    /// A call's status: `status` is the `CallStatus` (`initiated`, `ringing`, `in-progress`,
    /// `completed`, `busy`, `no-answer`, `failed`, `canceled`); the type names the status
    /// callback event it comes with (`answered` for `in-progress`, `completed` for every
    /// terminal status).
    pub fn call(sid: &str, status: &str) -> Self {
        Self::new(Resource::Call, sid, status)
    }

    fn new(resource: Resource, sid: &str, status: &str) -> Self {
        Self {
            resource,
            sid: sid.to_owned(),
            status: status.to_ascii_lowercase(),
            time: TIME.to_owned(),
            account: ACCOUNT_SID.to_owned(),
            id: None,
            error_code: None,
            data_as_string: false,
        }
    }

    /// The event's `time` (RFC 3339).
    pub fn at(mut self, time: &str) -> Self {
        self.time = time.to_owned();
        self
    }

    pub fn account(mut self, account: &str) -> Self {
        self.account = account.to_owned();
        self
    }

    /// The CloudEvent `id` (the deduplication key).
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// A message's `errorCode` (`None`: `null`).
    pub fn error_code(mut self, code: Option<u32>) -> Self {
        self.error_code = Some(code);
        self
    }

    /// `data` as a JSON-encoded string, as Twilio's Kinesis sink delivers it (docs/twilio.md §1).
    pub fn data_as_string(mut self, as_string: bool) -> Self {
        self.data_as_string = as_string;
        self
    }

    /// The event as a JSON value.
    pub fn to_json(&self) -> Value {
        let (sid, status, account) = (&self.sid, &self.status, &self.account);
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| format!("EZ{sid}{status}"));
        let (kind, collection, schema, data) = match self.resource {
            Resource::Message => {
                let error_code = self.error_code.unwrap_or(
                    matches!(status.as_str(), "failed" | "undelivered").then_some(30003),
                );
                let data = json!({
                    "messageSid": sid, "messageStatus": status.to_ascii_uppercase(),
                    "accountSid": account, "from": FROM, "to": TO,
                    "errorCode": error_code, "timestamp": self.time,
                });
                (
                    format!("com.twilio.messaging.message.{status}"),
                    "Messages",
                    "Messaging.MessageStatus/5",
                    data,
                )
            }
            Resource::Call => {
                let event = match status.as_str() {
                    "queued" | "initiated" => "initiated",
                    "ringing" => "ringing",
                    "in-progress" | "answered" => "answered",
                    _ => "completed",
                };
                let call_status = if status == "answered" {
                    "in-progress"
                } else {
                    status.as_str()
                };
                let data = json!({
                    "request": {"method": "POST", "parameters": {
                        "CallSid": sid, "AccountSid": account, "CallStatus": call_status,
                        "Direction": "outbound-api", "From": FROM, "To": TO,
                        "ApiVersion": "2010-04-01",
                    }}
                });
                (
                    format!("com.twilio.voice.status-callback.call.{event}"),
                    "Calls",
                    "Voice.WebhookEvent/2",
                    data,
                )
            }
        };
        json!({
            "specversion": "1.0",
            "type": kind,
            "source": format!("/2010-04-01/Accounts/{account}/{collection}/{sid}.json"),
            "id": id,
            "dataschema": format!("https://events-schemas.twilio.com/{schema}"),
            "datacontenttype": "application/json",
            "time": self.time,
            "data": if self.data_as_string { Value::String(data.to_string()) } else { data },
        })
    }

    /// The event as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }
}

/// A Kinesis event as an event source mapping hands it to a consumer function: one record per
/// `(partition key, data, sequence number)`, from stream `stream`.
pub fn kinesis_event(stream: &str, records: &[(String, Vec<u8>, String)]) -> Value {
    use base64::Engine as _;
    let records: Vec<Value> = records
        .iter()
        .map(|(key, data, sequence)| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": sequence,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1_796_032_800.5
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/consumer",
                "awsRegion": "us-east-1",
                "eventSourceARN": format!("arn:aws:kinesis:us-east-1:123456789012:stream/{stream}")
            })
        })
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use twilio_events::CloudEvent;
    use twilio_events::event::Detail;

    #[test]
    fn a_message_status_event_reads_back_as_that_status() {
        let sid = "SM0123456789abcdef0123456789abcdef";
        let bytes = message_status_event(sid, "undelivered", "2024-05-01T10:00:02.000Z", "AC1");
        let text = String::from_utf8(bytes).unwrap();
        let event = CloudEvent::parse(&text).unwrap();
        assert_eq!(event.status(), Some("undelivered"));
        assert_eq!(event.time.as_deref(), Some("2024-05-01T10:00:02.000Z"));
        let Detail::Message(m) = &event.detail else {
            panic!("a message: {:?}", event.detail)
        };
        assert_eq!(m.message_sid, sid);
        assert_eq!(m.error_code, Some(30003));
        assert_eq!(m.account_sid.as_deref(), Some("AC1"));
    }

    #[test]
    fn a_call_status_event_reads_back_as_that_status_with_data_as_a_string() {
        let sid = "CA0123456789abcdef0123456789abcdef";
        for status in ["initiated", "ringing", "in-progress", "completed", "busy"] {
            let bytes = StatusEvent::call(sid, status)
                .data_as_string(true)
                .to_bytes();
            let text = String::from_utf8(bytes).unwrap();
            let event = CloudEvent::parse(&text).unwrap();
            assert_eq!(event.status(), Some(status), "{text}");
            let Detail::Call(c) = &event.detail else {
                panic!("a call: {:?}", event.detail)
            };
            assert_eq!(c.call_sid, sid);
        }
    }
}
