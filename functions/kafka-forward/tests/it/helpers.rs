//! Kinesis events as Lambda hands them to the function, and the forwarder on a local broker.

use aws_lambda_events::event::kinesis::KinesisEvent;
use kafka_forward::adapters::kafka::KafkaTopic;
use kafka_forward::config::KafkaConnection;
use kafka_forward::{ForwardSettings, KafkaForward};
use std::path::Path;
use twilio_events::metrics::MemorySink;
use twilio_events::quarantine::FileQuarantine;
use twilio_events_testkit::events::{self, StatusEvent};

/// One stream record: partition key, data, sequence number.
pub type Record = (String, Vec<u8>, String);

pub type Forwarder = KafkaForward<KafkaTopic, FileQuarantine, MemorySink>;

/// The forwarder as the Lambda wires it, on a plaintext broker, quarantine in `dir`. Its logs
/// (librdkafka's included) go to the test's output, shown when a test fails.
pub fn forwarder(bootstrap: &str, topic: &str, dir: &Path) -> Forwarder {
    twilio_events::logging::init_json_logs();
    KafkaForward {
        topic: KafkaTopic::connect(&KafkaConnection::plaintext(bootstrap, topic), None)
            .expect("producer"),
        quarantine: FileQuarantine::new(dir.join("quarantine.jsonl")),
        metrics: MemorySink::default(),
        settings: ForwardSettings::default(),
    }
}

/// `messages` messages, each through `statuses`, interleaved as Twilio would send them: every
/// message's first status, then every message's second, … Sequence numbers from `first_seq`.
pub fn status_records(messages: usize, statuses: &[&str], first_seq: u64) -> Vec<Record> {
    let mut records = Vec::new();
    for (step, status) in statuses.iter().enumerate() {
        for m in 0..messages {
            let sid = format!("SM{m:032x}");
            let time = format!("2026-11-30T10:{:02}:{:02}.000Z", step, m % 60);
            let data = StatusEvent::message(&sid, status).at(&time).to_bytes();
            let seq = first_seq + records.len() as u64;
            records.push((sid, data, format!("{seq:056}")));
        }
    }
    records
}

/// A Kinesis event of `records`, as an event source mapping sends it.
pub fn kinesis_event(records: &[Record]) -> KinesisEvent {
    serde_json::from_value(events::kinesis_event("twilio-events", records))
        .expect("a Kinesis event")
}

/// The sequence numbers a partial batch response reports.
pub fn failures(response: &aws_lambda_events::event::streams::KinesisEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect()
}

/// A fresh directory for one test.
pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(twilio_events_testkit::aws::unique("kafka-forward"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
