//! Our side of infra/bench/compare_receiver.sh: the ingest core (`ingest::Ingest`) on its real
//! AWS adapters (DynamoDB conditional-put dedup, Kinesis) against the emulator at
//! AWS_ENDPOINT_URL, handling the same signed deliveries as the hand-written Python receiver
//! (infra/bench/reference_receiver.py), one at a time as a Lambda instance does.
//!
//!     # write N signed deliveries (JSON lines) that both receivers then handle
//!     ingest_core cases --out cases.jsonl --deliveries 2000 --token T
//!     # handle them; prints {"deliveries", "ok", "ns_per_delivery", "peak_rss_kb", ...}
//!     ingest_core run --cases cases.jsonl --token T [--runtime current|multi] [--sdk lean|stock]
//!
//! As the Lambda does, it writes its JSON logs and one EMF metrics line per request to stdout
//! (send them to /dev/null: their formatting and write are part of what is measured); the
//! result is the last line, prefixed `RESULT `.

use ingest::adapters::dynamodb::DynamoDedupStore;
use ingest::adapters::kinesis::KinesisPublisher;
use ingest::{Ingest, IngestRequest, IngestSettings, Route};
use std::io::Write;
use std::time::{Duration, Instant};
use twilio_events::metrics::StdoutSink;
use twilio_events::quarantine::FileQuarantine;
use twilio_events::signature::{BodyEncoding, SecretSet, SigningKey, Verifier, sign};

#[path = "bench_support/mod.rs"]
mod bench_support;

use bench_support::{BASE_URL, BenchError, Case, cpu_us, flag, peak_rss_kb};

const USAGE: &str = "ingest_core cases --out FILE --deliveries N --token T \
                     | run --cases FILE --token T [--runtime current|multi] [--sdk lean|stock]";

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

async fn run(args: &[String], cases_path: &str, token: &str) -> Result<(), BenchError> {
    let cases = bench_support::read_cases(cases_path)?;
    let clients = bench_support::clients(args).await?;
    let suffix = std::process::id();
    let (table, stream) = (
        format!("cmp-rust-dedup-{suffix}"),
        format!("cmp-rust-events-{suffix}"),
    );
    bench_support::create_resources(&clients.dynamodb, &clients.kinesis, &table, &stream).await?;
    let quarantine = std::env::temp_dir().join(format!("cmp-rust-quarantine-{suffix}.jsonl"));
    // What the Lambda writes per request: JSON logs and an EMF line (StdoutSink), to stdout.
    twilio_events::logging::init_json_logs();
    let ingest = Ingest::new(
        IngestSettings::for_base_url(BASE_URL),
        Verifier::new(SecretSet::new().with_auth_token(token)),
        DynamoDedupStore::new(clients.dynamodb, table),
        KinesisPublisher::new(clients.kinesis, stream),
        FileQuarantine::new(quarantine.clone()),
        StdoutSink,
    );
    let rss_before = peak_rss_kb();
    let (mut ok, mut accepted_events) = (0usize, 0usize);
    let cpu_before = cpu_us();
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
    let cpu = cpu_us().saturating_sub(cpu_before);
    let _ = std::fs::remove_file(quarantine);
    println!(
        "RESULT {}",
        serde_json::json!({
            "receiver": "rust-ingest",
            "runtime": flag(args, "--runtime").unwrap_or_else(|| "current".into()),
            "sdk": flag(args, "--sdk").unwrap_or_else(|| "lean".into()),
            "deliveries": cases.len(),
            "ok": ok,
            "new_events": accepted_events,
            "elapsed_s": elapsed.as_secs_f64(),
            "ns_per_delivery": elapsed.as_nanos() as f64 / cases.len().max(1) as f64,
            "cpu_us_per_delivery": cpu as f64 / cases.len().max(1) as f64,
            "rss_kb_before": rss_before,
            "peak_rss_kb": peak_rss_kb(),
        })
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let token = flag(&args, "--token").unwrap_or_else(|| "compare-token".into());
    let result = match args.first().map(String::as_str) {
        Some("cases") => match (flag(&args, "--out"), flag(&args, "--deliveries")) {
            (Some(out), Some(n)) => match n.parse() {
                Ok(n) => write_cases(&out, n, &token),
                Err(_) => Err(BenchError::Usage(USAGE)),
            },
            _ => Err(BenchError::Usage(USAGE)),
        },
        Some("run") => match flag(&args, "--cases") {
            Some(cases) => {
                bench_support::runtime(&args).and_then(|rt| rt.block_on(run(&args, &cases, &token)))
            }
            None => Err(BenchError::Usage(USAGE)),
        },
        _ => Err(BenchError::Usage(USAGE)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
