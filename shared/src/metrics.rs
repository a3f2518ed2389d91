//! CloudWatch metrics as Embedded Metric Format: one JSON line on stdout per flush, which
//! Lambda's log pipeline turns into metrics with no API call and no added latency.
//!
//! A [`Metrics`] set gathers an invocation's values (counts are summed, other units keep up to
//! 100 values, the EMF limit per metric) and is written once, at the end.
//! Dimensions stay low-cardinality by construction: the service name, and what each caller
//! passes explicitly (a quota name, a failure class), never ids.
//!
//! CloudWatch bills each metric name × dimension set for every hour it receives a value
//! (docs/cost.md), so a count of zero is not written (a failure metric then costs nothing in an
//! hour without failures; alarms on them treat missing data as not breaching), and counts that no
//! alarm or dashboard reads are [`Metrics::tally`]s: fields of the same log line, searchable in
//! CloudWatch Logs Insights, not metrics.

use serde_json::{Map, Value, json};
use std::sync::Mutex;
use time::OffsetDateTime;

/// The CloudWatch namespace all twilio-events metrics live in.
pub const NAMESPACE: &str = "TwilioEvents";

/// Units from the CloudWatch API's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    Percent,
    Bytes,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
            Self::Percent => "Percent",
            Self::Bytes => "Bytes",
            Self::None => "None",
        }
    }
}

/// EMF allows at most 100 values per metric per document.
const MAX_VALUES: usize = 100;

#[derive(Clone, Debug, PartialEq)]
struct Metric {
    name: String,
    unit: Unit,
    values: Vec<f64>,
    /// A CloudWatch metric, or only a field of the log line ([`Metrics::tally`]).
    published: bool,
}

/// One EMF document in the making.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    namespace: String,
    dimensions: Vec<(String, String)>,
    metrics: Vec<Metric>,
    properties: Map<String, Value>,
}

impl Metrics {
    /// Metrics of one service (`ingest`, `crm-sync`, …), its only dimension.
    pub fn new(service: &str) -> Self {
        Self::with_dimensions(NAMESPACE, &[("Service", service)])
    }

    pub fn with_dimensions(namespace: &str, dimensions: &[(&str, &str)]) -> Self {
        Self {
            namespace: namespace.to_owned(),
            dimensions: dimensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds a value: counts accumulate into one sum, other units keep each value.
    pub fn add(&mut self, name: &str, value: f64, unit: Unit) {
        self.record(name, value, unit, true);
    }

    fn record(&mut self, name: &str, value: f64, unit: Unit, published: bool) {
        let metric = match self.metrics.iter_mut().find(|m| m.name == name) {
            Some(metric) => metric,
            None => {
                self.metrics.push(Metric {
                    name: name.to_owned(),
                    unit,
                    values: Vec::new(),
                    published,
                });
                self.metrics
                    .last_mut()
                    .unwrap_or_else(|| unreachable!("just pushed"))
            }
        };
        if unit == Unit::Count && !metric.values.is_empty() {
            metric.values[0] += value;
        } else if metric.values.len() < MAX_VALUES {
            metric.values.push(value);
        }
    }

    /// Counts `n` (nothing is written for 0: see the module's note on cost).
    pub fn count(&mut self, name: &str, n: usize) {
        if n > 0 {
            self.add(name, n as f64, Unit::Count);
        }
    }

    /// Counts `n` into a field of the log line that is not a CloudWatch metric: for counts no
    /// alarm or dashboard reads (Logs Insights can still sum them). Nothing for 0.
    pub fn tally(&mut self, name: &str, n: usize) {
        if n > 0 {
            self.record(name, n as f64, Unit::Count, false);
        }
    }

    /// A value searchable in CloudWatch Logs Insights but not a metric (a request id, say).
    pub fn property(&mut self, key: &str, value: impl Into<Value>) {
        self.properties.insert(key.to_owned(), value.into());
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.values.as_slice())
    }

    /// The EMF document, as one line of JSON.
    pub fn to_emf(&self, at: OffsetDateTime) -> String {
        let timestamp_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for metric in &self.metrics {
            let value = match metric.values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert(metric.name.clone(), value);
        }
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .filter(|m| m.published)
            .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
            .collect();
        if definitions.is_empty() {
            // Only tallies: a plain JSON log line (an EMF directive needs at least one metric).
            return Value::Object(root).to_string();
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root).to_string()
    }
}

/// Where EMF lines go.
pub trait MetricsSink: Send + Sync {
    fn publish(&self, metrics: &Metrics);
}

impl<T: MetricsSink + ?Sized> MetricsSink for std::sync::Arc<T> {
    fn publish(&self, metrics: &Metrics) {
        (**self).publish(metrics);
    }
}

/// Standard output, where Lambda picks EMF up.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdoutSink;

impl MetricsSink for StdoutSink {
    fn publish(&self, metrics: &Metrics) {
        if !metrics.is_empty() {
            println!("{}", metrics.to_emf(OffsetDateTime::now_utc()));
        }
    }
}

/// Keeps what was published, for tests and for `serve`'s summaries.
#[derive(Debug, Default)]
pub struct MemorySink {
    published: Mutex<Vec<Metrics>>,
}

impl MemorySink {
    pub fn published(&self) -> Vec<Metrics> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The sum of a metric's values across everything published.
    pub fn total(&self, name: &str) -> f64 {
        self.published()
            .iter()
            .filter_map(|m| m.get(name))
            .flatten()
            .sum()
    }
}

impl MetricsSink for MemorySink {
    fn publish(&self, metrics: &Metrics) {
        if let Ok(mut published) = self.published.lock() {
            published.push(metrics.clone());
        }
    }
}

/// Discards everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn publish(&self, _: &Metrics) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_follows_the_specification() {
        let mut m = Metrics::new("ingest");
        m.count("Received", 2);
        m.count("Received", 1);
        m.add("Latency", 12.5, Unit::Milliseconds);
        m.add("Latency", 7.0, Unit::Milliseconds);
        m.property("requestId", "r-1");
        let line = m.to_emf(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Service"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Received", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}])
        );
        assert_eq!(doc["Service"], "ingest");
        assert_eq!(doc["Received"], 3.0);
        assert_eq!(doc["Latency"], json!([12.5, 7.0]));
        assert_eq!(doc["requestId"], "r-1");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_zero_count_writes_no_metric_and_a_later_count_still_adds_up() {
        let mut m = Metrics::new("ingest");
        m.count("StoreFailures", 0);
        assert!(m.is_empty());
        assert_eq!(m.get("StoreFailures"), None);
        m.count("Accepted", 0);
        m.count("Accepted", 2);
        m.count("Accepted", 0);
        assert_eq!(m.get("Accepted"), Some(&[2.0][..]));
        let doc: Value = serde_json::from_str(&m.to_emf(OffsetDateTime::UNIX_EPOCH)).expect("JSON");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Accepted", "Unit": "Count"}])
        );
        assert!(doc.get("StoreFailures").is_none());
    }

    #[test]
    fn a_tally_is_a_field_of_the_log_line_but_not_a_cloudwatch_metric() {
        // GIVEN a metric and a tally in one document
        let mut m = Metrics::new("ingest");
        m.count("Received", 1);
        m.tally("Refused", 1);
        m.tally("Refused", 2);
        m.tally("SecretRefreshes", 0);
        // THEN the tally sums like a count, is in the line, and is not in the directive
        assert_eq!(m.get("Refused"), Some(&[3.0][..]));
        let doc: Value = serde_json::from_str(&m.to_emf(OffsetDateTime::UNIX_EPOCH)).expect("JSON");
        assert_eq!(doc["Refused"], 3.0);
        assert!(doc.get("SecretRefreshes").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Received", "Unit": "Count"}])
        );
        // AND a document of tallies only is a plain log line, not an EMF document without metrics
        let mut only = Metrics::new("ingest");
        only.tally("Refused", 1);
        assert!(!only.is_empty());
        let doc: Value =
            serde_json::from_str(&only.to_emf(OffsetDateTime::UNIX_EPOCH)).expect("JSON");
        assert!(doc.get("_aws").is_none(), "{doc}");
        assert_eq!(doc["Refused"], 1.0);
        assert_eq!(doc["Service"], "ingest");
    }

    #[test]
    fn values_are_capped_at_the_emf_limit() {
        let mut m = Metrics::new("x");
        for i in 0..150 {
            m.add("Age", i as f64, Unit::Seconds);
        }
        assert_eq!(m.get("Age").unwrap().len(), MAX_VALUES);
    }
}
