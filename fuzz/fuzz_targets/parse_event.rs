//! One CloudEvent (a Kinesis record, a webhook array element): `CloudEvent::parse` on
//! arbitrary UTF-8.
//!
//! Asserts: no panic; `raw_json()` is the input itself; `resource_key()` is non-empty and at
//! most 256 characters; `summary()` serialises; `parse_owned` agrees with `parse`; the
//! timestamp `time` was validated against is readable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twilio_events::event::CloudEvent;

fuzz_target!(|text: &str| {
    let Ok(event) = CloudEvent::parse(text) else {
        assert!(
            CloudEvent::parse_owned(text.to_owned()).is_err(),
            "parse_owned accepts what parse rejects"
        );
        return;
    };
    assert_eq!(event.raw_json(), text);
    assert!(!event.id.is_empty(), "an event with an empty id");
    let key = event.resource_key();
    assert!(!key.is_empty(), "empty resource_key for {event:?}");
    assert!(key.chars().count() <= 256, "resource_key longer than 256 chars");
    assert_eq!(event.time.is_some(), event.timestamp().is_some());
    let _ = (event.account(), event.status(), event.status_rank(), event.kind());
    serde_json::to_string(&event.summary()).expect("summary serialises");
    let owned = CloudEvent::parse_owned(text.to_owned()).expect("parse_owned agrees with parse");
    assert_eq!(owned.raw_json(), text);
    assert_eq!(owned.id, event.id);
    assert_eq!(owned.detail, event.detail);
});
