//! The quota-alert Lambda: its configuration from the environment, the AWS adapters wired once,
//! then the shared Kinesis consumer loop.

use quota_alert::{Config, startup};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    twilio_events::logging::init_json_logs();
    let config = Config::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "refusing to start with this environment"))?;
    let sdk = aws_config::load_from_env().await;
    let processor = startup::aws(config, &sdk).await.inspect_err(|e| {
        tracing::error!(error = %e, "refusing to start with this quota configuration");
    })?;
    twilio_events::kinesis_lambda::run(processor).await
}
