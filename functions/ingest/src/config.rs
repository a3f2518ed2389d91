//! Ingest's settings, read from the environment and checked at start: a bad setting stops the
//! function before it answers Twilio wrongly.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use twilio_events::signature::SecretSet;

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
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(48 * 3600);
pub const MIN_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

impl IngestSettings {
    /// Settings for a public base URL such as `https://abc.execute-api.us-east-1.amazonaws.com/prod`
    /// (routes `/twilio/events` and `/twilio/usage-triggers` below it), with defaults.
    pub fn for_base_url(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            events_url: format!("{base}/twilio/events"),
            usage_triggers_url: format!("{base}/twilio/usage-triggers"),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            signature_failure: SignatureFailureAnswer::RetryLater {
                retry_after_secs: 60,
            },
            dedup_window: DEFAULT_DEDUP_WINDOW,
            answer_margin: Duration::from_millis(300),
            base_url_from_request: false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set: {1}")]
    Missing(&'static str, &'static str),
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
}

fn invalid(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        problem: problem.into(),
    }
}

/// Reads settings from environment variables (through `var`, so tests need not touch the
/// process environment):
/// - `PUBLIC_BASE_URL`: the base URL Twilio calls (required unless both URLs below are set), or
///   `auto` to take it from API Gateway's request context (default execute-api endpoint);
/// - `PUBLIC_EVENTS_URL`, `PUBLIC_USAGE_TRIGGERS_URL`: override one route's public URL;
/// - `MAX_BODY_BYTES` (default 262144), `DEDUP_WINDOW_HOURS` (default 48, at least 24);
/// - `SIGNATURE_FAILURE_STATUS`: 503 (default) or 403; `RETRY_AFTER_SECONDS` (default 60).
pub fn settings_from(var: impl Fn(&str) -> Option<String>) -> Result<IngestSettings, ConfigError> {
    let base = var("PUBLIC_BASE_URL").filter(|v| !v.trim().is_empty());
    let mut settings = IngestSettings::for_base_url(base.as_deref().unwrap_or(""));
    if base.as_deref().map(str::trim) == Some("auto") {
        // The URLs come with each request; the ones above are never used.
        settings.base_url_from_request = true;
    } else {
        read_public_urls(&var, base, &mut settings)?;
    }
    read_limits(&var, &mut settings)?;
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
        (_, Some(events), Some(triggers)) => {
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

/// The secret document kept in Secrets Manager (or given to `serve`), any of:
/// - a plain Auth Token string;
/// - `{"auth_tokens": ["new", "old"], "shared_keys": {"<key id>": "<secret>"}}`;
/// - per account: `{"accounts": {"AC…": {"auth_tokens": ["…"]}}, "shared_keys": {…}}`.
pub fn secrets_from_document(document: &str) -> Result<SecretSet, ConfigError> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Account {
        #[serde(default)]
        auth_tokens: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Document {
        #[serde(default)]
        auth_tokens: Vec<String>,
        #[serde(default)]
        shared_keys: BTreeMap<String, String>,
        #[serde(default)]
        accounts: BTreeMap<String, Account>,
    }
    let name = "the Twilio secret";
    let trimmed = document.trim();
    let mut secrets = SecretSet::new();
    if !trimmed.starts_with('{') {
        secrets.add_auth_tokens_csv(trimmed);
    } else {
        // serde's message may quote a value, and values here are secrets: say where, not what.
        let doc: Document = serde_json::from_str(trimmed).map_err(|e| {
            invalid(
                name,
                format!(
                    "not the expected JSON document (line {}, column {}): expected {{\"auth_tokens\": [...], \"shared_keys\": {{...}}, \"accounts\": {{...}}}}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let tokens = doc
            .auth_tokens
            .iter()
            .chain(doc.accounts.values().flat_map(|a| a.auth_tokens.iter()));
        for token in tokens.filter(|t| !t.trim().is_empty()) {
            secrets.add_auth_token(token.trim());
        }
        for (id, secret) in &doc.shared_keys {
            if secret.is_empty() {
                return Err(invalid(name, format!("shared key {id:?} is empty")));
            }
            secrets.add_shared_key(id.as_str(), secret.as_str());
        }
    }
    if secrets.is_empty() {
        return Err(invalid(name, "holds no auth token and no shared key"));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_base_url_gives_both_routes() {
        let s = settings_from(env(&[("PUBLIC_BASE_URL", "https://x.example.com/prod/")])).unwrap();
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
    }

    #[test]
    fn auto_takes_the_base_url_from_each_request() {
        let s = settings_from(env(&[
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
        let err = settings_from(env(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with("PUBLIC_BASE_URL is not set"),
            "{err}"
        );
        let err = settings_from(env(&[
            ("PUBLIC_BASE_URL", "https://x"),
            ("DEDUP_WINDOW_HOURS", "4"),
        ]))
        .unwrap_err();
        assert!(err.to_string().starts_with("DEDUP_WINDOW_HOURS"), "{err}");
        let err = settings_from(env(&[
            ("PUBLIC_BASE_URL", "https://x"),
            ("SIGNATURE_FAILURE_STATUS", "400"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("SIGNATURE_FAILURE_STATUS"),
            "{err}"
        );
        let err = settings_from(env(&[("PUBLIC_BASE_URL", "ftp://x")])).unwrap_err();
        assert!(err.to_string().starts_with("PUBLIC_EVENTS_URL"), "{err}");
        let ok = settings_from(env(&[
            ("PUBLIC_BASE_URL", "https://x"),
            ("SIGNATURE_FAILURE_STATUS", "403"),
        ]))
        .unwrap();
        assert_eq!(ok.signature_failure, SignatureFailureAnswer::Forbidden);
    }

    #[test]
    fn secret_documents_in_every_form() {
        assert_eq!(
            secrets_from_document("tok1,tok2")
                .unwrap()
                .auth_tokens()
                .len(),
            2
        );
        let s = secrets_from_document(r#"{"auth_tokens":["a"],"accounts":{"AC1":{"auth_tokens":["b","c"]}},"shared_keys":{"k1":"s1"}}"#).unwrap();
        assert_eq!(s.auth_tokens().len(), 3);
        assert!(s.shared_key("k1").is_some());
        assert!(secrets_from_document("{}").is_err());
        let err = secrets_from_document(r#"{"auth_tokens":"very-secret"}"#).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(
            !err.to_string().contains("very-secret"),
            "never echo a secret: {err}"
        );
    }
}
