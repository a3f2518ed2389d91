//! Our side of infra/bench/compare_receiver.sh: the ingest core (`ingest::Ingest`) on its real
//! AWS adapters (DynamoDB conditional-put dedup, Kinesis) against the emulator at
//! AWS_ENDPOINT_URL, handling the same signed deliveries as the hand-written Python receiver
//! (infra/bench/reference_receiver.py), one at a time as a Lambda instance does.
//!
//!     # write N signed deliveries (JSON lines) that both receivers then handle
//!     ingest_core cases --out cases.jsonl --deliveries 2000 --token T
//!     # handle them; prints {"deliveries", "ok", "ns_per_delivery", "peak_rss_kb", ...}
//!     ingest_core run --cases cases.jsonl --token T

use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::adapters::kinesis::KinesisPublisher;
use ingest::{Ingest, IngestRequest, IngestSettings, Route};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};
use twilio_events::metrics::NoMetrics;
use twilio_events::quarantine::FileQuarantine;
use twilio_events::signature::{BodyEncoding, SecretSet, SigningKey, Verifier, sign};

const BASE_URL: &str = "https://hooks.example.com";

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(
        "usage: ingest_core cases --out FILE --deliveries N --token T | run --cases FILE --token T"
    )]
    Usage,
    #[error("{0}: check the path")]
    Io(#[from] std::io::Error),
    #[error("bad case line: {0}")]
    Json(#[from] serde_json::Error),
    #[error("AWS emulator: {0} (is AWS_ENDPOINT_URL set to a running moto_server?)")]
    Aws(String),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Case {
    /// The full URL Twilio signed (with bodySHA256 for JSON).
    url: String,
    content_type: String,
    signature: String,
    body: String,
}

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

/// CPU time (user + system) of this process, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    ticks * 10
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn event(run: u64, i: usize, status: &str) -> String {
    let sid = i / 3;
    format!(
        r#"{{"specversion":"1.0","type":"com.twilio.messaging.message.{status}","source":"/2010-04-01/Accounts/AC0a1b2c3d4e5f60718293a4b5c6d7e8f9/Messages/SM{run:016x}{sid:016x}.json","id":"EZ{run:016x}{i:016x}","dataschema":"https://events-schemas.twilio.com/Messaging.MessageStatus/7","datacontenttype":"application/json","time":"2026-11-26T10:00:00.000Z","data":{{"messageSid":"SM{run:016x}{sid:016x}","timestamp":"2026-11-26T10:00:00.000Z","accountSid":"AC0a1b2c3d4e5f60718293a4b5c6d7e8f9","eventName":"com.twilio.messaging.message.{status}","apiVersion":"2010-04-01","from":"+12065550100","to":"+14155550199","messageStatus":"{}","numberOfSegments":1}}}}"#,
        status.to_uppercase()
    )
}

/// Message lifecycles (queued, sent, delivered), one event per delivery, every 20th delivered
/// twice (a Twilio retry): the duplicate path is exercised too.
fn write_cases(out: &str, deliveries: usize, token: &str) -> Result<(), BenchError> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let key = SigningKey::AuthToken(token.into());
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let statuses = ["queued", "sent", "delivered"];
    let mut written = 0;
    let mut i = 0;
    while written < deliveries {
        let body = format!("[{}]", event(run, i, statuses[i % 3]));
        let signed = sign(
            &key,
            &format!("{BASE_URL}/twilio/events"),
            body.as_bytes(),
            BodyEncoding::Json,
        );
        let case = Case {
            url: signed.url,
            content_type: "application/json".into(),
            signature: signed.signature,
            body,
        };
        let line = serde_json::to_string(&case)?;
        let copies = if i % 20 == 19 { 2 } else { 1 };
        for _ in 0..copies.min(deliveries - written) {
            writeln!(file, "{line}")?;
            written += 1;
        }
        i += 1;
    }
    file.flush()?;
    Ok(())
}

async fn create_resources(
    ddb: &aws_sdk_dynamodb::Client,
    kinesis: &aws_sdk_kinesis::Client,
    table: &str,
    stream: &str,
) -> Result<(), BenchError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let aws = |e: &dyn std::fmt::Display| BenchError::Aws(e.to_string());
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| aws(&e))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| aws(&e))?,
        )
        .send()
        .await
        .map_err(|e| aws(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    kinesis
        .create_stream()
        .stream_name(stream)
        .shard_count(1)
        .send()
        .await
        .map_err(|e| aws(&aws_sdk_kinesis::error::DisplayErrorContext(&e)))?;
    for _ in 0..100 {
        let described = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|e| aws(&aws_sdk_kinesis::error::DisplayErrorContext(&e)))?;
        if described
            .stream_description_summary()
            .is_some_and(|s| s.stream_status().as_str() == "ACTIVE")
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(BenchError::Aws(format!(
        "stream {stream} never became ACTIVE"
    )))
}

async fn run(cases_path: &str, token: &str) -> Result<(), BenchError> {
    let cases: Vec<Case> = std::io::BufReader::new(std::fs::File::open(cases_path)?)
        .lines()
        .map(|l| Ok(serde_json::from_str(&l?)?))
        .collect::<Result<_, BenchError>>()?;
    let config = aws_config::load_from_env().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let suffix = std::process::id();
    let (table, stream) = (
        format!("cmp-rust-dedup-{suffix}"),
        format!("cmp-rust-events-{suffix}"),
    );
    create_resources(&ddb, &kinesis, &table, &stream).await?;
    let quarantine = std::env::temp_dir().join(format!("cmp-rust-quarantine-{suffix}.jsonl"));
    let ingest = Ingest::new(
        IngestSettings::for_base_url(BASE_URL),
        Verifier::new(SecretSet::new().with_auth_token(token)),
        DynamoDedupStore::new(ddb, table),
        KinesisPublisher::new(kinesis, stream),
        FileQuarantine::new(quarantine.clone()),
        NoMetrics,
    );
    let rss_before = peak_rss_kb();
    let (mut ok, mut accepted_events) = (0usize, 0usize);
    let cpu_before = cpu_ms();
    let started = Instant::now();
    for case in &cases {
        let query = case.url.split_once('?').map(|(_, q)| q);
        let response = ingest
            .handle(IngestRequest {
                route: Route::Events,
                raw_query: query,
                content_type: Some(&case.content_type),
                signature: Some(&case.signature),
                signature_settings: None,
                body: case.body.as_bytes(),
                request_id: "compare",
                deadline: Instant::now() + Duration::from_secs(4),
                public_base_url: None,
                idempotency_token: None,
            })
            .await;
        if response.status == 200 {
            ok += 1;
            accepted_events += usize::from(response.body.contains("\"accepted\":1"));
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_ms().saturating_sub(cpu_before);
    let _ = std::fs::remove_file(quarantine);
    println!(
        "{}",
        serde_json::json!({
            "receiver": "rust-ingest-core",
            "deliveries": cases.len(),
            "ok": ok,
            "new_events": accepted_events,
            "elapsed_s": elapsed.as_secs_f64(),
            "ns_per_delivery": elapsed.as_nanos() as f64 / cases.len().max(1) as f64,
            "cpu_us_per_delivery": cpu as f64 * 1000.0 / cases.len().max(1) as f64,
            "rss_kb_before": rss_before,
            "peak_rss_kb": peak_rss_kb(),
        })
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let token = flag(&args, "--token").unwrap_or_else(|| "compare-token".into());
    let result = match args.first().map(String::as_str) {
        Some("cases") => match (flag(&args, "--out"), flag(&args, "--deliveries")) {
            (Some(out), Some(n)) => match n.parse() {
                Ok(n) => write_cases(&out, n, &token),
                Err(_) => Err(BenchError::Usage),
            },
            _ => Err(BenchError::Usage),
        },
        Some("run") => match flag(&args, "--cases") {
            Some(cases) => run(&cases, &token).await,
            None => Err(BenchError::Usage),
        },
        _ => Err(BenchError::Usage),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
