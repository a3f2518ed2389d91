//! quota-alert against moto_server: DynamoDB counters, Kinesis records, SNS alerts read back
//! from an SQS queue, the quota document from SSM. The 1,000-event test keeps its counters in
//! DynamoDB Local (AWS's own engine, also started by services.sh): moto deep-copies the whole
//! table on every TransactWriteItems, which makes a thousand transactions take over a minute.

use crate::helpers::{AlertInbox, aws, through_kinesis, unique};
use quota_alert::adapters::{dynamodb::DynamoUsageCounter, sns::SnsAlertPublisher};
use quota_alert::fixtures::records;
use quota_alert::fixtures::{self, ACCOUNT};
use quota_alert::{QuotaAlert, Quotas, QuotasError, QuotasSource, UsageCounter};
use std::time::{Duration, Instant};
use time::macros::datetime;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::stream::{BatchOutcome, BatchProcessor};

type Processor = QuotaAlert<DynamoUsageCounter, SnsAlertPublisher, MemorySink, MemoryQuarantine>;

struct Setup {
    processor: Processor,
    inbox: AlertInbox,
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    aws: aws_config::SdkConfig,
}

/// Which DynamoDB the counters live in.
#[derive(Clone, Copy, PartialEq)]
enum Dynamo {
    Moto,
    Local,
}

async fn setup(name: &str, quotas: &str) -> Setup {
    setup_with(Dynamo::Moto, name, quotas).await
}

async fn setup_with(engine: Dynamo, name: &str, quotas: &str) -> Setup {
    let aws = aws().await;
    let table = unique(name);
    let dynamo = match engine {
        Dynamo::Moto => aws_sdk_dynamodb::Client::new(&aws),
        Dynamo::Local => crate::helpers::dynamodb_local().await,
    };
    let counter = DynamoUsageCounter::new(dynamo.clone(), &table);
    counter.create_table().await.expect("create table");
    let inbox = AlertInbox::new(&aws, &unique(name)).await;
    let processor = QuotaAlert::new(
        Quotas::parse(quotas).expect("valid quotas"),
        counter,
        SnsAlertPublisher::new(aws_sdk_sns::Client::new(&aws), &inbox.topic_arn),
        MemorySink::default(),
        MemoryQuarantine::default(),
    );
    Setup {
        processor,
        inbox,
        dynamo,
        table,
        aws,
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

/// Items of the table whose key starts with `prefix`.
async fn count_items(s: &Setup, prefix: &str) -> usize {
    let mut total = 0;
    let mut start = None;
    loop {
        let out = s
            .dynamo
            .scan()
            .table_name(&s.table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(
                ":p",
                aws_sdk_dynamodb::types::AttributeValue::S(prefix.into()),
            )
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan");
        total += out.items().len();
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return total,
        }
    }
}

#[tokio::test]
async fn a_thousand_sent_events_with_duplicates_and_replays_give_one_alert_per_threshold() {
    // GIVEN a daily limit of 800 messages for one account, and a Kinesis stream carrying 1,000
    // message.sent events with duplicates, replays and delivered events mixed in
    let s = setup_with(
        Dynamo::Local,
        "thousand",
        &format!(
            r#"{{"quotas": [{{"name": "sms-daily", "account": "{ACCOUNT}", "counts": "messages",
                "window": "day", "limit": 800, "thresholds": [0.5, 0.8, 1.0]}}]}}"#
        ),
    )
    .await;
    let scenario = fixtures::sent_scenario(1000, datetime!(2026-03-10 08:00 UTC));
    let stream = through_kinesis(&s.aws, &scenario.records).await;

    // WHEN the records are processed in batches of 100, and one batch is redelivered whole
    for batch in stream.chunks(100) {
        assert_eq!(
            s.processor.process(batch, far()).await,
            BatchOutcome::all_done()
        );
    }
    assert!(
        s.processor
            .process(&stream[700..800], far())
            .await
            .failed
            .is_empty()
    );

    // THEN SNS delivered exactly three alerts: at the 400th, 640th and 800th distinct event,
    // with those counts
    let mut alerts = s.inbox.drain().await;
    alerts.sort_by(|a, b| a.0.threshold.total_cmp(&b.0.threshold));
    let got: Vec<(f64, f64, &str)> = alerts
        .iter()
        .map(|(a, _)| (a.threshold, a.used, a.event_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (0.5, 400.0, scenario.counted_ids[399].as_str()),
            (0.8, 640.0, scenario.counted_ids[639].as_str()),
            (1.0, 800.0, scenario.counted_ids[799].as_str()),
        ]
    );
    let (eighty, subject) = &alerts[1];
    assert_eq!(subject, "Twilio quota sms-daily at 80% (640 of 800)");
    assert_eq!(eighty.window_start, "2026-03-10T00:00:00Z");
    assert_eq!(eighty.window_end.as_deref(), Some("2026-03-11T00:00:00Z"));
    assert_eq!(eighty.account.as_deref(), Some(ACCOUNT));
    // The 640th event came at 08:10:39, 29,439 s into the day: the remaining 160 take a
    // quarter of that, 7,360 s (rounded up), so the limit is hit at 10:13:19.
    assert_eq!(eighty.event_time, "2026-03-10T08:10:39Z");
    assert_eq!(
        eighty.forecast_exhausted_at.as_deref(),
        Some("2026-03-10T10:13:19Z")
    );
    assert!(
        eighty.summary.contains("640 of 800 messages sent (80%)"),
        "{}",
        eighty.summary
    );
    assert!(!eighty.summary.contains("+1555"), "no phone numbers");

    // AND the counter holds the 1,000 distinct events, and only sent events left an id:
    // the delivered events cost no write at all
    let used = s
        .processor
        .store()
        .usage(
            "usage#sms-daily#day",
            datetime!(2026-03-10 00:00 UTC).unix_timestamp(),
            datetime!(2026-03-10 00:00 UTC).unix_timestamp(),
        )
        .await
        .unwrap();
    assert_eq!(used, 1000.0);
    assert_eq!(count_items(&s, "event#").await, 1000);
    assert_eq!(count_items(&s, "alert#").await, 3);
}

#[tokio::test]
async fn windows_roll_over_in_utc() {
    // GIVEN a daily and a monthly quota of 2 messages, thresholds at 100%
    let s = setup(
        "rollover",
        r#"{"quotas": [
            {"name": "day", "counts": "messages", "window": "day", "limit": 2, "thresholds": [1.0]},
            {"name": "month", "counts": "messages", "window": "month", "limit": 2, "thresholds": [1.0]},
            {"name": "hour", "counts": "messages", "window": "hour", "limit": 2, "thresholds": [1.0]}
        ]}"#,
    )
    .await;
    // WHEN two messages are sent in the last seconds of 31 March (UTC) and two in the first
    // seconds of 1 April, one of them stamped in UTC+02:00
    let events = [
        fixtures::message_sent(1, datetime!(2026-03-31 23:59:58 UTC)),
        fixtures::message_sent(2, datetime!(2026-03-31 23:59:59 UTC)),
        fixtures::message_event(
            "EZ-offset",
            "sent",
            3,
            datetime!(2026-04-01 02:00:00 +02:00),
            ACCOUNT,
            1,
        ),
        fixtures::message_sent(4, datetime!(2026-04-01 00:00:01 UTC)),
    ];
    assert!(
        s.processor
            .process(&records(&events), far())
            .await
            .failed
            .is_empty()
    );
    // THEN each quota alerted once per window: day, month and hour each in March and April
    let mut got: Vec<(String, String, f64, String)> = s
        .inbox
        .drain()
        .await
        .into_iter()
        .map(|(a, _)| (a.quota, a.window_start, a.used, a.event_id))
        .collect();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let id = |n: u64| format!("EZ{n:032x}");
    let expected: Vec<(String, String, f64, String)> = [
        ("day", "2026-03-31T00:00:00Z", id(2)),
        ("day", "2026-04-01T00:00:00Z", id(4)),
        ("hour", "2026-03-31T23:00:00Z", id(2)),
        ("hour", "2026-04-01T00:00:00Z", id(4)),
        ("month", "2026-03-01T00:00:00Z", id(2)),
        ("month", "2026-04-01T00:00:00Z", id(4)),
    ]
    .into_iter()
    .map(|(q, w, e)| (q.to_owned(), w.to_owned(), 2.0, e))
    .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_usage_trigger_callback_and_a_rate_limit_event_each_raise_the_right_alert() {
    // GIVEN a usage-trigger quota on sms (limit from the trigger) and a spend quota of $500,
    // and a TaskRouter rate-limit quota of 50 requests/s
    let s = setup(
        "gauges",
        r#"{"quotas": [
            {"name": "sms-trigger", "counts": "usage-trigger", "category": "sms", "window": "day", "thresholds": [1.0]},
            {"name": "spend", "counts": "usage-trigger", "category": "totalprice", "window": "month", "limit": 500, "thresholds": [0.5, 0.9]},
            {"name": "taskrouter", "counts": "rate-limit", "window": "hour", "limit": 50, "thresholds": [0.8, 1.0]}
        ]}"#,
    )
    .await;
    // WHEN ingest's CloudEvents for a fired sms trigger (retried by Twilio), a spend trigger
    // at $460 and a rate-limit event at 45/s pass through Kinesis
    let trigger = |category: &str, value: f64, current: f64, token: &str| {
        twilio_events::usage_trigger::usage_trigger_event(
            fixtures::usage_trigger_form(category, value, current, token).as_bytes(),
        )
        .expect("a valid callback")
    };
    let sms = trigger("sms", 1000.0, 1003.0, "t-sms");
    let spend = trigger("totalprice", 450.0, 460.0, "t-spend");
    let events = [
        sms.raw_json().to_owned(),
        sms.raw_json().to_owned(),
        spend.raw_json().to_owned(),
        fixtures::rate_limit(1, datetime!(2026-11-27 10:00 UTC), 45.0, 100.0),
    ];
    let stream = through_kinesis(&s.aws, &events).await;
    assert!(s.processor.process(&stream, far()).await.failed.is_empty());
    // THEN: the sms trigger alerts once against its trigger value; spend alerts at 50% and
    // 90% of $500; the rate alerts at 80% of 50/s (not the event's own 100)
    let mut got: Vec<(String, f64, f64, f64, String)> = s
        .inbox
        .drain()
        .await
        .into_iter()
        .map(|(a, _)| (a.quota, a.threshold, a.used, a.limit, a.event_id))
        .collect();
    got.sort_by(|a, b| (&a.0, a.1).partial_cmp(&(&b.0, b.1)).unwrap());
    let rate_id = format!("RL{:032x}", 1);
    assert_eq!(
        got,
        [
            (
                "sms-trigger".into(),
                1.0,
                1003.0,
                1000.0,
                sms.id.to_string()
            ),
            ("spend".into(), 0.5, 460.0, 500.0, spend.id.to_string()),
            ("spend".into(), 0.9, 460.0, 500.0, spend.id.to_string()),
            ("taskrouter".into(), 0.8, 45.0, 50.0, rate_id),
        ]
    );
    // AND gauges need no counter: the only items are the four alert claims
    assert_eq!(count_items(&s, "event#").await, 0);
    assert_eq!(count_items(&s, "usage#").await, 0);
    assert_eq!(count_items(&s, "alert#").await, 4);
}

#[tokio::test]
async fn a_bad_quota_configuration_in_ssm_fails_at_start_naming_the_field() {
    // GIVEN a quota document in SSM Parameter Store whose third quota has a threshold of 1.5
    let aws = aws().await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let name = format!("/{}/quotas", unique("quota-doc"));
    let bad = r#"{"quotas": [
        {"name": "a", "counts": "messages", "window": "day", "limit": 10},
        {"name": "b", "counts": "calls", "window": "day", "limit": 10},
        {"name": "c", "counts": "segments", "window": "day", "limit": 10, "thresholds": [0.5, 1.5]}
    ]}"#;
    ssm.put_parameter()
        .name(&name)
        .value(bad)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put parameter");
    // WHEN it is loaded THEN the error names the field and the rule
    let err = QuotasSource::SsmParameter(name.clone())
        .load(&ssm)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("quotas[2].thresholds[1]"));
    assert!(
        err.to_string()
            .contains("quotas[2].thresholds[1]: must be in (0, 1]"),
        "{err}"
    );
    // AND a parameter that does not exist is reported with its name
    let missing = QuotasSource::SsmParameter(format!("{name}-missing"))
        .load(&ssm)
        .await
        .unwrap_err();
    assert!(matches!(missing, QuotasError::Ssm { .. }), "{missing}");
    assert!(missing.to_string().contains("-missing"), "{missing}");
}

#[tokio::test]
async fn a_failed_publish_is_retried_and_alerts_once() {
    // GIVEN a limit of 2 and a topic that does not exist yet
    let s = setup(
        "retry",
        r#"{"quotas": [{"name": "d", "counts": "messages", "window": "day", "limit": 2, "thresholds": [1.0]}]}"#,
    )
    .await;
    let counter = DynamoUsageCounter::new(s.dynamo.clone(), &s.table);
    let broken = QuotaAlert::new(
        Quotas::parse(
            r#"{"quotas": [{"name": "d", "counts": "messages", "window": "day", "limit": 2, "thresholds": [1.0]}]}"#,
        )
        .unwrap(),
        counter,
        SnsAlertPublisher::new(
            aws_sdk_sns::Client::new(&s.aws),
            "arn:aws:sns:us-east-1:123456789012:does-not-exist",
        ),
        MemorySink::default(),
        MemoryQuarantine::default(),
    );
    let events: Vec<String> = (0..3)
        .map(|i| fixtures::message_sent(i, datetime!(2026-03-10 10:00 UTC)))
        .collect();
    let batch = records(&events);
    // WHEN the crossing event cannot be published THEN it and the rest are failed
    assert_eq!(broken.process(&batch, far()).await.failed, ["1", "2"]);
    // WHEN the retry runs with a working topic THEN the alert goes out once, for event 1
    assert!(
        s.processor
            .process(&batch[1..], far())
            .await
            .failed
            .is_empty()
    );
    s.processor.process(&batch, far()).await;
    let alerts = s.inbox.drain().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0.event_id, format!("EZ{:032x}", 1));
    assert_eq!(alerts[0].0.used, 2.0);
}
