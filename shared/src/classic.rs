//! Classic webhooks (message status callbacks, call status callbacks, inbound messages) turned
//! into the CloudEvents Event Streams sends for the same facts, so that a team migrating from
//! statusCallback URLs to Event Streams has one stream with one meaning during and after the
//! move.
//!
//! Each webhook is a form-encoded POST signed over URL + sorted parameters. Its parameters are
//! checked by the rules of [`crate::event::form`] (identifying fields present once, in Twilio's
//! formats), because the form signature does not fix parameter boundaries: a re-split of a
//! captured callback breaks one of them and is refused.
//!
//! The event:
//! - `type`: the Event Streams type of the same fact: `com.twilio.messaging.message.<status>`,
//!   `com.twilio.voice.status-callback.call.<initiated|ringing|answered|completed>`,
//!   `com.twilio.messaging.inbound-message.received`;
//! - `data`: in the field names of Twilio's Event Streams schema for that type
//!   (Messaging.MessageStatus, Voice.WebhookEvent, Messaging.InboundMessageV1);
//! - `twiliowebhook` (a CloudEvents extension attribute): which webhook it came from, and
//!   `twiliowebhookform`: the signed form body as received, every original parameter kept;
//! - `id`: `classic-` and a hash of the fact (account, resource SID, status), so Twilio's retries
//!   of one callback get one id. The `I-Twilio-Idempotency-Token` header is recorded
//!   (`twilioidempotencytoken`) but left out of the id: it is not covered by the signature, so
//!   whoever replays a captured callback could mint fresh ids with it;
//! - `time`: the callback's `Timestamp` when it has one (call status callbacks), else when it
//!   was received (message status callbacks carry no time of their own).
//!
//! The same fact arriving from both sources (a `delivered` Event Streams event and a `delivered`
//! status callback) is one fact: [`CloudEvent::fact_key`] names it the same way for both, and
//! ingest deduplicates on it.

use crate::event::form::{CallbackForm, is_sid};
use crate::event::{CloudEvent, ParseError, ParseErrorKind};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

/// The CloudEvents extension attribute naming the webhook an event came from.
pub const WEBHOOK_ATTRIBUTE: &str = "twiliowebhook";
/// The extension attribute holding the webhook's form body exactly as signed.
pub const FORM_ATTRIBUTE: &str = "twiliowebhookform";
/// The extension attribute holding the `I-Twilio-Idempotency-Token` header, when sent.
pub const IDEMPOTENCY_ATTRIBUTE: &str = "twilioidempotencytoken";

/// The Event Streams type of an inbound message.
pub const INBOUND_MESSAGE_TYPE: &str = "com.twilio.messaging.inbound-message.received";

/// The classic webhooks ingest takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClassicWebhook {
    /// A message's `StatusCallback`.
    MessageStatus,
    /// A call's `statusCallback` (call progress events).
    CallStatus,
    /// A number's or Messaging Service's incoming-message webhook.
    InboundMessage,
}

impl ClassicWebhook {
    /// The value of the `twiliowebhook` attribute.
    pub fn name(self) -> &'static str {
        match self {
            Self::MessageStatus => "message-status-callback",
            Self::CallStatus => "call-status-callback",
            Self::InboundMessage => "inbound-message-webhook",
        }
    }

    /// Every parameter of this webhook that is read, each allowed once.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::MessageStatus => &MESSAGE_STATUS_PARAMETERS,
            Self::CallStatus => &CALL_STATUS_PARAMETERS,
            Self::InboundMessage => &INBOUND_PARAMETERS,
        }
    }
}

/// What one webhook request is, besides its body.
#[derive(Clone, Copy, Debug)]
pub struct ClassicRequest<'a> {
    pub webhook: ClassicWebhook,
    /// The URL Twilio posted to (the one the signature covers).
    pub url: &'a str,
    pub form_body: &'a [u8],
    /// The `I-Twilio-Idempotency-Token` header, when sent.
    pub idempotency_token: Option<&'a str>,
    /// When ingest received it: the event's time when the callback has none.
    pub received_at: OffsetDateTime,
}

const MESSAGE_STATUS_PARAMETERS: [&str; 12] = [
    "AccountSid",
    "MessageSid",
    "SmsSid",
    "MessageStatus",
    "SmsStatus",
    "MessagingServiceSid",
    "ErrorCode",
    "From",
    "To",
    "ApiVersion",
    "NumSegments",
    "RawDlrDoneDate",
];

const CALL_STATUS_PARAMETERS: [&str; 12] = [
    "AccountSid",
    "CallSid",
    "CallStatus",
    "ParentCallSid",
    "SequenceNumber",
    "Timestamp",
    "CallDuration",
    "Duration",
    "From",
    "To",
    "Direction",
    "ApiVersion",
];

const INBOUND_PARAMETERS: [&str; 11] = [
    "AccountSid",
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "MessagingServiceSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "NumSegments",
    "ApiVersion",
];

/// The location parameters of an inbound message and their Messaging.InboundMessageV1 names.
const LOCATION_FIELDS: [(&str, &str); 8] = [
    ("FromCity", "fromCity"),
    ("FromState", "fromState"),
    ("FromZip", "fromZip"),
    ("FromCountry", "fromCountry"),
    ("ToCity", "toCity"),
    ("ToState", "toState"),
    ("ToZip", "toZip"),
    ("ToCountry", "toCountry"),
];

/// Message statuses a status callback may carry (Twilio's Message resource).
const MESSAGE_STATUSES: [&str; 13] = [
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "canceled",
    "read",
    "partially_delivered",
    "receiving",
    "received",
];

/// Call statuses a status callback may carry (Twilio's Call resource).
const CALL_STATUSES: [&str; 9] = [
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
];

/// The CloudEvent for one classic webhook request, or why it is refused (the error names the
/// parameter).
pub fn classic_event(request: &ClassicRequest<'_>) -> Result<CloudEvent<'static>, ParseError> {
    let form = CallbackForm::parse(request.form_body, request.webhook.parameters())?;
    let account = form.sid("AccountSid", "AC", "an account SID (AC + 32 hex digits)")?;
    form.optional_matching(
        "ApiVersion",
        |v| v == "2010-04-01",
        "2010-04-01, the API version of classic webhooks",
    )?;
    let built = match request.webhook {
        ClassicWebhook::MessageStatus => message_status(&form, account, request)?,
        ClassicWebhook::CallStatus => call_status(&form, account, request)?,
        ClassicWebhook::InboundMessage => inbound_message(&form, account, request)?,
    };
    let mut event = json!({
        "specversion": "1.0",
        "type": built.event_type,
        "source": built.source,
        "id": classic_event_id(request.webhook, account, &built.fact),
        "time": rfc3339(built.time),
        "datacontenttype": "application/json",
        WEBHOOK_ATTRIBUTE: request.webhook.name(),
        FORM_ATTRIBUTE: String::from_utf8_lossy(request.form_body),
        "data": built.data,
    });
    if let Some(token) = request.idempotency_token.filter(|t| !t.is_empty()) {
        event[IDEMPOTENCY_ATTRIBUTE] = Value::String(token.to_owned());
    }
    CloudEvent::parse_owned(event.to_string())
}

/// What each webhook contributes to its event.
struct Built {
    event_type: String,
    source: String,
    /// What identifies the fact within the account (SID and status).
    fact: Vec<String>,
    time: OffsetDateTime,
    data: Value,
}

fn message_sid(form: &CallbackForm) -> Result<&str, ParseError> {
    form.required_matching(
        "MessageSid",
        |v| is_sid(v, "SM") || is_sid(v, "MM"),
        "a message SID (SM or MM + 32 hex digits)",
    )
}

/// The legacy aliases of `MessageSid` (`SmsSid`, and `SmsMessageSid` on inbound messages),
/// which Twilio always sends beside it: there, and the same SID. Required, so that a re-split
/// moving an alias's boundary (`SmsSidSM=…`) breaks the callback instead of dropping the alias.
fn check_same_message(
    form: &CallbackForm,
    sid: &str,
    name: &'static str,
) -> Result<(), ParseError> {
    form.required_matching(name, |v| v == sid, "the same SID as MessageSid")
        .map(|_| ())
}

fn messaging_service(form: &CallbackForm) -> Result<Option<&str>, ParseError> {
    form.optional_matching(
        "MessagingServiceSid",
        |v| is_sid(v, "MG"),
        "a Messaging Service SID (MG + 32 hex digits)",
    )
}

fn digits(form: &CallbackForm, name: &'static str) -> Result<Option<u64>, ParseError> {
    let value = form.optional_matching(
        name,
        |v| v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()),
        "a whole number",
    )?;
    Ok(value.and_then(|v| v.parse().ok()))
}

/// An address as Twilio writes one: `+E.164`, a channel address (`whatsapp:+…`), a short code
/// or an alphanumeric sender ID. Printable, no separators a re-split could hide behind.
fn is_address(value: &str) -> bool {
    value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '+' | ':' | '.' | '_' | '-' | '@' | ' '))
}

fn address<'f>(form: &'f CallbackForm, name: &'static str) -> Result<Option<&'f str>, ParseError> {
    form.optional_matching(name, is_address, "a phone number or channel address")
}

fn message_status(
    form: &CallbackForm,
    account: &str,
    request: &ClassicRequest<'_>,
) -> Result<Built, ParseError> {
    let sid = message_sid(form)?;
    check_same_message(form, sid, "SmsSid")?;
    let status = form
        .one_of(
            "MessageStatus",
            &MESSAGE_STATUSES,
            "a message status (queued, sent, delivered, undelivered, failed, read…)",
        )?
        .ok_or_else(|| ParseError::field("MessageStatus", ParseErrorKind::Missing))?;
    form.one_of("SmsStatus", &MESSAGE_STATUSES, "a message status")?;
    let service = messaging_service(form)?;
    let error_code = digits(form, "ErrorCode")?;
    let segments = digits(form, "NumSegments")?;
    let from = address(form, "From")?;
    let to = address(form, "To")?;
    let event_type = format!("com.twilio.messaging.message.{status}");
    let time = request.received_at;
    let mut data = Map::new();
    data.insert("messageSid".into(), json!(sid));
    data.insert("accountSid".into(), json!(account));
    data.insert("eventName".into(), json!(event_type));
    data.insert("apiVersion".into(), json!("2010-04-01"));
    data.insert("messageStatus".into(), json!(status.to_ascii_uppercase()));
    data.insert("timestamp".into(), json!(rfc3339(time)));
    insert_some(&mut data, "from", from.map(|v| json!(v)));
    insert_some(&mut data, "to", to.map(|v| json!(v)));
    insert_some(&mut data, "messagingServiceSid", service.map(|v| json!(v)));
    insert_some(&mut data, "errorCode", error_code.map(|v| json!(v)));
    insert_some(&mut data, "numberOfSegments", segments.map(|v| json!(v)));
    insert_some(
        &mut data,
        "rawDlrDoneDate",
        form.optional("RawDlrDoneDate").map(|v| json!(v)),
    );
    Ok(Built {
        source: format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        fact: vec![sid.to_owned(), status.to_owned()],
        event_type,
        time,
        data: Value::Object(data),
    })
}

/// The Event Streams voice type for a call status: Event Streams has four, and a call that
/// ends any way (busy, no answer, failed, canceled) is `completed`, with the precise status in
/// the parameters, as Event Streams itself sends it.
pub(crate) fn call_type_status(status: &str) -> &'static str {
    match status {
        "queued" | "initiated" => "initiated",
        "ringing" => "ringing",
        "in-progress" => "answered",
        _ => "completed",
    }
}

fn call_status(
    form: &CallbackForm,
    account: &str,
    request: &ClassicRequest<'_>,
) -> Result<Built, ParseError> {
    let sid = form.sid("CallSid", "CA", "a call SID (CA + 32 hex digits)")?;
    let status = form
        .one_of(
            "CallStatus",
            &CALL_STATUSES,
            "a call status (initiated, ringing, in-progress, completed, busy…)",
        )?
        .ok_or_else(|| ParseError::field("CallStatus", ParseErrorKind::Missing))?;
    form.optional_matching(
        "ParentCallSid",
        |v| is_sid(v, "CA"),
        "a call SID (CA + 32 hex digits)",
    )?;
    digits(form, "SequenceNumber")?;
    digits(form, "CallDuration")?;
    digits(form, "Duration")?;
    address(form, "From")?;
    address(form, "To")?;
    form.optional_matching(
        "Direction",
        |v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
        "a call direction (inbound, outbound-api, outbound-dial…)",
    )?;
    let timestamp = match form.optional("Timestamp") {
        None => None,
        Some(value) => Some(OffsetDateTime::parse(value, &Rfc2822).map_err(|_| {
            ParseError::field(
                "Timestamp",
                ParseErrorKind::WrongType {
                    expected: "an RFC 2822 date, e.g. Fri, 27 Nov 2026 09:12:44 +0000",
                },
            )
        })?),
    };
    let time = timestamp.unwrap_or(request.received_at);
    // Voice.WebhookEvent carries the callback request itself: its URL and every parameter.
    let parameters: Map<String, Value> = form
        .params()
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut data = json!({
        "sid": sid,
        "timestamp": rfc3339(time),
        "request": {"method": "POST", "url": request.url, "parameters": parameters},
    });
    if let Some(created) = form.optional("Timestamp") {
        data["requestDateCreated"] = json!(created);
    }
    Ok(Built {
        event_type: format!(
            "com.twilio.voice.status-callback.call.{}",
            call_type_status(status)
        ),
        source: format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
        fact: vec![sid.to_owned(), status.to_owned()],
        time,
        data,
    })
}

fn inbound_message(
    form: &CallbackForm,
    account: &str,
    request: &ClassicRequest<'_>,
) -> Result<Built, ParseError> {
    let sid = message_sid(form)?;
    check_same_message(form, sid, "SmsSid")?;
    check_same_message(form, sid, "SmsMessageSid")?;
    let service = messaging_service(form)?;
    let from =
        address(form, "From")?.ok_or_else(|| ParseError::field("From", ParseErrorKind::Missing))?;
    let to =
        address(form, "To")?.ok_or_else(|| ParseError::field("To", ParseErrorKind::Missing))?;
    let media = digits(form, "NumMedia")?.unwrap_or(0);
    let segments = digits(form, "NumSegments")?;
    // Each announced attachment is there, on Twilio's media host, with a MIME type: a re-split
    // that moves a boundary into a media parameter breaks one of these.
    for index in 0..media {
        let url = form.optional(&format!("MediaUrl{index}"));
        if !url.is_some_and(|u| u.starts_with("https://api.twilio.com/")) {
            return Err(ParseError::delivery(ParseErrorKind::Form(format!(
                "MediaUrl{index}: NumMedia is {media}, so MediaUrl{index} must be a https://api.twilio.com/ URL"
            ))));
        }
        let kind = form.optional(&format!("MediaContentType{index}"));
        if !kind.is_some_and(|k| k.contains('/') && !k.contains(char::is_whitespace)) {
            return Err(ParseError::delivery(ParseErrorKind::Form(format!(
                "MediaContentType{index}: NumMedia is {media}, so MediaContentType{index} must be a MIME type"
            ))));
        }
    }
    let time = request.received_at;
    let mut data = Map::new();
    data.insert("messageSid".into(), json!(sid));
    data.insert("accountSid".into(), json!(account));
    data.insert("eventName".into(), json!(INBOUND_MESSAGE_TYPE));
    data.insert("timestamp".into(), json!(rfc3339(time)));
    data.insert("from".into(), json!(from));
    data.insert("to".into(), json!(to));
    data.insert(
        "body".into(),
        json!(form.optional("Body").unwrap_or_default()),
    );
    data.insert("numMedia".into(), json!(media));
    insert_some(&mut data, "numSegments", segments.map(|v| json!(v)));
    insert_some(&mut data, "messagingServiceSid", service.map(|v| json!(v)));
    // Where the numbers are, as Twilio looked them up (Messaging.InboundMessageV1 names).
    for (parameter, field) in LOCATION_FIELDS {
        insert_some(&mut data, field, form.optional(parameter).map(|v| json!(v)));
    }
    Ok(Built {
        event_type: INBOUND_MESSAGE_TYPE.to_owned(),
        source: format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        fact: vec![sid.to_owned()],
        time,
        data: Value::Object(data),
    })
}

pub(crate) fn insert_some(data: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value {
        data.insert(name.to_owned(), value);
    }
}

/// `classic-` plus a hash of the webhook, the account and the fact. Stored: never change it.
fn classic_event_id(webhook: ClassicWebhook, account: &str, fact: &[String]) -> String {
    let parts = [webhook.name(), account]
        .into_iter()
        .chain(fact.iter().map(String::as_str));
    fact_event_id("classic", parts)
}

/// `<prefix>-` and 32 hex digits of a SHA-256 over `parts`, each length-prefixed (so that no two
/// different lists of parts hash alike). Ids built this way are stored: never change it.
pub(crate) fn fact_event_id<'p>(prefix: &str, parts: impl IntoIterator<Item = &'p str>) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    format!("{prefix}-{}", &hex::encode(hash.finalize())[..32])
}

pub(crate) fn rfc3339(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, Kind};

    const ACCOUNT: &str = "AC6efc9b5850127eaea3c1e8dea35cdf4a";
    const SM: &str = "SM1a4d7f0c3e6b9d2f5a8c1e4b7d0f3a6c";
    const CA: &str = "CA0d3a6c9f2b5e8d1a4c7f0b3e6a9d2c5f";
    const URL: &str = "https://x.example.com/twilio/message-status";

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_796_000_000 + seconds).unwrap()
    }

    fn message(status: &str) -> String {
        format!(
            "AccountSid={ACCOUNT}&MessageSid={SM}&SmsSid={SM}&MessageStatus={status}&SmsStatus={status}&From=%2B12065550123&To=%2B14155550987&ApiVersion=2010-04-01"
        )
    }

    fn event(
        webhook: ClassicWebhook,
        body: &str,
        token: Option<&str>,
        received: i64,
    ) -> CloudEvent<'static> {
        classic_event(&ClassicRequest {
            webhook,
            url: URL,
            form_body: body.as_bytes(),
            idempotency_token: token,
            received_at: at(received),
        })
        .unwrap()
    }

    #[test]
    fn a_status_callback_becomes_the_event_streams_message_event() {
        let e = event(
            ClassicWebhook::MessageStatus,
            &message("delivered"),
            None,
            0,
        );
        assert_eq!(e.event_type, "com.twilio.messaging.message.delivered");
        assert_eq!(e.kind(), Kind::Message);
        assert_eq!(e.resource_key(), SM);
        assert_eq!(e.account(), Some(ACCOUNT));
        assert_eq!(e.status(), Some("delivered"));
        let json: Value = serde_json::from_str(e.raw_json()).unwrap();
        assert_eq!(json["data"]["messageStatus"], "DELIVERED");
        assert_eq!(json[WEBHOOK_ATTRIBUTE], "message-status-callback");
        assert_eq!(json[FORM_ATTRIBUTE], message("delivered"));
    }

    #[test]
    fn a_retry_gets_the_same_id_whenever_it_arrives_and_whatever_token_it_carries() {
        let first = event(
            ClassicWebhook::MessageStatus,
            &message("sent"),
            Some("t-1"),
            0,
        );
        let retry = event(
            ClassicWebhook::MessageStatus,
            &message("sent"),
            Some("t-2"),
            90,
        );
        assert_eq!(
            first.id, retry.id,
            "the token is not signed: never part of the id"
        );
        let json: Value = serde_json::from_str(retry.raw_json()).unwrap();
        assert_eq!(json[IDEMPOTENCY_ATTRIBUTE], "t-2", "recorded for tracing");
        let next = event(
            ClassicWebhook::MessageStatus,
            &message("delivered"),
            None,
            0,
        );
        assert_ne!(first.id, next.id, "another status is another fact");
    }

    #[test]
    fn both_sources_of_one_fact_share_a_dedup_identity() {
        let callback = event(
            ClassicWebhook::MessageStatus,
            &message("delivered"),
            None,
            0,
        );
        let streamed = CloudEvent::parse_owned(format!(
            r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","id":"EZ1","data":{{"messageSid":"{SM}","accountSid":"{ACCOUNT}","messageStatus":"DELIVERED"}}}}"#
        ))
        .unwrap();
        assert_ne!(callback.id, streamed.id);
        assert_eq!(callback.dedup_identity(), streamed.dedup_identity());
        assert_eq!(callback.account(), streamed.account());
    }

    #[test]
    fn a_call_status_maps_to_the_event_streams_stage_and_keeps_its_own_status() {
        let body = |status: &str| {
            format!(
                "AccountSid={ACCOUNT}&CallSid={CA}&CallStatus={status}&SequenceNumber=3&Timestamp=Mon%2C+30+Nov+2026+10%3A00%3A05+%2B0000&CallDuration=49"
            )
        };
        for (status, stage) in [
            ("initiated", "initiated"),
            ("ringing", "ringing"),
            ("in-progress", "answered"),
            ("completed", "completed"),
            ("busy", "completed"),
            ("no-answer", "completed"),
        ] {
            let e = event(ClassicWebhook::CallStatus, &body(status), None, 0);
            assert_eq!(
                e.event_type,
                format!("com.twilio.voice.status-callback.call.{stage}")
            );
            let Detail::Call(call) = &e.detail else {
                panic!("{:?}", e.detail)
            };
            assert_eq!(call.status.as_str(), status, "the precise status is kept");
            assert_eq!(
                e.resource_key(),
                CA,
                "partitioned by the call, as Event Streams"
            );
            assert_eq!(
                e.time.as_deref(),
                Some("2026-11-30T10:00:05Z"),
                "the callback's time"
            );
        }
        let bad = body("in-progress").replace("Timestamp=Mon", "Timestamp=Someday");
        let err = classic_event(&ClassicRequest {
            webhook: ClassicWebhook::CallStatus,
            url: URL,
            form_body: bad.as_bytes(),
            idempotency_token: None,
            received_at: at(0),
        })
        .unwrap_err();
        assert_eq!(err.field, Some("Timestamp"));
    }

    #[test]
    fn an_inbound_message_is_keyed_by_its_sid_and_deduplicated_by_it() {
        let body = format!(
            "AccountSid={ACCOUNT}&MessageSid={SM}&SmsSid={SM}&SmsMessageSid={SM}&From=%2B12065550123&To=%2B14155550987&Body=hi&NumMedia=1&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2Fx%2FMessages%2Fy%2FMedia%2Fz&MediaContentType0=image%2Fjpeg"
        );
        let e = event(ClassicWebhook::InboundMessage, &body, None, 0);
        assert_eq!(e.event_type, INBOUND_MESSAGE_TYPE);
        assert_eq!(e.resource_key(), SM);
        assert_eq!(e.dedup_identity(), format!("inbound:{SM}"));
        let json: Value = serde_json::from_str(e.raw_json()).unwrap();
        assert_eq!(json["data"]["numMedia"], 1);
        assert_eq!(json[WEBHOOK_ATTRIBUTE], "inbound-message-webhook");
    }

    #[test]
    fn what_does_not_hold_is_refused_naming_the_parameter() {
        let refuse = |webhook, body: String| {
            classic_event(&ClassicRequest {
                webhook,
                url: URL,
                form_body: body.as_bytes(),
                idempotency_token: None,
                received_at: at(0),
            })
            .unwrap_err()
            .to_string()
        };
        let m = ClassicWebhook::MessageStatus;
        assert!(
            refuse(
                m,
                message("sent").replace("MessageStatus=sent", "MessageStatus=bogus")
            )
            .contains("MessageStatus")
        );
        assert!(
            refuse(
                m,
                message("sent").replace(&format!("SmsSid={SM}"), "SmsSid=SM0")
            )
            .contains("SmsSid")
        );
        assert!(refuse(m, format!("{}&MessageSid={SM}", message("sent"))).contains("MessageSid"));
        assert!(
            refuse(m, message("sent").replace("AccountSid=AC", "AccountSidAC="))
                .contains("AccountSid")
        );
        let inbound = format!(
            "AccountSid={ACCOUNT}&MessageSid={SM}&SmsSid={SM}&SmsMessageSid={SM}&From=%2B12065550123&To=%2B14155550987&Body=hi&NumMedia=1&MediaContentType0=image%2Fjpeg"
        );
        assert!(refuse(ClassicWebhook::InboundMessage, inbound).contains("MediaUrl0"));
    }
}
