//! Peak memory of the ingest core on its real AWS adapters while it handles deliveries:
//! DynamoDB, Kinesis and SQS clients against moto_server (AWS_ENDPOINT_URL), 16 deliveries
//! in flight at a time, as a busy Lambda instance would never even see (it handles one).
//!
//!     eval "$(infra/scripts/services.sh start)"
//!     cargo run --release -p ingest --example memory -- 5000

use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::adapters::kinesis::KinesisPublisher;
use ingest::{Ingest, IngestRequest, IngestSettings, Route};
use std::sync::Arc;
use std::time::{Duration, Instant};
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::SqsQuarantine;
use twilio_events::signature::{BodyEncoding, SecretSet, SigningKey, Verifier, sign};

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let deliveries: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let config = aws_config::load_from_env().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let (table, stream, queue) = (
        format!("mem-dedup-{run}"),
        format!("mem-events-{run}"),
        format!("mem-q-{run}"),
    );
    // Panics with a clear message when moto_server is not reachable.
    twilio_events_testkit::aws::create_dedup_table(&ddb, &table).await;
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(2)
        .send()
        .await
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let before = peak_rss_kb();
    let ingest = Arc::new(Ingest::new(
        IngestSettings::for_base_url("https://hooks.example.com"),
        Verifier::new(SecretSet::new().with_auth_token("mem-token")),
        DynamoDedupStore::new(ddb, table),
        KinesisPublisher::new(kinesis, stream),
        SqsQuarantine::new(sqs, queue_url),
        NoMetrics,
    ));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut ok = 0;
    for i in 0..deliveries {
        let ingest = Arc::clone(&ingest);
        tasks.spawn(async move {
            let body = format!(
                r#"[{{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/2010-04-01/Accounts/AC1/Messages/SM{i:032}.json","id":"EZ{i:032}","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{i:032}","accountSid":"AC1","messageStatus":"SENT","to":"+14155550199","from":"+12065550100","body":"hello"}}}}]"#
            )
            .into_bytes();
            let signed = sign(&SigningKey::AuthToken("mem-token".into()), "https://hooks.example.com/twilio/events", &body, BodyEncoding::Json);
            let query = signed.url.split_once('?').map(|(_, q)| q.to_owned());
            ingest
                .handle(IngestRequest {
                    route: Route::Events,
                    raw_query: query.as_deref(),
                    content_type: Some("application/json"),
                    signature: Some(&signed.signature),
                    signature_settings: None,
                    body: &body,
                    request_id: "memory",
                    deadline: Instant::now() + Duration::from_secs(4),
                    public_base_url: None,
                    idempotency_token: None,
                })
                .await
                .status
        });
        if tasks.len() >= 16 {
            ok += usize::from(tasks.join_next().await.and_then(Result::ok) == Some(200));
        }
    }
    while let Some(status) = tasks.join_next().await {
        ok += usize::from(status.ok() == Some(200));
    }
    println!(
        "{}",
        serde_json::json!({
            "deliveries": deliveries,
            "ok_200": ok,
            "elapsed_s": started.elapsed().as_secs_f64(),
            "peak_rss_mb_before_handling": before as f64 / 1024.0,
            "peak_rss_mb": peak_rss_kb() as f64 / 1024.0,
        })
    );
}
