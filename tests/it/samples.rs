//! Every sample payload in tests/fixtures/twilio/samples parses with the fields a user would expect.
//! The docs-generated ones (placeholder source/id, no time) are read leniently.

use twilio_events::event::{CloudEvent, Detail, Kind, parse_delivery};
use twilio_events::status::{CallStatus, MessageStatus};
use twilio_events::usage_trigger::usage_trigger_event;
use twilio_events_testkit::{read_sample, samples_dir};

fn one_event(name: &str) -> (Vec<u8>, usize) {
    let body = read_sample(name);
    let delivery = parse_delivery(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        delivery.rejected.is_empty(),
        "{name}: {:?}",
        delivery.rejected
    );
    let n = delivery.events.len();
    (body, n)
}

fn parse(body: &[u8]) -> CloudEvent<'_> {
    let mut events = parse_delivery(body).unwrap().into_strict().unwrap();
    assert_eq!(events.len(), 1);
    events.remove(0)
}

#[test]
fn the_test_event_array_is_kept_byte_for_byte() {
    let (body, n) = one_event("01_webhook_body_test-event_array.json");
    assert_eq!(n, 1);
    let event = parse(&body);
    assert_eq!(event.kind(), Kind::Test);
    assert_eq!(event.id, "AC11111111111111111111111111111111");
    assert_eq!(event.source.as_deref(), Some("Sink"));
    let Detail::Test(test) = &event.detail else {
        panic!()
    };
    assert_eq!(test.test_id, "cae2f9e2-c277-4612-8ad3-93c1a7a3ef88");
    // The body is `[` + the event + `]`: the event's bytes are exactly what Twilio sent.
    assert_eq!(
        format!("[{}]", event.raw_json()).as_bytes(),
        body.as_slice()
    );
}

#[test]
fn a_kinesis_record_with_data_as_a_string() {
    let body = read_sample("02_kinesis_record_test-event_data-as-string.json");
    let text = std::str::from_utf8(&body).unwrap();
    let event = CloudEvent::parse(text.trim_end()).unwrap();
    let Detail::Test(test) = &event.detail else {
        panic!()
    };
    assert_eq!(test.test_id, "95001c1e-5b8e-45f5-830d-f9cbf1d16420");
    assert_eq!(event.time.as_deref(), Some("2020-08-18T21:10:02.113Z"));
}

#[test]
fn an_inbound_message_as_a_bare_object() {
    let body = read_sample("03_messaging_inbound-message.received_single_object.json");
    let event = parse(&body);
    assert_eq!(
        event.kind(),
        Kind::Other,
        "inbound messages are not status updates"
    );
    assert_eq!(event.resource_key(), "SMe0000000000000000000000000000006");
    assert_eq!(event.account(), Some("AC0000000000000000000000000000000d"));
    assert_eq!(event.status(), None);
}

#[test]
fn an_observed_message_sent_envelope() {
    let body = read_sample("04_messaging_message.sent_observed_envelope.json");
    let event = parse(&body);
    let Detail::Message(m) = &event.detail else {
        panic!("{:?}", event.detail)
    };
    assert_eq!(m.message_sid, "SMaf53f755fc01b434d69700511984da79");
    assert_eq!(m.status, MessageStatus::Sent);
    assert_eq!(event.id, "EZf40f223873cb33b29e536dbcc34fb98b");
    assert_eq!(event.resource_key(), "SMaf53f755fc01b434d69700511984da79");
    assert_eq!(
        event.account(),
        Some("ACxxx"),
        "from the source path when data has none"
    );
    assert!(event.timestamp().is_some());
}

#[test]
fn the_docs_message_delivered_example_is_read_leniently() {
    let body = read_sample("05_messaging_message.delivered_docs_example.json");
    let event = parse(&body);
    let Detail::Message(m) = &event.detail else {
        panic!()
    };
    // The generator put QUEUED in messageStatus; the type says what happened.
    assert_eq!(m.status, MessageStatus::Delivered);
    assert_eq!(m.segments, Some(1));
    assert_eq!(
        m.messaging_service_sid.as_deref(),
        Some("MG0000000000000000000000000000001")
    );
    assert_eq!(event.account(), Some("AC0000000000000000000000000000001"));
    assert_eq!(event.time, None, "docs examples have no time");
}

#[test]
fn the_voice_webhook_event_shape() {
    let body = read_sample("06_voice_status-callback.amd.detected_docs_example.json");
    let event = parse(&body);
    // amd.detected is not a call status event; its resource is still the call.
    assert_eq!(event.kind(), Kind::Other);
    assert_eq!(event.resource_key(), "CA0000000000000000000000000000001");
    // The same shape under a call status type reads as a call.
    let text = std::str::from_utf8(&body).unwrap().replace(
        "status-callback.amd.detected",
        "status-callback.call.ringing",
    );
    let call = CloudEvent::parse(&text).unwrap();
    let Detail::Call(c) = &call.detail else {
        panic!()
    };
    assert_eq!(
        (c.call_sid.as_str(), &c.status),
        ("CA0000000000000000000000000000001", &CallStatus::Ringing)
    );
}

#[test]
fn voice_insights_with_data_as_a_string() {
    let body = read_sample("07_voice_insights_call-summary.predicted-complete_data-as-string.json");
    let event = parse(&body);
    assert_eq!(event.kind(), Kind::Other);
    assert_eq!(event.resource_key(), "CA00000000000000000000000000000000");
}

#[test]
fn the_taskrouter_rate_limit_example() {
    let body = read_sample("08_taskrouter_apiusage.ratelimits_docs_example.json");
    let event = parse(&body);
    let Detail::RateLimit(r) = &event.detail else {
        panic!()
    };
    assert_eq!(
        (r.current_rate, r.rate_limit, r.rate_limited),
        (1.4, 50.0, false)
    );
    assert_eq!(r.product.as_deref(), Some("taskrouter"));
    assert_eq!(event.account(), Some("AC0000000000000000000000000000001"));
    assert_eq!(event.resource_key(), "TaskQueueStatistics-List");
}

#[test]
fn a_verify_event_passes_through() {
    let body = read_sample("09_verify_message.delivered_docs_example.json");
    let event = parse(&body);
    assert_eq!(event.kind(), Kind::Other);
    assert_eq!(event.account(), Some("AC0000000000000000000000000000001"));
}

#[test]
fn the_usage_trigger_callback_parameters() {
    let text = String::from_utf8(read_sample("10_usage_trigger_callback_form_params.txt")).unwrap();
    let params: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    // The fixture's AccountSid is a placeholder ("<AC...>"): refused as it is, since an
    // account SID is AC + 32 hex digits; read with a well-formed one in its place.
    let body = twilio_events_testkit::encode_form(&params);
    assert_eq!(
        usage_trigger_event(body.as_bytes()).unwrap_err().field,
        Some("AccountSid")
    );
    let params: Vec<(String, String)> = params
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "AccountSid" => (k, "AC00000000000000000000000000000001".to_owned()),
            _ => (k, v),
        })
        .collect();
    let body = twilio_events_testkit::encode_form(&params);
    let event = usage_trigger_event(body.as_bytes()).unwrap();
    let Detail::UsageTrigger(t) = &event.detail else {
        panic!()
    };
    assert_eq!(t.usage_category, "totalprice");
    assert_eq!((t.trigger_value, t.current_value), (60.0, 60.52));
    assert_eq!(t.recurring.as_deref(), Some("monthly"));
    assert_eq!(event.time.as_deref(), Some("2026-10-04T12:00:00Z"));
}

#[test]
fn no_sample_is_left_untested() {
    let tested = [
        "01_", "02_", "03_", "04_", "05_", "06_", "07_", "08_", "09_", "10_", "11_", "README",
    ];
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            tested.iter().any(|p| name.starts_with(p)),
            "sample {name} has no test"
        );
    }
}
