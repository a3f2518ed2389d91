//! The Lambda handler: a Kinesis event as Lambda delivers it in, a partial batch response out.

use base64::Engine as _;
use quota_alert::adapters::memory::{MemoryPublisher, MemoryStore};
use quota_alert::fixtures;
use quota_alert::{QuotaAlert, Quotas};
use std::time::{Duration, SystemTime};
use time::macros::datetime;
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::MemoryQuarantine;

fn kinesis_event(events: &[String]) -> aws_lambda_events::event::kinesis::KinesisEvent {
    let records: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "SM1",
                    "sequenceNumber": format!("4959{i:04}"),
                    "data": base64::engine::general_purpose::STANDARD.encode(e),
                    "approximateArrivalTimestamp": 1_773_129_600.5
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:4959{i:04}"),
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/twilio-events"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("a Kinesis event")
}

fn processor() -> QuotaAlert<MemoryStore, MemoryPublisher, NoMetrics, MemoryQuarantine> {
    QuotaAlert::new(
        Quotas::parse(
            r#"{"quotas": [{"name": "d", "counts": "messages", "window": "day", "limit": 2, "thresholds": [1.0]}]}"#,
        )
        .unwrap(),
        MemoryStore::default(),
        MemoryPublisher::default(),
        NoMetrics,
        MemoryQuarantine::default(),
    )
}

#[tokio::test]
async fn a_kinesis_event_is_processed_and_answered_with_no_failures() {
    // GIVEN two sent events as Lambda delivers them (base64 data)
    let qa = processor();
    let events: Vec<String> = (0..2)
        .map(|i| fixtures::message_sent(i, datetime!(2026-03-10 08:00 UTC)))
        .collect();
    // WHEN the handler runs with time to spare
    let response = twilio_events::kinesis_lambda::handle(
        &qa,
        kinesis_event(&events),
        SystemTime::now() + Duration::from_secs(60),
    )
    .await;
    // THEN it reports no failures and the limit alert went out
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": []})
    );
    assert_eq!(qa.publisher().alerts().len(), 1);
}

#[tokio::test]
async fn records_it_has_no_time_for_are_reported_by_sequence_number() {
    let qa = processor();
    let events = [fixtures::message_sent(1, datetime!(2026-03-10 08:00 UTC))];
    // WHEN the deadline has already passed
    let response =
        twilio_events::kinesis_lambda::handle(&qa, kinesis_event(&events), SystemTime::now()).await;
    // THEN the record is a batch item failure, for Lambda to retry
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "49590000"}]})
    );
}

#[test]
fn arrival_times_are_kept() {
    let records = twilio_events::kinesis_lambda::stream_records(kinesis_event(&["{}".to_owned()]));
    assert_eq!(
        records[0].arrived_at.map(|t| t.unix_timestamp()),
        Some(1_773_129_600)
    );
    assert_eq!(records[0].data, b"{}");
}
