//! Wiring the core to its adapters: SQLite and files for `twilio-events serve` (feature `local`).

#[cfg(feature = "local")]
use crate::adapters::{jsonl_alerts::FileAlertPublisher, sqlite::SqliteUsageCounter};
#[cfg(feature = "local")]
use crate::config::{Config, ConfigError};
#[cfg(feature = "local")]
use crate::ports::StoreError;
#[cfg(feature = "local")]
use crate::processor::QuotaAlert;
#[cfg(feature = "local")]
use std::path::Path;
#[cfg(feature = "local")]
use twilio_events::{metrics::NoMetrics, quarantine::FileQuarantine, stream::BatchProcessor};

/// Setting up the local processor failed.
#[cfg(feature = "local")]
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds the whole quota-alert processor for `serve`: the quotas from `quotas_file` (validated:
/// a bad file fails here, naming the field), counters in `<data_dir>/quota-alert.sqlite`, alerts
/// to stderr and `<data_dir>/alerts.jsonl`, malformed records to `<data_dir>/quarantine.jsonl`.
#[cfg(feature = "local")]
pub fn local_processor(
    data_dir: &Path,
    quotas_file: &Path,
) -> Result<impl BatchProcessor + use<>, LocalError> {
    let config = Config::from_file(quotas_file)?;
    let store = SqliteUsageCounter::open(&data_dir.join("quota-alert.sqlite"))?;
    let publisher = FileAlertPublisher::new(data_dir.join("alerts.jsonl"));
    let quarantine = FileQuarantine::new(data_dir.join("quarantine.jsonl"));
    Ok(QuotaAlert::new(
        config, store, publisher, NoMetrics, quarantine,
    ))
}
