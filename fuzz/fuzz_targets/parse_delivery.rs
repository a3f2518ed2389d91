//! Event Streams webhook bodies: arbitrary bytes through `parse_delivery`.
//!
//! Asserts: no panic; every event and every rejected event is a slice of the input, byte for
//! byte (what goes into the stream is exactly what Twilio sent); `resource_key()` (the Kinesis
//! partition key) is non-empty and at most 256 characters; `summary()` serialises; and each
//! event's raw JSON parses again on its own into the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twilio_events::event::{CloudEvent, parse_delivery};

fn contains(haystack: &[u8], needle: &str) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Whether `part` is a sub-slice of `whole` (the parser borrows, so it must point inside).
fn points_into(whole: &[u8], part: &str) -> bool {
    let (start, end) = (whole.as_ptr() as usize, whole.as_ptr() as usize + whole.len());
    let p = part.as_ptr() as usize;
    p >= start && p + part.len() <= end
}

fuzz_target!(|data: &[u8]| {
    let Ok(delivery) = parse_delivery(data) else {
        return;
    };
    assert!(
        !delivery.events.is_empty() || !delivery.rejected.is_empty(),
        "a delivery that parses has at least one event"
    );
    for rejected in &delivery.rejected {
        assert!(points_into(data, rejected.raw), "rejected raw is not from the input");
        assert!(rejected.error.index.is_some(), "a rejected event has no index");
    }
    for event in &delivery.events {
        check_event(data, event);
    }
});

fn check_event(data: &[u8], event: &CloudEvent<'_>) {
    let raw = event.raw_json();
    assert!(contains(data, raw), "raw_json is not a substring of the input");
    let key = event.resource_key();
    assert!(!key.is_empty(), "empty resource_key for {event:?}");
    assert!(key.chars().count() <= 256, "resource_key longer than 256 chars");
    serde_json::to_string(&event.summary()).expect("summary serialises");
    let again = CloudEvent::parse(raw).expect("an event's raw JSON parses on its own");
    assert_eq!(again.id, event.id);
    assert_eq!(again.event_type, event.event_type);
    assert_eq!(again.detail, event.detail);
    assert_eq!(again.resource_key(), key);
}
