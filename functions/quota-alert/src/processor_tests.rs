//! The core against in-memory fakes: counting, windows, alert-once, failures.

use super::*;
use crate::adapters::memory::{MemoryPublisher, MemoryStore};
use crate::fixtures::records;
use crate::fixtures::{self, ACCOUNT};
use time::OffsetDateTime;
use time::macros::datetime;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::MemoryQuarantine;

type Core = QuotaAlert<MemoryStore, MemoryPublisher, MemorySink, MemoryQuarantine>;

fn core(quotas: &str) -> Core {
    QuotaAlert::new(
        Quotas::parse(quotas).unwrap(),
        MemoryStore::default(),
        MemoryPublisher::default(),
        MemorySink::default(),
        MemoryQuarantine::default(),
    )
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

const SMS_DAILY: &str = r#"{"quotas": [{"name": "sms-daily", "account": "AC00000000000000000000000000000001",
    "counts": "messages", "window": "day", "limit": 800, "thresholds": [0.5, 0.8, 1.0]}]}"#;

#[tokio::test]
async fn a_thousand_sent_events_with_duplicates_and_replays_alert_once_per_threshold() {
    // GIVEN a daily limit of 800 messages and 1,000 sent events with duplicates, replays and
    // delivered events mixed in
    let qa = core(SMS_DAILY);
    let scenario = fixtures::sent_scenario(1000, datetime!(2026-03-10 08:00 UTC));
    // WHEN they are processed in batches of 100
    for batch in records(&scenario.records).chunks(100) {
        assert_eq!(qa.process(batch, far()).await, BatchOutcome::all_done());
    }
    // THEN exactly three alerts, at the 400th, 640th and 800th distinct event, with those counts
    let alerts = qa.publisher().alerts();
    let got: Vec<(f64, f64, &str)> = alerts
        .iter()
        .map(|a| (a.threshold, a.used, a.event_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (0.5, 400.0, scenario.counted_ids[399].as_str()),
            (0.8, 640.0, scenario.counted_ids[639].as_str()),
            (1.0, 800.0, scenario.counted_ids[799].as_str()),
        ]
    );
    assert!(alerts.iter().all(|a| a.limit == 800.0
        && a.window_start == "2026-03-10T00:00:00Z"
        && a.quota == "sms-daily"));
    // AND the final count is exactly the 1,000 distinct events
    let final_use = qa
        .store()
        .usage("usage#sms-daily#day", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(final_use, 1000.0);
    // AND only sent events cost a transaction (duplicates and replays included), the
    // delivered events none
    let sent_records = scenario.records.len() - scenario.uncounted;
    assert_eq!(qa.store().counts().transactions, sent_records as u64);
}

#[tokio::test]
async fn a_crossing_alert_says_when_the_limit_will_be_hit() {
    // GIVEN 400 of 800 segments used in the first 6 hours of a UTC day (one event of 400)
    let qa = core(
        r#"{"quotas": [{"name": "segments", "counts": "segments", "window": "day", "limit": 800}]}"#,
    );
    let at = datetime!(2026-03-10 06:00 UTC);
    let event = fixtures::message_event("EZjump", "sent", 1, at, ACCOUNT, 400);
    // WHEN it is processed
    qa.process(&records(&[event]), far()).await;
    // THEN the 50% threshold fires with a forecast 6 hours later at the same rate
    let alerts = qa.publisher().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].threshold, 0.5);
    assert_eq!(
        alerts[0].forecast_exhausted_at.as_deref(),
        Some("2026-03-10T12:00:00Z")
    );
    assert!(
        alerts[0]
            .summary
            .contains("at the current rate the limit will be reached at 2026-03-10T12:00:00Z"),
        "{}",
        alerts[0].summary
    );
}

#[tokio::test]
async fn windows_roll_over_at_midnight_utc() {
    // GIVEN a daily limit of 2 and two messages on either side of midnight UTC
    let qa = core(
        r#"{"quotas": [{"name": "d", "counts": "messages", "window": "day", "limit": 2, "thresholds": [1.0]}]}"#,
    );
    let events = [
        fixtures::message_sent(1, datetime!(2026-03-10 23:59:58 UTC)),
        fixtures::message_sent(2, datetime!(2026-03-10 23:59:59 UTC)),
        // 00:30 on the 11th in UTC+01:00 is 23:30 UTC on the 10th: it counts for the 10th.
        fixtures::message_event(
            "EZoffset",
            "sent",
            3,
            datetime!(2026-03-11 00:30 +01:00),
            ACCOUNT,
            1,
        ),
        fixtures::message_sent(4, datetime!(2026-03-11 00:00:00 UTC)),
        fixtures::message_sent(5, datetime!(2026-03-11 00:00:01 UTC)),
    ];
    qa.process(&records(&events), far()).await;
    // THEN the 10th counts 3 (alerting once at the second) and the 11th starts afresh at 0
    let alerts = qa.publisher().alerts();
    let got: Vec<(&str, f64, &str)> = alerts
        .iter()
        .map(|a| (a.window_start.as_str(), a.used, a.event_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "2026-03-10T00:00:00Z",
                2.0,
                "EZ00000000000000000000000000000002"
            ),
            (
                "2026-03-11T00:00:00Z",
                2.0,
                "EZ00000000000000000000000000000005"
            ),
        ]
    );
    let day = |d: OffsetDateTime| d.unix_timestamp();
    let usage = |from| qa.store().usage("usage#d#day", day(from), day(from));
    assert_eq!(usage(datetime!(2026-03-10 00:00 UTC)).await.unwrap(), 3.0);
    assert_eq!(usage(datetime!(2026-03-11 00:00 UTC)).await.unwrap(), 2.0);
}

#[tokio::test]
async fn a_rolling_window_forgets_use_older_than_24_hours() {
    // GIVEN a rolling-24h limit of 4 and 3 messages at 10:00 on the 10th
    let qa = core(
        r#"{"quotas": [{"name": "r", "counts": "messages", "window": "rolling-24h", "limit": 4, "thresholds": [1.0]}]}"#,
    );
    let t0 = datetime!(2026-03-10 10:00 UTC);
    let early: Vec<String> = (0..3).map(|i| fixtures::message_sent(i, t0)).collect();
    qa.process(&records(&early), far()).await;
    // WHEN one more arrives at 09:59 the next day (still within 24 hours) THEN the limit is hit
    let late = fixtures::message_sent(10, datetime!(2026-03-11 09:59 UTC));
    qa.process(&records(&[late]), far()).await;
    assert_eq!(qa.publisher().alerts().len(), 1);
    assert_eq!(qa.publisher().alerts()[0].used, 4.0);
    assert_eq!(qa.publisher().alerts()[0].window_end, None);
    // AND at 10:00 the day after, the first three have left the window
    let later = fixtures::message_sent(11, datetime!(2026-03-11 10:00 UTC));
    let outcome = qa
        .process_event(&CloudEvent::parse(&later).unwrap(), 0)
        .await
        .unwrap();
    assert!(outcome.alerts.is_empty());
    let span = WindowSpan::at(
        crate::quotas::WindowKind::Rolling24h,
        datetime!(2026-03-11 10:00 UTC).unix_timestamp(),
    );
    let used = qa
        .store()
        .usage("usage#r#rolling-24h", span.first_bucket, span.last_bucket)
        .await
        .unwrap();
    assert_eq!(used, 2.0);
}

#[tokio::test]
async fn usage_triggers_and_rate_limits_alert_against_their_own_limits() {
    // GIVEN a usage-trigger quota for sms without a limit and a rate-limit quota of 50/s
    let qa = core(
        r#"{"quotas": [
            {"name": "sms-trigger", "counts": "usage-trigger", "category": "sms", "window": "day", "thresholds": [1.0]},
            {"name": "spend", "counts": "usage-trigger", "category": "totalprice", "window": "month", "limit": 500},
            {"name": "taskrouter", "counts": "rate-limit", "window": "hour", "limit": 50, "thresholds": [0.8, 1.0]}
        ]}"#,
    );
    let trigger = twilio_events::usage_trigger::usage_trigger_event(
        fixtures::usage_trigger_form("sms", 1000.0, 1003.0, "t1").as_bytes(),
    )
    .unwrap();
    let rate = fixtures::rate_limit(1, datetime!(2026-03-10 10:00 UTC), 42.0, 100.0);
    // WHEN both arrive, the trigger twice (Twilio retried it)
    let batch = records(&[
        trigger.raw_json().to_owned(),
        trigger.raw_json().to_owned(),
        rate,
    ]);
    assert!(qa.process(&batch, far()).await.failed.is_empty());
    // THEN one alert each: the trigger against its trigger value, the rate against the
    // configured 50/s (not the event's 100), at 80% only; the spend quota ignores sms
    let alerts = qa.publisher().alerts();
    let got: Vec<(&str, f64, f64, f64)> = alerts
        .iter()
        .map(|a| (a.quota.as_str(), a.threshold, a.used, a.limit))
        .collect();
    assert_eq!(
        got,
        [
            ("sms-trigger", 1.0, 1003.0, 1000.0),
            ("taskrouter", 0.8, 42.0, 50.0)
        ]
    );
    assert_eq!(alerts[0].event_id, trigger.id.as_ref());
    assert_eq!(alerts[0].window_start, "2026-11-27T00:00:00Z");
    // AND gauges cost no counting transaction
    assert_eq!(qa.store().counts().transactions, 0);
}

#[tokio::test]
async fn calls_minutes_and_limit_errors_are_counted() {
    let qa = core(
        r#"{"quotas": [
            {"name": "calls", "counts": "calls", "window": "hour", "limit": 10},
            {"name": "minutes", "counts": "call-minutes", "window": "hour", "limit": 10},
            {"name": "limit-errors", "counts": "error-codes", "window": "hour", "limit": 10}
        ]}"#,
    );
    let at = datetime!(2026-03-10 10:00 UTC);
    let events = [
        fixtures::call_completed(1, at, 61),  // 2 minutes
        fixtures::call_completed(2, at, 120), // 2 minutes
        fixtures::error_logged(1, at, 30022),
        fixtures::error_logged(2, at, 11200), // not a limit error
    ];
    qa.process(&records(&events), far()).await;
    let bucket = at.unix_timestamp();
    let used = |c: &'static str| qa.store().usage(c, bucket, bucket);
    assert_eq!(used("usage#calls#hour").await.unwrap(), 2.0);
    assert_eq!(used("usage#minutes#hour").await.unwrap(), 4.0);
    assert_eq!(used("usage#limit-errors#hour").await.unwrap(), 1.0);
    // The 11200 error matched no quota: three transactions for four events.
    assert_eq!(qa.store().counts().transactions, 3);
}

#[tokio::test]
async fn a_failed_publish_releases_the_claim_and_the_retry_alerts_once() {
    // GIVEN a limit of 2 and a publisher that fails once
    let qa = core(
        r#"{"quotas": [{"name": "d", "counts": "messages", "window": "day", "limit": 2, "thresholds": [1.0]}]}"#,
    );
    qa.publisher().fail_next(1);
    let at = datetime!(2026-03-10 10:00 UTC);
    let events: Vec<String> = (0..3).map(|i| fixtures::message_sent(i, at)).collect();
    let batch = records(&events);
    // WHEN the batch is processed THEN the crossing record and the rest are failed
    let outcome = qa.process(&batch, far()).await;
    assert_eq!(outcome.failed, ["1", "2"]);
    assert!(qa.publisher().alerts().is_empty());
    // WHEN the source retries from the failed record THEN the alert goes out once, for the
    // event that crossed, although that event was already counted
    let retry = qa.process(&batch[1..], far()).await;
    assert!(retry.failed.is_empty());
    let alerts = qa.publisher().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].event_id, "EZ00000000000000000000000000000001");
    assert_eq!(alerts[0].used, 2.0);
    // AND a later replay of the whole batch sends nothing more
    qa.process(&batch, far()).await;
    assert_eq!(qa.publisher().alerts().len(), 1);
}

#[tokio::test]
async fn malformed_records_are_quarantined_and_acknowledged() {
    let qa = core(SMS_DAILY);
    let good = fixtures::message_sent(1, datetime!(2026-03-10 10:00 UTC));
    let mut batch = records(&["{not json".to_owned(), good]);
    batch.push(StreamRecord {
        sequence_number: "bin".into(),
        partition_key: "k".into(),
        data: vec![0xff, 0x00],
        arrived_at: None,
    });
    let outcome = qa.process(&batch, far()).await;
    assert!(outcome.failed.is_empty());
    let items = qa.quarantine.items();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].reference.as_deref(), Some("0"));
    assert_eq!(items[0].reason, "malformed-record");
    assert_eq!(items[1].encoding, "base64");
    assert_eq!(qa.store().counts().transactions, 1);
}

#[tokio::test]
async fn records_left_when_the_deadline_is_near_are_failed_for_a_retry() {
    let qa = core(SMS_DAILY).with_safety_margin(Duration::from_secs(1));
    let events: Vec<String> = (0..3)
        .map(|i| fixtures::message_sent(i, datetime!(2026-03-10 10:00 UTC)))
        .collect();
    let outcome = qa
        .process(
            &records(&events),
            Instant::now() + Duration::from_millis(500),
        )
        .await;
    assert_eq!(outcome.failed, ["0", "1", "2"]);
    assert_eq!(qa.store().counts().transactions, 0);
}

#[tokio::test]
async fn events_of_other_accounts_are_not_counted() {
    let qa = core(SMS_DAILY);
    let other = fixtures::message_event(
        "EZother",
        "sent",
        1,
        datetime!(2026-03-10 10:00 UTC),
        "AC00000000000000000000000000000002",
        1,
    );
    let outcome = qa
        .process_event(&CloudEvent::parse(&other).unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(outcome.matched, 0);
    assert_eq!(qa.store().counts(), Default::default());
}

#[tokio::test]
async fn each_quota_publishes_used_limit_and_utilization() {
    let qa = core(SMS_DAILY);
    let events: Vec<String> = (0..3)
        .map(|i| fixtures::message_sent(i, datetime!(2026-03-10 10:00 UTC)))
        .collect();
    qa.process(&records(&events), far()).await;
    let published = qa.metrics.published();
    let quota_doc = published
        .iter()
        .find(|m| m.get("Utilization").is_some())
        .unwrap();
    // The latest level, not a sum of the invocation's observations.
    assert_eq!(quota_doc.get("Used"), Some(&[3.0][..]));
    assert_eq!(quota_doc.get("Limit"), Some(&[800.0][..]));
    assert_eq!(quota_doc.get("Utilization"), Some(&[0.375][..]));
    assert_eq!(qa.metrics.total("Counted"), 3.0);
}
