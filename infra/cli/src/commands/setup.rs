//! `twilio-events setup`: connects a Twilio account to a deployed stack through the Events API,
//! idempotently. It finds or creates the webhook sink for the stack's URL, sends the test event
//! and validates the sink when it is not active yet, then makes the sink's subscription hold the
//! event types the stack consumes. A second run changes nothing; `--dry-run` only reads.

// The Events API client lives next to the commands, declared here so that main.rs only
// registers the subcommand.
#[path = "../events_api.rs"]
mod events_api;

use super::{InputError, Outcome};
use clap::Args;
use events_api::{
    ApiError, Credentials, DEFAULT_BASE, EventType, EventsApi, Sink, SubscribedEvent, Subscription,
};
use ingest::adapters::sqlite::{SqliteStore, database_path};
use reqwest::Url;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use twilio_events::event::{CloudEvent, Detail};

/// The event types the stack consumes: message and call statuses, error logs, rate limits.
pub const DEFAULT_TYPES: &[&str] = &[
    "com.twilio.messaging.message.queued",
    "com.twilio.messaging.message.sent",
    "com.twilio.messaging.message.delivered",
    "com.twilio.messaging.message.undelivered",
    "com.twilio.messaging.message.failed",
    "com.twilio.messaging.message.read",
    "com.twilio.voice.status-callback.call.initiated",
    "com.twilio.voice.status-callback.call.ringing",
    "com.twilio.voice.status-callback.call.answered",
    "com.twilio.voice.status-callback.call.completed",
    "com.twilio.error-logs.error.logged",
    "com.twilio.apiusage.taskrouter.ratelimits",
];

#[derive(Args)]
#[command(
    long_about = "Connect a Twilio account to the deployed stack through Twilio's Events API: \
find or create the webhook sink for --webhook-url, validate it with the test event when it is \
not active yet, and subscribe it to the event types the stack consumes. Idempotent: a second \
run changes nothing. Never removes event types unless --prune is given.",
    after_help = "Exit codes: 0 done (or nothing to do), 1 the Events API refused a call or the \
sink could not be validated (the message says what to do), 2 usage error.\n\
The test event's test_id: pass --test-id (from the ingest logs, or `twilio-events stream dump` \
of a local serve), or --data-dir of a local `serve` to wait for it there."
)]
pub struct SetupArgs {
    /// The stack's webhook URL (the `WebhookUrl` output of `sam deploy`, ending in /twilio/events).
    #[arg(long, value_name = "URL")]
    webhook_url: String,

    /// The Account SID (AC…).
    #[arg(long, env = "TWILIO_ACCOUNT_SID", value_name = "AC…")]
    account_sid: Option<String>,

    /// The account's Auth Token. Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    auth_token: Option<String>,

    /// An API key SID (SK…), instead of the Auth Token.
    #[arg(
        long,
        env = "TWILIO_API_KEY",
        value_name = "SK…",
        requires = "api_secret"
    )]
    api_key: Option<String>,

    /// The API key's secret.
    #[arg(
        long,
        env = "TWILIO_API_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        requires = "api_key"
    )]
    api_secret: Option<String>,

    /// Event types to subscribe to, comma-separated or repeated, each TYPE or TYPE@SCHEMA_VERSION
    /// (default: the types the stack consumes, at their latest schema version).
    #[arg(long = "types", value_name = "TYPE[@VERSION]", value_delimiter = ',')]
    types: Vec<String>,

    /// The description of the sink and of the subscription setup creates.
    #[arg(long, default_value = "twilio-events")]
    description: String,

    /// The Events API root (for tests and proxies).
    #[arg(long, value_name = "URL", default_value = DEFAULT_BASE)]
    events_api_base: String,

    /// The test_id of the test event the stack received, to validate the sink with.
    #[arg(long, value_name = "ID", conflicts_with = "data_dir")]
    test_id: Option<String>,

    /// The data directory of a local `serve` that receives the sink's events: setup sends the
    /// test event and waits for it in the local stream.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// How long to wait for the test event in --data-dir.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    wait: u64,

    /// Also remove event types the subscription holds that are not wanted.
    #[arg(long)]
    prune: bool,

    /// Print what setup would do; only read from Twilio.
    #[arg(long)]
    dry_run: bool,
}

impl fmt::Debug for SetupArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("SetupArgs")
            .field("webhook_url", &self.webhook_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &redacted(&self.auth_token))
            .field("api_key", &self.api_key)
            .field("api_secret", &redacted(&self.api_secret))
            .field("types", &self.types)
            .field("description", &self.description)
            .field("events_api_base", &self.events_api_base)
            .field("test_id", &self.test_id)
            .field("data_dir", &self.data_dir)
            .field("wait", &self.wait)
            .field("prune", &self.prune)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

/// Why setup stopped.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    /// Exit 2: the command line cannot work as given.
    #[error("{0}")]
    Usage(String),
    /// Exit 1: a call to the Events API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Exit 1: the sink exists but is not active, and setup could not validate it.
    #[error(
        "sink {sink_sid} is not active yet: {reason}\n  what to do: {what_to_do}\n  \
         (the subscription is created once the sink is active: Twilio requires it)"
    )]
    NotValidated {
        sink_sid: String,
        reason: String,
        what_to_do: String,
    },
    /// Exit 1: the local stream could not be read.
    #[error("cannot read the local stream in {dir}: {detail}")]
    Store { dir: String, detail: String },
}

pub fn run(args: SetupArgs) -> Result<Outcome, InputError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))?;
    match runtime.block_on(setup(args)) {
        Ok(()) => Ok(Outcome::Ok),
        Err(SetupError::Usage(message)) => Err(InputError(message)),
        Err(error) => {
            eprintln!("error: {error}");
            Ok(Outcome::Rejected)
        }
    }
}

/// One wanted event type, with the schema version the user asked for (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
struct WantedType {
    name: String,
    version: Option<u32>,
}

fn wanted_types(specs: &[String]) -> Result<Vec<WantedType>, SetupError> {
    let specs: Vec<&str> = specs
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let specs = if specs.is_empty() {
        DEFAULT_TYPES.to_vec()
    } else {
        specs
    };
    let mut wanted: Vec<WantedType> = Vec::new();
    for spec in specs {
        let (name, version) = match spec.split_once('@') {
            Some((name, version)) => {
                let version = version.trim().parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
                    SetupError::Usage(format!(
                        "--types {spec}: the schema version after @ must be a positive number, as in com.twilio.messaging.message.delivered@5"
                    ))
                })?;
                (name.trim(), Some(version))
            }
            None => (spec, None),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(SetupError::Usage(format!(
                "--types {spec:?}: not an event type (they look like com.twilio.messaging.message.delivered)"
            )));
        }
        match wanted.iter_mut().find(|w| w.name == name) {
            Some(existing)
                if existing.version.is_some()
                    && version.is_some()
                    && existing.version != version =>
            {
                return Err(SetupError::Usage(format!(
                    "--types names {name} twice with different schema versions: keep one"
                )));
            }
            Some(existing) => existing.version = existing.version.or(version),
            None => wanted.push(WantedType {
                name: name.to_owned(),
                version,
            }),
        }
    }
    Ok(wanted)
}

fn first_secret(value: Option<&String>) -> Option<String> {
    // TWILIO_AUTH_TOKEN may list several tokens (comma-separated, as `serve` reads it during a
    // rotation): the first one is the account's current token.
    value
        .and_then(|v| v.split(',').map(str::trim).find(|t| !t.is_empty()))
        .map(str::to_owned)
}

fn credentials(args: &SetupArgs) -> Result<(Credentials, String), SetupError> {
    if let (Some(key), Some(secret)) = (
        args.api_key.as_deref(),
        first_secret(args.api_secret.as_ref()),
    ) {
        let key = key.trim();
        if !looks_like_sid(key, "SK") {
            return Err(SetupError::Usage(format!(
                "--api-key {key:?} is not an API key SID (SK followed by 32 hex digits)"
            )));
        }
        return Ok((Credentials::new(key, secret), format!("API key {key}")));
    }
    let account = args
        .account_sid
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    let token = first_secret(args.auth_token.as_ref());
    match (account.is_empty(), token) {
        (false, Some(token)) => {
            if !looks_like_sid(account, "AC") {
                return Err(SetupError::Usage(format!(
                    "--account-sid {account:?} is not an Account SID (AC followed by 32 hex digits)"
                )));
            }
            Ok((Credentials::new(account, token), format!("account {account}")))
        }
        _ => Err(SetupError::Usage(
            "no credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or pass --account-sid and --auth-token), or pass --api-key and --api-secret"
                .into(),
        )),
    }
}

fn looks_like_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn http_url(flag: &str, value: &str) -> Result<Url, SetupError> {
    let url = Url::parse(value.trim())
        .map_err(|e| SetupError::Usage(format!("{flag} {value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SetupError::Usage(format!(
            "{flag} {value:?} must be an http(s) URL"
        )));
    }
    Ok(url)
}

/// What setup knows about the sink.
enum SinkState {
    /// Found or created.
    Known { sink: Sink, created: bool },
    /// Dry run, none yet: it would be created.
    Planned,
}

/// Counts changes (or, in a dry run, planned changes) and prints each step.
struct Report {
    dry_run: bool,
    changes: usize,
}

impl Report {
    fn step(&self, step: &str, text: impl fmt::Display) {
        println!("{step:<13} {text}");
    }

    fn change(&mut self, step: &str, done: impl fmt::Display, planned: impl fmt::Display) {
        self.changes += 1;
        if self.dry_run {
            self.step(step, format_args!("would {planned}"));
        } else {
            self.step(step, done);
        }
    }
}

async fn setup(args: SetupArgs) -> Result<(), SetupError> {
    let wanted = wanted_types(&args.types)?;
    http_url("--webhook-url", &args.webhook_url)?;
    // Compared with the sinks' destinations as the user spelled it (SAM's output).
    let destination = args.webhook_url.trim().to_owned();
    let base = http_url("--events-api-base", &args.events_api_base)?;
    let (credentials, who) = credentials(&args)?;
    if let Some(dir) = &args.data_dir {
        if !database_path(dir).exists() {
            return Err(SetupError::Usage(format!(
                "--data-dir {}: no local stream there: start `twilio-events serve --data-dir {}` (reachable by Twilio at {destination}) first",
                dir.display(),
                dir.display()
            )));
        }
    }
    let api = EventsApi::new(base, credentials)?;
    let mut report = Report {
        dry_run: args.dry_run,
        changes: 0,
    };
    report.step(
        "events api",
        format_args!(
            "{} as {who}{}",
            api.base(),
            if args.dry_run {
                " (dry run: reads only)"
            } else {
                ""
            }
        ),
    );

    // 1. The wanted types exist.
    let catalogue = api.list_types().await?;
    let catalogue: HashMap<&str, &EventType> = catalogue
        .iter()
        .map(|t| (t.event_type.as_str(), t))
        .collect();
    let unknown: Vec<&str> = wanted
        .iter()
        .filter(|w| !catalogue.contains_key(w.name.as_str()))
        .map(|w| w.name.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(SetupError::Usage(format!(
            "Twilio does not know these event types: {} (GET /v1/Types lists them): fix --types",
            unknown.join(", ")
        )));
    }
    for w in &wanted {
        if let Some(status) = catalogue
            .get(w.name.as_str())
            .and_then(|t| t.status.as_deref())
            .filter(|s| *s != "available")
        {
            report.step(
                "types",
                format_args!("warning: {} is {status} at Twilio", w.name),
            );
        }
    }
    report.step(
        "types",
        format_args!("{} wanted, all known to Twilio", wanted.len()),
    );

    // 2. The webhook sink for the URL.
    let sinks = api.list_sinks().await?;
    let mut matching: Vec<&Sink> = sinks
        .iter()
        .filter(|s| s.is_webhook() && s.destination().as_deref() == Some(destination.as_str()))
        .collect();
    // Prefer an active one, then the oldest listed.
    matching.sort_by_key(|s| !s.is_active());
    if matching.len() > 1 {
        report.step(
            "sink",
            format_args!(
                "note: {} webhook sinks send to {destination}; using {}",
                matching.len(),
                matching[0].sid
            ),
        );
    }
    let sink = match matching.first() {
        Some(sink) => {
            report.step(
                "sink",
                format_args!(
                    "already there: {} (webhook, {}) -> {destination}",
                    sink.sid,
                    sink.status()
                ),
            );
            SinkState::Known {
                sink: (*sink).clone(),
                created: false,
            }
        }
        None if args.dry_run => {
            report.change(
                "sink",
                "",
                format_args!(
                    "create a webhook sink -> {destination} (POST /Sinks: Description {:?}, SinkType webhook, SinkConfiguration {})",
                    args.description,
                    events_api::webhook_sink_configuration(&destination)
                ),
            );
            SinkState::Planned
        }
        None => {
            let sink = api
                .create_webhook_sink(&args.description, &destination)
                .await?;
            report.change(
                "sink",
                format_args!(
                    "created {} (webhook, {}) -> {destination}",
                    sink.sid,
                    sink.status()
                ),
                "",
            );
            SinkState::Known {
                sink,
                created: true,
            }
        }
    };

    // 3. The sink is active (validated with the test event).
    match &sink {
        SinkState::Known { sink, .. } if sink.is_active() => {
            report.step(
                "validation",
                format_args!("{} is active: nothing to do", sink.sid),
            );
        }
        SinkState::Known { sink, .. } if args.dry_run => {
            report.change(
                "validation",
                "",
                format_args!(
                    "validate {} (now {}): {}",
                    sink.sid,
                    sink.status(),
                    validation_plan(&args)
                ),
            );
        }
        SinkState::Known { sink, .. } => {
            validate(&api, sink, &args, &destination, &mut report).await?
        }
        SinkState::Planned => {
            report.step(
                "validation",
                format_args!(
                    "if the new sink is not active at once (webhook sinks usually are), would {}",
                    validation_plan(&args)
                ),
            );
        }
    }

    // 4. The subscription holds the wanted types.
    let mut versions = SchemaVersions::default();
    match &sink {
        SinkState::Planned | SinkState::Known { created: true, .. } => {
            let sink_sid = match &sink {
                SinkState::Known { sink, .. } => sink.sid.clone(),
                SinkState::Planned => "(the new sink)".to_owned(),
            };
            create_subscription(
                &api,
                &args,
                &sink_sid,
                &wanted,
                &catalogue,
                &mut versions,
                &mut report,
            )
            .await?;
        }
        SinkState::Known { sink, .. } => {
            reconcile_subscriptions(
                &api,
                &args,
                &sink.sid,
                &wanted,
                &catalogue,
                &mut versions,
                &mut report,
            )
            .await?;
        }
    }

    let summary = match (args.dry_run, report.changes) {
        (true, 0) => "dry run: nothing to change, Twilio is already set up".to_owned(),
        (true, n) => format!("dry run: {n} change(s) would be made; nothing was changed"),
        (false, 0) => "nothing to change: Twilio is already set up".to_owned(),
        (false, n) => format!("{n} change(s) made: Twilio now sends the events to {destination}"),
    };
    report.step("done", summary);
    Ok(())
}

fn validation_plan(args: &SetupArgs) -> String {
    match (&args.test_id, &args.data_dir) {
        (Some(id), _) => format!("POST /Sinks/{{Sid}}/Validate with TestId {id}"),
        (None, Some(dir)) => format!(
            "POST /Sinks/{{Sid}}/Test, wait up to {} s for the test event in {}, then POST /Sinks/{{Sid}}/Validate with its test_id",
            args.wait,
            dir.display()
        ),
        (None, None) => "POST /Sinks/{Sid}/Test, then stop: run setup again with --test-id (the test event's data.test_id) to POST /Sinks/{Sid}/Validate".to_owned(),
    }
}

async fn validate(
    api: &EventsApi,
    sink: &Sink,
    args: &SetupArgs,
    destination: &str,
    report: &mut Report,
) -> Result<(), SetupError> {
    let test_id = match (&args.test_id, &args.data_dir) {
        (Some(id), _) => {
            report.step(
                "validation",
                format_args!(
                    "{} is {}: validating with --test-id {id}",
                    sink.sid,
                    sink.status()
                ),
            );
            id.trim().to_owned()
        }
        (None, data_dir) => {
            // Note where the local stream ends before the test event can arrive.
            let watcher = data_dir.as_deref().map(StreamWatcher::start).transpose()?;
            let result = api.test_sink(&sink.sid).await?;
            report.change(
                "validation",
                format_args!(
                    "{} is {}: sent the test event to {destination} (POST /Sinks/{}/Test: {result})",
                    sink.sid,
                    sink.status(),
                    sink.sid
                ),
                "",
            );
            let Some(mut watcher) = watcher else {
                return Err(SetupError::NotValidated {
                    sink_sid: sink.sid.clone(),
                    reason: "the test event was sent; setup needs its test_id to validate the sink"
                        .into(),
                    what_to_do: format!(
                        "find the delivery of type com.twilio.eventstreams.test-event the stack received (its data.test_id: in the ingest logs or the stream, or `twilio-events stream dump` for a local serve), then run setup again with --test-id ID (or use --data-dir with a local serve). The webhook must answer Twilio at {destination}."
                    ),
                });
            };
            let id = watcher
                .wait_for_test_id(Duration::from_secs(args.wait), &sink.sid)
                .await?;
            report.step(
                "validation",
                format_args!("the test event arrived in {}: test_id {id}", watcher.dir),
            );
            id
        }
    };
    let result = api.validate_sink(&sink.sid, &test_id).await?;
    if result != "valid" {
        return Err(SetupError::NotValidated {
            sink_sid: sink.sid.clone(),
            reason: format!(
                "POST /Sinks/{}/Validate with TestId {test_id} answered {result:?}, not \"valid\"",
                sink.sid
            ),
            what_to_do: "check that the test_id is from the latest test event of this sink, or run setup again without --test-id to send a new one".into(),
        });
    }
    report.change(
        "validation",
        format_args!(
            "{} validated (POST /Sinks/{}/Validate: {result})",
            sink.sid, sink.sid
        ),
        "",
    );
    Ok(())
}

/// The local stream of a `serve`, read from where it ended when setup started watching.
struct StreamWatcher {
    store: SqliteStore,
    dir: String,
    after: i64,
}

impl StreamWatcher {
    fn start(dir: &Path) -> Result<Self, SetupError> {
        let shown = dir.display().to_string();
        let store_error = |e: ingest::adapters::sqlite::SqliteError| SetupError::Store {
            dir: shown.clone(),
            detail: e.to_string(),
        };
        let store = SqliteStore::open(dir).map_err(store_error)?;
        let mut after = 0;
        loop {
            let batch = store.read_after(after, 1000).map_err(store_error)?;
            let Some(last) = batch.last() else { break };
            after = sequence(&last.sequence_number, after);
        }
        Ok(Self {
            store,
            dir: shown.clone(),
            after,
        })
    }

    /// The test_id of the first test event appended since `start`.
    async fn wait_for_test_id(
        &mut self,
        wait: Duration,
        sink_sid: &str,
    ) -> Result<String, SetupError> {
        let deadline = Instant::now() + wait;
        loop {
            let batch = self
                .store
                .read_after(self.after, 1000)
                .map_err(|e| SetupError::Store {
                    dir: self.dir.clone(),
                    detail: e.to_string(),
                })?;
            for record in &batch {
                self.after = sequence(&record.sequence_number, self.after);
                if let Some(id) = test_id(&record.data) {
                    return Ok(id);
                }
            }
            if batch.is_empty() {
                if Instant::now() >= deadline {
                    return Err(SetupError::NotValidated {
                        sink_sid: sink_sid.to_owned(),
                        reason: format!(
                            "no test event arrived in {} within {} s",
                            self.dir,
                            wait.as_secs()
                        ),
                        what_to_do: "check that `twilio-events serve` runs with this --data-dir and that Twilio reaches it at --webhook-url (a tunnel for a laptop), then run setup again (it sends a new test event); --wait gives it longer".into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn sequence(text: &str, fallback: i64) -> i64 {
    text.parse().unwrap_or(fallback)
}

/// The test_id of a record holding Twilio's sink test event.
fn test_id(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    match CloudEvent::parse(text).ok()?.detail {
        Detail::Test(test) => Some(test.test_id),
        _ => None,
    }
}

/// Latest schema versions, asked of `GET /Schemas/{Id}` once per schema.
#[derive(Default)]
struct SchemaVersions(HashMap<String, u32>);

impl SchemaVersions {
    async fn resolve(
        &mut self,
        api: &EventsApi,
        wanted: &WantedType,
        catalogue: &HashMap<&str, &EventType>,
    ) -> Result<u32, SetupError> {
        if let Some(version) = wanted.version {
            return Ok(version);
        }
        let schema_id = catalogue
            .get(wanted.name.as_str())
            .and_then(|t| t.schema_id.clone())
            .ok_or_else(|| {
                SetupError::Usage(format!(
                    "GET /v1/Types gives no schema for {}: pass --types {}@VERSION",
                    wanted.name, wanted.name
                ))
            })?;
        if let Some(version) = self.0.get(&schema_id) {
            return Ok(*version);
        }
        let version = api.fetch_schema(&schema_id).await?.latest_version;
        if version == 0 {
            return Err(SetupError::Usage(format!(
                "GET /v1/Schemas/{schema_id} gives no latest_version: pass --types {}@VERSION",
                wanted.name
            )));
        }
        self.0.insert(schema_id, version);
        Ok(version)
    }
}

async fn create_subscription(
    api: &EventsApi,
    args: &SetupArgs,
    sink_sid: &str,
    wanted: &[WantedType],
    catalogue: &HashMap<&str, &EventType>,
    versions: &mut SchemaVersions,
    report: &mut Report,
) -> Result<(), SetupError> {
    let mut types = Vec::with_capacity(wanted.len());
    for w in wanted {
        types.push((w.name.clone(), versions.resolve(api, w, catalogue).await?));
    }
    let listed = types
        .iter()
        .map(|(t, v)| format!("{t}@{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if args.dry_run {
        report.change(
            "subscription",
            "",
            format_args!(
                "create a subscription for {sink_sid} with {} types (POST /Subscriptions: Description {:?}, Types {listed})",
                types.len(),
                args.description
            ),
        );
        return Ok(());
    }
    let subscription = api
        .create_subscription(&args.description, sink_sid, &types)
        .await?;
    report.change(
        "subscription",
        format_args!(
            "created {} for {sink_sid} with {} types: {listed}",
            subscription.sid,
            types.len()
        ),
        "",
    );
    Ok(())
}

async fn reconcile_subscriptions(
    api: &EventsApi,
    args: &SetupArgs,
    sink_sid: &str,
    wanted: &[WantedType],
    catalogue: &HashMap<&str, &EventType>,
    versions: &mut SchemaVersions,
    report: &mut Report,
) -> Result<(), SetupError> {
    let subscriptions: Vec<Subscription> = api
        .list_subscriptions(sink_sid)
        .await?
        .into_iter()
        .filter(|s| s.sink_sid.as_deref().is_none_or(|sid| sid == sink_sid))
        .collect();
    // The one setup manages: the one with our description, else the first.
    let Some(target) = subscriptions
        .iter()
        .find(|s| s.description.as_deref() == Some(args.description.as_str()))
        .or(subscriptions.first())
        .cloned()
    else {
        return create_subscription(api, args, sink_sid, wanted, catalogue, versions, report).await;
    };
    // Every type any subscription of this sink sends, and where.
    let mut present: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    for subscription in &subscriptions {
        for SubscribedEvent {
            event_type,
            schema_version,
        } in api.list_subscribed_events(&subscription.sid).await?
        {
            present
                .entry(event_type)
                .or_default()
                .push((subscription.sid.clone(), schema_version));
        }
    }
    for other in subscriptions.iter().filter(|s| s.sid != target.sid) {
        report.step(
            "subscription",
            format_args!(
                "note: {} also sends to {sink_sid}; its types count as subscribed",
                other.sid
            ),
        );
    }
    let before = report.changes;
    for w in wanted {
        match present.get(&w.name) {
            None => {
                let version = versions.resolve(api, w, catalogue).await?;
                if !args.dry_run {
                    api.add_subscribed_event(&target.sid, &w.name, version)
                        .await?;
                }
                report.change(
                    "subscription",
                    format_args!("added {}@{version} to {}", w.name, target.sid),
                    format_args!(
                        "add {}@{version} to {} (POST /Subscriptions/{}/SubscribedEvents: Type, SchemaVersion)",
                        w.name, target.sid, target.sid
                    ),
                );
            }
            Some(holders) => {
                let Some(version) = w.version else { continue };
                for (sid, current) in holders.iter().filter(|(_, v)| *v != version) {
                    if !args.dry_run {
                        api.update_subscribed_event(sid, &w.name, version).await?;
                    }
                    report.change(
                        "subscription",
                        format_args!("{} in {sid}: schema version {current} -> {version}", w.name),
                        format_args!(
                            "move {} in {sid} from schema version {current} to {version} (POST /Subscriptions/{sid}/SubscribedEvents/{})",
                            w.name, w.name
                        ),
                    );
                }
            }
        }
    }
    for (event_type, holders) in &present {
        if wanted.iter().any(|w| &w.name == event_type) {
            continue;
        }
        for (sid, version) in holders {
            if !args.prune {
                report.step(
                    "subscription",
                    format_args!(
                        "kept {event_type}@{version} in {sid}: not wanted, --prune removes it"
                    ),
                );
                continue;
            }
            if !args.dry_run {
                api.delete_subscribed_event(sid, event_type).await?;
            }
            report.change(
                "subscription",
                format_args!("removed {event_type} from {sid} (--prune)"),
                format_args!(
                    "remove {event_type} from {sid} (DELETE /Subscriptions/{sid}/SubscribedEvents/{event_type})"
                ),
            );
        }
    }
    if report.changes == before {
        report.step(
            "subscription",
            format_args!(
                "already there: {} sends all {} wanted types",
                target.sid,
                wanted.len()
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_types_means_the_types_the_stack_consumes() {
        let wanted = wanted_types(&[]).unwrap();
        assert_eq!(wanted.len(), DEFAULT_TYPES.len());
        assert!(wanted.iter().all(|w| w.version.is_none()));
    }

    #[test]
    fn types_take_an_optional_schema_version_and_merge_duplicates() {
        let wanted = wanted_types(&specs(&["a.b@3", "c.d", "a.b", " "])).unwrap();
        assert_eq!(
            wanted,
            vec![
                WantedType {
                    name: "a.b".into(),
                    version: Some(3)
                },
                WantedType {
                    name: "c.d".into(),
                    version: None
                },
            ]
        );
        assert!(matches!(
            wanted_types(&specs(&["a.b@x"])),
            Err(SetupError::Usage(_))
        ));
        assert!(matches!(
            wanted_types(&specs(&["a.b@1", "a.b@2"])),
            Err(SetupError::Usage(_))
        ));
    }

    #[test]
    fn sids_are_checked_for_shape() {
        assert!(looks_like_sid("AC0123456789abcdef0123456789abcdef", "AC"));
        assert!(!looks_like_sid("AC0123", "AC"));
        assert!(!looks_like_sid("SK0123456789abcdef0123456789abcdef", "AC"));
    }
}
