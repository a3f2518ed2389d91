//! The function's configuration: every environment variable it reads, read here once at start
//! into a typed [`Config`] (README.md lists them). Nothing is built or fetched here: secrets are
//! read and adapters built by [`crate::startup`].

use crate::adapters::Secret;
use crate::adapters::http_crm::{BaseUrlError, check_base_url};
use crate::adapters::salesforce::SalesforceSettings;
use crate::processor::SyncSettings;
use std::time::Duration;

/// What is wrong with the configuration, and what to set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set: {1}")]
    Missing(&'static str, &'static str),
    #[error("{name} is invalid ({why})")]
    Invalid { name: &'static str, why: String },
    #[error("{name} is invalid: the CRM's base URL {source}")]
    InvalidUrl {
        name: &'static str,
        #[source]
        source: BaseUrlError,
    },
}

/// Where a credential comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// Secrets Manager: the secret's string is the value.
    Arn(String),
    /// Directly from the environment (local runs).
    Value(Secret),
}

/// The CRM to write to (`CRM_KIND`) and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrmConfig {
    Http {
        url: String,
        token: Option<SecretSource>,
    },
    Salesforce {
        settings: Box<SalesforceSettings>,
        /// When set, replaces `settings.client_secret` at build time.
        secret: SecretSource,
    },
}

/// Which CRM, where the ledger and the quarantine are, and the core's tuning.
#[derive(Clone, Debug)]
pub struct Config {
    pub crm: CrmConfig,
    pub ledger_table: String,
    pub quarantine_queue_url: String,
    /// `QUARANTINE_BUCKET` (optional): where items too large for an SQS message go.
    pub quarantine_bucket: Option<String>,
    pub settings: SyncSettings,
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
        let secret = |arn: &'static str, value: &'static str| {
            get(arn)
                .map(SecretSource::Arn)
                .or_else(|| get(value).map(|v| SecretSource::Value(Secret::new(v))))
        };
        let kind = get("CRM_KIND").unwrap_or_else(|| "http".into());
        let crm = match kind.to_ascii_lowercase().as_str() {
            "http" => {
                let url = required(
                    "CRM_URL",
                    "the base URL of the CRM's HTTP endpoint (see README.md, HTTP contract)",
                )?;
                check_base_url(&url).map_err(|source| ConfigError::InvalidUrl {
                    name: "CRM_URL",
                    source,
                })?;
                CrmConfig::Http {
                    url,
                    token: secret("CRM_TOKEN_SECRET_ARN", "CRM_TOKEN"),
                }
            }
            "salesforce" => {
                let login_url = required(
                    "SALESFORCE_LOGIN_URL",
                    "https://<MyDomain>.my.salesforce.com",
                )?;
                if !login_url.starts_with("https://") && !login_url.starts_with("http://127.0.0.1")
                {
                    return Err(ConfigError::Invalid {
                        name: "SALESFORCE_LOGIN_URL",
                        why: "must start with https://, e.g. https://acme.my.salesforce.com".into(),
                    });
                }
                let client_id =
                    required("SALESFORCE_CLIENT_ID", "the connected app's consumer key")?;
                let secret = secret("SALESFORCE_CLIENT_SECRET_ARN", "SALESFORCE_CLIENT_SECRET").ok_or(ConfigError::Missing(
                    "SALESFORCE_CLIENT_SECRET_ARN",
                    "the connected app's consumer secret, in Secrets Manager (or SALESFORCE_CLIENT_SECRET locally)",
                ))?;
                let mut settings =
                    SalesforceSettings::with_defaults(&login_url, &client_id, Secret::new(""));
                let set = |target: &mut String, name: &str| {
                    if let Some(v) = get(name) {
                        *target = v;
                    }
                };
                set(&mut settings.api_version, "SALESFORCE_API_VERSION");
                set(&mut settings.message_object, "SALESFORCE_MESSAGE_OBJECT");
                set(
                    &mut settings.message_id_field,
                    "SALESFORCE_MESSAGE_ID_FIELD",
                );
                set(&mut settings.call_object, "SALESFORCE_CALL_OBJECT");
                set(&mut settings.call_id_field, "SALESFORCE_CALL_ID_FIELD");
                set(&mut settings.status_field, "SALESFORCE_STATUS_FIELD");
                // Optional fields: a value renames, `-` leaves the field out.
                for (target, name) in [
                    (&mut settings.rank_field, "SALESFORCE_RANK_FIELD"),
                    (
                        &mut settings.error_code_field,
                        "SALESFORCE_ERROR_CODE_FIELD",
                    ),
                    (
                        &mut settings.event_time_field,
                        "SALESFORCE_EVENT_TIME_FIELD",
                    ),
                    (&mut settings.event_id_field, "SALESFORCE_EVENT_ID_FIELD"),
                ] {
                    match get(name).as_deref() {
                        Some("-") => *target = None,
                        Some(v) => *target = Some(v.to_owned()),
                        None => {}
                    }
                }
                if !settings.api_version.starts_with('v') {
                    return Err(ConfigError::Invalid {
                        name: "SALESFORCE_API_VERSION",
                        why: "expected the form v60.0".into(),
                    });
                }
                CrmConfig::Salesforce {
                    settings: Box::new(settings),
                    secret,
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    name: "CRM_KIND",
                    why: format!("{other:?}: expected http or salesforce"),
                });
            }
        };
        let mut settings = SyncSettings::default();
        if let Some(v) = get("CRM_CONCURRENCY") {
            settings.concurrency = v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or(ConfigError::Invalid {
                    name: "CRM_CONCURRENCY",
                    why: format!("{v:?}: expected 1 to 256"),
                })?;
        }
        if let Some(v) = get("CRM_ATTEMPT_TIMEOUT_MS") {
            let ms = v
                .parse::<u64>()
                .ok()
                .filter(|n| (100..=60_000).contains(n))
                .ok_or(ConfigError::Invalid {
                    name: "CRM_ATTEMPT_TIMEOUT_MS",
                    why: format!("{v:?}: expected 100 to 60000"),
                })?;
            settings.attempt_timeout = Duration::from_millis(ms);
        }
        Ok(Self {
            crm,
            ledger_table: required(
                "LEDGER_TABLE",
                "the DynamoDB status ledger table (key `sid`, string)",
            )?,
            quarantine_queue_url: required(
                "QUARANTINE_QUEUE_URL",
                "the SQS queue where refused records are kept",
            )?,
            quarantine_bucket: get("QUARANTINE_BUCKET"),
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("LEDGER_TABLE", "ledger"),
        ("QUARANTINE_QUEUE_URL", "https://sqs/q"),
    ];

    #[test]
    fn the_http_crm_is_the_default_and_needs_a_url() {
        let err = config(&BASE).unwrap_err();
        assert!(err.to_string().contains("CRM_URL is not set"), "{err}");
        let mut vars = BASE.to_vec();
        vars.extend([
            ("CRM_URL", "https://crm.example/api/"),
            ("CRM_TOKEN", "t0k3n"),
        ]);
        let c = config(&vars).unwrap();
        assert_eq!(
            c.crm,
            CrmConfig::Http {
                url: "https://crm.example/api/".into(),
                token: Some(SecretSource::Value(Secret::new("t0k3n")))
            }
        );
        assert!(!format!("{c:?}").contains("t0k3n"));
    }

    #[test]
    fn invalid_values_are_named() {
        let mut vars = BASE.to_vec();
        vars.extend([("CRM_URL", "ftp://x"), ("CRM_KIND", "http")]);
        assert!(
            config(&vars)
                .unwrap_err()
                .to_string()
                .contains("CRM_URL is invalid")
        );
        let mut vars = BASE.to_vec();
        vars.push(("CRM_KIND", "hubspot"));
        assert!(
            config(&vars)
                .unwrap_err()
                .to_string()
                .contains("expected http or salesforce")
        );
        let mut vars = BASE.to_vec();
        vars.extend([("CRM_URL", "https://x"), ("CRM_CONCURRENCY", "0")]);
        assert!(
            config(&vars)
                .unwrap_err()
                .to_string()
                .contains("CRM_CONCURRENCY")
        );
        let vars = [("CRM_URL", "https://x")];
        assert!(
            config(&vars)
                .unwrap_err()
                .to_string()
                .contains("LEDGER_TABLE is not set")
        );
    }

    #[test]
    fn salesforce_names_are_configurable() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("CRM_KIND", "salesforce"),
            ("SALESFORCE_LOGIN_URL", "https://acme.my.salesforce.com"),
            ("SALESFORCE_CLIENT_ID", "id"),
            (
                "SALESFORCE_CLIENT_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:sf",
            ),
            ("SALESFORCE_MESSAGE_OBJECT", "SMS__c"),
            ("SALESFORCE_RANK_FIELD", "-"),
        ]);
        let CrmConfig::Salesforce { settings, secret } = config(&vars).unwrap().crm else {
            panic!("salesforce")
        };
        assert_eq!(settings.message_object, "SMS__c");
        assert_eq!(settings.message_id_field, "Message_Sid__c");
        assert_eq!(settings.rank_field, None);
        assert_eq!(
            secret,
            SecretSource::Arn("arn:aws:secretsmanager:us-east-1:1:secret:sf".into())
        );
    }
}
