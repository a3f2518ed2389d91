//! `twilio-events setup`: connects a Twilio account to a deployed stack through the Events API,
//! idempotently. It reads what the account holds, plans the changes ([`plan::plan`]: find or
//! create the webhook sink for the stack's URL, validate it when it is not active yet, make the
//! subscription setup manages hold the event types the stack consumes) and applies them
//! ([`apply::apply`]). A second run changes nothing; `--dry-run` only reads and prints the plan.
//! With `--status-callbacks MG…`, it also points those Messaging Services' status callbacks at
//! the stack's `/twilio/message-status` route, through the Messaging API.

mod apply;
mod events_api;
mod messaging_api;
mod plan;
mod twilio_http;
mod validation;

use super::{CliError, Outcome};
use apply::{SchemaVersions, print_step};
use clap::Args;
use events_api::EventsApi;
use ingest::adapters::sqlite::{SqliteError, database_path};
use messaging_api::MessagingApi;
use plan::{
    PlanError, StatusCallbacks, SubscriptionState, TwilioState, Validation, Wanted, WantedType,
};
use reqwest::Url;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use twilio_http::{ApiError, Credentials};

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

/// The route of `--webhook-url` (the stack's `WebhookUrl` output).
const EVENTS_ROUTE: &str = "/twilio/events";
/// The stack's route for message status callbacks, beside [`EVENTS_ROUTE`].
const MESSAGE_STATUS_ROUTE: &str = "/twilio/message-status";

#[derive(Args)]
#[command(
    long_about = "Connect a Twilio account to the deployed stack through Twilio's Events API: \
find or create the webhook sink for --webhook-url, validate it with the test event when it is \
not active yet, and subscribe it to the event types the stack consumes. Idempotent: a second \
run changes nothing. Writes only to the subscriptions it manages (described --description); \
never removes event types unless --prune is given. With --status-callbacks MG…, also sets the \
status callback of each Messaging Service named (and of no other) to the stack's \
/twilio/message-status route, printing the URL it replaces; run with --dry-run first.",
    after_help = "Exit codes: 0 done (or nothing to do); 1 failure: the Events API could not be \
reached or refused a call, or the sink could not be validated (the message says what to do); \
2 usage error (bad flags, a type Twilio does not know): nothing was changed.\n\
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

    /// The description of the sink and of the subscription setup creates; setup changes only
    /// the subscriptions that carry it.
    #[arg(long, default_value = "twilio-events")]
    description: String,

    /// The Events API root (for tests and proxies).
    #[arg(long, value_name = "URL", default_value = events_api::DEFAULT_BASE)]
    events_api_base: String,

    /// A Messaging Service (MG…) whose message status callbacks should go to the stack's
    /// /twilio/message-status route (beside --webhook-url's /twilio/events); repeat it or
    /// separate SIDs with commas. Services not named are never changed.
    #[arg(long = "status-callbacks", value_name = "MG…", value_delimiter = ',')]
    status_callbacks: Vec<String>,

    /// The Messaging API root (for tests and proxies).
    #[arg(long, value_name = "URL", default_value = messaging_api::DEFAULT_BASE)]
    messaging_api_base: String,

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

    /// Also remove event types that are not wanted from the subscriptions setup manages (those
    /// described --description); other subscriptions of the sink are left alone.
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
            .field("status_callbacks", &self.status_callbacks)
            .field("messaging_api_base", &self.messaging_api_base)
            .field("test_id", &self.test_id)
            .field("data_dir", &self.data_dir)
            .field("wait", &self.wait)
            .field("prune", &self.prune)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

type UrlParseError = <Url as std::str::FromStr>::Err;

/// Why setup stopped: [`SetupError::is_usage`] for a command line that cannot work (exit 2),
/// a failure otherwise (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    // Usage errors (exit 2): nothing was read or written yet, or only read.
    #[error(
        "--types {spec}: the schema version after @ must be a positive number, as in com.twilio.messaging.message.delivered@5"
    )]
    TypeVersion { spec: String },
    #[error(
        "--types {spec:?}: not an event type (they look like com.twilio.messaging.message.delivered)"
    )]
    NotAType { spec: String },
    #[error("--types names {name} twice with different schema versions: keep one")]
    TypeTwice { name: String },
    #[error("--api-key {key:?} is not an API key SID (SK followed by 32 hex digits)")]
    ApiKey { key: String },
    #[error("--account-sid {account:?} is not an Account SID (AC followed by 32 hex digits)")]
    AccountSid { account: String },
    #[error(
        "--status-callbacks {sid:?} is not a Messaging Service SID (MG followed by 32 hex digits, as in Console > Messaging > Services)"
    )]
    MessagingServiceSid { sid: String },
    #[error(
        "--status-callbacks needs --webhook-url to end in {EVENTS_ROUTE} (the stack's WebhookUrl output), to point the services at the stack's {MESSAGE_STATUS_ROUTE} beside it: {url:?} does not"
    )]
    NotAnEventsRoute { url: String },
    #[error(
        "no credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or pass --account-sid and --auth-token), or pass --api-key and --api-secret"
    )]
    NoCredentials,
    #[error("{flag} {value:?} is not a URL")]
    NotAUrl {
        flag: &'static str,
        value: String,
        #[source]
        source: UrlParseError,
    },
    #[error("{flag} {value:?} must be an http(s) URL")]
    NotHttp { flag: &'static str, value: String },
    #[error(
        "--data-dir {dir}: no local stream there: start `twilio-events serve --data-dir {dir}` (reachable by Twilio at {destination}) first"
    )]
    NoLocalStream { dir: String, destination: String },
    #[error(transparent)]
    Plan(#[from] PlanError),

    // Failures (exit 1).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Found while applying: a schema is read just before the first change that needs it.
    #[error(
        "GET /v1/Schemas/{schema_id} gives no latest_version: pass --types {event_type}@VERSION"
    )]
    NoLatestVersion {
        schema_id: String,
        event_type: String,
    },
    #[error(
        "sink {sink_sid} is not active yet: the test event was sent; setup needs its test_id to validate the sink\n  \
         what to do: find the delivery of type com.twilio.eventstreams.test-event the stack received (its data.test_id: in the ingest logs or the stream, or `twilio-events stream dump` for a local serve), then run setup again with --test-id ID (or use --data-dir with a local serve). The webhook must answer Twilio at {destination}.\n  \
         (the subscription is created once the sink is active: Twilio requires it)"
    )]
    TestIdNeeded {
        sink_sid: String,
        destination: String,
    },
    #[error(
        "sink {sink_sid} is not active yet: POST /Sinks/{sink_sid}/Validate with TestId {test_id} answered {result:?}, not \"valid\"\n  \
         what to do: check that the test_id is from the latest test event of this sink, or run setup again without --test-id to send a new one\n  \
         (the subscription is created once the sink is active: Twilio requires it)"
    )]
    NotValid {
        sink_sid: String,
        test_id: String,
        result: String,
    },
    #[error(
        "sink {sink_sid} is not active yet: no test event arrived in {dir} within {wait_s} s\n  \
         what to do: check that `twilio-events serve` runs with this --data-dir and that Twilio reaches it at --webhook-url (a tunnel for a laptop), then run setup again (it sends a new test event); --wait gives it longer\n  \
         (the subscription is created once the sink is active: Twilio requires it)"
    )]
    NoTestEvent {
        sink_sid: String,
        dir: String,
        wait_s: u64,
    },
    #[error("cannot read the local stream in {dir}")]
    Store {
        dir: String,
        #[source]
        source: SqliteError,
    },
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    /// A bug: a change names the sink the plan creates before the plan created it.
    #[error("setup's plan names the new sink before creating it (a bug: please report it)")]
    PlanOrder,
}

impl SetupError {
    /// The command line cannot work as given: nothing was changed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::TypeVersion { .. }
                | Self::NotAType { .. }
                | Self::TypeTwice { .. }
                | Self::ApiKey { .. }
                | Self::AccountSid { .. }
                | Self::MessagingServiceSid { .. }
                | Self::NotAnEventsRoute { .. }
                | Self::NoCredentials
                | Self::NotAUrl { .. }
                | Self::NotHttp { .. }
                | Self::NoLocalStream { .. }
        ) || matches!(self, Self::Plan(e) if !matches!(e, PlanError::ServiceNotRead(_)))
    }
}

impl From<SetupError> for CliError {
    fn from(e: SetupError) -> Self {
        if e.is_usage() {
            Self::usage(e)
        } else {
            Self::failed(e)
        }
    }
}

pub fn run(args: SetupArgs) -> Result<Outcome, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SetupError::Runtime)?;
    runtime.block_on(setup(args))?;
    Ok(Outcome::Ok)
}

async fn setup(args: SetupArgs) -> Result<(), SetupError> {
    let types = wanted_types(&args.types)?;
    http_url("--webhook-url", &args.webhook_url)?;
    // Compared with the sinks' destinations as the user spelled it (SAM's output).
    let destination = args.webhook_url.trim().to_owned();
    let status_callbacks = status_callbacks(&args.status_callbacks, &destination)?;
    let base = http_url("--events-api-base", &args.events_api_base)?;
    let messaging_base = http_url("--messaging-api-base", &args.messaging_api_base)?;
    let (credentials, who) = credentials(&args)?;
    if let Some(dir) = &args.data_dir {
        if !database_path(dir).exists() {
            return Err(SetupError::NoLocalStream {
                dir: dir.display().to_string(),
                destination,
            });
        }
    }
    let validation = match (&args.test_id, &args.data_dir) {
        (Some(id), _) => Validation::TestId(id.trim().to_owned()),
        (None, Some(dir)) => Validation::WaitInStream {
            dir: dir.clone(),
            wait: Duration::from_secs(args.wait),
        },
        (None, None) => Validation::SendTestEvent,
    };
    let wanted = Wanted {
        destination,
        description: args.description.clone(),
        types,
        prune: args.prune,
        validation,
        status_callbacks,
    };
    let api = EventsApi::new(base, credentials.clone())?;
    let messaging = MessagingApi::new(messaging_base, credentials)?;
    let dry_run = if args.dry_run {
        " (dry run: reads only)"
    } else {
        ""
    };
    print_step(
        "events api",
        format_args!("{} as {who}{dry_run}", api.base()),
    );
    if wanted.status_callbacks.is_some() {
        print_step(
            "messaging api",
            format_args!("{} as {who}{dry_run}", messaging.base()),
        );
    }
    let current = read_state(&api, &messaging, &wanted).await?;
    let plan = plan::plan(&current, &wanted)?;
    let mut versions = SchemaVersions::default();
    let changes = if args.dry_run {
        versions.resolve_all(&api, &plan).await?;
        apply::print_plan(&plan, &versions);
        plan.counted_changes()
    } else {
        apply::apply(&plan, &api, &messaging, &mut versions, &wanted.destination).await?
    };
    let callbacks = wanted
        .status_callbacks
        .as_ref()
        .map(|c| {
            format!(
                ", and the message statuses of {} to {}",
                c.services.join(", "),
                c.url
            )
        })
        .unwrap_or_default();
    let summary = match (args.dry_run, changes) {
        (true, 0) => "dry run: nothing to change, Twilio is already set up".to_owned(),
        (true, n) => format!("dry run: {n} change(s) would be made; nothing was changed"),
        (false, 0) => "nothing to change: Twilio is already set up".to_owned(),
        (false, n) => format!(
            "{n} change(s) made: Twilio now sends the events to {}{callbacks}",
            wanted.destination
        ),
    };
    print_step("done", summary);
    Ok(())
}

/// Everything the plan needs, read before anything is written: the types, the sinks and the
/// subscriptions of the sink setup would use, and the Messaging Services named.
async fn read_state(
    api: &EventsApi,
    messaging: &MessagingApi,
    wanted: &Wanted,
) -> Result<TwilioState, SetupError> {
    let catalogue = api.list_types().await?;
    // Stop before reading more when --types names a type Twilio does not have.
    plan::check_types(&catalogue, &wanted.types)?;
    let sinks = api.list_sinks().await?;
    let mut subscriptions = Vec::new();
    if let Some(sink) = plan::choose_sink(&sinks, &wanted.destination).sink {
        for subscription in api.list_subscriptions(&sink.sid).await? {
            if subscription
                .sink_sid
                .as_deref()
                .is_some_and(|sid| sid != sink.sid)
            {
                continue;
            }
            let events = api.list_subscribed_events(&subscription.sid).await?;
            subscriptions.push(SubscriptionState {
                subscription,
                events,
            });
        }
    }
    let mut services = Vec::new();
    for sid in wanted.status_callbacks.iter().flat_map(|c| &c.services) {
        services.push(messaging.fetch_service(sid).await?);
    }
    Ok(TwilioState {
        catalogue,
        sinks,
        subscriptions,
        services,
    })
}

/// `--status-callbacks`: the SIDs, checked and each once, and the stack's message-status URL
/// beside `webhook_url`. None without the flag.
fn status_callbacks(
    sids: &[String],
    webhook_url: &str,
) -> Result<Option<StatusCallbacks>, SetupError> {
    let mut services: Vec<String> = Vec::new();
    for sid in sids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !looks_like_sid(sid, "MG") {
            return Err(SetupError::MessagingServiceSid {
                sid: sid.to_owned(),
            });
        }
        if !services.iter().any(|s| s == sid) {
            services.push(sid.to_owned());
        }
    }
    if services.is_empty() {
        return Ok(None);
    }
    let url = webhook_url
        .strip_suffix(EVENTS_ROUTE)
        .map(|base| format!("{base}{MESSAGE_STATUS_ROUTE}"))
        .ok_or_else(|| SetupError::NotAnEventsRoute {
            url: webhook_url.to_owned(),
        })?;
    Ok(Some(StatusCallbacks { url, services }))
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
                let version = version
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| SetupError::TypeVersion {
                        spec: spec.to_owned(),
                    })?;
                (name.trim(), Some(version))
            }
            None => (spec, None),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(SetupError::NotAType {
                spec: spec.to_owned(),
            });
        }
        match wanted.iter_mut().find(|w| w.name == name) {
            Some(existing)
                if existing.version.is_some()
                    && version.is_some()
                    && existing.version != version =>
            {
                return Err(SetupError::TypeTwice {
                    name: name.to_owned(),
                });
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
            return Err(SetupError::ApiKey {
                key: key.to_owned(),
            });
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
                return Err(SetupError::AccountSid {
                    account: account.to_owned(),
                });
            }
            Ok((
                Credentials::new(account, token),
                format!("account {account}"),
            ))
        }
        _ => Err(SetupError::NoCredentials),
    }
}

fn looks_like_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn http_url(flag: &'static str, value: &str) -> Result<Url, SetupError> {
    let url = Url::parse(value.trim()).map_err(|source| SetupError::NotAUrl {
        flag,
        value: value.to_owned(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SetupError::NotHttp {
            flag,
            value: value.to_owned(),
        });
    }
    Ok(url)
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
            Err(SetupError::TypeVersion { .. })
        ));
        assert!(matches!(
            wanted_types(&specs(&["a.b@1", "a.b@2"])),
            Err(SetupError::TypeTwice { .. })
        ));
    }

    #[test]
    fn status_callbacks_go_to_the_message_status_route_beside_the_webhook_url() {
        let mg = "MG0123456789abcdef0123456789ABCDEF";
        let wanted = status_callbacks(
            &specs(&[mg, " ", mg]),
            "https://x.example.com/prod/twilio/events",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            wanted,
            StatusCallbacks {
                url: "https://x.example.com/prod/twilio/message-status".into(),
                services: vec![mg.into()],
            }
        );
        assert_eq!(status_callbacks(&[], "https://x/other").unwrap(), None);
        assert!(matches!(
            status_callbacks(&specs(&[mg]), "https://x.example.com/twilio/events/"),
            Err(SetupError::NotAnEventsRoute { .. })
        ));
        assert!(matches!(
            status_callbacks(&specs(&["MG123"]), "https://x.example.com/twilio/events"),
            Err(SetupError::MessagingServiceSid { .. })
        ));
        assert!(matches!(
            status_callbacks(
                &specs(&["AC0123456789abcdef0123456789abcdef"]),
                "https://x.example.com/twilio/events"
            ),
            Err(SetupError::MessagingServiceSid { .. })
        ));
    }

    #[test]
    fn sids_are_checked_for_shape() {
        assert!(looks_like_sid("AC0123456789abcdef0123456789abcdef", "AC"));
        assert!(!looks_like_sid("AC0123", "AC"));
        assert!(!looks_like_sid("SK0123456789abcdef0123456789abcdef", "AC"));
    }
}
