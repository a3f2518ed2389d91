//! The function's configuration, every variable read here into a typed [`Config`]:
//!
//! - `LEDGER_TABLE`: crm-sync's status ledger (read: its open index and rows);
//! - `DEDUP_TABLE`, `STREAM_NAME`: ingest's dedup table and the stream, where reconciled
//!   events go the way a delivery's do; `DEDUP_WINDOW_HOURS` as ingest has it (default 48);
//! - `TWILIO_API_SECRET_ARN`: a Secrets Manager secret holding the REST API credentials,
//!   `{"account_sid": "AC…", "api_key_sid": "SK…", "api_key_secret": "…"}` (preferred) or
//!   `{"account_sid": "AC…", "auth_token": "…"}`;
//! - `TWILIO_API_BASE` (default `https://api.twilio.com`);
//! - `RECONCILE_EVERY_MINUTES` (default 15): the schedule's period, which sizes each stuck
//!   lookup window and the sweep window;
//! - `RECONCILE_SWEEP` (default `true`): also list what was sent in the window that ended
//!   `RECONCILE_SWEEP_LAG_MINUTES` ago (default 15) and store what the ledger never saw;
//! - `RECONCILE_CONCURRENCY` (default 4): requests to Twilio in flight.

use crate::adapters::twilio_api::{ApiCredentials, DEFAULT_API_BASE};
use crate::processor::ReconcileSettings;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub ledger_table: String,
    pub dedup_table: String,
    pub stream_name: String,
    pub dedup_window: Duration,
    pub api_secret_arn: String,
    pub api_base: String,
    pub sweep: bool,
    pub sweep_lag: Duration,
    pub settings: ReconcileSettings,
}

/// A variable that is missing or wrong: the message names it and says the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set: {1}")]
    Missing(&'static str, &'static str),
    #[error("{name} is invalid ({why})")]
    Invalid { name: &'static str, why: String },
}

impl Config {
    /// From the process environment; a blank variable counts as unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// From any variable lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str, hint: &'static str| {
            get(name).ok_or(ConfigError::Missing(name, hint))
        };
        let number = |name: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError::Invalid {
                        name,
                        why: format!("a whole number, at least {min}, is expected"),
                    }),
                },
            }
        };
        let sweep = match get("RECONCILE_SWEEP").as_deref().map(str::trim) {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "RECONCILE_SWEEP",
                    why: "true or false is expected".into(),
                });
            }
        };
        let every = Duration::from_secs(60 * number("RECONCILE_EVERY_MINUTES", 15, 1)?);
        Ok(Self {
            ledger_table: required("LEDGER_TABLE", "name crm-sync's status ledger table")?,
            dedup_table: required("DEDUP_TABLE", "name ingest's dedup table")?,
            stream_name: required("STREAM_NAME", "name the events stream")?,
            dedup_window: Duration::from_secs(3600 * number("DEDUP_WINDOW_HOURS", 48, 24)?),
            api_secret_arn: required(
                "TWILIO_API_SECRET_ARN",
                "name the secret with the REST API credentials (docs/operations.md)",
            )?,
            api_base: get("TWILIO_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_owned()),
            sweep,
            sweep_lag: Duration::from_secs(60 * number("RECONCILE_SWEEP_LAG_MINUTES", 15, 0)?),
            settings: ReconcileSettings {
                every,
                concurrency: number("RECONCILE_CONCURRENCY", 4, 1)? as usize,
                ..ReconcileSettings::default()
            },
        })
    }
}

/// Why the credentials secret cannot be used. Says where, never what: values are secrets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    #[error(
        "not the credentials document (line {line}, column {column}): put \
         {{\"account_sid\": \"AC…\", \"api_key_sid\": \"SK…\", \"api_key_secret\": \"…\"}} \
         (or \"auth_token\" instead of the key) in it"
    )]
    NotTheDocument { line: usize, column: usize },
    #[error("the credentials document has neither api_key_sid + api_key_secret nor auth_token")]
    NoSecret,
    #[error("account_sid is not an account SID (AC + 32 hex digits)")]
    BadAccount,
}

/// The REST API credentials from the secret's document.
pub fn credentials_from_document(document: &str) -> Result<ApiCredentials, CredentialsError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Document {
        account_sid: String,
        api_key_sid: Option<String>,
        api_key_secret: Option<String>,
        auth_token: Option<String>,
    }
    let doc: Document =
        serde_json::from_str(document.trim()).map_err(|e| CredentialsError::NotTheDocument {
            line: e.line(),
            column: e.column(),
        })?;
    if !twilio_events::event::form::is_sid(&doc.account_sid, "AC") {
        return Err(CredentialsError::BadAccount);
    }
    match (doc.api_key_sid, doc.api_key_secret, doc.auth_token) {
        (Some(key), Some(secret), _) if !key.is_empty() && !secret.is_empty() => {
            Ok(ApiCredentials::api_key(&doc.account_sid, &key, &secret))
        }
        (_, _, Some(token)) if !token.is_empty() => {
            Ok(ApiCredentials::auth_token(&doc.account_sid, &token))
        }
        _ => Err(CredentialsError::NoSecret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 4] = [
        ("LEDGER_TABLE", "ledger"),
        ("DEDUP_TABLE", "dedup"),
        ("STREAM_NAME", "events"),
        (
            "TWILIO_API_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:1:secret:x",
        ),
    ];

    #[test]
    fn defaults_are_a_quarter_hour_schedule_with_a_sweep() {
        let config = Config::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(config.settings.every, Duration::from_secs(900));
        assert!(config.sweep);
        assert_eq!(config.api_base, "https://api.twilio.com");
        assert_eq!(config.dedup_window, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn each_wrong_variable_is_named() {
        let missing = Config::from_lookup(lookup(&BASE[..3])).unwrap_err();
        assert!(
            missing.to_string().starts_with("TWILIO_API_SECRET_ARN"),
            "{missing}"
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("RECONCILE_EVERY_MINUTES", "0"));
        let e = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(e.to_string().starts_with("RECONCILE_EVERY_MINUTES"), "{e}");
        pairs.pop();
        pairs.push(("RECONCILE_SWEEP", "yes"));
        assert!(Config::from_lookup(lookup(&pairs)).is_err());
    }

    #[test]
    fn an_api_key_is_preferred_and_no_error_shows_a_secret() {
        let account = "AC6efc9b5850127eaea3c1e8dea35cdf4a";
        let both = format!(
            r#"{{"account_sid":"{account}","api_key_sid":"SKabc","api_key_secret":"s3cr3t","auth_token":"t0k3n"}}"#
        );
        assert_eq!(
            credentials_from_document(&both).unwrap().username(),
            "SKabc"
        );
        let token = format!(r#"{{"account_sid":"{account}","auth_token":"t0k3n"}}"#);
        assert_eq!(
            credentials_from_document(&token).unwrap().username(),
            account
        );
        let bad = r#"{"account_sid":"AC1","auth_token":"t0k3n-visible"}"#;
        assert_eq!(
            credentials_from_document(bad),
            Err(CredentialsError::BadAccount)
        );
        let broken = r#"{"account_sid": "x", "auth_token": t0k3n-visible}"#;
        let e = credentials_from_document(broken).unwrap_err().to_string();
        assert!(!e.contains("t0k3n-visible"), "{e}");
    }
}
