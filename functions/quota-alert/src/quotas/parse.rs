//! The quota configuration: a JSON document, from a file, an environment variable or SSM
//! Parameter Store, validated once at start. Every error names the field it is about
//! (`quotas[2].thresholds[1]: must be in (0, 1], got 1.5`), so a bad deployment fails fast and
//! says what to fix.
//!
//! ```json
//! {"quotas": [{"name": "sms-daily", "account": "AC…", "counts": "messages", "window": "day",
//!              "limit": 800, "thresholds": [0.5, 0.8, 1.0]}]}
//! ```

use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// Twilio error codes that signal a limit, verified in Twilio's documentation: 63038 (account
/// daily message limit), 60728 (daily message limit reached), 30022 (A2P 10DLC rate or volume
/// limit exceeded), 63017 (rate limit exceeded).
pub const DEFAULT_LIMIT_ERROR_CODES: [u32; 4] = [63038, 60728, 30022, 63017];

/// What an alert fires at when `thresholds` is absent.
pub const DEFAULT_THRESHOLDS: [f64; 3] = [0.5, 0.8, 1.0];

/// At most this many quotas: one event may update every counting quota in one DynamoDB
/// transaction (100 items, one of which records the event id).
pub const MAX_QUOTAS: usize = 99;

/// Quota names become CloudWatch dimension values and storage keys: short and plain.
const MAX_NAME_LEN: usize = 64;

/// What a quota measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counts {
    /// `message.sent` events, one each.
    Messages,
    /// `message.sent` events, `numberOfSegments` each (1 when absent).
    Segments,
    /// Completed calls, one each.
    Calls,
    /// Completed calls, their duration in minutes rounded up (as Twilio bills).
    CallMinutes,
    /// Usage Trigger callbacks: the reported current value (a gauge, not a sum).
    UsageTrigger,
    /// TaskRouter rate-limit events: the reported current rate (a gauge).
    RateLimit,
    /// Error-log events with one of `codes`, one each.
    ErrorCodes,
}

impl Counts {
    const ALL: [(&'static str, Counts); 7] = [
        ("messages", Self::Messages),
        ("segments", Self::Segments),
        ("calls", Self::Calls),
        ("call-minutes", Self::CallMinutes),
        ("usage-trigger", Self::UsageTrigger),
        ("rate-limit", Self::RateLimit),
        ("error-codes", Self::ErrorCodes),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("", |(s, _)| s)
    }

    /// Gauges report a level with each event; the others add events up in a counter.
    pub fn is_gauge(self) -> bool {
        matches!(self, Self::UsageTrigger | Self::RateLimit)
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Over what period use is measured, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowKind {
    Hour,
    Day,
    Month,
    /// The last 24 hours, as Twilio's daily message limit counts: hourly buckets, the current
    /// one and the 23 before it.
    Rolling24h,
}

impl WindowKind {
    const ALL: [(&'static str, WindowKind); 4] = [
        ("hour", Self::Hour),
        ("day", Self::Day),
        ("month", Self::Month),
        ("rolling-24h", Self::Rolling24h),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, w)| *w == self)
            .map_or("", |(s, _)| s)
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated quota.
#[derive(Clone, Debug, PartialEq)]
pub struct Quota {
    pub name: String,
    /// Only this account's events count; all accounts together when absent.
    pub account: Option<String>,
    pub counts: Counts,
    pub window: WindowKind,
    /// Required for counters. For gauges, absent means the event's own limit (the trigger
    /// value of a Usage Trigger, the `rate_limit` of a rate-limit event).
    pub limit: Option<f64>,
    /// Fractions of the limit, ascending, each in (0, 1].
    pub thresholds: Vec<f64>,
    /// For `error-codes`.
    pub codes: Vec<u32>,
    /// For `usage-trigger`: the Twilio usage category (`sms`, `totalprice`, …).
    pub category: Option<String>,
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub quotas: Vec<Quota>,
}

/// Why the configuration cannot be used. The service must not start with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid quota configuration: {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error(
        "the quota configuration is not JSON ({0}); it must be an object like {{\"quotas\": [ … ]}}"
    )]
    NotJson(String),
    #[error("cannot read the quota configuration file {path}: {error}")]
    File { path: PathBuf, error: String },
    #[error(
        "no quota configuration: set one of QUOTAS_FILE (a path), QUOTAS_JSON (the document) or QUOTAS_SSM_PARAMETER (a parameter name)"
    )]
    NoSource,
    #[error("set only one of QUOTAS_FILE, QUOTAS_JSON and QUOTAS_SSM_PARAMETER, not {0}")]
    SeveralSources(String),
    #[error(
        "cannot read SSM parameter {name}: {error} (check the name, the region and the function's ssm:GetParameter permission)"
    )]
    Ssm { name: String, error: String },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The field a validation error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Where the configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Json(String),
    SsmParameter(String),
}

impl ConfigSource {
    /// From `QUOTAS_FILE`, `QUOTAS_JSON` or `QUOTAS_SSM_PARAMETER`: exactly one must be set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set: Vec<(&str, String)> = ["QUOTAS_FILE", "QUOTAS_JSON", "QUOTAS_SSM_PARAMETER"]
            .into_iter()
            .filter_map(|name| {
                var(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            })
            .collect();
        match set.as_slice() {
            [] => Err(ConfigError::NoSource),
            [("QUOTAS_FILE", path)] => Ok(Self::File(PathBuf::from(path))),
            [("QUOTAS_JSON", json)] => Ok(Self::Json(json.clone())),
            [(_, name)] => Ok(Self::SsmParameter(name.clone())),
            several => Err(ConfigError::SeveralSources(
                several
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(" and "),
            )),
        }
    }

    /// Reads and validates the configuration; `ssm` is only used for an SSM source.
    pub async fn load(&self, ssm: Option<&aws_sdk_ssm::Client>) -> Result<Config, ConfigError> {
        match self {
            Self::File(path) => Config::from_file(path),
            Self::Json(text) => Config::parse(text),
            Self::SsmParameter(name) => {
                let ssm_error = |error: String| ConfigError::Ssm {
                    name: name.clone(),
                    error,
                };
                let client = ssm.ok_or_else(|| ssm_error("no SSM client".into()))?;
                let output = client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| {
                        ssm_error(aws_sdk_ssm::error::DisplayErrorContext(e).to_string())
                    })?;
                let text = output
                    .parameter()
                    .and_then(|p| p.value())
                    .ok_or_else(|| ssm_error("the parameter has no value".into()))?;
                Config::parse(text)
            }
        }
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            error: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// Parses and validates a configuration document.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ConfigError::NotJson(e.to_string()))?;
        let root = value
            .as_object()
            .ok_or_else(|| ConfigError::invalid("(root)", "must be an object with \"quotas\""))?;
        unknown_fields(root, "", &["quotas"])?;
        let list = root
            .get("quotas")
            .ok_or_else(|| ConfigError::invalid("quotas", "missing: list the quotas to watch"))?
            .as_array()
            .ok_or_else(|| ConfigError::invalid("quotas", "must be an array"))?;
        if list.is_empty() {
            return Err(ConfigError::invalid(
                "quotas",
                "must list at least one quota",
            ));
        }
        if list.len() > MAX_QUOTAS {
            return Err(ConfigError::invalid(
                "quotas",
                format!("at most {MAX_QUOTAS} quotas, got {}", list.len()),
            ));
        }
        let mut quotas: Vec<Quota> = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let quota = parse_quota(&format!("quotas[{i}]"), item)?;
            if let Some(first) = quotas.iter().position(|q| q.name == quota.name) {
                return Err(ConfigError::invalid(
                    format!("quotas[{i}].name"),
                    format!(
                        "\"{}\" is already the name of quotas[{first}]; names must be unique",
                        quota.name
                    ),
                ));
            }
            quotas.push(quota);
        }
        Ok(Self { quotas })
    }
}

const QUOTA_FIELDS: [&str; 8] = [
    "name",
    "account",
    "counts",
    "window",
    "limit",
    "thresholds",
    "codes",
    "category",
];

fn unknown_fields(
    object: &Map<String, Value>,
    at: &str,
    known: &[&str],
) -> Result<(), ConfigError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ConfigError::invalid(
            if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            },
            format!("unknown field; expected one of {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn one_of<T: Copy>(field: &str, value: &Value, options: &[(&str, T)]) -> Result<T, ConfigError> {
    let names = || {
        options
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = value
        .as_str()
        .ok_or_else(|| ConfigError::invalid(field, format!("must be one of {}", names())))?;
    options
        .iter()
        .find(|(n, _)| *n == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| ConfigError::invalid(field, format!("\"{text}\" is not one of {}", names())))
}

fn parse_quota(at: &str, value: &Value) -> Result<Quota, ConfigError> {
    let object = value
        .as_object()
        .ok_or_else(|| ConfigError::invalid(at, "must be an object"))?;
    unknown_fields(object, at, &QUOTA_FIELDS)?;
    let field = |name: &str| format!("{at}.{name}");
    let required = |name: &str| {
        object
            .get(name)
            .filter(|v| !v.is_null())
            .ok_or_else(|| ConfigError::invalid(field(name), "missing"))
    };

    let name = required("name")?
        .as_str()
        .ok_or_else(|| ConfigError::invalid(field("name"), "must be a string"))?
        .to_owned();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ConfigError::invalid(
            field("name"),
            format!(
                "must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.' (it becomes a CloudWatch dimension value)"
            ),
        ));
    }

    let account = match object.get("account").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => {
            let sid = v.as_str().unwrap_or_default();
            if sid.len() < 4
                || !sid.starts_with("AC")
                || !sid.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(ConfigError::invalid(
                    field("account"),
                    "must be an account SID (AC followed by letters and digits)",
                ));
            }
            Some(sid.to_owned())
        }
    };

    let counts = one_of(&field("counts"), required("counts")?, &Counts::ALL)?;
    let window = one_of(&field("window"), required("window")?, &WindowKind::ALL)?;

    let limit = match object.get("limit").filter(|v| !v.is_null()) {
        None if counts.is_gauge() => None,
        None => {
            return Err(ConfigError::invalid(
                field("limit"),
                format!("missing: a \"{counts}\" quota needs a limit"),
            ));
        }
        Some(v) => match v.as_f64() {
            Some(l) if l.is_finite() && l > 0.0 => Some(l),
            _ => {
                return Err(ConfigError::invalid(
                    field("limit"),
                    format!("must be a number greater than 0, got {v}"),
                ));
            }
        },
    };

    let thresholds = match object.get("thresholds").filter(|v| !v.is_null()) {
        None => DEFAULT_THRESHOLDS.to_vec(),
        Some(v) => {
            let list = v.as_array().ok_or_else(|| {
                ConfigError::invalid(field("thresholds"), "must be an array of fractions")
            })?;
            if list.is_empty() {
                return Err(ConfigError::invalid(
                    field("thresholds"),
                    "must hold at least one fraction, e.g. [0.5, 0.8, 1.0]",
                ));
            }
            let mut thresholds = Vec::with_capacity(list.len());
            for (j, t) in list.iter().enumerate() {
                let at_j = format!("{at}.thresholds[{j}]");
                match t.as_f64() {
                    Some(f) if f > 0.0 && f <= 1.0 => {
                        if thresholds.iter().any(|x: &f64| (x - f).abs() < 1e-9) {
                            return Err(ConfigError::invalid(at_j, format!("{t} is listed twice")));
                        }
                        thresholds.push(f);
                    }
                    _ => {
                        return Err(ConfigError::invalid(
                            at_j,
                            format!("must be in (0, 1], a fraction of the limit; got {t}"),
                        ));
                    }
                }
            }
            thresholds.sort_by(f64::total_cmp);
            thresholds
        }
    };

    let codes = match (counts, object.get("codes").filter(|v| !v.is_null())) {
        (Counts::ErrorCodes, None) => DEFAULT_LIMIT_ERROR_CODES.to_vec(),
        (Counts::ErrorCodes, Some(v)) => {
            let list = v.as_array().ok_or_else(|| {
                ConfigError::invalid(field("codes"), "must be an array of Twilio error codes")
            })?;
            if list.is_empty() {
                return Err(ConfigError::invalid(
                    field("codes"),
                    "must hold at least one error code (or be left out for the defaults)",
                ));
            }
            list.iter()
                .enumerate()
                .map(|(j, c)| {
                    c.as_u64()
                        .filter(|&c| c > 0)
                        .and_then(|c| u32::try_from(c).ok())
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                format!("{at}.codes[{j}]"),
                                format!("must be a positive integer error code, got {c}"),
                            )
                        })
                })
                .collect::<Result<Vec<u32>, _>>()?
        }
        (_, Some(_)) => {
            return Err(ConfigError::invalid(
                field("codes"),
                "only applies to \"counts\": \"error-codes\"",
            ));
        }
        (_, None) => Vec::new(),
    };

    let category = match (counts, object.get("category").filter(|v| !v.is_null())) {
        (Counts::UsageTrigger, None) => {
            return Err(ConfigError::invalid(
                field("category"),
                "missing: a \"usage-trigger\" quota names the Twilio usage category its trigger watches (e.g. \"sms\", \"totalprice\")",
            ));
        }
        (Counts::UsageTrigger, Some(v)) => match v.as_str() {
            Some(c) if !c.is_empty() => Some(c.to_owned()),
            _ => {
                return Err(ConfigError::invalid(
                    field("category"),
                    "must be a non-empty string",
                ));
            }
        },
        (_, Some(_)) => {
            return Err(ConfigError::invalid(
                field("category"),
                "only applies to \"counts\": \"usage-trigger\"",
            ));
        }
        (_, None) => None,
    };

    Ok(Quota {
        name,
        account,
        counts,
        window,
        limit,
        thresholds,
        codes,
        category,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(json: &str) -> ConfigError {
        Config::parse(json).expect_err("the configuration must be refused")
    }

    #[test]
    fn a_full_configuration_parses_with_defaults() {
        // GIVEN a document with every kind of quota
        let config = Config::parse(
            r#"{"quotas": [
                {"name": "sms-daily", "account": "AC123", "counts": "messages", "window": "day", "limit": 800},
                {"name": "segments", "counts": "segments", "window": "rolling-24h", "limit": 10, "thresholds": [1.0, 0.25]},
                {"name": "limits", "counts": "error-codes", "window": "hour", "limit": 5},
                {"name": "spend", "counts": "usage-trigger", "category": "totalprice", "window": "month"},
                {"name": "taskrouter", "counts": "rate-limit", "window": "hour", "limit": 50}
            ]}"#,
        )
        .unwrap();
        // THEN defaults fill in and thresholds are sorted
        let q = &config.quotas;
        assert_eq!(q[0].thresholds, DEFAULT_THRESHOLDS);
        assert_eq!(q[0].account.as_deref(), Some("AC123"));
        assert_eq!(q[1].thresholds, [0.25, 1.0]);
        assert_eq!(q[1].window, WindowKind::Rolling24h);
        assert_eq!(q[2].codes, DEFAULT_LIMIT_ERROR_CODES);
        assert_eq!(q[3].limit, None);
        assert_eq!(q[3].category.as_deref(), Some("totalprice"));
        assert_eq!(q[4].counts, Counts::RateLimit);
    }

    #[test]
    fn every_error_names_its_field() {
        let cases = [
            (
                r#"{"quotas": [{"name": "a", "counts": "messages", "window": "day", "limit": 1},
                               {"name": "b", "counts": "messages", "window": "day", "limit": 1},
                               {"name": "c", "counts": "messages", "window": "day", "limit": 1, "thresholds": [0.5, 1.5]}]}"#,
                "quotas[2].thresholds[1]",
                "must be in (0, 1]",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "texts", "window": "day", "limit": 1}]}"#,
                "quotas[0].counts",
                "\"texts\" is not one of",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "messages", "window": "week", "limit": 1}]}"#,
                "quotas[0].window",
                "\"week\" is not one of",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "messages", "window": "day"}]}"#,
                "quotas[0].limit",
                "missing",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "messages", "window": "day", "limit": -3}]}"#,
                "quotas[0].limit",
                "greater than 0",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "messages", "window": "day", "limit": 1, "treshold": [0.5]}]}"#,
                "quotas[0].treshold",
                "unknown field",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "usage-trigger", "window": "day"}]}"#,
                "quotas[0].category",
                "missing",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "messages", "window": "day", "limit": 1, "codes": [30022]}]}"#,
                "quotas[0].codes",
                "only applies",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "error-codes", "window": "day", "limit": 1, "codes": [30022, "x"]}]}"#,
                "quotas[0].codes[1]",
                "positive integer",
            ),
            (
                r#"{"quotas": [{"name": "a", "counts": "messages", "window": "day", "limit": 1},
                               {"name": "a", "counts": "calls", "window": "day", "limit": 1}]}"#,
                "quotas[1].name",
                "already the name of quotas[0]",
            ),
            (
                r#"{"quotas": [{"name": "a b", "counts": "messages", "window": "day", "limit": 1}]}"#,
                "quotas[0].name",
                "letters, digits",
            ),
            (
                r#"{"quotas": [{"name": "a", "account": "XY1", "counts": "messages", "window": "day", "limit": 1}]}"#,
                "quotas[0].account",
                "account SID",
            ),
            (r#"{"quotas": []}"#, "quotas", "at least one"),
            (r#"{"quota": []}"#, "quota", "unknown field"),
        ];
        for (json, field, problem) in cases {
            // GIVEN a bad document WHEN it is parsed THEN the error names the field
            let err = error_of(json);
            assert_eq!(err.field(), Some(field), "{err}");
            let text = err.to_string();
            assert!(text.contains(&format!("{field}: ")), "{text}");
            assert!(text.contains(problem), "{text}");
        }
    }

    #[test]
    fn not_json_and_sources_are_explained() {
        assert!(matches!(error_of("{"), ConfigError::NotJson(_)));
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(matches!(
            ConfigSource::from_vars(vars(&[])),
            Err(ConfigError::NoSource)
        ));
        assert_eq!(
            ConfigSource::from_vars(vars(&[("QUOTAS_SSM_PARAMETER", "/q")])).unwrap(),
            ConfigSource::SsmParameter("/q".into())
        );
        let err = ConfigSource::from_vars(vars(&[("QUOTAS_FILE", "a"), ("QUOTAS_JSON", "{}")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("QUOTAS_FILE and QUOTAS_JSON"),
            "{err}"
        );
    }
}
