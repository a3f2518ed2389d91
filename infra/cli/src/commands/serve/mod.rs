//! `twilio-events serve`: the pipeline on a laptop. The same ingest core as the Lambda, behind
//! a local HTTP server, on an embedded store (or on DynamoDB and Kinesis with `--backend aws`);
//! the stream consumers run beside it on the local stream.

mod body;
mod console;
pub mod consumers;
mod error;
mod reconciling;
mod server;
mod summary;

use super::duration::parse_timeout;
use super::reconcile::RestApiArgs;
use crate::commands::{CliError, Outcome};
use crate::secrets::SecretArgs;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use body::BodyLimits;
use clap::{Args, ValueEnum};
use error::ServeError;
use ingest::Ingest;
use ingest::adapters::sqlite::SqliteStore;
use ingest::config::IngestSettings;
use ingest::ports::{DedupStore, EventPublisher, SystemClock};
use ingest::request::{HttpRequest, handle};
use server::ConnectionLimits;
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
    /// Bodies larger than this get 413, as soon as the limit is crossed (or from the
    /// Content-Length, before reading).
    #[arg(long, default_value_t = ingest::config::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// A connection whose request head is not complete this long after it opened (or after
    /// its first byte, on a kept-alive connection) is closed. Twilio sends its head at once.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    header_read_timeout: Duration,
    /// A request whose body has not all arrived this long after its head gets 503 (Twilio
    /// retries) and its connection is closed; nothing of it is stored.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    body_read_timeout: Duration,
    /// A kept-alive connection with no new request for this long is closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// Connections open at once; more wait (in the listen backlog) until one closes. Keep it
    /// under the open-files limit (ulimit -n).
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
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
    /// Forward every event of the stream to this Kafka (plaintext `host:port[,…]`), as the
    /// deployed kafka-forward function does.
    #[arg(long, value_name = "HOST:PORT[,…]")]
    kafka_brokers: Option<String>,
    /// With --kafka-brokers: the topic (create it first; its partition count is yours to pick).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "twilio-events",
        requires = "kafka_brokers"
    )]
    kafka_topic: String,
    /// Log every request (default: warnings only).
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    secrets: SecretArgs,
    /// Twilio's REST API credentials: with them (the embedded store only), `serve` reconciles
    /// with the REST API on a timer, as the deployed `reconcile` function does.
    #[command(flatten)]
    rest_api: RestApiArgs,
    /// With REST API credentials: how often to reconcile (the first run is at start).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_timeout)]
    reconcile_every: Duration,
    #[command(flatten)]
    console: console::ConsoleArgs,
}

pub fn run(args: ServeArgs) -> Result<Outcome, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<Outcome, CliError> {
    let level = if args.verbose { "info" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();

    if args.backend == Backend::Aws && args.kafka_brokers.is_some() {
        return Err(CliError::usage(
            "--kafka-brokers forwards the embedded store's stream; with --backend aws the \
             deployed kafka-forward function reads the Kinesis stream (docs/deploy.md)",
        ));
    }
    let (secrets, secrets_file) = args.secrets.load()?;
    let rest_credentials = args
        .rest_api
        .credentials(&args.secrets.auth_tokens)
        .map_err(CliError::usage)?;
    let verifier = Verifier::new(secrets);
    let console_access = args
        .console
        .access(args.host)
        .map_err(ServeError::Console)?;
    let addr = SocketAddr::new(args.host, args.port);
    let listen_error = |source| ServeError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let mut settings = IngestSettings::for_base_url(&public_url);
    settings.max_body_bytes = args.max_body_bytes;
    std::fs::create_dir_all(&args.data_dir).map_err(|source| ServeError::DataDir {
        path: args.data_dir.clone(),
        source,
    })?;
    let quarantine = FileQuarantine::new(args.data_dir.join("quarantine.jsonl"));
    let console = console::Console::new(console::Setup {
        access: console_access,
        verifier: verifier.clone(),
        settings: settings.clone(),
        local,
        data_dir: args.data_dir.clone(),
        quotas: args.quotas.clone(),
    });
    let summary = Arc::new(SummarySink::default());
    let limits = Limits {
        connections: ConnectionLimits {
            header_read_timeout: args.header_read_timeout,
            idle_timeout: args.idle_timeout,
            max_connections: args.max_connections,
        },
        body: BodyLimits {
            max_bytes: args.max_body_bytes,
            read_timeout: args.body_read_timeout,
        },
    };

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
    let console = match console {
        Ok(console) => Some(console.print_url()),
        Err(off) => {
            println!("  Console: off ({off})");
            None
        }
    };

    match args.backend {
        Backend::Embedded => {
            let store = SqliteStore::open(&args.data_dir).map_err(|source| ServeError::Store {
                path: args.data_dir.clone(),
                source,
            })?;
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
                kafka: args
                    .kafka_brokers
                    .clone()
                    .map(|brokers| consumers::KafkaTarget {
                        brokers,
                        topic: args.kafka_topic.clone(),
                    }),
            };
            let mut consumers = consumers::spawn_all(&store, &args.data_dir, options)
                .await
                .map_err(ServeError::from)?;
            let ingest = ingest::startup::with_secret_file(ingest, secrets_file);
            let reconciling = match rest_credentials {
                Some(credentials) => Some(reconciling::spawn(
                    &args.data_dir,
                    &args.rest_api.api_base,
                    credentials,
                    args.reconcile_every,
                    Arc::clone(&ingest),
                )?),
                None => None,
            };
            let console = console.map(|c| {
                c.with_store(store.clone())
                    .with_replayer(Arc::new(Arc::clone(&ingest)))
            });
            serve_http(listener, ingest, summary, limits, console).await;
            consumers.abort_all();
            if let Some(task) = reconciling {
                task.abort();
            }
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
            let console = console.map(|c| c.with_replayer(Arc::new(Arc::clone(&ingest))));
            serve_http(listener, ingest, summary, limits, console).await;
        }
    }
    Ok(Outcome::Ok)
}

type LocalIngest<D, P> = Ingest<D, P, FileQuarantine, Arc<SummarySink>, SystemClock>;

/// What `serve`'s flags allow connections and request bodies.
#[derive(Clone, Copy, Debug)]
struct Limits {
    connections: ConnectionLimits,
    body: BodyLimits,
}

struct AppState<D, P> {
    ingest: Arc<LocalIngest<D, P>>,
    next_id: AtomicU64,
    body_limits: BodyLimits,
    /// The console's record of each answer, when the console is on.
    recorder: Option<Arc<console::deliveries::Recorder>>,
}

async fn serve_http<D, P>(
    listener: tokio::net::TcpListener,
    ingest: Arc<LocalIngest<D, P>>,
    summary: Arc<SummarySink>,
    limits: Limits,
    console: Option<console::Console>,
) where
    D: DedupStore + 'static,
    P: EventPublisher + 'static,
{
    let state = Arc::new(AppState {
        ingest,
        next_id: AtomicU64::new(1),
        body_limits: limits.body,
        recorder: console.as_ref().map(|c| Arc::clone(&c.recorder)),
    });
    let mut app = Router::new().fallback(answer::<D, P>).with_state(state);
    if let Some(console) = console {
        app = console::router(Arc::new(console)).merge(app);
    }
    let reporter = tokio::spawn(Arc::clone(&summary).report_every(Duration::from_secs(10)));
    server::serve(listener, app, limits.connections, shutdown_signal()).await;
    reporter.abort();
    summary.print();
}

/// Twilio waits 5 seconds; answer a little before.
const ANSWER_WITHIN: Duration = Duration::from_millis(4_800);

async fn answer<D, P>(State(state): State<Arc<AppState<D, P>>>, request: Request) -> Response
where
    D: DedupStore + 'static,
    P: EventPublisher + 'static,
{
    let started = Instant::now();
    let (request, body) = request.into_parts();
    let body = match body::read(body, state.body_limits).await {
        Ok(body) => body,
        Err(refused) => {
            // A body over the limit may be a genuine delivery the limit is too small for; a
            // slow or broken one is the client's own business.
            if matches!(refused, body::BodyRefused::TooLarge { .. }) {
                tracing::warn!(reason = %refused, "request body refused");
            } else {
                tracing::info!(reason = %refused, "request body refused");
            }
            let answer = refused.to_string();
            let response = refused.into_response();
            if let Some(recorder) = &state.recorder {
                let status = response.status().as_u16();
                recorder.record(
                    &request,
                    &bytes::Bytes::new(),
                    status,
                    &answer,
                    started.elapsed(),
                );
            }
            return response;
        }
    };
    let request_id = format!("local-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
    let response = handle(
        &state.ingest,
        HttpRequest {
            method: &request.method,
            path: request.uri.path(),
            query: request.uri.query(),
            headers: &request.headers,
            body: &body,
            request_id: &request_id,
            deadline: Instant::now() + ANSWER_WITHIN,
            public_base_url: None,
        },
    )
    .await;
    if let Some(recorder) = &state.recorder {
        let status = response.status().as_u16();
        recorder.record(&request, &body, status, response.body(), started.elapsed());
    }
    response.into_response()
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
