//! The Kinesis event source mapping's side: its records as [`StreamRecord`]s, the outcome as a
//! partial batch response, the invocation deadline as an [`Instant`].

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use twilio_events::stream::{BatchOutcome, StreamRecord};

pub fn stream_records(event: KinesisEvent) -> Vec<StreamRecord> {
    event
        .records
        .into_iter()
        .map(|r| {
            let arrived = r.kinesis.approximate_arrival_timestamp.0;
            StreamRecord {
                sequence_number: r.kinesis.sequence_number,
                partition_key: r.kinesis.partition_key,
                data: r.kinesis.data.0,
                arrived_at: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(arrived.timestamp()) * 1_000_000_000
                        + i128::from(arrived.timestamp_subsec_nanos()),
                )
                .ok(),
            }
        })
        .collect()
}

/// `BatchItemFailures` by sequence number (Lambda retries from the lowest).
pub fn batch_response(outcome: BatchOutcome) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    response.set_failures(outcome.failed.into_iter().filter(|s| !s.is_empty()));
    response
}

/// The invocation's deadline (milliseconds since the epoch, from the runtime) as an `Instant`.
pub fn deadline(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kinesis_event_becomes_records_and_failures_become_a_partial_batch_response() {
        // GIVEN a Kinesis event as Lambda sends it
        let event: KinesisEvent = serde_json::from_value(serde_json::json!({"Records": [{
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "SM1", "sequenceNumber": "4954",
                        "data": "eyJhIjoxfQ==", "approximateArrivalTimestamp": 1714557600.5},
            "eventSource": "aws:kinesis", "eventID": "shardId-000000000000:4954"}]}))
        .unwrap();
        // WHEN converted
        let records = stream_records(event);
        // THEN the data is decoded and the key and sequence number kept
        assert_eq!(records[0].data, br#"{"a":1}"#);
        assert_eq!(
            (
                records[0].partition_key.as_str(),
                records[0].sequence_number.as_str()
            ),
            ("SM1", "4954")
        );
        assert_eq!(
            records[0].arrived_at.unwrap().unix_timestamp(),
            1_714_557_600
        );
        // AND failures are reported by sequence number, never empty
        let response = batch_response(BatchOutcome {
            failed: vec!["4954".into(), String::new()],
        });
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "4954"}]})
        );
    }

    #[test]
    fn the_deadline_is_in_the_future_by_the_time_left() {
        let in_ten_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 10_000;
        let left = deadline(in_ten_s) - Instant::now();
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        assert!(deadline(0) <= Instant::now());
    }
}
