//! The Lambda function: a Kinesis event source mapping with partial batch responses. The
//! producer is built once, at cold start, and kept across invocations; a failed start (a
//! configuration error names the variable to fix) is reported to the Runtime API as an init
//! error.

use kafka_forward::{config::Config, startup};
use twilio_events::lambda_init::or_report_init_error;

// One thread: Lambda hands an execution environment one batch at a time (see ingest's main);
// librdkafka runs its own threads for the network.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    twilio_events::logging::init_json_logs();
    let config = or_report_init_error("ConfigError", async { Config::from_env() }).await?;
    let sdk = aws_config::load_from_env().await;
    let forwarder = or_report_init_error("StartupError", startup::aws(&config, &sdk)).await?;
    twilio_events::kinesis_lambda::run(forwarder).await
}
