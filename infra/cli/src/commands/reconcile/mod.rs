//! `twilio-events reconcile`: a one-off reconciliation with Twilio's REST API for a time
//! window, on the embedded store (`--data-dir`, appending to the local stream `serve`'s
//! consumers read) or on AWS (`--backend aws`). The same run as the scheduled function
//! (`reconcile` crate): every message and call of the window that the ledger holds behind
//! Twilio, or never saw, is stored through ingest's path.

use super::duration::parse_point_in_time;
use super::serve::Backend;
use super::{CliError, Outcome};
use clap::Args;
use reconcile::adapters::twilio_api::{ApiCredentials, DEFAULT_API_BASE};
use reconcile::ports::{EventStore, LedgerView, TwilioApi};
use reconcile::processor::{ReconcileSettings, RunReport};
use reconcile::{Reconciler, RunPlan, StuckLookups, Window};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Twilio's REST API credentials, as `setup` takes them: the account whose resources are read,
/// and an API key (preferred) or its Auth Token.
#[derive(Args, Clone)]
pub struct RestApiArgs {
    /// The Account SID (AC…) whose messages and calls are read.
    #[arg(long, env = "TWILIO_ACCOUNT_SID", value_name = "AC…")]
    pub account_sid: Option<String>,
    /// An API key SID (SK…), preferred to the Auth Token.
    #[arg(
        long,
        env = "TWILIO_API_KEY",
        value_name = "SK…",
        requires = "api_secret"
    )]
    pub api_key: Option<String>,
    /// The API key's secret.
    #[arg(
        long,
        env = "TWILIO_API_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        requires = "api_key"
    )]
    pub api_secret: Option<String>,
    /// Twilio's REST API root (for tests and proxies).
    #[arg(long, value_name = "URL", default_value = DEFAULT_API_BASE)]
    pub api_base: String,
}

impl fmt::Debug for RestApiArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestApiArgs")
            .field("account_sid", &self.account_sid)
            .field("api_key", &self.api_key)
            .field(
                "api_secret",
                &self.api_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// The credentials given cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no Twilio REST API credentials: give --account-sid (TWILIO_ACCOUNT_SID) and either \
         --api-key/--api-secret (TWILIO_API_KEY/TWILIO_API_SECRET, preferred) or \
         --auth-token (TWILIO_AUTH_TOKEN)"
    )]
    Missing,
    #[error("--account-sid {0:?} is not an account SID (AC + 32 hex digits)")]
    AccountSid(String),
    #[error("--api-key {0:?} is not an API key SID (SK + 32 hex digits)")]
    ApiKey(String),
}

impl RestApiArgs {
    /// The credentials, with the Auth Token (`auth_tokens`, the first of a rotation's list)
    /// when no API key is given; `Ok(None)` when no account is named at all.
    pub fn credentials(
        &self,
        auth_tokens: &[String],
    ) -> Result<Option<ApiCredentials>, CredentialsError> {
        let Some(account) = self.account_sid.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if !twilio_events::event::form::is_sid(account, "AC") {
            return Err(CredentialsError::AccountSid(account.to_owned()));
        }
        if let (Some(key), Some(secret)) = (self.api_key.as_deref(), self.api_secret.as_deref()) {
            let key = key.trim();
            if !twilio_events::event::form::is_sid(key, "SK") {
                return Err(CredentialsError::ApiKey(key.to_owned()));
            }
            return Ok(Some(ApiCredentials::api_key(account, key, secret)));
        }
        match auth_tokens.iter().map(|t| t.trim()).find(|t| !t.is_empty()) {
            Some(token) => Ok(Some(ApiCredentials::auth_token(account, token))),
            None => Err(CredentialsError::Missing),
        }
    }
}

#[derive(Args, Debug)]
#[command(
    about = "Look up a window's messages and calls in Twilio's REST API and store the statuses \
the stream never received",
    long_about = "Look up a window's messages and calls in Twilio's REST API and store, through \
ingest's own dedup and stream, every status ahead of crm-sync's ledger: on messages and calls \
the ledger holds at a status that is not final and last changed in the window, and on those \
Twilio lists as sent (or started) in the window that the ledger never saw. Every consumer then \
sees them like any other event; crm-sync never moves a CRM backwards. Running it twice stores \
nothing new. Use it after an outage longer than Twilio's 4-hour retries (docs/operations.md).",
    after_help = "Exit codes: 0 done; 1 the run failed (Twilio refused the credentials, a store \
failed; the message says what to do); 2 usage error."
)]
pub struct ReconcileArgs {
    /// The window's start: an RFC 3339 time, or a duration before now (`6h`).
    #[arg(long, value_name = "TIME")]
    since: String,
    /// The window's end (default: now).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Where the ledger, dedup records and stream live.
    #[arg(long, value_enum, default_value_t = Backend::Embedded)]
    backend: Backend,
    /// The data directory of the embedded store (`serve`'s).
    #[arg(long, default_value = ".twilio-events", env = "TWILIO_EVENTS_DATA_DIR")]
    data_dir: PathBuf,
    /// With --backend aws: ingest's DynamoDB dedup table.
    #[arg(long, env = "DEDUP_TABLE", required_if_eq("backend", "aws"))]
    dedup_table: Option<String>,
    /// With --backend aws: the Kinesis stream.
    #[arg(long, env = "STREAM_NAME", required_if_eq("backend", "aws"))]
    stream_name: Option<String>,
    /// With --backend aws: crm-sync's status ledger table.
    #[arg(long, env = "LEDGER_TABLE", required_if_eq("backend", "aws"))]
    ledger_table: Option<String>,
    /// The account's Auth Token, when no API key is given.
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_delimiter = ','
    )]
    auth_token: Vec<String>,
    #[command(flatten)]
    api: RestApiArgs,
    /// Requests to Twilio in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Only look up the resources the ledger holds at a status that is not final; do not list
    /// the window's messages and calls.
    #[arg(long)]
    no_sweep: bool,
    /// List what would be stored; store nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Why the run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileCommandError {
    #[error("--since/--until: {0}")]
    Time(String),
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot open the embedded store in {}", path.display())]
    Store {
        path: PathBuf,
        #[source]
        source: reconcile::startup::LocalStartupError,
    },
    #[error(transparent)]
    Startup(#[from] reconcile::startup::StartupError),
    #[error(transparent)]
    Run(#[from] reconcile::processor::ReconcileError),
}

pub fn run(args: ReconcileArgs) -> Result<Outcome, CliError> {
    let time = |text: &str| {
        parse_point_in_time(text)
            .map_err(|e| CliError::usage(ReconcileCommandError::Time(e.to_string())))
    };
    let since = time(&args.since)?;
    let until = match &args.until {
        Some(text) => time(text)?,
        None => OffsetDateTime::now_utc(),
    };
    if since >= until {
        return Err(CliError::usage(ReconcileCommandError::Time(
            "the window's start must be before its end".into(),
        )));
    }
    let credentials = args
        .api
        .credentials(&args.auth_token)
        .map_err(CliError::usage)?
        .ok_or_else(|| CliError::usage(CredentialsError::Missing))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(ReconcileCommandError::Runtime(e)))?;
    let report = runtime
        .block_on(run_window(&args, credentials, Window { since, until }))
        .map_err(CliError::failed)?;
    print_report(&report, &args);
    Ok(Outcome::Ok)
}

async fn run_window(
    args: &ReconcileArgs,
    credentials: ApiCredentials,
    window: Window,
) -> Result<RunReport, ReconcileCommandError> {
    let api = reconcile::startup::twilio_client(&args.api.api_base, credentials)?;
    let settings = ReconcileSettings {
        concurrency: args.concurrency.max(1),
        ..ReconcileSettings::default()
    };
    let plan = RunPlan {
        stuck: StuckLookups::ChangedIn(window),
        sweep: (!args.no_sweep).then_some(window),
        dry_run: args.dry_run,
    };
    match args.backend {
        Backend::Embedded => {
            let store_error = |source| ReconcileCommandError::Store {
                path: args.data_dir.clone(),
                source,
            };
            let store = reconcile::startup::local_store(
                &args.data_dir,
                ingest::config::DEFAULT_DEDUP_WINDOW,
            )
            .map_err(store_error)?;
            let reconciler = reconcile::startup::local(&args.data_dir, api, store, settings)
                .map_err(store_error)?;
            run_plan(&reconciler, plan).await
        }
        Backend::Aws => {
            let sdk = aws_config::load_from_env().await;
            let tables = reconcile::startup::AwsTables {
                ledger_table: args.ledger_table.as_deref().unwrap_or_default(),
                dedup_table: args.dedup_table.as_deref().unwrap_or_default(),
                stream_name: args.stream_name.as_deref().unwrap_or_default(),
                dedup_window: ingest::config::DEFAULT_DEDUP_WINDOW,
            };
            let reconciler = reconcile::startup::on_aws(&sdk, &tables, api, settings);
            run_plan(&reconciler, plan).await
        }
    }
}

/// A one-off run has as long as it needs: its deadline only bounds each stream put.
const PUT_DEADLINE: Duration = Duration::from_secs(60);

async fn run_plan<L: LedgerView, A: TwilioApi, S: EventStore>(
    reconciler: &Reconciler<L, A, S>,
    plan: RunPlan,
) -> Result<RunReport, ReconcileCommandError> {
    let now = OffsetDateTime::now_utc();
    Ok(reconciler
        .run(plan, now, Instant::now() + PUT_DEADLINE)
        .await?)
}

fn print_report(report: &RunReport, args: &ReconcileArgs) {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    let verb = if args.dry_run {
        "would store"
    } else {
        "stored"
    };
    println!(
        "twilio-events reconcile: looked up {} stuck, listed {}; ahead of the ledger: {} advanced, {} never seen",
        report.looked_up, report.listed, report.advanced, report.discovered
    );
    if args.dry_run {
        for repair in &report.repairs {
            println!(
                "  {} {} {} -> {}",
                repair.kind.as_str(),
                repair.sid,
                repair.known_status.as_deref().unwrap_or("(never seen)"),
                repair.status
            );
        }
        println!(
            "  {verb} {} (dry run: nothing stored)",
            report.repairs.len()
        );
    } else {
        println!(
            "  {verb} {}, already stored {}, not stored {} (run again)",
            report.stored, report.already_stored, report.not_stored
        );
    }
    if !report.not_found.is_empty() {
        println!(
            "  not found (deleted or redacted): {}",
            report.not_found.join(", ")
        );
    }
    if report.gave_up > 0 {
        println!(
            "  {} lookups abandoned after throttling or errors: run again",
            report.gave_up
        );
    }
}
