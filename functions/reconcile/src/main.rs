//! The reconcile Lambda, run by an EventBridge schedule: each run looks up the stuck resources
//! and sweeps the window since the previous run. Everything is built once, at cold start; a
//! failed start (a configuration error names the variable to fix) is reported as an init error.

use lambda_runtime::{LambdaEvent, service_fn};
use reconcile::{config::Config, startup};
use serde_json::Value;
use twilio_events::lambda_init::or_report_init_error;

// Lambda hands a function one invocation at a time: one thread is enough.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    twilio_events::logging::init_json_logs();
    let config = or_report_init_error("ConfigError", async { Config::from_env() }).await?;
    let sdk = aws_config::load_from_env().await;
    let reconciler = or_report_init_error("StartupError", startup::aws(&config, &sdk)).await?;
    let handler = |event: LambdaEvent<Value>| startup::on_schedule(&reconciler, &config, event);
    lambda_runtime::run(service_fn(handler)).await
}
