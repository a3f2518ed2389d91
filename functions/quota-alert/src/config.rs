//! Everything the function reads from its environment, read once at start into [`Config`]
//! (README.md lists the variables). The AWS SDK reads its own (`AWS_REGION`…) and the logger
//! `RUST_LOG`.

use crate::quotas::QuotasSource;
use std::path::PathBuf;

/// The variables that can hold the quota document, exactly one of which must be set.
const QUOTAS_VARIABLES: [&str; 3] = ["QUOTAS_FILE", "QUOTAS_JSON", "QUOTAS_SSM_PARAMETER"];

/// The function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `COUNTER_TABLE`: the DynamoDB table of counters, event ids and alert claims.
    pub counter_table: String,
    /// `ALERT_TOPIC_ARN`: the SNS topic alerts go to.
    pub alert_topic_arn: String,
    /// `QUARANTINE_QUEUE_URL`: the SQS queue for records that are not CloudEvents.
    pub quarantine_queue_url: String,
    /// `QUARANTINE_BUCKET` (optional): where items too large for an SQS message go.
    pub quarantine_bucket: Option<String>,
    /// `QUOTAS_FILE`, `QUOTAS_JSON` or `QUOTAS_SSM_PARAMETER`: where the quota document is
    /// (loaded and validated by [`crate::startup`]).
    pub quotas: QuotasSource,
}

/// A variable is missing or contradicts another; the message names it and says what to set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable} is not set: {fix} (see functions/quota-alert/README.md)")]
    Missing {
        variable: &'static str,
        fix: &'static str,
    },
    #[error(
        "no quota configuration: set one of QUOTAS_FILE (a path), QUOTAS_JSON (the document) or QUOTAS_SSM_PARAMETER (a parameter name)"
    )]
    NoQuotasSource,
    #[error("set only one of QUOTAS_FILE, QUOTAS_JSON and QUOTAS_SSM_PARAMETER, not {}", .0.join(" and "))]
    SeveralQuotasSources(Vec<&'static str>),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any variable lookup (tests pass a list). Blank values count as unset.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let required = |variable: &'static str, fix: &'static str| {
            var(variable).ok_or(ConfigError::Missing { variable, fix })
        };
        Ok(Self {
            counter_table: required(
                "COUNTER_TABLE",
                "set it to the name of the DynamoDB table of counters",
            )?,
            alert_topic_arn: required(
                "ALERT_TOPIC_ARN",
                "set it to the ARN of the SNS topic alerts go to",
            )?,
            quarantine_queue_url: required(
                "QUARANTINE_QUEUE_URL",
                "set it to the URL of the SQS queue for malformed records",
            )?,
            quarantine_bucket: var("QUARANTINE_BUCKET"),
            quotas: quotas_source(&var)?,
        })
    }
}

fn quotas_source(var: &impl Fn(&str) -> Option<String>) -> Result<QuotasSource, ConfigError> {
    let set: Vec<(&'static str, String)> = QUOTAS_VARIABLES
        .into_iter()
        .filter_map(|name| var(name).map(|v| (name, v)))
        .collect();
    match set.as_slice() {
        [] => Err(ConfigError::NoQuotasSource),
        [("QUOTAS_FILE", path)] => Ok(QuotasSource::File(PathBuf::from(path))),
        [("QUOTAS_JSON", json)] => Ok(QuotasSource::Json(json.clone())),
        [(_, name)] => Ok(QuotasSource::SsmParameter(name.clone())),
        several => Err(ConfigError::SeveralQuotasSources(
            several.iter().map(|(name, _)| *name).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: [(&str, &str); 3] = [
        ("COUNTER_TABLE", "counters"),
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:alerts",
        ),
        (
            "QUARANTINE_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        ),
    ];

    /// The three settings and `quotas`, as the environment.
    fn with_quotas(
        quotas: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            SETTINGS
                .iter()
                .chain(quotas)
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn every_variable_is_read() {
        let config = Config::from_lookup(with_quotas(&[("QUOTAS_FILE", "quotas.json")])).unwrap();
        assert_eq!(
            config,
            Config {
                counter_table: "counters".into(),
                alert_topic_arn: "arn:aws:sns:us-east-1:123456789012:alerts".into(),
                quarantine_queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/q".into(),
                quarantine_bucket: None,
                quotas: QuotasSource::File("quotas.json".into()),
            }
        );
    }

    #[test]
    fn a_missing_or_blank_setting_is_named() {
        for missing in ["COUNTER_TABLE", "ALERT_TOPIC_ARN", "QUARANTINE_QUEUE_URL"] {
            let env = with_quotas(&[("QUOTAS_JSON", "{}")]);
            let err = Config::from_lookup(|name| (name != missing).then(|| env(name)).flatten())
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::Missing { variable, .. } if variable == missing),
                "{err}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("{missing} is not set: set it"))
            );
            let blank = Config::from_lookup(|name| {
                if name == missing {
                    Some(" ".into())
                } else {
                    env(name)
                }
            })
            .unwrap_err();
            assert!(matches!(blank, ConfigError::Missing { .. }), "{blank}");
        }
    }

    #[test]
    fn exactly_one_quota_source_must_be_set() {
        assert!(matches!(
            Config::from_lookup(with_quotas(&[])),
            Err(ConfigError::NoQuotasSource)
        ));
        assert_eq!(
            Config::from_lookup(with_quotas(&[("QUOTAS_SSM_PARAMETER", "/q")]))
                .unwrap()
                .quotas,
            QuotasSource::SsmParameter("/q".into())
        );
        let err = Config::from_lookup(with_quotas(&[("QUOTAS_FILE", "a"), ("QUOTAS_JSON", "{}")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("QUOTAS_FILE and QUOTAS_JSON"),
            "{err}"
        );
    }
}
