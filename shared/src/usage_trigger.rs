//! Usage Trigger callbacks (classic form-encoded POSTs) turned into CloudEvents of the project's
//! own type, so that they travel the same stream as Event Streams deliveries.
//!
//! A callback is believed only when the parameters that identify a firing are all there, once,
//! in Twilio's formats (the rules are in [`crate::event::form`], shared by every form route):
//! `AccountSid` (`AC` + 32 hex), `UsageTriggerSid` (`UT` + 32 hex), `DateFired` (an RFC 2822
//! date), `IdempotencyToken`, `UsageCategory`, `TriggerValue` and `CurrentValue` (plain
//! decimals); `Recurring` and `TriggerBy`, when given, in their known sets; `UsageRecordUri`,
//! when given, an account path. Anything else is refused, never turned into an event: the form
//! signature does not fix parameter boundaries (docs/twilio.md §2), so a callback that breaks
//! these rules may be a re-split of a genuine one.
//!
//! The event's time is `DateFired`, never the arrival time. Its id is derived from the account,
//! the trigger and `DateFired`: a trigger fires at most once per period, Twilio retries a
//! callback with the same parameters, so a retry gets the same id and is dropped as a
//! duplicate. The id deliberately leaves out the free-text parameters (`IdempotencyToken`,
//! `UsageRecordUri`): they sit next to optional parameters, so a re-split could change them
//! under the same signature; the three it uses are pinned by their formats and the required
//! names around them, so any re-split that still passes the rules has the same id.

use crate::event::form::{CallbackForm, is_sid};
use crate::event::{CloudEvent, ParseError, USAGE_TRIGGER_TYPE, UsageTriggerEvent};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The parameters a Usage Trigger callback carries (docs/twilio.md §4); each at most once.
pub const PARAMETERS: [&str; 10] = [
    "AccountSid",
    "UsageTriggerSid",
    "DateFired",
    "Recurring",
    "UsageCategory",
    "TriggerBy",
    "TriggerValue",
    "CurrentValue",
    "UsageRecordUri",
    "IdempotencyToken",
];

/// `Recurring`'s values (empty for a trigger that does not recur).
pub const RECURRING: [&str; 4] = ["daily", "monthly", "yearly", "alltime"];

/// `TriggerBy`'s values.
pub const TRIGGER_BY: [&str; 3] = ["count", "usage", "price"];

/// Twilio's usage categories are lowercase words joined by `-` (`sms`, `totalprice`,
/// `calls-inbound-tollfree`), some with digits or dots: nothing else, so that a category cannot
/// swallow the parameter name that follows it (`UsageRecordUri…`).
fn is_usage_category(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
}

/// The CloudEvent for one Usage Trigger callback body (`application/x-www-form-urlencoded`),
/// or why the callback is refused (the error names the parameter).
pub fn usage_trigger_event(form_body: &[u8]) -> Result<CloudEvent<'static>, ParseError> {
    let form = CallbackForm::parse(form_body, &PARAMETERS)?;
    let account_sid = form.sid("AccountSid", "AC", "an account SID (AC + 32 hex digits)")?;
    let usage_trigger_sid = form.sid(
        "UsageTriggerSid",
        "UT",
        "a Usage Trigger SID (UT + 32 hex digits)",
    )?;
    let fired = form.rfc2822_time("DateFired")?;
    let idempotency_token = form.required("IdempotencyToken")?;
    let usage_category = form.required_matching(
        "UsageCategory",
        is_usage_category,
        "a usage category (lowercase letters, digits, '-', '_', '.')",
    )?;
    let trigger_by = form.one_of("TriggerBy", &TRIGGER_BY, "count, usage or price")?;
    let recurring = form.one_of(
        "Recurring",
        &RECURRING,
        "daily, monthly, yearly, alltime or empty",
    )?;
    let trigger_value = form.number("TriggerValue")?;
    let current_value = form.number("CurrentValue")?;
    let usage_record_uri = form.optional_matching(
        "UsageRecordUri",
        |uri| uri.starts_with("/2010-04-01/Accounts/"),
        "a path under /2010-04-01/Accounts/",
    )?;
    let trigger = UsageTriggerEvent {
        account_sid: account_sid.to_owned(),
        usage_trigger_sid: usage_trigger_sid.to_owned(),
        usage_category: usage_category.to_owned(),
        trigger_by: trigger_by.map(str::to_owned),
        recurring: recurring.map(str::to_owned),
        trigger_value,
        current_value,
        date_fired: form.optional("DateFired").map(str::to_owned),
        usage_record_uri: usage_record_uri.map(str::to_owned),
        idempotency_token: Some(idempotency_token.to_owned()),
    };
    let time = rfc3339(fired);
    let event = serde_json::json!({
        "specversion": "1.0",
        "type": USAGE_TRIGGER_TYPE,
        "source": format!(
            "/2010-04-01/Accounts/{}/Usage/Triggers/{}.json",
            trigger.account_sid, trigger.usage_trigger_sid
        ),
        "id": usage_trigger_event_id(&trigger.account_sid, &trigger.usage_trigger_sid, &time),
        "time": time,
        "datacontenttype": "application/json",
        "data": trigger,
    });
    CloudEvent::parse_owned(event.to_string())
}

fn rfc3339(time: OffsetDateTime) -> String {
    // Formatting a parsed RFC 2822 date as RFC 3339 cannot fail (four-digit years both).
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `usage-trigger-` plus a hash of what identifies one firing of one trigger: the account, the
/// trigger and when it fired (as RFC 3339, so two spellings of one instant are one firing).
fn usage_trigger_event_id(account_sid: &str, usage_trigger_sid: &str, fired: &str) -> String {
    debug_assert!(is_sid(account_sid, "AC") && is_sid(usage_trigger_sid, "UT"));
    let mut hash = Sha256::new();
    for part in [account_sid, usage_trigger_sid, fired] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("usage-trigger-{}", &hex::encode(hash.finalize())[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, Kind, ParseErrorKind};
    use crate::signature::{BodyEncoding, SecretSet, SignedRequest, Verifier, compute_signature};

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
        assert_eq!(
            t.idempotency_token.as_deref(),
            Some("4e33aafaaeafc657671a1ad0")
        );
        // The synthesised JSON reads back as the same event.
        let reparsed = CloudEvent::parse(event.raw_json()).unwrap();
        assert_eq!(reparsed.detail, event.detail);
    }

    #[test]
    fn another_firing_gets_another_id() {
        // The same trigger firing again (another day): another event.
        let other = BODY.replace("27+Nov+2026", "28+Nov+2026");
        assert_ne!(
            usage_trigger_event(BODY.as_bytes()).unwrap().id,
            usage_trigger_event(other.as_bytes()).unwrap().id
        );
        // Another trigger, or another account, firing at the same second: another event.
        for (from, to) in [("UT4b46", "UT5b46"), ("AC6efc", "AC7efc")] {
            let other = BODY.replace(from, to);
            assert_ne!(
                usage_trigger_event(BODY.as_bytes()).unwrap().id,
                usage_trigger_event(other.as_bytes()).unwrap().id,
                "{to}"
            );
        }
    }

    #[test]
    fn missing_or_wrong_parameters_are_named() {
        let err =
            usage_trigger_event(b"AccountSid=AC6efc9b5850127eaea3c1e8dea35cdf4a").unwrap_err();
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

    #[test]
    fn every_parameter_that_identifies_a_firing_is_required_and_checked() {
        let cases: [(&str, &str, &str); 16] = [
            (
                "DateFired",
                "DateFired=Fri%2C+27+Nov+2026+09%3A12%3A44+%2B0000&",
                "",
            ),
            ("DateFired", "Fri%2C+27+Nov+2026", "sometime+last+week"),
            (
                "IdempotencyToken",
                "IdempotencyToken=4e33aafaaeafc657671a1ad0",
                "IdempotencyToken=",
            ),
            ("AccountSid", "AC6efc9b5850127eaea3c1e8dea35cdf4a", "AC6efc"),
            ("AccountSid", "AccountSid=AC6efc", "AccountSid=XX6efc"),
            (
                "AccountSid",
                "AC6efc9b5850127eaea3c1e8dea35cdf4a",
                "AC6efc9b5850127eaea3c1e8dea35cdf4aX",
            ),
            (
                "UsageTriggerSid",
                "UT4b4676e433d1e4ba8c0cfe99ca953f5e",
                "UT4b4676e433d1e4ba8c0cfe99ca953f5g",
            ),
            (
                "UsageTriggerSid",
                "UsageTriggerSid=UT",
                "UsageTriggerSid=AC",
            ),
            ("Recurring", "Recurring=daily", "Recurring=hourly"),
            (
                "TriggerBy",
                "TriggerBy=count",
                "TriggerBy=countTriggerValue1000",
            ),
            ("TriggerValue", "TriggerValue=1000", "TriggerValue=1e3"),
            ("CurrentValue", "CurrentValue=1003", "CurrentValue=NaN"),
            ("CurrentValue", "CurrentValue=1003", "CurrentValue=inf"),
            (
                "UsageCategory",
                "UsageCategory=sms",
                "UsageCategory=smsUsageRecordUri%2F2010",
            ),
            ("UsageCategory", "UsageCategory=sms", "UsageCategory="),
            (
                "AccountSid",
                "&UsageTriggerSid",
                "&AccountSid=AC6efc9b5850127eaea3c1e8dea35cdf4a&UsageTriggerSid",
            ),
        ];
        for (field, from, to) in cases {
            let body = BODY.replace(from, to);
            assert_ne!(body, BODY, "{from} is in the body");
            let err = usage_trigger_event(body.as_bytes())
                .expect_err(&format!("{from} -> {to} must be refused"));
            assert_eq!(err.field, Some(field), "{from} -> {to}: {err}");
        }
        // Optional ones may be absent; an empty Recurring is a trigger that does not recur.
        let body = BODY
            .replace("&Recurring=daily", "&Recurring=")
            .replace("&TriggerBy=count", "");
        assert!(usage_trigger_event(body.as_bytes()).is_ok());
        let with_uri = format!(
            "{BODY}&UsageRecordUri=%2F2010-04-01%2FAccounts%2FAC6efc9b5850127eaea3c1e8dea35cdf4a%2FUsage%2FRecords%2FToday.json%3FCategory%3Dsms"
        );
        assert!(usage_trigger_event(with_uri.as_bytes()).is_ok());
        let bad_uri = format!("{BODY}&UsageRecordUri=https%3A%2F%2Fevil.example.com");
        assert_eq!(
            usage_trigger_event(bad_uri.as_bytes()).unwrap_err().field,
            Some("UsageRecordUri")
        );
    }

    /// The parameters as Twilio's form signature sees them: sorted, names and values
    /// concatenated. Two bodies with the same string have the same signature.
    fn signed_string(body: &str) -> String {
        let mut params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        params.sort();
        params.into_iter().map(|(k, v)| k + &v).collect()
    }

    fn encode(params: &[(&str, &str)]) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            form.append_pair(k, v);
        }
        form.finish()
    }

    #[test]
    fn a_re_split_callback_with_the_same_signature_is_refused_or_the_same_firing() {
        // GIVEN a captured callback and re-splits of it that keep Twilio's signed string, so
        // they verify with the genuine signature
        let url = "https://hooks.example.com/twilio/usage-triggers";
        let token = "usage-token";
        let signature = compute_signature(
            crate::signature::Algorithm::HmacSha1,
            token.as_bytes(),
            url,
            Some(BODY.as_bytes()),
        );
        let genuine = usage_trigger_event(BODY.as_bytes()).unwrap();
        let resplits = [
            // DateFired's name swallows the start of its value: DateFired is gone, so the
            // old code derived a new id and took the arrival time.
            encode(&[
                ("AccountSid", "AC6efc9b5850127eaea3c1e8dea35cdf4a"),
                ("CurrentValue", "1003"),
                ("DateFiredFri", ", 27 Nov 2026 09:12:44 +0000"),
                ("IdempotencyToken", "4e33aafaaeafc657671a1ad0"),
                ("Recurring", "daily"),
                ("TriggerBy", "count"),
                ("TriggerValue", "1000"),
                ("UsageCategory", "sms"),
                ("UsageTriggerSid", "UT4b4676e433d1e4ba8c0cfe99ca953f5e"),
            ]),
            // A boundary moved inside a parameter: the name takes a digit of the value.
            encode(&[
                ("AccountSid", "AC6efc9b5850127eaea3c1e8dea35cdf4a"),
                ("CurrentValue1", "003"),
                ("DateFired", "Fri, 27 Nov 2026 09:12:44 +0000"),
                ("IdempotencyToken", "4e33aafaaeafc657671a1ad0"),
                ("Recurring", "daily"),
                ("TriggerBy", "count"),
                ("TriggerValue", "1000"),
                ("UsageCategory", "sms"),
                ("UsageTriggerSid", "UT4b4676e433d1e4ba8c0cfe99ca953f5e"),
            ]),
            // The token swallows the optional Recurring that follows it.
            encode(&[
                ("AccountSid", "AC6efc9b5850127eaea3c1e8dea35cdf4a"),
                ("CurrentValue", "1003"),
                ("DateFired", "Fri, 27 Nov 2026 09:12:44 +0000"),
                ("IdempotencyToken", "4e33aafaaeafc657671a1ad0Recurringdaily"),
                ("TriggerBy", "count"),
                ("TriggerValue", "1000"),
                ("UsageCategory", "sms"),
                ("UsageTriggerSid", "UT4b4676e433d1e4ba8c0cfe99ca953f5e"),
            ]),
        ];
        let verifier = Verifier::new(SecretSet::new().with_auth_token(token));
        for body in &resplits {
            assert_eq!(signed_string(body), signed_string(BODY), "{body}");
            assert!(
                verifier
                    .verify(&SignedRequest {
                        url,
                        body: body.as_bytes(),
                        encoding: BodyEncoding::Form,
                        signature: Some(&signature),
                        signature_settings: None,
                    })
                    .is_ok(),
                "the signature holds for {body}"
            );
            // THEN each is refused, or is the genuine firing (a duplicate once deduplicated)
            match usage_trigger_event(body.as_bytes()) {
                Err(_) => {}
                Ok(event) => {
                    assert_eq!(event.id, genuine.id, "{body}");
                    assert_eq!(event.time, genuine.time, "{body}");
                }
            }
        }
        assert!(usage_trigger_event(resplits[0].as_bytes()).is_err());
        assert!(usage_trigger_event(resplits[1].as_bytes()).is_err());
    }
}
