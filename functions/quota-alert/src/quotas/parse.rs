//! Parsing and validating the quota document. Every error names the field it is about
//! (`quotas[2].thresholds[1]: must be in (0, 1], got 1.5`), so a bad deployment fails fast and
//! says what to fix.
//!
//! ```json
//! {"quotas": [{"name": "sms-daily", "account": "AC…", "counts": "messages", "window": "day",
//!              "limit": 800, "thresholds": [0.5, 0.8, 1.0]}]}
//! ```

use super::QuotasError;
use super::model::{
    Counts, DEFAULT_LIMIT_ERROR_CODES, DEFAULT_THRESHOLDS, MAX_NAME_LEN, MAX_QUOTAS, Quota, Quotas,
    WindowKind,
};
use serde_json::{Map, Value};

impl Quotas {
    /// Parses and validates a quota document.
    pub fn parse(text: &str) -> Result<Self, QuotasError> {
        let value: Value =
            serde_json::from_str(text).map_err(|source| QuotasError::NotJson { source })?;
        let root = value
            .as_object()
            .ok_or_else(|| QuotasError::invalid("(root)", "must be an object with \"quotas\""))?;
        unknown_fields(root, "", &["quotas"])?;
        let list = root
            .get("quotas")
            .ok_or_else(|| QuotasError::invalid("quotas", "missing: list the quotas to watch"))?
            .as_array()
            .ok_or_else(|| QuotasError::invalid("quotas", "must be an array"))?;
        if list.is_empty() {
            return Err(QuotasError::invalid(
                "quotas",
                "must list at least one quota",
            ));
        }
        if list.len() > MAX_QUOTAS {
            return Err(QuotasError::invalid(
                "quotas",
                format!("at most {MAX_QUOTAS} quotas, got {}", list.len()),
            ));
        }
        let mut quotas: Vec<Quota> = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let quota = parse_quota(&format!("quotas[{i}]"), item)?;
            if let Some(first) = quotas.iter().position(|q| q.name == quota.name) {
                return Err(QuotasError::invalid(
                    format!("quotas[{i}].name"),
                    format!(
                        "\"{}\" is already the name of quotas[{first}]; names must be unique",
                        quota.name
                    ),
                ));
            }
            quotas.push(quota);
        }
        Ok(Self(quotas))
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
) -> Result<(), QuotasError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(QuotasError::invalid(
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

fn one_of<T: Copy>(field: &str, value: &Value, options: &[(&str, T)]) -> Result<T, QuotasError> {
    let names = || {
        options
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = value
        .as_str()
        .ok_or_else(|| QuotasError::invalid(field, format!("must be one of {}", names())))?;
    options
        .iter()
        .find(|(n, _)| *n == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| QuotasError::invalid(field, format!("\"{text}\" is not one of {}", names())))
}

fn parse_quota(at: &str, value: &Value) -> Result<Quota, QuotasError> {
    let object = value
        .as_object()
        .ok_or_else(|| QuotasError::invalid(at, "must be an object"))?;
    unknown_fields(object, at, &QUOTA_FIELDS)?;
    let field = |name: &str| format!("{at}.{name}");
    let required = |name: &str| {
        object
            .get(name)
            .filter(|v| !v.is_null())
            .ok_or_else(|| QuotasError::invalid(field(name), "missing"))
    };

    let name = required("name")?
        .as_str()
        .ok_or_else(|| QuotasError::invalid(field("name"), "must be a string"))?
        .to_owned();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(QuotasError::invalid(
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
                return Err(QuotasError::invalid(
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
            return Err(QuotasError::invalid(
                field("limit"),
                format!("missing: a \"{counts}\" quota needs a limit"),
            ));
        }
        Some(v) => match v.as_f64() {
            Some(l) if l.is_finite() && l > 0.0 => Some(l),
            _ => {
                return Err(QuotasError::invalid(
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
                QuotasError::invalid(field("thresholds"), "must be an array of fractions")
            })?;
            if list.is_empty() {
                return Err(QuotasError::invalid(
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
                            return Err(QuotasError::invalid(at_j, format!("{t} is listed twice")));
                        }
                        thresholds.push(f);
                    }
                    _ => {
                        return Err(QuotasError::invalid(
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
                QuotasError::invalid(field("codes"), "must be an array of Twilio error codes")
            })?;
            if list.is_empty() {
                return Err(QuotasError::invalid(
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
                            QuotasError::invalid(
                                format!("{at}.codes[{j}]"),
                                format!("must be a positive integer error code, got {c}"),
                            )
                        })
                })
                .collect::<Result<Vec<u32>, _>>()?
        }
        (_, Some(_)) => {
            return Err(QuotasError::invalid(
                field("codes"),
                "only applies to \"counts\": \"error-codes\"",
            ));
        }
        (_, None) => Vec::new(),
    };

    let category = match (counts, object.get("category").filter(|v| !v.is_null())) {
        (Counts::UsageTrigger, None) => {
            return Err(QuotasError::invalid(
                field("category"),
                "missing: a \"usage-trigger\" quota names the Twilio usage category its trigger watches (e.g. \"sms\", \"totalprice\")",
            ));
        }
        (Counts::UsageTrigger, Some(v)) => match v.as_str() {
            Some(c) if !c.is_empty() => Some(c.to_owned()),
            _ => {
                return Err(QuotasError::invalid(
                    field("category"),
                    "must be a non-empty string",
                ));
            }
        },
        (_, Some(_)) => {
            return Err(QuotasError::invalid(
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

    fn error_of(json: &str) -> QuotasError {
        Quotas::parse(json).expect_err("the quota document must be refused")
    }

    #[test]
    fn a_full_configuration_parses_with_defaults() {
        // GIVEN a document with every kind of quota
        let quotas = Quotas::parse(
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
        let q = &quotas;
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
    fn a_document_that_is_not_json_is_explained() {
        assert!(matches!(error_of("{"), QuotasError::NotJson { .. }));
    }
}
