//! Wiring the core to its adapters, once at start: DynamoDB, SNS and SQS for the Lambda
//! ([`aws`]); SQLite and files for `twilio-events serve` (`local`, feature `local`). Both
//! validate the quota document first, so a bad one stops the start naming the field.

use crate::adapters::dynamodb::DynamoUsageCounter;
use crate::adapters::sns::SnsAlertPublisher;
use crate::config::Config;
use crate::processor::QuotaAlert;
use crate::quotas::QuotasError;
use twilio_events::metrics::StdoutSink;
use twilio_events::quarantine::SqsQuarantine;

/// The function as the Lambda runs it.
pub type AwsQuotaAlert =
    QuotaAlert<DynamoUsageCounter, SnsAlertPublisher, StdoutSink, SqsQuarantine>;

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Quotas(#[from] QuotasError),
    /// The Lambda's quota document, with the setting it came from.
    #[error("{origin}: {error}")]
    QuotasFrom {
        origin: String,
        #[source]
        error: QuotasError,
    },
    #[cfg(feature = "local")]
    #[error(transparent)]
    Sqlite(#[from] crate::adapters::sqlite::SqliteError),
}

/// The Lambda's processor: the quota document loaded (from SSM if so configured) and
/// validated, the AWS clients built once from `sdk`.
pub async fn aws(
    config: Config,
    sdk: &aws_config::SdkConfig,
) -> Result<AwsQuotaAlert, StartupError> {
    // The error names the variable the document came from, so the operator knows what to fix.
    let quotas = config
        .quotas
        .load(&aws_sdk_ssm::Client::new(sdk))
        .await
        .map_err(|error| StartupError::QuotasFrom {
            origin: config.quotas.origin(),
            error,
        })?;
    tracing::info!(quotas = quotas.len(), "quota configuration loaded");
    Ok(QuotaAlert::new(
        quotas,
        DynamoUsageCounter::new(aws_sdk_dynamodb::Client::new(sdk), config.counter_table),
        SnsAlertPublisher::new(aws_sdk_sns::Client::new(sdk), config.alert_topic_arn),
        StdoutSink,
        SqsQuarantine::deployed(
            sdk,
            config.quarantine_queue_url,
            config.quarantine_bucket.as_deref(),
        ),
    ))
}

/// Where the local counters live under a data directory (removed by
/// `twilio-events stream replay --fresh` to count the stream again from nothing).
#[cfg(feature = "local")]
pub fn local_counter_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("quota-alert.sqlite")
}

/// The processor `twilio-events serve --quotas FILE` runs: the quotas from `quotas_file`,
/// counters in `<data_dir>/quota-alert.sqlite`, alerts to stderr and `<data_dir>/alerts.jsonl`,
/// malformed records to `<data_dir>/quarantine.jsonl`.
#[cfg(feature = "local")]
pub fn local(
    data_dir: &std::path::Path,
    quotas_file: &std::path::Path,
) -> Result<impl twilio_events::stream::BatchProcessor + use<>, StartupError> {
    use crate::adapters::{jsonl_alerts::FileAlertPublisher, sqlite::SqliteUsageCounter};
    let quotas = crate::quotas::Quotas::from_file(quotas_file)?;
    let store = SqliteUsageCounter::open(&local_counter_path(data_dir))?;
    let publisher = FileAlertPublisher::new(data_dir.join("alerts.jsonl"));
    let quarantine =
        twilio_events::quarantine::FileQuarantine::new(data_dir.join("quarantine.jsonl"));
    Ok(QuotaAlert::new(
        quotas,
        store,
        publisher,
        twilio_events::metrics::NoMetrics,
        quarantine,
    ))
}
