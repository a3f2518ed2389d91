//! What Twilio sends: CloudEvents 1.0, as a JSON array (or a single object), each kept byte for
//! byte so that what goes into the stream is exactly what Twilio sent.
//!
//! Parsing has two levels. A body that is not a list of events at all (not UTF-8, not JSON, an
//! empty array) is an error for the whole delivery. Within a delivery, each event is checked on
//! its own: one bad event is reported with its index and field, and the others still parse.
//! Unknown event types and fields pass through untouched.

mod detail;
mod error;
pub mod form;

pub use detail::{
    CallStatusEvent, Detail, ErrorLogEvent, Kind, MessageStatusEvent, RateLimitEvent, Redacted,
    TestEvent, USAGE_TRIGGER_TYPE, UsageTriggerEvent,
};
pub use error::{ParseError, ParseErrorKind};

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How deep JSON may nest. Twilio's events nest four or five levels; anything far deeper is
/// not an event, and refusing it early keeps every later parser (ours and consumers') safe.
pub const MAX_DEPTH: usize = 64;

/// One CloudEvent, with its original JSON and a typed view of what the project needs.
/// `Debug` leaves out the raw JSON, which holds phone numbers and message bodies.
#[derive(Clone)]
pub struct CloudEvent<'a> {
    raw: Cow<'a, str>,
    pub id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    pub source: Option<Cow<'a, str>>,
    pub time: Option<Cow<'a, str>>,
    pub dataschema: Option<Cow<'a, str>>,
    pub detail: Detail,
}

/// An event of a delivery that could not be read, kept with its original JSON so that it can
/// be quarantined and replayed.
#[derive(Clone)]
pub struct RejectedEvent<'a> {
    pub raw: &'a str,
    pub error: ParseError,
}

impl fmt::Debug for CloudEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudEvent")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("source", &self.source)
            .field("time", &self.time)
            .field("detail", &self.detail)
            .field("raw_len", &self.raw.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RejectedEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectedEvent")
            .field("error", &self.error)
            .field("raw_len", &self.raw.len())
            .finish_non_exhaustive()
    }
}

/// A parsed delivery: the events that could be read, and those that could not.
#[derive(Clone, Debug, Default)]
pub struct Delivery<'a> {
    pub events: Vec<CloudEvent<'a>>,
    pub rejected: Vec<RejectedEvent<'a>>,
}

impl<'a> Delivery<'a> {
    /// Every event, or the first error: for callers that accept all or nothing.
    pub fn into_strict(self) -> Result<Vec<CloudEvent<'a>>, ParseError> {
        match self.rejected.into_iter().next() {
            Some(rejected) => Err(rejected.error),
            None => Ok(self.events),
        }
    }
}

/// Parses an Event Streams webhook body: a JSON array of CloudEvents, or one bare CloudEvent.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery<'_>, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ParseError::delivery(ParseErrorKind::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })
    })?;
    check_depth(text)?;
    let trimmed = text.trim_start();
    let raws: Vec<&RawValue> = match trimmed.as_bytes().first() {
        None => return Err(ParseError::delivery(ParseErrorKind::Empty)),
        Some(b'[') => serde_json::from_str(text).map_err(ParseError::not_json)?,
        Some(b'{') => vec![serde_json::from_str(text).map_err(ParseError::not_json)?],
        Some(_) => {
            return Err(ParseError::delivery(ParseErrorKind::NotJson(
                "expected a JSON array of CloudEvents or a single CloudEvent object".into(),
            )));
        }
    };
    if raws.is_empty() {
        return Err(ParseError::delivery(ParseErrorKind::EmptyArray));
    }
    let mut delivery = Delivery {
        events: Vec::with_capacity(raws.len()),
        rejected: Vec::new(),
    };
    for (index, raw) in raws.into_iter().enumerate() {
        match CloudEvent::parse_checked(raw.get()) {
            Ok(event) => delivery.events.push(event),
            Err(error) => delivery.rejected.push(RejectedEvent {
                raw: raw.get(),
                error: error.at(index),
            }),
        }
    }
    Ok(delivery)
}

/// Refuses JSON nested deeper than [`MAX_DEPTH`]. Real events open a handful of brackets, so
/// a quick count (which vectorises) settles almost every body without the exact scan.
fn check_depth(text: &str) -> Result<(), ParseError> {
    let opening = memchr::memchr2_iter(b'[', b'{', text.as_bytes()).count();
    if opening <= MAX_DEPTH {
        return Ok(());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParseError::delivery(ParseErrorKind::TooDeep {
                        max: MAX_DEPTH,
                    }));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The envelope as it arrives; every field raw, so that a wrong type is reported by name.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    dataschema: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

fn required_str<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Cow<'a, str>, ParseError> {
    optional_str(field, raw)?.ok_or_else(|| ParseError::field(field, ParseErrorKind::Missing))
}

fn optional_str<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let value: Cow<'a, str> = serde_json::from_str(raw.get()).map_err(|_| {
        ParseError::field(
            field,
            ParseErrorKind::WrongType {
                expected: "a string",
            },
        )
    })?;
    Ok(Some(value))
}

impl<'a> CloudEvent<'a> {
    /// Parses one CloudEvent object (a webhook array element or a Kinesis record), keeping `json`
    /// as its original bytes. `data` may be an object or a JSON-encoded string.
    pub fn parse(text: &'a str) -> Result<Self, ParseError> {
        check_depth(text)?;
        Self::parse_checked(text)
    }

    /// [`CloudEvent::parse`] for text whose depth was already checked.
    fn parse_checked(text: &'a str) -> Result<Self, ParseError> {
        let envelope: RawEnvelope<'a> = serde_json::from_str(text).map_err(|e| {
            if text.trim_start().starts_with('{') {
                ParseError::delivery(ParseErrorKind::NotJson(e.to_string()))
            } else {
                ParseError::delivery(ParseErrorKind::NotAnObject)
            }
        })?;
        let id = required_str("id", envelope.id)?;
        if id.is_empty() {
            return Err(ParseError::field("id", ParseErrorKind::Empty));
        }
        let event_type = required_str("type", envelope.event_type)?;
        let source = optional_str("source", envelope.source)?;
        let time = optional_str("time", envelope.time)?;
        if let Some(time) = &time {
            OffsetDateTime::parse(time, &Rfc3339).map_err(|_| {
                ParseError::field(
                    "time",
                    ParseErrorKind::WrongType {
                        expected: "an RFC 3339 timestamp",
                    },
                )
            })?;
        }
        let dataschema = optional_str("dataschema", envelope.dataschema)?;
        let data = decode_data(envelope.data)?;
        let detail = Detail::read(&event_type, source.as_deref(), data.as_deref())?;
        Ok(Self {
            raw: Cow::Borrowed(text),
            id,
            event_type,
            source,
            time,
            dataschema,
            detail,
        })
    }

    /// Like [`CloudEvent::parse`] for an event the project builds itself.
    pub fn parse_owned(json: String) -> Result<CloudEvent<'static>, ParseError> {
        let event = CloudEvent::parse(&json)?;
        Ok(CloudEvent {
            raw: Cow::Owned(json.clone()),
            id: Cow::Owned(event.id.into_owned()),
            event_type: Cow::Owned(event.event_type.into_owned()),
            source: event.source.map(|s| Cow::Owned(s.into_owned())),
            time: event.time.map(|s| Cow::Owned(s.into_owned())),
            dataschema: event.dataschema.map(|s| Cow::Owned(s.into_owned())),
            detail: event.detail,
        })
    }

    /// The event exactly as Twilio sent it.
    pub fn raw_json(&self) -> &str {
        &self.raw
    }

    pub fn kind(&self) -> Kind {
        self.detail.kind()
    }

    /// The CloudEvent `time`, parsed (validated at parse time when present).
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        self.time
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    }

    /// The SID of the account the event belongs to, when it says.
    pub fn account(&self) -> Option<&str> {
        self.detail
            .account()
            .or_else(|| self.source.as_deref().and_then(account_from_source))
    }

    /// The account an event belongs to, for deciding whether a secret may sign for it: its
    /// [`account`](Self::account), or, for the sink test event (which names no account), its
    /// id, which Twilio sets to the account's SID (docs/twilio.md §1).
    pub fn owner_account(&self) -> Option<&str> {
        self.account().or_else(|| match &self.detail {
            Detail::Test(_) if form::is_sid(&self.id, "AC") => Some(&self.id),
            _ => None,
        })
    }

    /// The key that groups one resource's events (MessageSid, CallSid, …), used as the Kinesis
    /// partition key so that one resource's events share a shard and keep their order. Falls
    /// back to the SID at the end of `source`, then to the event id.
    pub fn resource_key(&self) -> &str {
        let key = self
            .detail
            .resource()
            // A typed field can be an empty string (`"resource_key": ""`, `"sid": ""`), and
            // Kinesis refuses an empty partition key: fall back instead (found by fuzzing,
            // shared/tests/it/fuzz_regressions.rs).
            .filter(|key| !key.is_empty())
            .or_else(|| self.source.as_deref().and_then(sid_from_source))
            .unwrap_or(&self.id);
        // Kinesis partition keys are at most 256 characters.
        truncate_chars(key, 256)
    }

    /// What ingest deduplicates this event by: the fact it reports when it reports one (a
    /// message or a call reaching a status, a message received), so that the same fact sent by
    /// Event Streams and by a classic webhook is one event in the stream; otherwise its id. The
    /// status is the type's last segment: Event Streams has one call type per stage
    /// (`…call.completed` also for busy or unanswered calls), and a call or message reaches each
    /// stage once.
    pub fn dedup_identity(&self) -> Cow<'_, str> {
        let stage = self.event_type.rsplit('.').next().unwrap_or_default();
        match &self.detail {
            Detail::Message(m) => Cow::Owned(format!("message:{}:{stage}", m.message_sid)),
            Detail::Call(c) => Cow::Owned(format!("call:{}:{stage}", c.call_sid)),
            _ if self.event_type == crate::classic::INBOUND_MESSAGE_TYPE => {
                Cow::Owned(format!("inbound:{}", self.resource_key()))
            }
            _ => Cow::Borrowed(&self.id),
        }
    }

    /// The key ingest deduplicates on: the account (`-` when the event names none) and the
    /// [`dedup_identity`](Self::dedup_identity). Stored in dedup records: never change it.
    pub fn dedup_key(&self) -> String {
        format!(
            "{}#{}",
            self.account().unwrap_or("-"),
            self.dedup_identity()
        )
    }

    /// Lowercase status, for message and call events.
    pub fn status(&self) -> Option<&str> {
        self.detail.status()
    }

    /// Status precedence (docs/twilio.md §5), for message and call events.
    pub fn status_rank(&self) -> Option<u8> {
        self.detail.status_rank()
    }

    /// The one-line summary `twilio-events parse` prints: no phone numbers or bodies.
    pub fn summary(&self) -> EventSummary<'_> {
        EventSummary {
            id: &self.id,
            event_type: &self.event_type,
            time: self.time.as_deref(),
            resource: self.resource_key(),
            account: self.account(),
            kind: self.kind(),
            status: self.status(),
        }
    }
}

/// What identifies an event, without personal data.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EventSummary<'e> {
    pub id: &'e str,
    #[serde(rename = "type")]
    pub event_type: &'e str,
    pub time: Option<&'e str>,
    pub resource: &'e str,
    pub account: Option<&'e str>,
    pub kind: Kind,
    pub status: Option<&'e str>,
}

/// `data` as JSON text: an object as it is, a JSON-encoded string decoded.
fn decode_data(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, ParseError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let text = raw.get();
    if !text.starts_with('"') {
        return Ok(Some(Cow::Borrowed(text)));
    }
    let decoded: String = serde_json::from_str(text)
        .map_err(|e| ParseError::field("data", ParseErrorKind::NotJson(e.to_string())))?;
    // The string must itself hold JSON.
    serde_json::from_str::<serde::de::IgnoredAny>(&decoded).map_err(|e| {
        ParseError::field(
            "data",
            ParseErrorKind::NotJson(format!("data is a string that is not JSON: {e}")),
        )
    })?;
    Ok(Some(Cow::Owned(decoded)))
}

/// `AC…` from a source such as `/2010-04-01/Accounts/AC…/Messages/SM….json`.
fn account_from_source(source: &str) -> Option<&str> {
    let rest = source.split_once("/Accounts/")?.1;
    let account = rest.split(['/', '.']).next()?;
    (!account.is_empty()).then_some(account)
}

/// The last path segment of `source`, without `.json`, when it looks like a Twilio SID.
fn sid_from_source(source: &str) -> Option<&str> {
    let last = source.trim_end_matches('/').rsplit('/').next()?;
    let sid = last.strip_suffix(".json").unwrap_or(last);
    looks_like_sid(sid).then_some(sid)
}

/// Two letters then at least 24 alphanumerics (real SIDs have 32 hex digits; docs shorten them).
pub(crate) fn looks_like_sid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() >= 26
        && bytes.len() <= 64
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().all(u8::is_ascii_alphanumeric)
}

fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

#[cfg(test)]
mod tests;
