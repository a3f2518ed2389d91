//! Usage Trigger callbacks: arbitrary form bytes through `usage_trigger_event`.
//!
//! Asserts: no panic; a refusal names a callback parameter (or says the body is not a form) —
//! never the project's own synthesised CloudEvent failing to parse; an accepted callback is a
//! usage-trigger event whose id is deterministic, whose resource key is the (non-empty,
//! at most 256 characters) UsageTriggerSid, whose summary serialises, and whose raw JSON
//! parses back into the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twilio_events::event::{CloudEvent, Detail, Kind, ParseErrorKind, USAGE_TRIGGER_TYPE};
use twilio_events::usage_trigger::{PARAMETERS, usage_trigger_event};

fuzz_target!(|data: &[u8]| {
    let event = match usage_trigger_event(data) {
        Ok(event) => event,
        Err(error) => {
            let about_the_form = match error.field {
                Some(field) => PARAMETERS.contains(&field),
                None => matches!(error.kind, ParseErrorKind::Form(_)),
            };
            assert!(
                about_the_form,
                "refused for a reason that is not the callback's: {error:?}"
            );
            return;
        }
    };
    assert_eq!(event.kind(), Kind::UsageTrigger);
    assert_eq!(event.event_type, USAGE_TRIGGER_TYPE);
    let Detail::UsageTrigger(trigger) = &event.detail else {
        panic!("not a usage trigger detail: {:?}", event.detail);
    };
    assert!(trigger.trigger_value.is_finite() && trigger.current_value.is_finite());
    let key = event.resource_key();
    assert!(!key.is_empty(), "empty resource_key");
    assert!(key.chars().count() <= 256, "resource_key longer than 256 chars");
    assert!(trigger.usage_trigger_sid.starts_with(key));
    serde_json::to_string(&event.summary()).expect("summary serialises");
    let again = usage_trigger_event(data).expect("the same callback parses twice");
    assert_eq!(again.id, event.id, "a retried callback must get the same id");
    let reparsed = CloudEvent::parse(event.raw_json()).expect("the synthesised JSON parses");
    assert_eq!(reparsed.id, event.id);
    assert_eq!(reparsed.detail, event.detail);
});
