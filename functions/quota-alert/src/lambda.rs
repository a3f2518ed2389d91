//! The Lambda side: Kinesis events in, partial batch responses out.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use std::time::{Duration, Instant, SystemTime};
use twilio_events::stream::{BatchProcessor, StreamRecord};

/// The records of a Kinesis event, in order.
pub fn stream_records(event: KinesisEvent) -> Vec<StreamRecord> {
    event
        .records
        .into_iter()
        .map(|r| {
            let k = r.kinesis;
            StreamRecord {
                sequence_number: k.sequence_number,
                partition_key: k.partition_key,
                data: k.data.0,
                arrived_at: time::OffsetDateTime::from_unix_timestamp(
                    k.approximate_arrival_timestamp.0.timestamp(),
                )
                .ok(),
            }
        })
        .collect()
}

/// The `Instant` matching a wall-clock deadline.
pub fn instant_deadline(deadline: SystemTime) -> Instant {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// Processes one Kinesis event and reports the failures by sequence number.
pub async fn handle<P: BatchProcessor>(
    processor: &P,
    event: KinesisEvent,
    deadline: SystemTime,
) -> KinesisEventResponse {
    let records = stream_records(event);
    let outcome = processor
        .process(&records, instant_deadline(deadline))
        .await;
    let mut response = KinesisEventResponse::default();
    response.set_failures(outcome.failed);
    response
}

/// Runs the Lambda handler until the runtime stops it.
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
