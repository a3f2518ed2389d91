//! `twilio-events serve`: the pipeline on a laptop. The same ingest core as the Lambda, behind
//! a local HTTP server, on an embedded store (or on DynamoDB and Kinesis with `--backend aws`);
//! the stream consumers run beside it on the local stream.

mod consumers;
mod summary;

use crate::commands::{InputError, Outcome};
use crate::secrets::SecretArgs;
use axum::Router;
use axum::extract::State;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http::{HeaderMap, Method, Uri};
use ingest::Ingest;
use ingest::adapters::sqlite::SqliteStore;
use ingest::config::IngestSettings;
use ingest::ports::{DedupStore, EventPublisher, SystemClock};
use ingest::request::{HttpRequest, handle};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use summary::SummarySink;
use twilio_events::quarantine::FileQuarantine;
use twilio_events::signature::Verifier;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// SQLite in the data directory: no AWS account needed.
    Embedded,
    /// DynamoDB and Kinesis (AWS, or an emulator through AWS_ENDPOINT_URL).
    Aws,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Where the embedded store, the quarantine and the consumers' output live.
    #[arg(long, default_value = ".twilio-events", env = "TWILIO_EVENTS_DATA_DIR")]
    data_dir: PathBuf,
    /// The base URL Twilio calls (a tunnel's, say): signatures are checked against it.
    /// Default: http://127.0.0.1:PORT
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Where dedup records and the stream live.
    #[arg(long, value_enum, default_value_t = Backend::Embedded)]
    backend: Backend,
    /// With --backend aws: the DynamoDB dedup table.
    #[arg(long, env = "DEDUP_TABLE", required_if_eq("backend", "aws"))]
    dedup_table: Option<String>,
    /// With --backend aws: the Kinesis stream.
    #[arg(long, env = "STREAM_NAME", required_if_eq("backend", "aws"))]
    stream_name: Option<String>,
    /// Bodies larger than this get 413.
    #[arg(long, default_value_t = ingest::config::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// crm-sync pushes status changes to this CRM (the generic HTTP contract); without it they
    /// are appended to <data-dir>/crm.jsonl.
    #[arg(long, env = "CRM_URL", value_name = "URL")]
    crm_url: Option<String>,
    /// A bearer token for --crm-url.
    #[arg(long, env = "CRM_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    crm_token: Option<String>,
    /// Run quota-alert with this quota configuration (JSON); alerts go to <data-dir>/alerts.jsonl.
    #[arg(long, value_name = "FILE")]
    quotas: Option<PathBuf>,
    /// Log every request (default: warnings only).
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    secrets: SecretArgs,
}

pub fn run(args: ServeArgs) -> Result<Outcome, InputError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<Outcome, InputError> {
    let level = if args.verbose { "info" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();

    let (secrets, secrets_file) = args.secrets.load().map_err(InputError)?;
    let verifier = Verifier::new(secrets);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|e| {
            InputError(format!(
                "cannot listen on {}:{}: {e} (is another serve running? try --port)",
                args.host, args.port
            ))
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| InputError(e.to_string()))?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let mut settings = IngestSettings::for_base_url(&public_url);
    settings.max_body_bytes = args.max_body_bytes;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| InputError(format!("cannot create {}: {e}", args.data_dir.display())))?;
    let quarantine = FileQuarantine::new(args.data_dir.join("quarantine.jsonl"));
    let summary = Arc::new(SummarySink::default());

    println!(
        "twilio-events serve: listening on http://{local} ({:?} store)",
        args.backend
    );
    println!(
        "  Event Streams webhook URL for Twilio: {}",
        settings.events_url
    );
    println!(
        "  Usage Trigger callback URL:           {}",
        settings.usage_triggers_url
    );
    println!(
        "  Data directory: {} (quarantine: {})",
        args.data_dir.display(),
        quarantine.path().display()
    );

    match args.backend {
        Backend::Embedded => {
            let store = SqliteStore::open(&args.data_dir).map_err(|e| InputError(e.to_string()))?;
            println!(
                "  Stream: {} (twilio-events stream dump --data-dir {})",
                store.path().display(),
                args.data_dir.display()
            );
            let ingest = Ingest::new(
                settings,
                verifier,
                store.clone(),
                store.clone(),
                quarantine,
                Arc::clone(&summary),
            );
            let options = consumers::ConsumerOptions {
                crm_url: args.crm_url.clone(),
                crm_token: args.crm_token.clone(),
                quotas: args.quotas.clone(),
            };
            let mut consumers = consumers::spawn_all(&store, &args.data_dir, options)
                .await
                .map_err(InputError)?;
            let ingest = ingest::startup::with_secret_file(ingest, secrets_file);
            serve_http(listener, ingest, summary).await?;
            consumers.abort_all();
        }
        Backend::Aws => {
            let aws = aws_config::load_from_env().await;
            let dedup = ingest::adapters::dynamodb::DynamoDedupStore::new(
                aws_sdk_dynamodb::Client::new(&aws),
                args.dedup_table.clone().unwrap_or_default(),
            );
            let stream = ingest::adapters::kinesis::KinesisPublisher::new(
                aws_sdk_kinesis::Client::new(&aws),
                args.stream_name.clone().unwrap_or_default(),
            );
            let ingest = Ingest::new(
                settings,
                verifier,
                dedup,
                stream,
                quarantine,
                Arc::clone(&summary),
            );
            let ingest = ingest::startup::with_secret_file(ingest, secrets_file);
            serve_http(listener, ingest, summary).await?;
        }
    }
    Ok(Outcome::Ok)
}

type LocalIngest<D, P> = Ingest<D, P, FileQuarantine, Arc<SummarySink>, SystemClock>;

struct AppState<D, P> {
    ingest: Arc<LocalIngest<D, P>>,
    next_id: AtomicU64,
}

async fn serve_http<D, P>(
    listener: tokio::net::TcpListener,
    ingest: Arc<LocalIngest<D, P>>,
    summary: Arc<SummarySink>,
) -> Result<(), InputError>
where
    D: DedupStore + 'static,
    P: EventPublisher + 'static,
{
    let state = Arc::new(AppState {
        ingest,
        next_id: AtomicU64::new(1),
    });
    let app = Router::new().fallback(answer::<D, P>).with_state(state);
    let reporter = tokio::spawn(Arc::clone(&summary).report_every(Duration::from_secs(10)));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| InputError(format!("server stopped: {e}")));
    reporter.abort();
    summary.print();
    result
}

/// Twilio waits 5 seconds; answer a little before.
const ANSWER_WITHIN: Duration = Duration::from_millis(4_800);

async fn answer<D, P>(
    State(state): State<Arc<AppState<D, P>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> http::Response<String>
where
    D: DedupStore + 'static,
    P: EventPublisher + 'static,
{
    let request_id = format!("local-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
    handle(
        &state.ingest,
        HttpRequest {
            method: &method,
            path: uri.path(),
            query: uri.query(),
            headers: &headers,
            body: &body,
            request_id: &request_id,
            deadline: Instant::now() + ANSWER_WITHIN,
            public_base_url: None,
        },
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    eprintln!("twilio-events serve: shutting down");
}
