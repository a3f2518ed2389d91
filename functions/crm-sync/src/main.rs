//! The Lambda function: a Kinesis event source mapping with partial batch responses.
//! Everything is built once, at cold start; configuration errors stop the start with a message
//! that says which variable to fix.

use crm_sync::{config::Config, startup};
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    twilio_events::logging::init_json_logs();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let processor = startup::aws_processor(&config, &sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "could not start"))?;
    twilio_events::kinesis_lambda::run(processor).await
}
