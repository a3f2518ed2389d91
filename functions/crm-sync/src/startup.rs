//! Wiring: the adapters the configuration asks for, each built once. [`aws_processor`] is what
//! the Lambda function runs; `local_processor` (feature `local`) is the same processor over a
//! data directory, for `twilio-events serve`.

use crate::adapters::dynamodb::DynamoStatusLedger;
use crate::adapters::http_crm::HttpCrm;
use crate::adapters::salesforce::SalesforceCrm;
use crate::adapters::{AnyCrm, CrmBuildError, Secret};
use crate::config::{Config, CrmConfig, SecretSource};
use crate::processor::CrmSync;
use twilio_events::metrics::StdoutSink;
use twilio_events::quarantine::SqsQuarantine;
use twilio_events::secrets_manager::{SecretReadError, read_secret_string};

/// Why the processor could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Secret(#[from] SecretReadError),
    /// `setting` is the variable or flag that gave the CRM's address.
    #[error("invalid {setting}: {source}")]
    Crm {
        setting: &'static str,
        #[source]
        source: CrmBuildError,
    },
    #[cfg(feature = "local")]
    #[error(
        "cannot use the data directory {}: {source}; check that it can be created and written",
        path.display()
    )]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[cfg(feature = "local")]
    #[error(transparent)]
    Ledger(#[from] crate::adapters::sqlite::SqliteError),
}

/// A credential's value: as configured, or the string of a Secrets Manager secret.
pub async fn resolve_secret(
    source: &SecretSource,
    client: &aws_sdk_secretsmanager::Client,
) -> Result<Secret, SecretReadError> {
    match source {
        SecretSource::Value(v) => Ok(v.clone()),
        SecretSource::Arn(arn) => Ok(Secret::new(read_secret_string(client, arn).await?.trim())),
    }
}

/// The CRM adapter the configuration asks for.
pub async fn build_crm(
    crm: &CrmConfig,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<AnyCrm, StartupError> {
    match crm {
        CrmConfig::Http { url, token } => {
            let token = match token {
                Some(source) => Some(resolve_secret(source, secrets).await?),
                None => None,
            };
            HttpCrm::new(url, token)
                .map(AnyCrm::Http)
                .map_err(|source| StartupError::Crm {
                    setting: "CRM_URL",
                    source,
                })
        }
        CrmConfig::Salesforce { settings, secret } => {
            let mut settings = (**settings).clone();
            settings.client_secret = resolve_secret(secret, secrets).await?;
            SalesforceCrm::new(settings)
                .map(|c| AnyCrm::Salesforce(Box::new(c)))
                .map_err(|source| StartupError::Crm {
                    setting: "SALESFORCE_LOGIN_URL",
                    source,
                })
        }
    }
}

/// The processor the Lambda function runs.
pub type AwsProcessor = CrmSync<DynamoStatusLedger, AnyCrm, SqsQuarantine, StdoutSink>;

/// Builds every client once, from the configuration and the AWS SDK's.
pub async fn aws_processor(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<AwsProcessor, StartupError> {
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let crm = build_crm(&config.crm, &secrets).await?;
    Ok(CrmSync::with_settings(
        DynamoStatusLedger::new(aws_sdk_dynamodb::Client::new(sdk), &config.ledger_table),
        crm,
        SqsQuarantine::deployed(
            sdk,
            &config.quarantine_queue_url,
            config.quarantine_bucket.as_deref(),
        ),
        StdoutSink,
        config.settings.clone(),
    ))
}

#[cfg(feature = "local")]
pub use local::{LocalProcessor, local_ledger_path, local_processor};

#[cfg(feature = "local")]
mod local {
    use super::StartupError;
    use crate::adapters::http_crm::HttpCrm;
    use crate::adapters::jsonl_crm::JsonlCrm;
    use crate::adapters::sqlite::SqliteStatusLedger;
    use crate::adapters::{AnyCrm, Secret};
    use crate::processor::{CrmSync, SyncSettings};
    use std::path::Path;
    use twilio_events::metrics::NoMetrics;
    use twilio_events::quarantine::FileQuarantine;

    /// What `twilio-events serve` runs: a SQLite ledger (`<data-dir>/crm-ledger.sqlite3`), a
    /// real CRM (`--crm-url`) or `<data-dir>/crm.jsonl`, and refused records in
    /// `<data-dir>/crm-quarantine.jsonl`.
    pub type LocalProcessor = CrmSync<SqliteStatusLedger, AnyCrm, FileQuarantine, NoMetrics>;

    /// Where the local ledger lives under a data directory (removed by
    /// `twilio-events stream replay --fresh` to push every status again, to a new CRM).
    pub fn local_ledger_path(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("crm-ledger.sqlite3")
    }

    /// Builds the processor for `twilio-events serve`: an HTTP CRM at `crm_url` (bearer
    /// `crm_token`), else `<data_dir>/crm.jsonl`.
    pub async fn local_processor(
        data_dir: &Path,
        crm_url: Option<String>,
        crm_token: Option<String>,
    ) -> Result<LocalProcessor, StartupError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StartupError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let crm = match crm_url {
            Some(url) => AnyCrm::Http(HttpCrm::new(&url, crm_token.map(Secret::new)).map_err(
                |source| StartupError::Crm {
                    setting: "--crm-url",
                    source,
                },
            )?),
            None => AnyCrm::Jsonl(JsonlCrm::new(data_dir.join("crm.jsonl"))),
        };
        Ok(CrmSync::with_settings(
            SqliteStatusLedger::open(&local_ledger_path(data_dir))?,
            crm,
            FileQuarantine::new(data_dir.join("crm-quarantine.jsonl")),
            NoMetrics,
            SyncSettings::default(),
        ))
    }
}
