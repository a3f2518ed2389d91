//! Ingest's configuration: every environment variable it reads, read here once and checked at
//! start, so that a bad setting stops the function before it answers Twilio wrongly.
//!
//! - `DEDUP_TABLE`, `STREAM_NAME`, `QUARANTINE_QUEUE_URL`: the DynamoDB table, the Kinesis
//!   stream and the SQS queue (required; the stack sets them);
//! - `TWILIO_SECRET_ARN`: the Secrets Manager secret holding the Twilio secret document (see
//!   [`secrets_from_document`]), read at start and again after a signature failure once the
//!   copy in hand is `SECRET_REFRESH_SECONDS` old (default 60); or, for runs without it,
//!   `TWILIO_AUTH_TOKEN`: the document itself (auth tokens, comma-separated), never re-read;
//! - `PUBLIC_BASE_URL` and the core's optional settings: see `read_settings` below.

use std::time::Duration;
use twilio_events::signature::SecretSet;
// The secret document is read by the shared crate, where `serve` and `verify` read it too.
pub use twilio_events::signature::{SecretDocumentError, secrets_from_document};

/// Everything ingest reads from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The core's settings.
    pub settings: IngestSettings,
    /// `DEDUP_TABLE`: the DynamoDB table of dedup records.
    pub dedup_table: String,
    /// `STREAM_NAME`: the Kinesis stream events are published to.
    pub stream_name: String,
    /// `QUARANTINE_QUEUE_URL`: the SQS queue that keeps what cannot be parsed.
    pub quarantine_queue_url: String,
    /// `QUARANTINE_BUCKET` (optional): the S3 bucket for quarantined items too large for an SQS
    /// message; without it such an item is refused (and the delivery answered 503), never cut.
    pub quarantine_bucket: Option<String>,
    /// Where the Twilio secrets come from.
    pub twilio_secret: TwilioSecretSource,
}

/// Where the secrets that verify Twilio's signatures come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioSecretSource {
    /// `TWILIO_SECRET_ARN`: a Secrets Manager secret, read at start and again after a
    /// signature failure (at most once per `IngestSettings::secret_refresh`).
    Arn(String),
    /// `TWILIO_AUTH_TOKEN`: the secrets themselves, already read (their `Debug` hides them).
    Inline(SecretSet),
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup of variables by name (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let settings = read_settings(&var)?;
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str, fix: &'static str| {
            set(name).ok_or(ConfigError::Missing(name, fix))
        };
        let dedup_table = required(
            "DEDUP_TABLE",
            "set it to the name of the DynamoDB table of dedup records (the stack's DedupTable)",
        )?;
        let stream_name = required(
            "STREAM_NAME",
            "set it to the name of the Kinesis stream events go to (the stack's EventStream)",
        )?;
        let quarantine_queue_url = required(
            "QUARANTINE_QUEUE_URL",
            "set it to the URL of the SQS quarantine queue (the stack's QuarantineQueue)",
        )?;
        let twilio_secret =
            match (set("TWILIO_SECRET_ARN"), set("TWILIO_AUTH_TOKEN")) {
                (Some(arn), _) => TwilioSecretSource::Arn(arn),
                (None, Some(document)) => TwilioSecretSource::Inline(
                    secrets_from_document(&document).map_err(|source| ConfigError::Secret {
                        name: "TWILIO_AUTH_TOKEN",
                        source,
                    })?,
                ),
                (None, None) => {
                    return Err(ConfigError::Missing(
                        "TWILIO_SECRET_ARN",
                        "set it to the ARN of the Secrets Manager secret holding the Twilio auth \
                     tokens (the stack's TwilioSecret), or set TWILIO_AUTH_TOKEN",
                    ));
                }
            };
        Ok(Self {
            settings,
            dedup_table,
            stream_name,
            quarantine_queue_url,
            quarantine_bucket: set("QUARANTINE_BUCKET"),
            twilio_secret,
        })
    }
}

/// How to answer a signature that does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureFailureAnswer {
    /// 503 with Retry-After: Twilio retries for up to 4 hours, so a genuine delivery signed
    /// with a token this function has not learned yet (a rotation) is not lost.
    RetryLater { retry_after_secs: u32 },
    /// 403: Twilio drops the event for good. For deployments that prefer to shed forgeries.
    Forbidden,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestSettings {
    /// The URL Twilio calls for Event Streams deliveries, exactly as configured on the sink,
    /// without the query string (the raw query string is appended as received).
    pub events_url: String,
    /// The URL Twilio calls for Usage Trigger callbacks.
    pub usage_triggers_url: String,
    /// The base URL of the classic webhook routes (`/twilio/message-status`,
    /// `/twilio/call-status`, `/twilio/inbound-messages` below it).
    pub base_url: String,
    /// What the inbound-message route answers Twilio with (`INBOUND_MESSAGE_TWIML`): an empty
    /// `<Response/>` by default, so that no reply is sent.
    pub inbound_twiml: String,
    /// Larger bodies get 413. Twilio's deliveries are a few KB.
    pub max_body_bytes: usize,
    pub signature_failure: SignatureFailureAnswer,
    /// How long an event id stays known. At least 24 hours, well past Twilio's 4-hour retries.
    pub dedup_window: Duration,
    /// Stop retrying the stream this long before the deadline, to answer in time.
    pub answer_margin: Duration,
    /// `PUBLIC_BASE_URL=auto`: take the base URL from API Gateway's request context (its
    /// domain name and stage) instead of the two URLs above. Right for the default
    /// execute-api endpoint, where that is exactly what Twilio calls; a custom domain with a
    /// base path needs the URL spelled out.
    pub base_url_from_request: bool,
    /// How old the secrets in hand must be before a signature failure reads the secret again:
    /// a rotated Auth Token is learnt within this, and a flood of forged requests costs at
    /// most one read per this per instance.
    pub secret_refresh: Duration,
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// TwiML that tells Twilio to send no reply to an inbound message.
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(48 * 3600);
pub const MIN_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_SECRET_REFRESH: Duration = Duration::from_secs(60);

impl IngestSettings {
    /// Settings for a public base URL such as `https://abc.execute-api.us-east-1.amazonaws.com/prod`
    /// (routes `/twilio/events` and `/twilio/usage-triggers` below it), with defaults.
    pub fn for_base_url(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            events_url: format!("{base}/twilio/events"),
            usage_triggers_url: format!("{base}/twilio/usage-triggers"),
            base_url: base.to_owned(),
            inbound_twiml: EMPTY_TWIML.to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            signature_failure: SignatureFailureAnswer::RetryLater {
                retry_after_secs: 60,
            },
            dedup_window: DEFAULT_DEDUP_WINDOW,
            answer_margin: Duration::from_millis(300),
            base_url_from_request: false,
            secret_refresh: DEFAULT_SECRET_REFRESH,
        }
    }
}

/// A variable that is missing or wrong: the message starts with its name and says the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set: {1}")]
    Missing(&'static str, &'static str),
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
    #[error("{name}: {source}")]
    Secret {
        name: &'static str,
        #[source]
        source: SecretDocumentError,
    },
}

impl ConfigError {
    /// The variable to fix.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Missing(name, _) | Self::Invalid { name, .. } | Self::Secret { name, .. } => name,
        }
    }
}

fn invalid(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        problem: problem.into(),
    }
}

/// Reads the core's settings from environment variables (through `var`, so tests need not
/// touch the process environment):
/// - `PUBLIC_BASE_URL`: the base URL Twilio calls (required unless both URLs below are set), or
///   `auto` to take it from API Gateway's request context (default execute-api endpoint);
/// - `PUBLIC_EVENTS_URL`, `PUBLIC_USAGE_TRIGGERS_URL`: override one route's public URL;
/// - `MAX_BODY_BYTES` (default 262144), `DEDUP_WINDOW_HOURS` (default 48, at least 24);
/// - `SIGNATURE_FAILURE_STATUS`: 503 (default) or 403; `RETRY_AFTER_SECONDS` (default 60);
/// - `SECRET_REFRESH_SECONDS` (default 60, 1 to 3600): see `IngestSettings::secret_refresh`.
fn read_settings(var: &impl Fn(&str) -> Option<String>) -> Result<IngestSettings, ConfigError> {
    let base = var("PUBLIC_BASE_URL").filter(|v| !v.trim().is_empty());
    let mut settings = IngestSettings::for_base_url(base.as_deref().unwrap_or(""));
    if base.as_deref().map(str::trim) == Some("auto") {
        // The URLs come with each request; the ones above are never used.
        settings.base_url_from_request = true;
    } else {
        read_public_urls(var, base, &mut settings)?;
    }
    read_limits(var, &mut settings)?;
    if let Some(twiml) = var("INBOUND_MESSAGE_TWIML").filter(|v| !v.trim().is_empty()) {
        if !twiml.contains("<Response") {
            return Err(invalid(
                "INBOUND_MESSAGE_TWIML",
                "must be a TwiML document (<Response>…</Response>)".to_owned(),
            ));
        }
        settings.inbound_twiml = twiml;
    }
    Ok(settings)
}

/// The public URLs from `PUBLIC_BASE_URL` and the per-route overrides, checked.
fn read_public_urls(
    var: &impl Fn(&str) -> Option<String>,
    base: Option<String>,
    settings: &mut IngestSettings,
) -> Result<(), ConfigError> {
    match (
        base,
        var("PUBLIC_EVENTS_URL"),
        var("PUBLIC_USAGE_TRIGGERS_URL"),
    ) {
        (base, Some(events), Some(triggers)) => {
            // Without a base URL, the classic routes sit beside the events route.
            if base.is_none() {
                settings.base_url = events
                    .strip_suffix("/twilio/events")
                    .unwrap_or(&events)
                    .to_owned();
            }
            settings.events_url = events;
            settings.usage_triggers_url = triggers;
        }
        (Some(_), events, triggers) => {
            if let Some(events) = events {
                settings.events_url = events;
            }
            if let Some(triggers) = triggers {
                settings.usage_triggers_url = triggers;
            }
        }
        (None, _, _) => {
            return Err(ConfigError::Missing(
                "PUBLIC_BASE_URL",
                "set it to the URL Twilio calls, e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod",
            ));
        }
    }
    for (name, url) in [
        ("PUBLIC_EVENTS_URL", &settings.events_url),
        ("PUBLIC_USAGE_TRIGGERS_URL", &settings.usage_triggers_url),
    ] {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains('?') {
            return Err(invalid(
                name,
                format!("{url:?} must be an http(s) URL without a query string"),
            ));
        }
    }
    Ok(())
}

/// Body size, dedup window and the answer to bad signatures.
fn read_limits(
    var: &impl Fn(&str) -> Option<String>,
    settings: &mut IngestSettings,
) -> Result<(), ConfigError> {
    if let Some(v) = var("MAX_BODY_BYTES") {
        settings.max_body_bytes = v
            .parse()
            .ok()
            .filter(|n| (1024..=6 * 1024 * 1024).contains(n))
            .ok_or_else(|| {
                invalid(
                    "MAX_BODY_BYTES",
                    format!("{v:?} must be a byte count between 1024 and 6291456"),
                )
            })?;
    }
    if let Some(v) = var("DEDUP_WINDOW_HOURS") {
        let hours: u64 = v.parse().map_err(|_| {
            invalid(
                "DEDUP_WINDOW_HOURS",
                format!("{v:?} is not a whole number of hours"),
            )
        })?;
        settings.dedup_window = Duration::from_secs(hours * 3600);
        if settings.dedup_window < MIN_DEDUP_WINDOW {
            return Err(invalid(
                "DEDUP_WINDOW_HOURS",
                "must be at least 24: Twilio retries for 4 hours and replays up to 4 hours back",
            ));
        }
    }
    let retry_after_secs = match var("RETRY_AFTER_SECONDS") {
        Some(v) => v.parse().map_err(|_| {
            invalid(
                "RETRY_AFTER_SECONDS",
                format!("{v:?} is not a number of seconds"),
            )
        })?,
        None => 60,
    };
    if let Some(v) = var("SECRET_REFRESH_SECONDS") {
        let secs: u64 = v
            .parse()
            .ok()
            .filter(|s| (1..=3600).contains(s))
            .ok_or_else(|| {
                invalid(
                    "SECRET_REFRESH_SECONDS",
                    format!(
                        "{v:?} must be a whole number of seconds from 1 to 3600 (default 60): \
                         how old the secret must be before a signature failure reads it again"
                    ),
                )
            })?;
        settings.secret_refresh = Duration::from_secs(secs);
    }
    settings.signature_failure = match var("SIGNATURE_FAILURE_STATUS").as_deref() {
        None | Some("503") => SignatureFailureAnswer::RetryLater { retry_after_secs },
        Some("403") => SignatureFailureAnswer::Forbidden,
        Some(other) => {
            return Err(invalid(
                "SIGNATURE_FAILURE_STATUS",
                format!("{other:?} must be 503 (Twilio retries) or 403 (Twilio drops)"),
            ));
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_base_url_gives_both_routes() {
        let s = read_settings(&env(&[("PUBLIC_BASE_URL", "https://x.example.com/prod/")])).unwrap();
        assert_eq!(s.events_url, "https://x.example.com/prod/twilio/events");
        assert_eq!(
            s.usage_triggers_url,
            "https://x.example.com/prod/twilio/usage-triggers"
        );
        assert_eq!(
            s.signature_failure,
            SignatureFailureAnswer::RetryLater {
                retry_after_secs: 60
            }
        );
        assert_eq!(s.dedup_window, DEFAULT_DEDUP_WINDOW);
        assert_eq!(s.secret_refresh, Duration::from_secs(60));
    }

    #[test]
    fn the_secret_refresh_interval_is_read_and_bounded() {
        let read = |v: &str| {
            read_settings(&env(&[
                ("PUBLIC_BASE_URL", "https://x"),
                ("SECRET_REFRESH_SECONDS", v),
            ]))
        };
        assert_eq!(read("5").unwrap().secret_refresh, Duration::from_secs(5));
        for wrong in ["0", "3601", "soon", "-1"] {
            let err = read(wrong).unwrap_err();
            assert_eq!(err.variable(), "SECRET_REFRESH_SECONDS", "{wrong}");
        }
    }

    #[test]
    fn auto_takes_the_base_url_from_each_request() {
        let s = read_settings(&env(&[
            ("PUBLIC_BASE_URL", "auto"),
            ("SIGNATURE_FAILURE_STATUS", "403"),
        ]))
        .unwrap();
        assert!(s.base_url_from_request);
        assert_eq!(
            s.signature_failure,
            SignatureFailureAnswer::Forbidden,
            "the other settings still apply"
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let err = read_settings(&env(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with("PUBLIC_BASE_URL is not set"),
            "{err}"
        );
        let err = read_settings(&env(&[
            ("PUBLIC_BASE_URL", "https://x"),
            ("DEDUP_WINDOW_HOURS", "4"),
        ]))
        .unwrap_err();
        assert!(err.to_string().starts_with("DEDUP_WINDOW_HOURS"), "{err}");
        let err = read_settings(&env(&[
            ("PUBLIC_BASE_URL", "https://x"),
            ("SIGNATURE_FAILURE_STATUS", "400"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("SIGNATURE_FAILURE_STATUS"),
            "{err}"
        );
        let err = read_settings(&env(&[("PUBLIC_BASE_URL", "ftp://x")])).unwrap_err();
        assert!(err.to_string().starts_with("PUBLIC_EVENTS_URL"), "{err}");
        let ok = read_settings(&env(&[
            ("PUBLIC_BASE_URL", "https://x"),
            ("SIGNATURE_FAILURE_STATUS", "403"),
        ]))
        .unwrap();
        assert_eq!(ok.signature_failure, SignatureFailureAnswer::Forbidden);
    }

    const RESOURCES: [(&str, &str); 4] = [
        ("PUBLIC_BASE_URL", "https://x.example.com/prod"),
        ("DEDUP_TABLE", "dedup"),
        ("STREAM_NAME", "events"),
        (
            "QUARANTINE_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/q",
        ),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(&str, &str)> = RESOURCES.iter().chain(extra).copied().collect();
        Config::from_lookup(env(&pairs))
    }

    #[test]
    fn every_variable_is_read_into_the_config() {
        // GIVEN the stack's variables, with both secret variables set
        let config = with(&[
            (
                "TWILIO_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:t",
            ),
            ("TWILIO_AUTH_TOKEN", "ignored"),
            ("DEDUP_WINDOW_HOURS", "72"),
            ("QUARANTINE_BUCKET", "stack-quarantinebucket-1"),
        ])
        .unwrap();
        // THEN each is where the wiring looks for it, and the secret ARN wins
        assert_eq!(config.dedup_table, "dedup");
        assert_eq!(config.stream_name, "events");
        assert_eq!(
            config.quarantine_queue_url,
            "https://sqs.us-east-1.amazonaws.com/1/q"
        );
        assert_eq!(
            config.twilio_secret,
            TwilioSecretSource::Arn("arn:aws:secretsmanager:us-east-1:1:secret:t".into())
        );
        assert_eq!(
            config.settings.events_url,
            "https://x.example.com/prod/twilio/events"
        );
        assert_eq!(config.settings.dedup_window, Duration::from_secs(72 * 3600));
        assert_eq!(
            config.quarantine_bucket.as_deref(),
            Some("stack-quarantinebucket-1")
        );
        // AND without a bucket (or a blank one) large items have nowhere to go but refusal
        assert_eq!(
            with(&[("TWILIO_AUTH_TOKEN", "t")])
                .unwrap()
                .quarantine_bucket,
            None
        );
        let blank = with(&[("TWILIO_AUTH_TOKEN", "t"), ("QUARANTINE_BUCKET", " ")]).unwrap();
        assert_eq!(blank.quarantine_bucket, None);
    }

    #[test]
    fn an_inline_auth_token_is_read_at_once_and_never_shown() {
        let config = with(&[("TWILIO_AUTH_TOKEN", "tok-one,tok-two")]).unwrap();
        let TwilioSecretSource::Inline(secrets) = &config.twilio_secret else {
            panic!("expected inline secrets: {config:?}");
        };
        assert_eq!(secrets.auth_tokens().len(), 2);
        assert!(!format!("{config:?}").contains("tok-one"), "{config:?}");
        let err = with(&[("TWILIO_AUTH_TOKEN", r#"{"auth_tokens":"very-secret"}"#)]).unwrap_err();
        assert_eq!(err.variable(), "TWILIO_AUTH_TOKEN");
        assert!(err.to_string().starts_with("TWILIO_AUTH_TOKEN: "), "{err}");
        assert!(!err.to_string().contains("very-secret"), "{err}");
    }

    #[test]
    fn a_missing_variable_is_named_with_its_fix() {
        // No secret at all: the deployed variable is named, and the local alternative.
        let err = with(&[]).unwrap_err();
        assert_eq!(err.variable(), "TWILIO_SECRET_ARN");
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
        // Each resource, missing or empty.
        for name in ["DEDUP_TABLE", "STREAM_NAME", "QUARANTINE_QUEUE_URL"] {
            for value in [None, Some(" ")] {
                let pairs: Vec<(&str, &str)> = RESOURCES
                    .iter()
                    .copied()
                    .filter(|(n, _)| *n != name)
                    .chain(value.map(|v| (name, v)))
                    .chain([("TWILIO_AUTH_TOKEN", "tok")])
                    .collect();
                let err = Config::from_lookup(env(&pairs)).unwrap_err();
                assert_eq!(err.variable(), name);
                assert!(
                    err.to_string()
                        .starts_with(&format!("{name} is not set: set it to")),
                    "{err}"
                );
            }
        }
    }
}
