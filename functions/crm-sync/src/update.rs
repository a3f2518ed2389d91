//! What a status event means for the CRM: the body of the HTTP contract (README.md).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use twilio_events::CloudEvent;
use twilio_events::event::{Detail, Redacted};

/// Which kind of resource an update is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Message,
    Call,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Call => "call",
        }
    }

    /// The path segment of the HTTP contract: `messages` or `calls`.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Message => "messages",
            Self::Call => "calls",
        }
    }
}

/// One status to write to the CRM. `Debug` hides the phone numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// MessageSid or CallSid.
    pub sid: String,
    pub kind: ResourceKind,
    /// Lowercase, as Twilio's REST API spells it.
    pub status: String,
    /// Precedence (docs/twilio.md §5): higher never goes back to lower.
    pub rank: u8,
    pub error_code: Option<u32>,
    pub from: Option<Redacted<String>>,
    pub to: Option<Redacted<String>>,
    pub account_sid: Option<String>,
    /// The CloudEvent id, also the `Idempotency-Key`.
    pub event_id: String,
    /// The CloudEvent `time` (RFC 3339), the tie-breaker between equal ranks.
    pub event_time: Option<String>,
}

/// Why a record cannot become an update.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpdateError {
    #[error("the {field} {value:?} is not a Twilio SID (two capitals then letters and digits)")]
    BadSid { field: &'static str, value: String },
}

impl StatusUpdate {
    /// The update a message or call status event asks for; `Ok(None)` for any other event, and
    /// for statuses outside an outbound lifecycle (no rank: `received`, unknown ones).
    pub fn from_event(event: &CloudEvent<'_>) -> Result<Option<Self>, UpdateError> {
        let (sid, kind, error_code, from, to, account_sid) = match &event.detail {
            Detail::Message(m) => (
                &m.message_sid,
                ResourceKind::Message,
                m.error_code,
                m.from.clone(),
                m.to.clone(),
                m.account_sid.clone(),
            ),
            Detail::Call(c) => (
                &c.call_sid,
                ResourceKind::Call,
                None,
                c.from.clone(),
                c.to.clone(),
                c.account_sid.clone(),
            ),
            _ => return Ok(None),
        };
        let (Some(status), Some(rank)) = (event.status(), event.status_rank()) else {
            return Ok(None);
        };
        // The SID becomes a URL path segment: refuse anything that could escape it.
        if !is_sid(sid) {
            return Err(UpdateError::BadSid {
                field: match kind {
                    ResourceKind::Message => "MessageSid",
                    ResourceKind::Call => "CallSid",
                },
                value: sid.chars().take(64).collect(),
            });
        }
        Ok(Some(Self {
            sid: sid.clone(),
            kind,
            status: status.to_owned(),
            rank,
            error_code,
            from,
            to,
            account_sid: account_sid.or_else(|| event.account().map(str::to_owned)),
            event_id: event.id.to_string(),
            event_time: event.time.as_deref().map(str::to_owned),
        }))
    }

    /// Milliseconds since the epoch of `event_time`; 0 when absent (then only rank decides).
    pub fn event_time_ms(&self) -> i64 {
        self.event_time
            .as_deref()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .unwrap_or(0)
    }

    /// Whether no later status is expected for the resource (docs/twilio.md §5): the ledger
    /// keeps a resource that is not final where reconciliation looks for stuck ones.
    pub fn is_final(&self) -> bool {
        match self.kind {
            ResourceKind::Message => {
                twilio_events::status::MessageStatus::parse(&self.status).is_final()
            }
            ResourceKind::Call => twilio_events::status::CallStatus::parse(&self.status).is_final(),
        }
    }

    /// Whether this update moves a resource forward from (`rank`, `time_ms`): a higher rank, or
    /// the same rank and a later event time.
    pub fn is_ahead_of(&self, rank: u8, time_ms: i64) -> bool {
        self.rank > rank || (self.rank == rank && self.event_time_ms() > time_ms)
    }
}

/// Two ASCII capitals then 10 to 62 ASCII letters or digits.
fn is_sid(s: &str) -> bool {
    let b = s.as_bytes();
    (12..=64).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..].iter().all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: &str, sid: &str) -> String {
        serde_json::json!({
            "specversion": "1.0", "type": format!("com.twilio.messaging.message.{status}"),
            "source": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/x.json",
            "id": "EZ1", "time": "2024-05-01T10:00:00.123Z",
            "data": {"messageSid": sid, "messageStatus": status.to_uppercase(), "from": "+15550001111",
                     "to": "+15550002222", "accountSid": "AC0123456789abcdef0123456789abcdef", "errorCode": 30003}
        })
        .to_string()
    }

    #[test]
    fn a_message_status_event_becomes_the_documented_body() {
        // GIVEN a delivered event WHEN it becomes an update
        let json = message("undelivered", "SM0123456789abcdef0123456789abcdef");
        let event = CloudEvent::parse(&json).unwrap();
        let update = StatusUpdate::from_event(&event).unwrap().unwrap();
        // THEN the body has exactly the contract's fields, status lowercase
        let body = serde_json::to_value(&update).unwrap();
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "account_sid",
                "error_code",
                "event_id",
                "event_time",
                "from",
                "kind",
                "rank",
                "sid",
                "status",
                "to"
            ]
        );
        assert_eq!(body["status"], "undelivered");
        assert_eq!(body["kind"], "message");
        assert_eq!(body["rank"], 6);
        assert_eq!(body["from"], "+15550001111");
        assert_eq!(update.event_time_ms(), 1_714_557_600_123);
        // AND Debug never shows a phone number
        assert!(!format!("{update:?}").contains("+1555"));
    }

    #[test]
    fn a_sid_that_could_escape_the_url_path_is_refused() {
        let json = message("sent", "SM../../admin/users");
        let event = CloudEvent::parse(&json).unwrap();
        assert!(matches!(
            StatusUpdate::from_event(&event),
            Err(UpdateError::BadSid { .. })
        ));
    }

    #[test]
    fn equal_ranks_are_broken_by_event_time() {
        let json = message("delivered", "SM0123456789abcdef0123456789abcdef");
        let u = StatusUpdate::from_event(&CloudEvent::parse(&json).unwrap())
            .unwrap()
            .unwrap();
        assert!(u.is_ahead_of(4, i64::MAX));
        assert!(u.is_ahead_of(6, u.event_time_ms() - 1));
        assert!(!u.is_ahead_of(6, u.event_time_ms()));
        assert!(!u.is_ahead_of(7, 0));
    }
}
