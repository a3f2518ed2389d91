//! `serve --kafka-brokers`: the Kafka forwarder beside the other consumers, on its own
//! checkpoint, against a real Kafka-protocol broker (Tansu) that is stopped and restarted
//! while events keep coming.

use super::helpers::{self, Server, data_dir, dump};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};
use twilio_events::signature::{BodyEncoding, SigningKey, sign};
use twilio_events_testkit::kafka::Broker;

const TOKEN: &str = "kafka-test-token";
const TOPIC: &str = "twilio-events";
const PARTITIONS: i32 = 3;
const MESSAGES: usize = 100;
/// Ten stages, so that each message has ten distinct events (ingest keeps one per stage).
const STATUSES: [&str; 10] = [
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "undelivered",
    "failed",
    "canceled",
];

fn start(data_dir: &Path, broker: &Broker) -> Server {
    helpers::start_serve(
        TOKEN,
        data_dir,
        &[
            "--kafka-brokers",
            &broker.bootstrap(),
            "--kafka-topic",
            TOPIC,
        ],
    )
}

/// Event `i`: message `i % 100` at stage `i / 100`, so each message's events go in order.
fn event(i: usize) -> String {
    let sid = format!("SM{:032}", i % MESSAGES);
    let status = STATUSES[i / MESSAGES];
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.{status}","source":"/2010-04-01/Accounts/AC5/Messages/{sid}.json","id":"EZ{i:032}","time":"2026-11-30T10:{:02}:{:02}.000Z","datacontenttype":"application/json","data":{{"messageSid":"{sid}","accountSid":"AC5","messageStatus":"{}","to":"+14155550199"}}}}"#,
        i / MESSAGES,
        i % 60,
        status.to_uppercase()
    )
}

fn deliver(server: &Server, body: &str) -> u16 {
    let url = format!("http://127.0.0.1:{}/twilio/events", server.port);
    let signed = sign(
        &SigningKey::AuthToken(TOKEN.into()),
        &url,
        body.as_bytes(),
        BodyEncoding::Json,
    );
    // Twilio signs a JSON body's hash into the URL (bodySHA256): post to the URL it signed.
    let target = signed
        .url
        .split_once(&format!("127.0.0.1:{}", server.port))
        .map(|(_, target)| target.to_owned())
        .unwrap_or_default();
    helpers::post(
        server,
        &target,
        "application/json",
        &signed.signature,
        body.as_bytes(),
    )
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_forwards_each_event_once_keyed_in_order_through_a_broker_stopped_for_10_s() {
    // GIVEN a broker with a 3-partition topic and serve forwarding to it
    let mut broker = Broker::start();
    broker.create_topic(TOPIC, PARTITIONS).await;
    let dir = data_dir("kafka-forward");
    let server = start(&dir, &broker);
    // WHEN 1,000 events of 100 messages come as 200 deliveries over ~20 s, and the broker is
    // stopped after the 60th delivery and restarted 10 s later
    let mut stopped_at = None;
    for d in 0..200 {
        if d == 60 {
            broker.stop();
            stopped_at = Some(Instant::now());
        }
        if let Some(at) = stopped_at.filter(|at| at.elapsed() >= Duration::from_secs(10)) {
            broker.restart();
            eprintln!("broker stopped for {:?}", at.elapsed());
            stopped_at = None;
        }
        let body = format!(
            "[{}]",
            (5 * d..5 * d + 5).map(event).collect::<Vec<_>>().join(",")
        );
        assert_eq!(deliver(&server, &body), 200, "delivery {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        stopped_at.is_none(),
        "the broker was restarted during the run"
    );
    // THEN the topic settles at 1,000 messages
    let count = broker.settled_count(TOPIC, PARTITIONS, 1000, Duration::from_secs(120));
    drop(server);
    let stream = dump(&dir);
    assert_eq!(stream.len(), 1000);
    let consumed = broker.read_all(TOPIC, PARTITIONS);
    assert_eq!(consumed.len() as i64, count);
    // AND every event of the stream is on the topic byte for byte: lost 0
    let mut copies: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, message) in consumed.iter().enumerate() {
        copies.entry(message.value.as_slice()).or_default().push(i);
    }
    let lost = stream
        .iter()
        .filter(|e| !copies.contains_key(e.as_bytes()))
        .count();
    let duplicates: usize = copies.values().map(|c| c.len() - 1).sum();
    eprintln!("topic: {count} messages, lost {lost}, duplicates {duplicates}");
    assert_eq!(lost, 0);
    assert_eq!(
        copies.len(),
        1000,
        "the topic holds something the stream does not"
    );
    // AND duplicates 0: the idempotent producer's retries through the outage are written once,
    // and serve's batches never reached their deadline (a duplicate needs a retried batch)
    assert_eq!(duplicates, 0);
    // AND each message's events are keyed by its SID, on one partition, in stream order
    let mut by_key: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for line in &stream {
        let message = &consumed[copies[line.as_bytes()][0]];
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let sid = event["data"]["messageSid"].as_str().unwrap();
        assert_eq!(message.key.as_deref(), Some(sid.as_bytes()));
        by_key
            .entry(sid.to_owned())
            .or_default()
            .push((message.partition, message.offset));
        // AND it carries the CloudEvents binding's headers
        for attribute in ["specversion", "id", "type", "source", "time"] {
            assert_eq!(
                message.header(&format!("ce_{attribute}")),
                event[attribute].as_str()
            );
        }
        assert_eq!(
            message.header("content-type"),
            Some("application/cloudevents+json; charset=UTF-8")
        );
    }
    assert_eq!(by_key.len(), MESSAGES);
    for (sid, placed) in &by_key {
        assert_eq!(placed.len(), STATUSES.len());
        assert!(
            placed.iter().all(|(p, _)| *p == placed[0].0),
            "{sid}: {placed:?}"
        );
        assert!(
            placed.windows(2).all(|w| w[0].1 < w[1].1),
            "{sid}: {placed:?}"
        );
    }
    let partitions: std::collections::BTreeSet<i32> = by_key.values().map(|p| p[0].0).collect();
    assert_eq!(partitions.len(), PARTITIONS as usize);
}

#[test]
fn kafka_brokers_with_the_aws_backend_is_a_usage_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twilio-events"))
        .args(["serve", "--auth-token", TOKEN, "--backend", "aws"])
        .args(["--dedup-table", "d", "--stream-name", "s"])
        .args(["--kafka-brokers", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kafka-forward function"));
}
