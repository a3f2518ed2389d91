//! The Lambda binary refuses to start with a bad quota configuration, and says which field.

use std::process::Command;

fn run_with(quotas_json: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quota-alert"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("COUNTER_TABLE", "t")
        .env("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t")
        .env("QUARANTINE_QUEUE_URL", "http://127.0.0.1:1/q")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("QUOTAS_JSON", quotas_json)
        .output()
        .expect("run the quota-alert binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_bad_configuration_stops_the_function_at_start_naming_the_field() {
    // GIVEN a quota document whose third quota has a threshold above 1
    let bad = r#"{"quotas": [
        {"name": "a", "counts": "messages", "window": "day", "limit": 10},
        {"name": "b", "counts": "calls", "window": "day", "limit": 10},
        {"name": "c", "counts": "segments", "window": "day", "limit": 10, "thresholds": [0.5, 1.5]}
    ]}"#;
    // WHEN the function starts THEN it exits with an error naming the field and the rule
    let (ok, output) = run_with(bad);
    assert!(!ok, "must not start: {output}");
    assert!(
        output.contains("quotas[2].thresholds[1]: must be in (0, 1]"),
        "{output}"
    );
}

#[test]
fn a_missing_setting_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_quota-alert"))
        .env_clear()
        .output()
        .expect("run the quota-alert binary");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("COUNTER_TABLE"), "{text}");
}
