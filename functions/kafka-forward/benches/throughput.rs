//! Events per second per invocation to a local broker (Tansu, as in the tests; path in
//! `TWILIO_EVENTS_TANSU`): one Kinesis-sized batch of records through the forwarder, from
//! records in to every acknowledgement back, with the Lambda's producer settings (idempotent,
//! `acks=all`, 5 ms linger). Batches of 100 (the template's BatchSize) and 1,000.
//! Also the CPU of the pure part, a record made a message with its headers.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_forward::KafkaForward;
use kafka_forward::adapters::kafka::KafkaTopic;
use kafka_forward::config::KafkaConnection;
use kafka_forward::ports::TopicMessage;
use std::time::{Duration, Instant};
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::stream::{BatchProcessor, StreamRecord};
use twilio_events_testkit::events::StatusEvent;
use twilio_events_testkit::kafka::Broker;

const STATUSES: [&str; 4] = ["queued", "sent", "delivered", "read"];

/// A batch of `size` records: `size / 4` messages' lifecycles, interleaved, each in order.
fn batch(size: usize, from: usize) -> Vec<StreamRecord> {
    let keys = size / STATUSES.len();
    let mut records = Vec::with_capacity(size);
    for status in STATUSES {
        for k in 0..keys {
            let sid = format!("SM{:032x}", from + k);
            records.push(StreamRecord {
                sequence_number: format!("{:021}", from + records.len()),
                data: StatusEvent::message(&sid, status).to_bytes(),
                partition_key: sid,
                arrived_at: None,
            });
        }
    }
    records
}

fn to_broker(c: &mut Criterion) {
    to_broker_with(c, "sqlite");
}

fn to_broker_with(c: &mut Criterion, name: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let broker = Broker::start();
    runtime.block_on(broker.create_topic("bench", 3));
    let forwarder = KafkaForward::new(
        KafkaTopic::connect(
            &KafkaConnection::plaintext(&broker.bootstrap(), "bench"),
            None,
        )
        .unwrap(),
        MemoryQuarantine::default(),
        NoMetrics,
    );
    let mut group = c.benchmark_group(format!("forward_to_local_broker_{name}"));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    for size in [100, 1000] {
        let mut next = 0;
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("batch_of_{size}"), |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    let records = batch(size, next);
                    next += size;
                    let started = Instant::now();
                    let outcome = runtime.block_on(
                        forwarder.process(&records, Instant::now() + Duration::from_secs(30)),
                    );
                    spent += started.elapsed();
                    assert!(outcome.failed.is_empty(), "{} failed", outcome.failed.len());
                }
                spent
            });
        });
    }
    group.finish();
}

fn headers(c: &mut Criterion) {
    let records = batch(100, 0);
    let mut group = c.benchmark_group("record_to_message");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("batch_of_100", |b| {
        b.iter(|| {
            for record in &records {
                std::hint::black_box(TopicMessage::from_record(record).unwrap());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, headers, to_broker);
criterion_main!(benches);
