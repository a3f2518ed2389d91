//! Usage Trigger callbacks (classic form-encoded POSTs) turned into CloudEvents of the project's
//! own type, so that they travel the same stream as Event Streams deliveries.
//!
//! Twilio retries a callback it could not deliver with the same parameters, so the event id is
//! derived from them: a retry gets the same id and is dropped as a duplicate.

use crate::event::{CloudEvent, ParseError, ParseErrorKind, USAGE_TRIGGER_TYPE, UsageTriggerEvent};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

/// The CloudEvent for one Usage Trigger callback body (`application/x-www-form-urlencoded`).
pub fn usage_trigger_event(form_body: &[u8]) -> Result<CloudEvent<'static>, ParseError> {
    let params: Vec<(String, String)> = form_urlencoded::parse(form_body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if params.is_empty() {
        return Err(ParseError::delivery(ParseErrorKind::Form(
            "no parameters: a Usage Trigger callback is a form-encoded POST".into(),
        )));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let required = |name: &'static str| {
        get(name).ok_or_else(|| ParseError::field(name, ParseErrorKind::Missing))
    };
    let numeric = |name: &'static str| -> Result<f64, ParseError> {
        required(name)?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                ParseError::field(
                    name,
                    ParseErrorKind::WrongType {
                        expected: "a number",
                    },
                )
            })
    };
    let trigger = UsageTriggerEvent {
        account_sid: required("AccountSid")?,
        usage_trigger_sid: required("UsageTriggerSid")?,
        usage_category: required("UsageCategory")?,
        trigger_by: get("TriggerBy"),
        recurring: get("Recurring"),
        trigger_value: numeric("TriggerValue")?,
        current_value: numeric("CurrentValue")?,
        date_fired: get("DateFired"),
        usage_record_uri: get("UsageRecordUri"),
        idempotency_token: get("IdempotencyToken"),
    };
    let time = trigger
        .date_fired
        .as_deref()
        .and_then(|d| OffsetDateTime::parse(d, &Rfc2822).ok())
        .and_then(|t| t.format(&Rfc3339).ok());
    let event = serde_json::json!({
        "specversion": "1.0",
        "type": USAGE_TRIGGER_TYPE,
        "source": format!(
            "/2010-04-01/Accounts/{}/Usage/Triggers/{}.json",
            trigger.account_sid, trigger.usage_trigger_sid
        ),
        "id": usage_trigger_event_id(&trigger),
        "time": time,
        "datacontenttype": "application/json",
        "data": trigger,
    });
    CloudEvent::parse_owned(event.to_string())
}

/// `UT…` plus a hash of what identifies one firing of one trigger.
fn usage_trigger_event_id(trigger: &UsageTriggerEvent) -> String {
    let mut hash = Sha256::new();
    for part in [
        Some(trigger.account_sid.as_str()),
        Some(trigger.usage_trigger_sid.as_str()),
        trigger.date_fired.as_deref(),
        trigger.idempotency_token.as_deref(),
    ] {
        hash.update(part.unwrap_or("").as_bytes());
        hash.update([0]);
    }
    format!("usage-trigger-{}", &hex::encode(hash.finalize())[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, Kind};

    const BODY: &str = "AccountSid=AC6efc9b5850127eaea3c1e8dea35cdf4a&UsageTriggerSid=UT4b4676e433d1e4ba8c0cfe99ca953f5e&DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&Recurring=daily&UsageCategory=sms&TriggerBy=count&TriggerValue=1000&CurrentValue=1003&IdempotencyToken=4e33aafaaeafc657671a1ad0";

    #[test]
    fn a_callback_becomes_an_event_with_a_deterministic_id() {
        let event = usage_trigger_event(BODY.as_bytes()).unwrap();
        let again = usage_trigger_event(BODY.as_bytes()).unwrap();
        assert_eq!(event.id, again.id, "a retried callback must deduplicate");
        assert_eq!(event.kind(), Kind::UsageTrigger);
        assert_eq!(event.event_type, USAGE_TRIGGER_TYPE);
        assert_eq!(event.time.as_deref(), Some("2026-11-27T09:12:44Z"));
        assert_eq!(event.account(), Some("AC6efc9b5850127eaea3c1e8dea35cdf4a"));
        assert_eq!(event.resource_key(), "UT4b4676e433d1e4ba8c0cfe99ca953f5e");
        let Detail::UsageTrigger(t) = &event.detail else {
            panic!("{:?}", event.detail)
        };
        assert_eq!((t.trigger_value, t.current_value), (1000.0, 1003.0));
        assert_eq!(t.usage_category, "sms");
        // The synthesised JSON reads back as the same event.
        let reparsed = CloudEvent::parse(event.raw_json()).unwrap();
        assert_eq!(reparsed.detail, event.detail);
    }

    #[test]
    fn another_firing_gets_another_id() {
        let other = BODY.replace("IdempotencyToken=4e33", "IdempotencyToken=5e33");
        assert_ne!(
            usage_trigger_event(BODY.as_bytes()).unwrap().id,
            usage_trigger_event(other.as_bytes()).unwrap().id
        );
    }

    #[test]
    fn missing_or_wrong_parameters_are_named() {
        let err = usage_trigger_event(b"AccountSid=AC1").unwrap_err();
        assert_eq!(err.field, Some("UsageTriggerSid"));
        let err = usage_trigger_event(
            BODY.replace("CurrentValue=1003", "CurrentValue=lots")
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.field, Some("CurrentValue"));
        assert!(err.to_string().contains("CurrentValue"), "{err}");
        assert!(matches!(
            usage_trigger_event(b"").unwrap_err().kind,
            ParseErrorKind::Form(_)
        ));
    }
}
