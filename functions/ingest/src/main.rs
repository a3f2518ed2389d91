//! The ingest Lambda: its configuration read (config.rs), its clients and secrets set up once
//! (startup.rs), then API Gateway requests until the runtime stops.

use ingest::config::Config;
use ingest::{lambda, startup};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    twilio_events::logging::init_json_logs();
    let config = Config::from_env().inspect_err(
        |e| tracing::error!(variable = e.variable(), error = %e, "invalid configuration"),
    )?;
    let sdk = aws_config::load_from_env().await;
    let ingest = startup::aws(&config, &sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "could not start"))?;
    lambda::run(Arc::new(ingest)).await
}
