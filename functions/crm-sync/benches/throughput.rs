//! Records per second per invocation against a local HTTP CRM answering in 1 ms (per-key order
//! kept, default concurrency), and CPU per record with no network (a CRM that answers at once).
//! The ledger is the in-memory one in both: DynamoDB's latency is not what is measured here.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crm_sync::{Crm, CrmError, CrmSync, HttpCrm, MemoryStatusLedger, StatusUpdate, SyncSettings};
use std::time::{Duration, Instant};
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::stream::{BatchProcessor, StreamRecord};

const KEYS: usize = 250;
const STATUSES: [&str; 4] = ["queued", "sent", "delivered", "read"];

/// One shard's batch: 250 messages' lifecycles, interleaved, each in order.
fn batch() -> Vec<StreamRecord> {
    let mut records = Vec::new();
    for (step, status) in STATUSES.iter().enumerate() {
        for k in 0..KEYS {
            let sid = format!("SM{k:032x}");
            let json = serde_json::json!({
                "specversion": "1.0", "type": format!("com.twilio.messaging.message.{status}"),
                "source": format!("/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/{sid}.json"),
                "id": format!("EZ{k:032x}{step}"), "time": format!("2024-05-01T10:00:0{step}.000Z"),
                "datacontenttype": "application/json",
                "data": {"messageSid": sid, "messageStatus": status.to_uppercase(), "from": "+15550001111",
                         "to": "+15550002222", "accountSid": "AC0123456789abcdef0123456789abcdef"}
            });
            records.push(StreamRecord {
                sequence_number: format!("{:021}", records.len()),
                partition_key: sid,
                data: json.to_string().into_bytes(),
                arrived_at: None,
            });
        }
    }
    records
}

struct InstantCrm;

impl Crm for InstantCrm {
    async fn push(&self, update: &StatusUpdate) -> Result<(), CrmError> {
        std::hint::black_box(update);
        Ok(())
    }
}

async fn crm_server() -> String {
    use axum::routing::put;
    let app = axum::Router::new().route(
        "/{collection}/{sid}",
        put(|_body: axum::body::Bytes| async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    url
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let records = batch();
    let url = rt.block_on(crm_server());
    let http = HttpCrm::new(&url, None).unwrap();

    let mut group = c.benchmark_group("crm-sync");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("batch of 1000 against a 1 ms HTTP CRM", |b| {
        b.to_async(&rt).iter_custom(|iterations| {
            let http = http.clone();
            let records = records.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let sync = CrmSync::with_settings(
                        MemoryStatusLedger::default(),
                        http.clone(),
                        MemoryQuarantine::default(),
                        NoMetrics,
                        SyncSettings::default(),
                    );
                    let started = Instant::now();
                    let outcome = sync
                        .process(&records, started + Duration::from_secs(60))
                        .await;
                    total += started.elapsed();
                    assert!(outcome.failed.is_empty());
                }
                total
            }
        })
    });
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("batch of 1000, no network (CPU)", |b| {
        let single = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        b.to_async(&single).iter_custom(|iterations| {
            let records = records.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let sync = CrmSync::with_settings(
                        MemoryStatusLedger::default(),
                        InstantCrm,
                        MemoryQuarantine::default(),
                        NoMetrics,
                        SyncSettings::default(),
                    );
                    let started = Instant::now();
                    let outcome = sync
                        .process(&records, started + Duration::from_secs(60))
                        .await;
                    total += started.elapsed();
                    assert!(outcome.failed.is_empty());
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
