//! Typed views of the event types the project acts on. Everything else is `Detail::Other` and
//! passes through untouched.
//!
//! Fields are read one by one from raw JSON so that a wrong type is reported with its name.
//! Phone numbers are wrapped in [`Redacted`], so a stray `{:?}` never prints one.

use super::{ParseError, ParseErrorKind, looks_like_sid};
use crate::status::{CallStatus, MessageStatus};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// The project's own type for Usage Trigger callbacks (Event Streams has no usage event type).
pub const USAGE_TRIGGER_TYPE: &str = "io.twilio-events.usage-trigger.fired";

const MESSAGE_PREFIX: &str = "com.twilio.messaging.message.";
const TEST_EVENT_TYPE: &str = "com.twilio.eventstreams.test-event";
const ERROR_LOG_TYPE: &str = "com.twilio.error-logs.error.logged";

/// What sort of event this is, as `twilio-events parse` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Message,
    Call,
    Test,
    RateLimit,
    ErrorLog,
    UsageTrigger,
    Other,
}

/// A value that is personal data: shown as `<redacted>` by `Debug`, serialised as is.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(pub T);

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MessageStatusEvent {
    pub message_sid: String,
    pub status: MessageStatus,
    pub error_code: Option<u32>,
    pub segments: Option<u32>,
    pub from: Option<Redacted<String>>,
    pub to: Option<Redacted<String>>,
    pub account_sid: Option<String>,
    pub messaging_service_sid: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CallStatusEvent {
    pub call_sid: String,
    pub status: CallStatus,
    /// Seconds, on completed calls.
    pub duration: Option<u32>,
    pub from: Option<Redacted<String>>,
    pub to: Option<Redacted<String>>,
    pub account_sid: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestEvent {
    /// The id to post to `/v1/Sinks/{Sid}/Validate`.
    pub test_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitEvent {
    pub account_sid: Option<String>,
    pub product: Option<String>,
    pub resource_key: Option<String>,
    pub current_rate: f64,
    pub rate_limit: f64,
    pub rate_limited: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ErrorLogEvent {
    pub sid: Option<String>,
    pub error_code: Option<u32>,
    pub account_sid: Option<String>,
    /// The resource the error concerns (`correlation_sid`), when given.
    pub correlation_sid: Option<String>,
    pub level: Option<String>,
    pub product: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageTriggerEvent {
    pub account_sid: String,
    pub usage_trigger_sid: String,
    pub usage_category: String,
    /// `count`, `usage` or `price`.
    pub trigger_by: Option<String>,
    /// `daily`, `monthly`, `yearly` or `alltime`.
    pub recurring: Option<String>,
    pub trigger_value: f64,
    pub current_value: f64,
    pub date_fired: Option<String>,
    pub usage_record_uri: Option<String>,
    pub idempotency_token: Option<String>,
}

/// The typed view of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    Message(MessageStatusEvent),
    Call(CallStatusEvent),
    Test(TestEvent),
    RateLimit(RateLimitEvent),
    ErrorLog(ErrorLogEvent),
    UsageTrigger(UsageTriggerEvent),
    /// Any other type: only the SIDs found in `data`, for the partition key.
    Other {
        resource: Option<String>,
        account: Option<String>,
    },
}

impl Detail {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Message(_) => Kind::Message,
            Self::Call(_) => Kind::Call,
            Self::Test(_) => Kind::Test,
            Self::RateLimit(_) => Kind::RateLimit,
            Self::ErrorLog(_) => Kind::ErrorLog,
            Self::UsageTrigger(_) => Kind::UsageTrigger,
            Self::Other { .. } => Kind::Other,
        }
    }

    pub(super) fn resource(&self) -> Option<&str> {
        match self {
            Self::Message(m) => Some(&m.message_sid),
            Self::Call(c) => Some(&c.call_sid),
            Self::Test(_) => None,
            Self::RateLimit(r) => r.resource_key.as_deref(),
            Self::ErrorLog(e) => e.correlation_sid.as_deref().or(e.sid.as_deref()),
            Self::UsageTrigger(u) => Some(&u.usage_trigger_sid),
            Self::Other { resource, .. } => resource.as_deref(),
        }
    }

    pub(super) fn account(&self) -> Option<&str> {
        match self {
            Self::Message(m) => m.account_sid.as_deref(),
            Self::Call(c) => c.account_sid.as_deref(),
            Self::Test(_) => None,
            Self::RateLimit(r) => r.account_sid.as_deref(),
            Self::ErrorLog(e) => e.account_sid.as_deref(),
            Self::UsageTrigger(u) => Some(&u.account_sid),
            Self::Other { account, .. } => account.as_deref(),
        }
    }

    pub(super) fn status(&self) -> Option<&str> {
        match self {
            Self::Message(m) => Some(m.status.as_str()),
            Self::Call(c) => Some(c.status.as_str()),
            _ => None,
        }
    }

    pub(super) fn status_rank(&self) -> Option<u8> {
        match self {
            Self::Message(m) => m.status.rank(),
            Self::Call(c) => c.status.rank(),
            _ => None,
        }
    }

    /// Reads the typed view for `event_type` from `data` (JSON text, already decoded).
    pub(super) fn read(
        event_type: &str,
        source: Option<&str>,
        data: Option<&str>,
    ) -> Result<Self, ParseError> {
        if let Some(status) = event_type.strip_prefix(MESSAGE_PREFIX) {
            return read_message(status, data).map(Self::Message);
        }
        if let Some(status) = call_status_from_type(event_type) {
            return read_call(status, data).map(Self::Call);
        }
        match event_type {
            TEST_EVENT_TYPE => read_test(data).map(Self::Test),
            ERROR_LOG_TYPE => read_error_log(data).map(Self::ErrorLog),
            USAGE_TRIGGER_TYPE => read_usage_trigger(data).map(Self::UsageTrigger),
            t if t.starts_with("com.twilio.apiusage.") && t.ends_with(".ratelimits") => {
                read_rate_limit(data).map(Self::RateLimit)
            }
            _ => Ok(read_other(source, data)),
        }
    }
}

/// `initiated` from `com.twilio.voice.status-callback.call.initiated`, and from the deprecated
/// `com.twilio.voice.webhook.status-callback.call.initiated`.
fn call_status_from_type(event_type: &str) -> Option<&str> {
    let rest = event_type.strip_prefix("com.twilio.voice.")?;
    let rest = rest.strip_prefix("webhook.").unwrap_or(rest);
    rest.strip_prefix("status-callback.call.")
}

fn data_text(data: Option<&str>) -> Result<&str, ParseError> {
    data.ok_or_else(|| ParseError::field("data", ParseErrorKind::Missing))
}

fn parse_fields<'d, T: Deserialize<'d>>(
    field: &'static str,
    text: &'d str,
) -> Result<T, ParseError> {
    serde_json::from_str(text).map_err(|_| {
        ParseError::field(
            field,
            ParseErrorKind::WrongType {
                expected: "a JSON object",
            },
        )
    })
}

fn present(raw: Option<&RawValue>) -> Option<&str> {
    raw.map(RawValue::get).filter(|r| *r != "null")
}

fn string(field: &'static str, raw: Option<&RawValue>) -> Result<Option<String>, ParseError> {
    let Some(text) = present(raw) else {
        return Ok(None);
    };
    serde_json::from_str::<String>(text).map(Some).map_err(|_| {
        ParseError::field(
            field,
            ParseErrorKind::WrongType {
                expected: "a string",
            },
        )
    })
}

fn required_string(field: &'static str, raw: Option<&RawValue>) -> Result<String, ParseError> {
    string(field, raw)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ParseError::field(field, ParseErrorKind::Missing))
}

/// A count or code, sent as a number or as a numeric string (an empty string is absent).
fn unsigned(field: &'static str, raw: Option<&RawValue>) -> Result<Option<u32>, ParseError> {
    let Some(text) = present(raw) else {
        return Ok(None);
    };
    let wrong = || {
        ParseError::field(
            field,
            ParseErrorKind::WrongType {
                expected: "a non-negative integer",
            },
        )
    };
    if let Some(quoted) = text.strip_prefix('"') {
        let inner = quoted.strip_suffix('"').ok_or_else(wrong)?.trim();
        return if inner.is_empty() {
            Ok(None)
        } else {
            inner.parse().map(Some).map_err(|_| wrong())
        };
    }
    serde_json::from_str::<u32>(text)
        .map(Some)
        .map_err(|_| wrong())
}

fn number(field: &'static str, raw: Option<&RawValue>) -> Result<Option<f64>, ParseError> {
    let Some(text) = present(raw) else {
        return Ok(None);
    };
    let wrong = || {
        ParseError::field(
            field,
            ParseErrorKind::WrongType {
                expected: "a number",
            },
        )
    };
    let value = match text.strip_prefix('"') {
        Some(quoted) => quoted
            .strip_suffix('"')
            .ok_or_else(wrong)?
            .trim()
            .parse::<f64>()
            .map_err(|_| wrong())?,
        None => serde_json::from_str::<f64>(text).map_err(|_| wrong())?,
    };
    value
        .is_finite()
        .then_some(value)
        .map(Some)
        .ok_or_else(wrong)
}

fn boolean(field: &'static str, raw: Option<&RawValue>) -> Result<Option<bool>, ParseError> {
    let Some(text) = present(raw) else {
        return Ok(None);
    };
    serde_json::from_str(text).map(Some).map_err(|_| {
        ParseError::field(
            field,
            ParseErrorKind::WrongType {
                expected: "true or false",
            },
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageFields<'d> {
    #[serde(borrow)]
    message_sid: Option<&'d RawValue>,
    #[serde(borrow)]
    message_status: Option<&'d RawValue>,
    #[serde(borrow)]
    error_code: Option<&'d RawValue>,
    #[serde(borrow)]
    number_of_segments: Option<&'d RawValue>,
    #[serde(borrow)]
    from: Option<&'d RawValue>,
    #[serde(borrow)]
    to: Option<&'d RawValue>,
    #[serde(borrow)]
    account_sid: Option<&'d RawValue>,
    #[serde(borrow)]
    messaging_service_sid: Option<&'d RawValue>,
}

fn read_message(type_status: &str, data: Option<&str>) -> Result<MessageStatusEvent, ParseError> {
    let f: MessageFields = parse_fields("data", data_text(data)?)?;
    // The type names the event precisely (undelivered vs failed); `messageStatus` is a fallback.
    let data_status = string("data.messageStatus", f.message_status)?;
    let status = match (type_status, data_status) {
        (s, _) if !s.is_empty() => MessageStatus::parse(s),
        (_, Some(s)) => MessageStatus::parse(&s),
        _ => {
            return Err(ParseError::field(
                "data.messageStatus",
                ParseErrorKind::Missing,
            ));
        }
    };
    Ok(MessageStatusEvent {
        message_sid: required_string("data.messageSid", f.message_sid)?,
        status,
        error_code: unsigned("data.errorCode", f.error_code)?,
        segments: unsigned("data.numberOfSegments", f.number_of_segments)?,
        from: string("data.from", f.from)?.map(Redacted),
        to: string("data.to", f.to)?.map(Redacted),
        account_sid: string("data.accountSid", f.account_sid)?,
        messaging_service_sid: string("data.messagingServiceSid", f.messaging_service_sid)?,
    })
}

#[derive(Deserialize)]
struct VoiceFields<'d> {
    #[serde(borrow)]
    sid: Option<&'d RawValue>,
    #[serde(borrow)]
    request: Option<&'d RawValue>,
}

#[derive(Deserialize)]
struct VoiceRequest<'d> {
    #[serde(borrow)]
    parameters: Option<&'d RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CallParameters<'d> {
    #[serde(borrow)]
    call_sid: Option<&'d RawValue>,
    #[serde(borrow)]
    call_status: Option<&'d RawValue>,
    #[serde(borrow)]
    call_duration: Option<&'d RawValue>,
    #[serde(borrow)]
    from: Option<&'d RawValue>,
    #[serde(borrow)]
    to: Option<&'d RawValue>,
    #[serde(borrow)]
    account_sid: Option<&'d RawValue>,
}

fn read_call(type_status: &str, data: Option<&str>) -> Result<CallStatusEvent, ParseError> {
    let f: VoiceFields = parse_fields("data", data_text(data)?)?;
    let parameters = match present(f.request) {
        Some(text) => parse_fields::<VoiceRequest>("data.request", text)?.parameters,
        None => None,
    };
    let p: CallParameters = match present(parameters) {
        Some(text) => parse_fields("data.request.parameters", text)?,
        None => CallParameters::default(),
    };
    let call_sid = match string("data.request.parameters.CallSid", p.call_sid)? {
        Some(sid) if !sid.is_empty() => sid,
        _ => required_string("data.request.parameters.CallSid", f.sid)?,
    };
    // CallStatus is more precise than the type (a `completed` event may carry `busy`).
    let status = match string("data.request.parameters.CallStatus", p.call_status)? {
        Some(s) if !s.is_empty() => CallStatus::parse(&s),
        _ => CallStatus::parse(type_status),
    };
    Ok(CallStatusEvent {
        call_sid,
        status,
        duration: unsigned("data.request.parameters.CallDuration", p.call_duration)?,
        from: string("data.request.parameters.From", p.from)?.map(Redacted),
        to: string("data.request.parameters.To", p.to)?.map(Redacted),
        account_sid: string("data.request.parameters.AccountSid", p.account_sid)?,
    })
}

#[derive(Deserialize)]
struct TestFields<'d> {
    #[serde(borrow)]
    test_id: Option<&'d RawValue>,
}

fn read_test(data: Option<&str>) -> Result<TestEvent, ParseError> {
    let f: TestFields = parse_fields("data", data_text(data)?)?;
    Ok(TestEvent {
        test_id: required_string("data.test_id", f.test_id)?,
    })
}

#[derive(Deserialize)]
struct RateLimitFields<'d> {
    #[serde(borrow)]
    account_sid: Option<&'d RawValue>,
    #[serde(borrow)]
    product: Option<&'d RawValue>,
    #[serde(borrow)]
    resource_key: Option<&'d RawValue>,
    #[serde(borrow)]
    current_rate: Option<&'d RawValue>,
    #[serde(borrow)]
    rate_limit: Option<&'d RawValue>,
    #[serde(borrow)]
    rate_limited: Option<&'d RawValue>,
}

fn read_rate_limit(data: Option<&str>) -> Result<RateLimitEvent, ParseError> {
    let f: RateLimitFields = parse_fields("data", data_text(data)?)?;
    let missing = |field| ParseError::field(field, ParseErrorKind::Missing);
    Ok(RateLimitEvent {
        account_sid: string("data.account_sid", f.account_sid)?,
        product: string("data.product", f.product)?,
        resource_key: string("data.resource_key", f.resource_key)?,
        current_rate: number("data.current_rate", f.current_rate)?
            .ok_or_else(|| missing("data.current_rate"))?,
        rate_limit: number("data.rate_limit", f.rate_limit)?
            .ok_or_else(|| missing("data.rate_limit"))?,
        rate_limited: boolean("data.rate_limited", f.rate_limited)?.unwrap_or(false),
    })
}

#[derive(Deserialize)]
struct ErrorLogFields<'d> {
    #[serde(borrow)]
    sid: Option<&'d RawValue>,
    #[serde(borrow)]
    error_code: Option<&'d RawValue>,
    #[serde(borrow)]
    account_sid: Option<&'d RawValue>,
    #[serde(borrow)]
    correlation_sid: Option<&'d RawValue>,
    #[serde(borrow)]
    level: Option<&'d RawValue>,
    #[serde(borrow)]
    product_name: Option<&'d RawValue>,
}

fn read_error_log(data: Option<&str>) -> Result<ErrorLogEvent, ParseError> {
    let f: ErrorLogFields = parse_fields("data", data_text(data)?)?;
    Ok(ErrorLogEvent {
        sid: string("data.sid", f.sid)?,
        error_code: unsigned("data.error_code", f.error_code)?,
        account_sid: string("data.account_sid", f.account_sid)?,
        correlation_sid: string("data.correlation_sid", f.correlation_sid)?
            .filter(|s| !s.is_empty()),
        level: string("data.level", f.level)?,
        product: string("data.product_name", f.product_name)?,
    })
}

fn read_usage_trigger(data: Option<&str>) -> Result<UsageTriggerEvent, ParseError> {
    serde_json::from_str(data_text(data)?)
        .map_err(|e| ParseError::field("data", ParseErrorKind::NotJson(e.to_string())))
}

/// For types without a typed view: the first SID-looking field among the usual names.
#[derive(Deserialize)]
struct OtherFields<'d> {
    #[serde(borrow, rename = "messageSid", alias = "message_sid")]
    message_sid: Option<&'d RawValue>,
    #[serde(borrow, alias = "CallSid", alias = "callSid")]
    call_sid: Option<&'d RawValue>,
    #[serde(borrow)]
    sid: Option<&'d RawValue>,
    #[serde(borrow, alias = "accountSid", alias = "AccountSid")]
    account_sid: Option<&'d RawValue>,
}

fn read_other(_source: Option<&str>, data: Option<&str>) -> Detail {
    // Unknown types pass through whatever their data holds: nothing here can fail.
    let fields = data.and_then(|text| serde_json::from_str::<OtherFields>(text).ok());
    let sid = |raw: Option<&RawValue>| string("", raw).ok().flatten().filter(|s| looks_like_sid(s));
    match fields {
        Some(f) => Detail::Other {
            resource: sid(f.message_sid)
                .or_else(|| sid(f.call_sid))
                .or_else(|| sid(f.sid)),
            account: sid(f.account_sid),
        },
        None => Detail::Other {
            resource: None,
            account: None,
        },
    }
}
