//! What the receiver benchmarks in this folder share (infra/bench/compare_receiver.sh): the
//! signed cases, the emulator's table and stream, the process's CPU time and peak RSS, and the
//! runtime and SDK set-ups being compared.

#![allow(dead_code)] // each example uses its own part

use std::time::Duration;

pub const BASE_URL: &str = "https://hooks.example.com";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{0}: check the path")]
    Io(#[from] std::io::Error),
    #[error("bad case line: {0}")]
    Json(#[from] serde_json::Error),
    #[error("AWS emulator: {0} (is AWS_ENDPOINT_URL set to a running moto server?)")]
    Aws(String),
}

/// One signed delivery, as both receivers read it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Case {
    /// The full URL Twilio signed (with bodySHA256 for JSON).
    pub url: String,
    pub content_type: String,
    pub signature: String,
    pub body: String,
}

pub fn read_cases(path: &str) -> Result<Vec<Case>, BenchError> {
    use std::io::BufRead;
    std::io::BufReader::new(std::fs::File::open(path)?)
        .lines()
        .map(|l| Ok(serde_json::from_str(&l?)?))
        .collect()
}

pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system, every thread) of this process in µs, from /proc/self/stat (clock
/// ticks of 10 ms: runs of a few thousand deliveries keep the rounding near 1%).
pub fn cpu_us() -> u64 {
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
    ticks * 10_000
}

pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The tokio runtime a receiver runs on: `current` (one thread, as the Lambda mains now run)
/// or `multi` (tokio's default multi-thread runtime, as they ran before).
pub fn runtime(args: &[String]) -> Result<tokio::runtime::Runtime, BenchError> {
    let flavour = flag(args, "--runtime").unwrap_or_else(|| "current".into());
    let mut builder = match flavour.as_str() {
        "current" => tokio::runtime::Builder::new_current_thread(),
        "multi" => tokio::runtime::Builder::new_multi_thread(),
        _ => return Err(BenchError::Usage("--runtime current|multi")),
    };
    Ok(builder.enable_all().build()?)
}

/// The SDK clients a receiver uses: `lean` (the functions' own set-up:
/// `ingest::startup::{sdk_config, dynamodb_client, kinesis_client}`) or `stock`
/// (`aws_config::load_from_env` and `Client::new`, as before).
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kinesis: aws_sdk_kinesis::Client,
}

pub async fn clients(args: &[String]) -> Result<Clients, BenchError> {
    match flag(args, "--sdk").as_deref().unwrap_or("lean") {
        "stock" => {
            let sdk = aws_config::load_from_env().await;
            Ok(Clients {
                dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
                kinesis: aws_sdk_kinesis::Client::new(&sdk),
            })
        }
        "lean" => {
            let sdk = ingest::startup::sdk_config().await;
            Ok(Clients {
                dynamodb: ingest::startup::dynamodb_client(&sdk),
                kinesis: ingest::startup::kinesis_client(&sdk),
            })
        }
        _ => Err(BenchError::Usage("--sdk lean|stock")),
    }
}

/// A dedup table (string key `pk`) and a one-shard stream, created for this run.
pub async fn create_resources(
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
