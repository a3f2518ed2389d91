//! Handler time per delivery without network: verify, parse, claim, publish, complete, on the
//! in-memory adapters (the AWS round trips are measured separately, in the integration tests'
//! call counts and infra/bench/serve_load.sh).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ingest::adapters::memory::{MemoryDedupStore, MemoryPublisher};
use ingest::{Ingest, IngestRequest, IngestSettings, Route};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::MemoryQuarantine;
use twilio_events::signature::{BodyEncoding, SecretSet, SigningKey, Verifier, sign};

const TOKEN: &str = "bench-token";
const URL: &str = "https://hooks.example.com/prod/twilio/events";

fn event(i: usize, status: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.{status}","source":"/2010-04-01/Accounts/AC2f1b7c0e9a3d4b5c6d7e8f9a0b1c2d3e/Messages/SM{i:032x}.json","id":"EZ{i:032x}","dataschema":"https://events-schemas.twilio.com/Messaging.MessageStatus/7","datacontenttype":"application/json","time":"2026-11-20T10:00:00.123Z","data":{{"messageSid":"SM{i:032x}","timestamp":"2026-11-20T10:00:00.123Z","accountSid":"AC2f1b7c0e9a3d4b5c6d7e8f9a0b1c2d3e","from":"+12065550100","to":"+14155550199","messageStatus":"{}","numberOfSegments":1}}}}"#,
        status.to_uppercase()
    )
}

struct Signed {
    query: String,
    signature: String,
    body: Vec<u8>,
}

fn delivery(first: usize, n: usize) -> Signed {
    let body = format!(
        "[{}]",
        (first..first + n)
            .map(|i| event(i, "delivered"))
            .collect::<Vec<_>>()
            .join(",")
    )
    .into_bytes();
    let signed = sign(
        &SigningKey::AuthToken(TOKEN.into()),
        URL,
        &body,
        BodyEncoding::Json,
    );
    Signed {
        query: signed
            .url
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default(),
        signature: signed.signature,
        body,
    }
}

fn handler(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ingest = Ingest::new(
        IngestSettings::for_base_url("https://hooks.example.com/prod"),
        Verifier::new(SecretSet::new().with_auth_token(TOKEN)),
        MemoryDedupStore::default(),
        MemoryPublisher::default(),
        MemoryQuarantine::default(),
        NoMetrics,
    );
    let next = AtomicUsize::new(0);
    let mut group = c.benchmark_group("ingest_handler");
    for n in [1usize, 3, 10] {
        group.bench_function(format!("{n}-event delivery"), |b| {
            b.iter_batched(
                || delivery(next.fetch_add(n, Ordering::Relaxed), n),
                |d| {
                    let response = runtime.block_on(ingest.handle(IngestRequest {
                        route: Route::Events,
                        raw_query: Some(&d.query),
                        content_type: Some("application/json"),
                        signature: Some(&d.signature),
                        signature_settings: None,
                        body: &d.body,
                        request_id: "bench",
                        deadline: Instant::now() + Duration::from_secs(3),
                        public_base_url: None,
                        idempotency_token: None,
                    }));
                    assert_eq!(response.status, 200);
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, handler);
criterion_main!(benches);
