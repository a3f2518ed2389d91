//! Wiring: the run on its adapters, built once. [`aws`] for the Lambda (crm-sync's DynamoDB
//! ledger, ingest's core on DynamoDB and Kinesis, the credentials from Secrets Manager) and
//! [`on_schedule`], what each scheduled invocation does; [`local`], behind the `local` feature,
//! on the embedded store `twilio-events serve` keeps in a data directory.

use crate::adapters::twilio_api::{ApiCredentials, TwilioRestClient};
use crate::config::{Config, CredentialsError, credentials_from_document};
use crate::ports::{EventStore, LedgerView, TwilioApi};
use crate::processor::{
    ReconcileError, ReconcileSettings, Reconciler, RunPlan, RunReport, StuckLookups, Window,
};
use crm_sync::adapters::dynamodb::DynamoStatusLedger;
use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::adapters::kinesis::KinesisPublisher;
use ingest::{Ingest, IngestSettings};
use lambda_runtime::LambdaEvent;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use twilio_events::metrics::{Metrics, NoMetrics, StdoutSink};
use twilio_events::quarantine::NoQuarantine;
use twilio_events::secrets_manager::{SecretReadError, read_secret_string};
use twilio_events::signature::{SecretSet, Verifier};

/// ingest's core as reconciliation uses it: no secrets (it verifies nothing), no quarantine
/// (it stores only events it built), metrics published by the run itself.
pub type AwsStore = Arc<Ingest<DynamoDedupStore, KinesisPublisher, NoQuarantine, NoMetrics>>;
/// The run as the Lambda runs it.
pub type AwsReconciler = Reconciler<DynamoStatusLedger, TwilioRestClient, AwsStore>;

/// Why reconcile could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    SecretUnreadable(Box<SecretReadError>),
    #[error("the REST API credentials secret {arn}: {source}")]
    Credentials {
        arn: String,
        #[source]
        source: CredentialsError,
    },
    #[error("could not build the HTTP client for Twilio's REST API: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// The settings ingest's core needs here: only how long a stored fact stays known. No URL is
/// ever verified against (the core serves no HTTP request in this function).
fn store_settings(dedup_window: Duration) -> IngestSettings {
    let mut settings = IngestSettings::for_base_url("https://reconcile.invalid");
    settings.dedup_window = dedup_window;
    settings
}

/// The run on AWS; the clients are built once, here.
pub async fn aws(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<AwsReconciler, StartupError> {
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let document = read_secret_string(&secrets, &config.api_secret_arn)
        .await
        .map_err(|e| StartupError::SecretUnreadable(Box::new(e)))?;
    let credentials =
        credentials_from_document(&document).map_err(|source| StartupError::Credentials {
            arn: config.api_secret_arn.clone(),
            source,
        })?;
    let api = twilio_client(&config.api_base, credentials)?;
    let tables = AwsTables {
        ledger_table: &config.ledger_table,
        dedup_table: &config.dedup_table,
        stream_name: &config.stream_name,
        dedup_window: config.dedup_window,
    };
    Ok(on_aws(sdk, &tables, api, config.settings.clone()))
}

/// Where the run reads and writes on AWS.
#[derive(Clone, Copy, Debug)]
pub struct AwsTables<'a> {
    pub ledger_table: &'a str,
    pub dedup_table: &'a str,
    pub stream_name: &'a str,
    pub dedup_window: Duration,
}

/// The run on crm-sync's DynamoDB ledger and ingest's core on DynamoDB and Kinesis (the Lambda,
/// and `twilio-events reconcile --backend aws`).
pub fn on_aws(
    sdk: &aws_config::SdkConfig,
    tables: &AwsTables<'_>,
    api: TwilioRestClient,
    settings: ReconcileSettings,
) -> AwsReconciler {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let store = Arc::new(Ingest::new(
        store_settings(tables.dedup_window),
        Verifier::new(SecretSet::new()),
        DynamoDedupStore::new(dynamodb.clone(), tables.dedup_table),
        KinesisPublisher::new(aws_sdk_kinesis::Client::new(sdk), tables.stream_name),
        NoQuarantine,
        NoMetrics,
    ));
    let ledger = DynamoStatusLedger::new(dynamodb, tables.ledger_table);
    Reconciler::new(ledger, api, store, settings)
}

/// The REST API client for `base`.
pub fn twilio_client(
    base: &str,
    credentials: ApiCredentials,
) -> Result<TwilioRestClient, StartupError> {
    TwilioRestClient::new(base, credentials).map_err(StartupError::HttpClient)
}

/// The scheduled run's plan at `now`: the stuck lookups, and (with the sweep) the window of one
/// period that ended `sweep_lag` ago — late enough that Twilio's own delivery had its chance.
pub fn scheduled_plan(config: &Config, now: OffsetDateTime) -> RunPlan {
    scheduled(
        config.settings.every,
        config.sweep.then_some(config.sweep_lag),
        now,
    )
}

/// The plan of a run at `now` when runs happen `every`: the stuck lookups due, and with a
/// `sweep_lag`, the sweep of the period that ended that long ago (one and a half periods wide,
/// so that a late run leaves no gap: `ports::overlapping`).
pub fn scheduled(every: Duration, sweep_lag: Option<Duration>, now: OffsetDateTime) -> RunPlan {
    RunPlan {
        stuck: StuckLookups::Due,
        sweep: sweep_lag.map(|lag| Window {
            since: now - lag - crate::ports::overlapping(every),
            until: now - lag,
        }),
        dry_run: false,
    }
}

/// One scheduled invocation: the run, its metrics, and its report as the answer (in the
/// function's logs and the invocation result). A failed run fails the invocation, which the
/// function's Errors alarm watches.
pub async fn on_schedule<L: LedgerView, A: TwilioApi, S: EventStore>(
    reconciler: &Reconciler<L, A, S>,
    config: &Config,
    event: LambdaEvent<serde_json::Value>,
) -> Result<RunReport, ReconcileError> {
    let received = Instant::now();
    let deadline = twilio_events::deadline::lambda_deadline(event.context.deadline(), received)
        .unwrap_or(received + Duration::from_secs(60));
    let now = OffsetDateTime::now_utc();
    run_and_report(reconciler, scheduled_plan(config, now), now, deadline).await
}

/// Runs `plan`, logs its summary and publishes its metrics (EMF on stdout).
pub async fn run_and_report<L: LedgerView, A: TwilioApi, S: EventStore>(
    reconciler: &Reconciler<L, A, S>,
    plan: RunPlan,
    now: OffsetDateTime,
    deadline: Instant,
) -> Result<RunReport, ReconcileError> {
    let report = reconciler.run(plan, now, deadline).await?;
    tracing::info!(
        looked_up = report.looked_up,
        listed = report.listed,
        advanced = report.advanced,
        discovered = report.discovered,
        stored = report.stored,
        already_stored = report.already_stored,
        not_stored = report.not_stored,
        not_found = report.not_found.len(),
        gave_up = report.gave_up,
        "reconciled"
    );
    report.publish(&StdoutSink, Metrics::new("reconcile"));
    Ok(report)
}

#[cfg(feature = "local")]
pub use embedded::{LocalReconciler, local};

#[cfg(feature = "local")]
mod embedded {
    use super::*;
    use crm_sync::adapters::sqlite::SqliteStatusLedger;
    use ingest::adapters::sqlite::SqliteStore;
    use std::path::Path;

    /// The run on the embedded store: crm-sync's SQLite ledger, ingest's core on the SQLite
    /// stream, both in the data directory `twilio-events serve` uses.
    pub type LocalReconciler<S> = Reconciler<Arc<SqliteStatusLedger>, TwilioRestClient, S>;

    /// Why the embedded run could not start.
    #[derive(Debug, thiserror::Error)]
    pub enum LocalStartupError {
        #[error(transparent)]
        Ledger(#[from] crm_sync::adapters::sqlite::SqliteError),
        #[error(transparent)]
        Store(#[from] ingest::adapters::sqlite::SqliteError),
    }

    /// The run on `data_dir`, storing through `store` (pass `serve`'s own core to share it, or
    /// [`local_store`]'s).
    pub fn local<S: EventStore>(
        data_dir: &Path,
        api: TwilioRestClient,
        store: S,
        settings: crate::processor::ReconcileSettings,
    ) -> Result<LocalReconciler<S>, LocalStartupError> {
        let ledger = Arc::new(SqliteStatusLedger::open(
            &crm_sync::startup::local_ledger_path(data_dir),
        )?);
        Ok(Reconciler::new(ledger, api, store, settings))
    }

    /// ingest's core on the embedded store in `data_dir`, for a run outside `serve`.
    pub fn local_store(
        data_dir: &Path,
        dedup_window: Duration,
    ) -> Result<Arc<Ingest<SqliteStore, SqliteStore, NoQuarantine, NoMetrics>>, LocalStartupError>
    {
        let store = SqliteStore::open(data_dir)?;
        Ok(Arc::new(Ingest::new(
            store_settings(dedup_window),
            Verifier::new(SecretSet::new()),
            store.clone(),
            store,
            NoQuarantine,
            NoMetrics,
        )))
    }
}

#[cfg(feature = "local")]
pub use embedded::{LocalStartupError, local_store};

/// A failed run fails the invocation with its message (and cause), which Lambda counts in the
/// function's `Errors` and logs.
impl From<ReconcileError> for lambda_runtime::Diagnostic {
    fn from(error: ReconcileError) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self {
            error_type: "ReconcileError".into(),
            error_message: message,
        }
    }
}
