//! The quota-alert Lambda: its configuration from the environment, the AWS adapters wired once,
//! then the shared Kinesis consumer loop. A failed start is logged and reported to the Runtime
//! API as an init error.

use quota_alert::{Config, startup};
use twilio_events::lambda_init::or_report_init_error;

// One thread: Lambda hands an execution environment one batch at a time (see ingest's main).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    twilio_events::logging::init_json_logs();
    let config = or_report_init_error("ConfigError", async { Config::from_env() }).await?;
    let sdk = aws_config::load_from_env().await;
    let processor = or_report_init_error("StartupError", startup::aws(config, &sdk)).await?;
    twilio_events::kinesis_lambda::run(processor).await
}
