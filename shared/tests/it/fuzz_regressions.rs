//! Inputs that made a fuzz target (fuzz/fuzz_targets/) fail, kept as tests so the bug stays
//! fixed. docs/fuzzing.md says how each was found.

use twilio_events::event::{CloudEvent, parse_delivery};

/// `resource_key()` is the Kinesis partition key, which must be 1 to 256 characters: an empty
/// one makes the stream refuse the record. A typed field that names the resource but is an
/// empty string must fall back (to the SID in `source`, then to the event id) instead of
/// being used. Found by the `parse_event` target's "resource_key is non-empty" assertion.
#[test]
fn an_empty_resource_field_does_not_make_an_empty_partition_key() {
    let cases = [
        // Rate-limit event with "resource_key": "".
        r#"{"id":"x","type":"com.twilio.apiusage.a.ratelimits","data":{"resource_key":"","current_rate":1,"rate_limit":2}}"#,
        // Error-log event with "sid": "" and no correlation_sid.
        r#"{"id":"x","type":"com.twilio.error-logs.error.logged","data":{"sid":""}}"#,
        // The project's own usage-trigger event with "usage_trigger_sid": "".
        r#"{"id":"x","type":"io.twilio-events.usage-trigger.fired","data":{"account_sid":"AC1","usage_trigger_sid":"","usage_category":"sms","trigger_value":1,"current_value":2}}"#,
    ];
    for text in cases {
        let event = CloudEvent::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(event.resource_key(), "x", "{text}");
        let body = format!("[{text}]");
        let delivery = parse_delivery(body.as_bytes()).unwrap();
        assert_eq!(delivery.events[0].resource_key(), "x", "{text}");
    }
}

/// With an empty resource field, the SID at the end of `source` is the next choice.
#[test]
fn an_empty_resource_field_falls_back_to_the_sid_in_source() {
    let text = r#"{"id":"x","type":"com.twilio.apiusage.a.ratelimits","source":"/2010-04-01/Accounts/AC00000000000000000000000000000000/Foo/RL00000000000000000000000000000000","data":{"resource_key":"","current_rate":1,"rate_limit":2}}"#;
    let event = CloudEvent::parse(text).unwrap();
    assert_eq!(event.resource_key(), "RL00000000000000000000000000000000");
}
