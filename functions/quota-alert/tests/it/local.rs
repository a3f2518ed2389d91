//! quota-alert as `twilio-events serve --quotas FILE` runs it: SQLite counters in the data
//! directory, alerts on stderr and in `<data-dir>/alerts.jsonl`.
#![cfg(feature = "local")]

use quota_alert::fixtures;
use quota_alert::fixtures::records;
use quota_alert::startup::{StartupError, local};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use time::macros::datetime;
use twilio_events::stream::BatchProcessor;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "quota-alert-{name}-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn serve_writes_one_json_line_per_alert_and_survives_a_restart() {
    // GIVEN a data directory and a quotas file with a daily limit of 800
    let dir = temp_dir("serve");
    let quotas = dir.join("quotas.json");
    std::fs::write(
        &quotas,
        r#"{"quotas": [{"name": "sms-daily", "counts": "messages", "window": "day", "limit": 800}]}"#,
    )
    .unwrap();
    let scenario = fixtures::sent_scenario(1000, datetime!(2026-03-10 08:00 UTC));
    let stream = records(&scenario.records);
    let deadline = Instant::now() + Duration::from_secs(120);
    // WHEN the first half is processed, serve restarts, and everything is processed again
    let half = stream.len() / 2;
    {
        let qa = local(&dir, &quotas).unwrap();
        assert!(
            qa.process(&stream[..half], deadline)
                .await
                .failed
                .is_empty()
        );
    }
    let qa = local(&dir, &quotas).unwrap();
    for batch in stream.chunks(200) {
        assert!(qa.process(batch, deadline).await.failed.is_empty());
    }
    // THEN alerts.jsonl holds exactly three lines, with the fields serve promises
    let text = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, (threshold, used, k)) in
        lines
            .iter()
            .zip([(0.5, 400.0, 399), (0.8, 640.0, 639), (1.0, 800.0, 799)])
    {
        assert_eq!(line["quota"], "sms-daily");
        assert_eq!(line["threshold"], threshold);
        assert_eq!(line["used"], used);
        assert_eq!(line["limit"], 800.0);
        assert_eq!(line["window_start"], "2026-03-10T00:00:00Z");
        assert!(line.get("forecast_exhausted_at").is_some());
        assert_eq!(line["event_id"], scenario.counted_ids[k].as_str());
    }
    assert!(dir.join("quota-alert.sqlite").is_file());
}

#[test]
fn a_bad_quotas_file_fails_naming_the_field() {
    let dir = temp_dir("bad");
    let quotas = dir.join("quotas.json");
    std::fs::write(
        &quotas,
        r#"{"quotas": [{"name": "a", "counts": "messages", "window": "fortnight", "limit": 1}]}"#,
    )
    .unwrap();
    let err = match local(&dir, &quotas) {
        Err(e) => e,
        Ok(_) => panic!("a bad quotas file must be refused"),
    };
    assert!(matches!(err, StartupError::Quotas(_)));
    assert!(
        err.to_string()
            .contains("quotas[0].window: \"fortnight\" is not one of"),
        "{err}"
    );
    let missing = match local(&dir, &dir.join("nope.json")) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a missing file must be refused"),
    };
    assert!(missing.contains("nope.json"), "{missing}");
}
