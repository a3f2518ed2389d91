//! Events per second per invocation without network (in-memory store and publisher), and
//! store calls per event.
//!
//!     CARGO_TARGET_DIR=... cargo bench -p quota-alert --bench throughput

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use quota_alert::adapters::memory::{MemoryPublisher, MemoryStore};
use quota_alert::fixtures;
use quota_alert::fixtures::records;
use quota_alert::{QuotaAlert, Quotas};
use std::time::{Duration, Instant};
use time::macros::datetime;
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::stream::BatchProcessor;

const QUOTAS: &str = r#"{"quotas": [
    {"name": "sms-daily", "counts": "messages", "window": "day", "limit": 800},
    {"name": "segments-24h", "counts": "segments", "window": "rolling-24h", "limit": 5000},
    {"name": "calls", "counts": "calls", "window": "month", "limit": 100},
    {"name": "limit-errors", "counts": "error-codes", "window": "hour", "limit": 10}
]}"#;

type Processor = QuotaAlert<MemoryStore, MemoryPublisher, NoMetrics, MemoryQuarantine>;

fn processor() -> Processor {
    QuotaAlert::new(
        Quotas::parse(QUOTAS).expect("valid quotas"),
        MemoryStore::default(),
        MemoryPublisher::default(),
        NoMetrics,
        MemoryQuarantine::default(),
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let scenario = fixtures::sent_scenario(1000, datetime!(2026-03-10 08:00 UTC));
    let stream = records(&scenario.records);
    let deadline = || Instant::now() + Duration::from_secs(600);

    // Store calls per event, counted by the in-memory store (one `record` = one DynamoDB
    // TransactWriteItems in production).
    let qa = processor();
    runtime.block_on(async {
        for batch in stream.chunks(100) {
            qa.process(batch, deadline()).await;
        }
    });
    let counts = qa.store().counts();
    let counted_records = stream.len() - scenario.uncounted;
    println!(
        "store calls: {} records ({} counted by a quota, incl. {} duplicates/replays; {} counted by none): {} transactions, {} reads, {} alert writes",
        stream.len(),
        counted_records,
        counted_records - scenario.counted_ids.len(),
        scenario.uncounted,
        counts.transactions,
        counts.reads,
        counts.alert_writes
    );
    println!(
        "transactions per counted record: {:.3}; per uncounted record: {:.3}",
        counts.transactions as f64 / counted_records as f64,
        0.0_f64
            .max((counts.transactions as f64 - counted_records as f64) / scenario.uncounted as f64)
    );

    let mut group = c.benchmark_group("quota-alert");
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.bench_function(
        "process 1,443 records in batches of 100 (in-memory store)",
        |b| {
            b.iter_batched(
                processor,
                |qa| {
                    runtime.block_on(async {
                        for batch in stream.chunks(100) {
                            qa.process(batch, deadline()).await;
                        }
                    })
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
