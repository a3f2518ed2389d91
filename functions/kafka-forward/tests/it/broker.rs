//! The Lambda's path against a real broker: Kinesis events in, partial batch responses out,
//! what lands on the topic read back with a Kafka consumer.

use crate::helpers::{failures, forwarder, kinesis_event, status_records, temp_dir};
use kafka_forward::processor::metric;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};
use twilio_events::kinesis_lambda::handle;
use twilio_events_testkit::kafka::Broker;

const PARTITIONS: i32 = 3;

fn deadline_in(seconds: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_land_once_byte_for_byte_keyed_in_order_with_the_bindings_headers() {
    // GIVEN a broker with a 3-partition topic and the forwarder on it
    let broker = Broker::start();
    broker.create_topic("twilio-events", PARTITIONS).await;
    let dir = temp_dir();
    let forwarder = forwarder(&broker.bootstrap(), "twilio-events", &dir);
    // AND 300 events of 60 messages, each through five statuses, as Kinesis batches of 100
    let records = status_records(
        60,
        &["queued", "sending", "sent", "delivered", "read"],
        1000,
    );
    // WHEN each batch is handed over as Lambda would
    for batch in records.chunks(100) {
        let response = handle(&forwarder, kinesis_event(batch), deadline_in(30)).await;
        // THEN no record is reported back
        assert_eq!(failures(&response), Vec::<String>::new());
    }
    // AND the topic holds each event once, byte for byte, keyed by its message
    let consumed = broker.read_all("twilio-events", PARTITIONS);
    assert_eq!(consumed.len(), records.len());
    let by_value: HashMap<&[u8], usize> = consumed
        .iter()
        .enumerate()
        .map(|(i, m)| (m.value.as_slice(), i))
        .collect();
    assert_eq!(by_value.len(), records.len(), "a value appears twice");
    let mut partitions_of_key: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (key, data, _) in &records {
        let message = &consumed[*by_value
            .get(data.as_slice())
            .unwrap_or_else(|| panic!("an event of {key} is missing"))];
        assert_eq!(message.key.as_deref(), Some(key.as_bytes()));
        partitions_of_key
            .entry(key.as_str())
            .or_default()
            .push(message.partition);
        // AND it carries the binding's headers, equal to the event's own attributes
        let event: serde_json::Value = serde_json::from_slice(data).unwrap();
        for attribute in ["specversion", "id", "type", "source", "time"] {
            assert_eq!(
                message.header(&format!("ce_{attribute}")),
                event[attribute].as_str(),
                "ce_{attribute}"
            );
        }
        assert_eq!(
            message.header("content-type"),
            Some("application/cloudevents+json; charset=UTF-8")
        );
        assert!(message.header("ce_data").is_none());
    }
    // AND each message's events share one partition, in the order they were sent
    for (key, partitions) in &partitions_of_key {
        assert!(
            partitions.iter().all(|p| *p == partitions[0]),
            "{key} is spread over {partitions:?}"
        );
        let offsets: Vec<i64> = records
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, data, _)| consumed[by_value[data.as_slice()]].offset)
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{key}: {offsets:?}"
        );
    }
    // AND the keys spread over every partition
    let used: std::collections::BTreeSet<i32> = partitions_of_key.values().map(|p| p[0]).collect();
    assert_eq!(used.len(), PARTITIONS as usize);
    assert_eq!(
        forwarder.metrics.total(metric::FORWARDED),
        records.len() as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_topic_rejects_is_quarantined_and_a_broker_away_gets_the_batch_retried() {
    // GIVEN a broker and a forwarder on it
    let mut broker = Broker::start();
    broker.create_topic("events", PARTITIONS).await;
    let dir = temp_dir();
    let forwarder = forwarder(&broker.bootstrap(), "events", &dir);
    // AND a batch of 50 with, in its middle, one event larger than Kafka's default maximum
    // message size (1,000,000 bytes; Kinesis takes up to 1 MiB) and one record that is not a
    // CloudEvent
    let mut batch = status_records(48, &["sent"], 1);
    let huge = serde_json::json!({"specversion": "1.0", "id": "EZhuge", "type": "com.twilio.messaging.message.sent",
        "source": "/x", "data": {"body": "x".repeat(1_010_000)}});
    batch.insert(
        20,
        (
            "SMhuge".into(),
            huge.to_string().into_bytes(),
            "huge".into(),
        ),
    );
    batch.insert(30, ("SMbad".into(), b"not json".to_vec(), "bad".into()));
    // WHEN it is handed over
    let response = handle(&forwarder, kinesis_event(&batch), deadline_in(30)).await;
    // THEN nothing is reported back: the two are quarantined with their reasons, the rest written
    assert_eq!(failures(&response), Vec::<String>::new());
    let quarantined = std::fs::read_to_string(dir.join("quarantine.jsonl")).unwrap();
    let mut reasons: Vec<String> = quarantined
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["kafka-rejected", "malformed-record"]);
    assert_eq!(broker.read_all("events", PARTITIONS).len(), 48);
    assert_eq!(forwarder.metrics.total(metric::QUARANTINED), 2.0);

    // GIVEN the broker stops
    broker.stop();
    // WHEN the next batch comes with 3 s left
    let next = status_records(48, &["delivered"], 100);
    let response = handle(&forwarder, kinesis_event(&next), deadline_in(3)).await;
    // THEN every record is reported back by sequence number, within the deadline
    let reported = failures(&response);
    assert_eq!(
        reported,
        next.iter().map(|(_, _, s)| s.clone()).collect::<Vec<_>>()
    );
    assert_eq!(forwarder.metrics.total(metric::PRODUCE_FAILURES), 48.0);
    // WHEN the broker is back and the source retries from the first reported record
    broker.restart();
    let response = handle(&forwarder, kinesis_event(&next), deadline_in(30)).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    // THEN every event is on the topic exactly once: nothing unsent at the deadline was written
    let consumed = broker.read_all("events", PARTITIONS);
    assert_eq!(consumed.len(), 96);
    let distinct: std::collections::HashSet<&[u8]> =
        consumed.iter().map(|m| m.value.as_slice()).collect();
    assert_eq!(distinct.len(), 96);
}
