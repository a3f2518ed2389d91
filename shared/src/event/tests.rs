use super::*;
use crate::status::{CallStatus, MessageStatus};

const SENT: &str = r#"{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/SM00000000000000000000000000000001.json","id":"EZ1","time":"2026-11-01T09:51:51.637Z","data":{"messageSid":"SM00000000000000000000000000000001","messageStatus":"SENT","accountSid":"AC00000000000000000000000000000001","from":"+12065550100","to":"+14155550199","numberOfSegments":2,"errorCode":"30003","body":"secret words"}}"#;

#[test]
fn an_array_keeps_each_event_byte_for_byte() {
    let body = format!("[ {SENT} ,\n{SENT}]");
    let delivery = parse_delivery(body.as_bytes()).unwrap();
    assert_eq!(delivery.events.len(), 2);
    assert!(delivery.rejected.is_empty());
    assert_eq!(delivery.events[0].raw_json(), SENT);
    assert_eq!(delivery.events[1].raw_json(), SENT);
}

#[test]
fn a_message_status_event_has_its_typed_view() {
    let event = CloudEvent::parse(SENT).unwrap();
    assert_eq!(event.kind(), Kind::Message);
    assert_eq!(event.resource_key(), "SM00000000000000000000000000000001");
    assert_eq!(event.account(), Some("AC00000000000000000000000000000001"));
    assert_eq!(event.status(), Some("sent"));
    assert_eq!(event.status_rank(), MessageStatus::Sent.rank());
    let Detail::Message(m) = &event.detail else {
        panic!()
    };
    assert_eq!((m.segments, m.error_code), (Some(2), Some(30003)));
    assert_eq!(m.from.as_ref().map(|f| f.0.as_str()), Some("+12065550100"));
    let debug = format!("{event:?}");
    assert!(
        !debug.contains("+12065550100") && !debug.contains("+14155550199"),
        "{debug}"
    );
}

#[test]
fn the_summary_carries_no_personal_data() {
    let event = CloudEvent::parse(SENT).unwrap();
    let line = serde_json::to_string(&event.summary()).unwrap();
    assert_eq!(
        line,
        r#"{"id":"EZ1","type":"com.twilio.messaging.message.sent","time":"2026-11-01T09:51:51.637Z","resource":"SM00000000000000000000000000000001","account":"AC00000000000000000000000000000001","kind":"message","status":"sent"}"#
    );
}

#[test]
fn call_events_in_current_and_deprecated_names() {
    for prefix in [
        "com.twilio.voice.status-callback.call",
        "com.twilio.voice.webhook.status-callback.call",
    ] {
        let json = format!(
            r#"{{"id":"EZ2","type":"{prefix}.completed","data":{{"request":{{"parameters":{{"CallSid":"CA1","CallStatus":"busy","CallDuration":"0","AccountSid":"AC1","From":"+1","To":"+2"}}}}}}}}"#
        );
        let event = CloudEvent::parse(&json).unwrap();
        let Detail::Call(call) = &event.detail else {
            panic!("{:?}", event.detail)
        };
        assert_eq!(call.call_sid, "CA1");
        assert_eq!(
            call.status,
            CallStatus::Busy,
            "CallStatus is more precise than the type"
        );
        assert_eq!(call.duration, Some(0));
        assert_eq!(event.resource_key(), "CA1");
        assert_eq!(event.status_rank(), CallStatus::Completed.rank());
    }
}

#[test]
fn data_may_be_a_json_string() {
    let json = r#"{"id":"AC1","type":"com.twilio.eventstreams.test-event","source":"Sink","data":"{\"test_id\":\"t-1\"}"}"#;
    let event = CloudEvent::parse(json).unwrap();
    assert_eq!(
        event.detail,
        Detail::Test(TestEvent {
            test_id: "t-1".into()
        })
    );
    assert_eq!(event.raw_json(), json);
}

#[test]
fn unknown_types_pass_through_with_a_fallback_key() {
    let json = r#"{"id":"EZ3","type":"com.twilio.studio.flow.execution.started","source":"/v2/Flows/FW00000000000000000000000000000001/Executions/FN00000000000000000000000000000001","data":{"anything":[1,2,{"deep":true}]}}"#;
    let event = CloudEvent::parse(json).unwrap();
    assert_eq!(event.kind(), Kind::Other);
    assert_eq!(event.resource_key(), "FN00000000000000000000000000000001");
    let bare = CloudEvent::parse(r#"{"id":"EZ4","type":"x.y","data":{"n":1}}"#).unwrap();
    assert_eq!(bare.resource_key(), "EZ4", "no SID anywhere: the event id");
}

fn delivery_error(body: &[u8]) -> ParseError {
    parse_delivery(body).unwrap_err()
}

fn event_error(json: &str) -> ParseError {
    let body = format!("[{SENT},{json}]");
    let delivery = parse_delivery(body.as_bytes()).unwrap();
    assert_eq!(delivery.events.len(), 1, "the good event still parses");
    delivery.rejected[0].error.clone()
}

#[test]
fn malformed_deliveries_say_what_is_wrong() {
    assert_eq!(delivery_error(b"").kind, ParseErrorKind::Empty);
    assert_eq!(delivery_error(b"  \n").kind, ParseErrorKind::Empty);
    assert_eq!(delivery_error(b"[]").kind, ParseErrorKind::EmptyArray);
    assert!(matches!(
        delivery_error(&SENT.as_bytes()[..SENT.len() / 2]).kind,
        ParseErrorKind::NotJson(_)
    ));
    assert!(matches!(
        delivery_error(b"\"just a string\"").kind,
        ParseErrorKind::NotJson(_)
    ));
    assert!(matches!(
        delivery_error(b"[1] trailing").kind,
        ParseErrorKind::NotJson(_)
    ));
    assert!(matches!(
        delivery_error(b"\xff\xfe").kind,
        ParseErrorKind::NotUtf8 { valid_up_to: 0 }
    ));
}

#[test]
fn malformed_events_are_located_by_index_and_field() {
    let e = event_error("42");
    assert_eq!(
        (e.index, e.kind.clone()),
        (Some(1), ParseErrorKind::NotAnObject)
    );
    assert_eq!(e.to_string(), "event #1: an event must be a JSON object");
    let e = event_error(r#"{"type":"x"}"#);
    assert_eq!((e.index, e.field), (Some(1), Some("id")));
    assert_eq!(e.to_string(), "event #1, field `id`: missing");
    let e = event_error(r#"{"id":7,"type":"x"}"#);
    assert_eq!(e.to_string(), "event #1, field `id`: expected a string");
    let e = event_error(r#"{"id":"a","type":"x","time":"yesterday"}"#);
    assert_eq!(e.field, Some("time"));
    let e = event_error(
        r#"{"id":"a","type":"com.twilio.messaging.message.sent","data":{"messageSid":5}}"#,
    );
    assert_eq!(
        e.to_string(),
        "event #1, field `data.messageSid`: expected a string"
    );
    let e = event_error(r#"{"id":"a","type":"com.twilio.messaging.message.sent","data":{}}"#);
    assert_eq!(e.field, Some("data.messageSid"));
    let e =
        event_error(r#"{"id":"a","type":"com.twilio.messaging.message.sent","data":"{not json"}"#);
    assert_eq!(e.field, Some("data"));
    let e = event_error(
        r#"{"id":"a","type":"com.twilio.apiusage.taskrouter.ratelimits","data":{"current_rate":"fast","rate_limit":5}}"#,
    );
    assert_eq!(e.field, Some("data.current_rate"));
}

#[test]
fn deeply_nested_and_huge_garbage_fail_cleanly() {
    let deep = format!(
        "[{{\"id\":\"a\",\"type\":\"x\",\"data\":{}{}}}]",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        delivery_error(deep.as_bytes()).kind,
        ParseErrorKind::TooDeep { max: MAX_DEPTH }
    );
    let brackets_in_strings = format!("[{{\"id\":\"{}\",\"type\":\"x\"}}]", "[{".repeat(1000));
    assert!(
        parse_delivery(brackets_in_strings.as_bytes()).is_ok(),
        "brackets inside strings do not nest"
    );
    let garbage: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    assert!(parse_delivery(&garbage).is_err());
    let mut array_of_junk = b"[".to_vec();
    array_of_junk.extend(std::iter::repeat_n(b'{', 10 * 1024 * 1024));
    assert!(parse_delivery(&array_of_junk).is_err());
}

#[test]
fn strict_mode_returns_the_first_error() {
    let body = format!("[{SENT},{{}}]");
    let err = parse_delivery(body.as_bytes())
        .unwrap()
        .into_strict()
        .unwrap_err();
    assert_eq!(err.index, Some(1));
}

#[test]
fn the_sink_test_event_belongs_to_the_account_its_id_names() {
    let test = |id: &str| {
        format!(
            r#"{{"id":"{id}","type":"com.twilio.eventstreams.test-event","source":"Sink","data":{{"test_id":"t-1"}}}}"#
        )
    };
    let json = test("AC11111111111111111111111111111111");
    let event = CloudEvent::parse(&json).unwrap();
    assert_eq!(event.account(), None);
    assert_eq!(
        event.owner_account(),
        Some("AC11111111111111111111111111111111")
    );
    let json = test("EZ1");
    assert_eq!(CloudEvent::parse(&json).unwrap().owner_account(), None);
    let sent = CloudEvent::parse(SENT).unwrap();
    assert_eq!(sent.owner_account(), sent.account());
}
