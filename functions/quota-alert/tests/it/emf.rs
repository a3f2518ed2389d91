//! The EMF documents quota-alert writes, checked against the Embedded Metric Format
//! specification: structure, units, and dimensions that stay low-cardinality.

use quota_alert::adapters::memory::{MemoryPublisher, MemoryStore};
use quota_alert::fixtures;
use quota_alert::{QuotaAlert, Quotas};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use time::macros::datetime;
use twilio_events::metrics::{MemorySink, NAMESPACE};
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::stream::{BatchProcessor, StreamRecord};

/// Units CloudWatch accepts (PutMetricData's StandardUnit).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one EMF line against the specification
/// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
/// and returns its dimension sets as (name, value) pairs.
fn check_emf(line: &str) -> Vec<Vec<(String, String)>> {
    assert!(!line.contains('\n'), "one line per document");
    let doc: Value = serde_json::from_str(line).expect("EMF is a JSON object");
    let root = doc.as_object().expect("the root is an object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let ts = aws["Timestamp"].as_i64().expect("Timestamp is an integer");
    assert!(ts > 1_000_000_000_000, "Timestamp is in milliseconds: {ts}");
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty());
    let mut sets = Vec::new();
    for d in directives {
        let ns = d["Namespace"].as_str().expect("Namespace is a string");
        assert!(!ns.is_empty() && ns.len() <= 1024);
        assert_eq!(ns, NAMESPACE);
        for set in d["Dimensions"].as_array().expect("Dimensions is an array") {
            let names = set.as_array().expect("a dimension set is an array");
            assert!(names.len() <= 30, "at most 30 dimensions per set");
            let mut pairs = Vec::new();
            for name in names {
                let name = name.as_str().expect("dimension names are strings");
                let value = root[name].as_str().unwrap_or_else(|| {
                    panic!("dimension {name} must be a string member of the root")
                });
                assert!(!value.is_empty() && value.len() <= 1024);
                pairs.push((name.to_owned(), value.to_owned()));
            }
            sets.push(pairs);
        }
        let metrics = d["Metrics"].as_array().expect("Metrics is an array");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for m in metrics {
            let name = m["Name"].as_str().expect("Name is a string");
            assert!(!name.is_empty() && name.len() <= 1024);
            let unit = m["Unit"].as_str().expect("a unit is given");
            assert!(UNITS.contains(&unit), "{unit} is a CloudWatch unit");
            match &root[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!(values.len() <= 100 && values.iter().all(Value::is_number))
                }
                other => panic!("metric {name} must be a number or numbers, got {other}"),
            }
        }
    }
    sets
}

#[tokio::test]
async fn quota_metrics_follow_the_emf_specification_with_the_quota_name_as_only_dimension() {
    // GIVEN three quotas of different kinds
    let quotas = Quotas::parse(
        r#"{"quotas": [
            {"name": "sms-daily", "counts": "messages", "window": "day", "limit": 800},
            {"name": "segments-24h", "counts": "segments", "window": "rolling-24h", "limit": 2000},
            {"name": "taskrouter", "counts": "rate-limit", "window": "hour", "limit": 50}
        ]}"#,
    )
    .unwrap();
    let qa = QuotaAlert::new(
        quotas,
        MemoryStore::default(),
        MemoryPublisher::default(),
        MemorySink::default(),
        MemoryQuarantine::default(),
    );
    // WHEN 1,000 sent events and a rate-limit event are processed in ten invocations
    let mut events = fixtures::sent_scenario(1000, datetime!(2026-03-10 08:00 UTC)).records;
    events.push(fixtures::rate_limit(
        1,
        datetime!(2026-03-10 09:00 UTC),
        20.0,
        100.0,
    ));
    let records: Vec<StreamRecord> = events
        .iter()
        .enumerate()
        .map(|(i, e)| StreamRecord {
            sequence_number: i.to_string(),
            partition_key: "k".into(),
            data: e.clone().into_bytes(),
            arrived_at: None,
        })
        .collect();
    for batch in records.chunks(records.len() / 10 + 1) {
        qa.process(batch, Instant::now() + Duration::from_secs(60))
            .await;
    }
    // THEN every document is valid EMF
    let docs = qa.metrics().published();
    assert!(
        docs.len() >= 20,
        "one per quota and invocation, plus service counts"
    );
    let lines: Vec<String> = docs
        .iter()
        .map(|m| m.to_emf(time::OffsetDateTime::now_utc()))
        .collect();
    let mut dimension_values = BTreeSet::new();
    for line in &lines {
        for set in check_emf(line) {
            let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
            // AND each quota document has QuotaName as its only dimension (service counts
            // have Service), so there is one time series per quota, whatever the traffic
            assert!(keys == ["QuotaName"] || keys == ["Service"], "{keys:?}");
            dimension_values.insert(set);
        }
        // AND no ids, phone numbers or SIDs leak into the documents
        for leak in ["EZ0", "+1555", "SM0", "AC0"] {
            assert!(!line.contains(leak), "{leak} in {line}");
        }
    }
    assert_eq!(
        dimension_values.len(),
        4,
        "three quotas and the service: {dimension_values:?}"
    );
    // AND the quota documents carry used, limit and utilization with the right units
    let last_daily: Value = serde_json::from_str(
        lines
            .iter()
            .rev()
            .find(|l| l.contains("\"QuotaName\":\"sms-daily\""))
            .unwrap(),
    )
    .unwrap();
    let defs = &last_daily["_aws"]["CloudWatchMetrics"][0]["Metrics"];
    assert_eq!(
        defs,
        &serde_json::json!([
            {"Name": "Used", "Unit": "Count"},
            {"Name": "Limit", "Unit": "Count"},
            {"Name": "Utilization", "Unit": "Percent"}
        ])
    );
    assert_eq!(last_daily["Used"], 1000.0);
    assert_eq!(last_daily["Limit"], 800.0);
    assert_eq!(last_daily["Utilization"], 125.0);
    let rate = lines
        .iter()
        .find(|l| l.contains("\"QuotaName\":\"taskrouter\""))
        .unwrap();
    let rate: Value = serde_json::from_str(rate).unwrap();
    assert_eq!(rate["Utilization"], 40.0);
}
