//! The quota-alert Lambda: wires the AWS clients once and runs the handler.

use quota_alert::{ConfigSource, DynamoUsageCounter, QuotaAlert, Settings, SnsAlertPublisher};
use twilio_events::metrics::StdoutSink;
use twilio_events::quarantine::SqsQuarantine;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    twilio_events::logging::init_json_logs();

    let settings = Settings::from_env()?;
    let aws = aws_config::load_from_env().await;
    let source = ConfigSource::from_env()?;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let config = source.load(Some(&ssm)).await.inspect_err(|e| {
        tracing::error!(error = %e, "refusing to start with this quota configuration");
    })?;
    tracing::info!(quotas = config.quotas.len(), "quota configuration loaded");

    let processor = QuotaAlert::new(
        config,
        DynamoUsageCounter::new(aws_sdk_dynamodb::Client::new(&aws), settings.counter_table),
        SnsAlertPublisher::new(aws_sdk_sns::Client::new(&aws), settings.alert_topic_arn),
        StdoutSink,
        SqsQuarantine::new(
            aws_sdk_sqs::Client::new(&aws),
            settings.quarantine_queue_url,
        ),
    );
    quota_alert::run(processor).await
}
