//! The Lambda side of a stream consumer (crm-sync, quota-alert): a Kinesis event source
//! mapping's records in as [`StreamRecord`]s, the outcome out as a partial batch response, the
//! invocation's deadline as an [`Instant`]. One copy, so both consumers agree on it.

use crate::stream::{BatchOutcome, BatchProcessor, StreamRecord};
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use std::time::{Duration, Instant, SystemTime};

/// The records of a Kinesis event, in order.
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

/// `BatchItemFailures` by sequence number (Lambda retries from the lowest); never an empty
/// identifier, which Lambda would take as a failure of the whole batch.
pub fn batch_response(outcome: BatchOutcome) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    response.set_failures(outcome.failed.into_iter().filter(|s| !s.is_empty()));
    response
}

/// How long a consumer gives itself when the runtime's deadline is not a real one (see
/// [`crate::deadline`]): shorter than the consumers' timeout in template.yaml.
const FALLBACK_BUDGET: Duration = Duration::from_secs(30);

/// The `Instant` matching a wall-clock deadline (the runtime's `Context::deadline()`).
pub fn deadline_instant(deadline: SystemTime) -> Instant {
    let received = Instant::now();
    crate::deadline::lambda_deadline(deadline, received).unwrap_or(received + FALLBACK_BUDGET)
}

/// Processes one Kinesis event and reports the failures by sequence number.
pub async fn handle<P: BatchProcessor>(
    processor: &P,
    event: KinesisEvent,
    deadline: SystemTime,
) -> KinesisEventResponse {
    let records = stream_records(event);
    let outcome = processor
        .process(&records, deadline_instant(deadline))
        .await;
    batch_response(outcome)
}

/// Runs a consumer's Lambda handler until the runtime stops it.
pub async fn run<P: BatchProcessor>(processor: P) -> Result<(), lambda_runtime::Error> {
    let processor = &processor;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            let deadline = event.context.deadline();
            Ok::<_, std::convert::Infallible>(handle(processor, event.payload, deadline).await)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kinesis_event_becomes_records_and_failures_a_partial_batch_response() {
        // GIVEN a Kinesis event as Lambda sends it (arrival time in seconds with three decimals)
        let event: KinesisEvent = serde_json::from_value(serde_json::json!({"Records": [{
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "SM1", "sequenceNumber": "4954",
                        "data": "eyJhIjoxfQ==", "approximateArrivalTimestamp": 1714557600.987},
            "eventSource": "aws:kinesis", "eventID": "shardId-000000000000:4954"}]}))
        .unwrap();
        // WHEN converted
        let records = stream_records(event);
        // THEN the data is decoded, the key, sequence number and arrival time kept
        assert_eq!(records[0].data, br#"{"a":1}"#);
        assert_eq!(
            (
                records[0].partition_key.as_str(),
                records[0].sequence_number.as_str()
            ),
            ("SM1", "4954")
        );
        let arrived = records[0].arrived_at.unwrap();
        assert_eq!(
            (arrived.unix_timestamp(), arrived.millisecond()),
            (1_714_557_600, 987)
        );
        // AND failures are reported by sequence number, never empty
        let response = batch_response(BatchOutcome {
            failed: vec!["4954".into(), String::new()],
        });
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "4954"}]})
        );
    }

    #[test]
    fn the_deadline_is_the_time_left() {
        let left = deadline_instant(SystemTime::now() + Duration::from_secs(10)) - Instant::now();
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        let past = deadline_instant(SystemTime::now() - Duration::from_secs(10));
        assert!(past <= Instant::now() + Duration::from_millis(1));
        // AND a placeholder from decades ago leaves the fallback budget
        let placeholder = deadline_instant(SystemTime::UNIX_EPOCH + Duration::from_secs(600));
        assert!(placeholder > Instant::now() + Duration::from_secs(29));
    }
}
