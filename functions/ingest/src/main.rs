//! The ingest Lambda: wires the AWS clients once, then serves API Gateway requests.
//!
//! Environment: PUBLIC_BASE_URL, DEDUP_TABLE, STREAM_NAME, QUARANTINE_QUEUE_URL, and the Twilio
//! secrets as TWILIO_SECRET_ARN (Secrets Manager) or TWILIO_AUTH_TOKEN (comma-separated); see
//! `ingest::config` for the optional settings.

use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::adapters::kinesis::KinesisPublisher;
use ingest::config::{secrets_from_document, settings_from};
use ingest::{Ingest, lambda};
use std::sync::Arc;
use twilio_events::metrics::StdoutSink;
use twilio_events::quarantine::SqsQuarantine;
use twilio_events::secrets_manager::read_secret_string;
use twilio_events::signature::Verifier;

fn required(name: &'static str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    twilio_events::logging::init_json_logs();

    let settings = settings_from(|k| std::env::var(k).ok())?;
    let aws = aws_config::load_from_env().await;
    let secret_document = match std::env::var("TWILIO_SECRET_ARN") {
        Ok(arn) => read_secret_string(&aws_sdk_secretsmanager::Client::new(&aws), &arn).await?,
        Err(_) => required("TWILIO_AUTH_TOKEN")
            .map_err(|e| format!("{e}, and neither is TWILIO_SECRET_ARN"))?,
    };
    let verifier = Verifier::new(secrets_from_document(&secret_document)?);
    let ingest = Ingest::new(
        settings,
        verifier,
        DynamoDedupStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            required("DEDUP_TABLE")?,
        ),
        KinesisPublisher::new(aws_sdk_kinesis::Client::new(&aws), required("STREAM_NAME")?),
        SqsQuarantine::new(
            aws_sdk_sqs::Client::new(&aws),
            required("QUARANTINE_QUEUE_URL")?,
        ),
        StdoutSink,
    );
    lambda::run(Arc::new(ingest)).await
}
