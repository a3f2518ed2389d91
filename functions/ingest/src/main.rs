//! The ingest Lambda: its configuration read (config.rs), its clients and secrets set up once
//! (startup.rs), then API Gateway requests until the runtime stops. A failed start is logged
//! and reported to the Runtime API as an init error.
//!
//! One thread: Lambda hands an execution environment one invocation at a time, so a
//! multi-thread runtime's workers would only wake each other (docs/benchmarks.md: its cost per
//! AWS call). The calls of one invocation still run concurrently, as tasks of this thread.

use ingest::config::Config;
use ingest::{lambda, startup};
use std::sync::Arc;
use twilio_events::lambda_init::or_report_init_error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    twilio_events::logging::init_json_logs();
    let config = or_report_init_error("ConfigError", async { Config::from_env() }).await?;
    let sdk = startup::sdk_config().await;
    let ingest = or_report_init_error("StartupError", startup::aws(&config, &sdk)).await?;
    lambda::run(Arc::new(ingest)).await
}
