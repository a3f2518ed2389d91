//! The Lambda function: a Kinesis event source mapping with partial batch responses.
//! Everything is built once, at cold start; configuration errors stop the start with a message
//! that says which variable to fix.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use crm_sync::config::{AwsProcessor, Config, aws_processor};
use crm_sync::lambda;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use twilio_events::stream::BatchProcessor;

async fn handle(
    processor: &AwsProcessor,
    event: LambdaEvent<KinesisEvent>,
) -> Result<KinesisEventResponse, Error> {
    let deadline = lambda::deadline(event.context.deadline);
    let records = lambda::stream_records(event.payload);
    let outcome = processor.process(&records, deadline).await;
    Ok(lambda::batch_response(outcome))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    twilio_events::logging::init_json_logs();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let processor = aws_processor(&config, &sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "could not start"))?;
    let processor = &processor;
    lambda_runtime::run(service_fn(move |event| handle(processor, event))).await
}
