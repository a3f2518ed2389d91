//! The SDK floor of infra/bench/compare_receiver.sh: the three AWS SDK calls ingest makes per
//! new event (the conditional PutItem claim, PutRecords, the BatchWriteItem that marks the
//! claim COMPLETED), in a bare loop over the same deliveries, on the same runtime and with the
//! same client set-up as the functions, and nothing else: no signature check, no parsing in
//! the loop (each case's key and record are taken out of its body beforehand), no logs, no
//! metrics. The requests have ingest's shapes (same attributes, same condition), so ingest's
//! CPU over this floor is what ingest adds to the SDK.
//!
//!     sdk_floor --cases cases.jsonl [--runtime current|multi] [--sdk lean|stock] [--per-call N]
//!
//! Prints `RESULT {json}`: the loop's CPU and wall per delivery and peak RSS; with
//! `--per-call N` (default 1000) also each call alone, N times on fresh keys:
//! `cpu_us_per_call.{put_item_claim, put_records, batch_write_complete}`.

#[path = "bench_support/mod.rs"]
mod bench_support;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bench_support::{BenchError, Clients, cpu_us, flag, peak_rss_kb};
use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str =
    "sdk_floor --cases FILE [--runtime current|multi] [--sdk lean|stock] [--per-call N]";

/// What the loop sends for one delivery, prepared beforehand.
struct Prepared {
    key: String,
    data: Vec<u8>,
    partition_key: String,
}

fn prepare(cases: &[bench_support::Case]) -> Result<Vec<Prepared>, BenchError> {
    cases
        .iter()
        .map(|case| {
            let events: Vec<serde_json::Value> = serde_json::from_str(&case.body)?;
            let event = events.first().ok_or(BenchError::Usage(USAGE))?;
            let text = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            Ok(Prepared {
                key: format!("AC0a1b2c3d4e5f60718293a4b5c6d7e8f9#{}", text("id")),
                data: serde_json::to_vec(event)?,
                partition_key: event["data"]["messageSid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            })
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The claim, as ingest's DynamoDB adapter sends it. `Ok(true)`: claimed; `Ok(false)`: taken.
async fn claim(c: &Clients, table: &str, key: &str) -> Result<bool, BenchError> {
    let now = now_ms();
    let result = c
        .dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(key.to_owned()))
        .item("status", AttributeValue::S("INPROGRESS".into()))
        .item("claim_token", AttributeValue::S(format!("{now:x}")))
        .item("lease_until", AttributeValue::N((now + 30_000).to_string()))
        .item("expires_at", AttributeValue::N((now / 1000 + 604_800).to_string()))
        .condition_expression("attribute_not_exists(pk) OR expires_at <= :now_s OR (#status = :in_progress AND lease_until <= :now_ms)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":now_s", AttributeValue::N((now / 1000).to_string()))
        .expression_attribute_values(":now_ms", AttributeValue::N(now.to_string()))
        .expression_attribute_values(":in_progress", AttributeValue::S("INPROGRESS".into()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(PutItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(BenchError::Aws(
            aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
        )),
    }
}

async fn publish(c: &Clients, stream: &str, p: &Prepared) -> Result<(), BenchError> {
    let entry = PutRecordsRequestEntry::builder()
        .data(Blob::new(p.data.as_slice()))
        .partition_key(&p.partition_key)
        .build()
        .map_err(|e| BenchError::Aws(e.to_string()))?;
    c.kinesis
        .put_records()
        .stream_name(stream)
        .records(entry)
        .send()
        .await
        .map_err(|e| {
            BenchError::Aws(aws_sdk_kinesis::error::DisplayErrorContext(&e).to_string())
        })?;
    Ok(())
}

async fn complete(c: &Clients, table: &str, key: &str) -> Result<(), BenchError> {
    let item = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.to_owned())),
        ("status".to_owned(), AttributeValue::S("COMPLETED".into())),
        (
            "expires_at".to_owned(),
            AttributeValue::N((now_ms() / 1000 + 604_800).to_string()),
        ),
    ]);
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| BenchError::Aws(e.to_string()))?;
    c.dynamodb
        .batch_write_item()
        .request_items(
            table,
            vec![WriteRequest::builder().put_request(put).build()],
        )
        .send()
        .await
        .map_err(|e| {
            BenchError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
        })?;
    Ok(())
}

async fn run(args: &[String], cases_path: &str) -> Result<(), BenchError> {
    let cases = bench_support::read_cases(cases_path)?;
    let prepared = prepare(&cases)?;
    drop(cases);
    let clients = bench_support::clients(args).await?;
    let suffix = std::process::id();
    let (table, stream) = (
        format!("cmp-floor-dedup-{suffix}"),
        format!("cmp-floor-events-{suffix}"),
    );
    bench_support::create_resources(&clients.dynamodb, &clients.kinesis, &table, &stream).await?;

    let rss_before = peak_rss_kb();
    let mut new_events = 0usize;
    let cpu_before = cpu_us();
    let started = Instant::now();
    for p in &prepared {
        if claim(&clients, &table, &p.key).await? {
            publish(&clients, &stream, p).await?;
            complete(&clients, &table, &p.key).await?;
            new_events += 1;
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_us().saturating_sub(cpu_before);
    let n = prepared.len().max(1) as f64;

    // Each call alone, on keys no delivery used.
    let per_call: usize = match flag(args, "--per-call") {
        Some(v) => v.parse().map_err(|_| BenchError::Usage(USAGE))?,
        None => 1000,
    };
    let mut per_call_us = serde_json::Map::new();
    if per_call > 0 {
        let keys: Vec<String> = (0..per_call)
            .map(|i| format!("floor#{suffix}#{i}"))
            .collect();
        let sample = &prepared[0];
        let t = cpu_us();
        for key in &keys {
            claim(&clients, &table, key).await?;
        }
        let claim_cpu = cpu_us() - t;
        let t = cpu_us();
        for _ in &keys {
            publish(&clients, &stream, sample).await?;
        }
        let publish_cpu = cpu_us() - t;
        let t = cpu_us();
        for key in &keys {
            complete(&clients, &table, key).await?;
        }
        let complete_cpu = cpu_us() - t;
        let per = |total: u64| {
            serde_json::json!(((total as f64 / per_call as f64) * 10.0).round() / 10.0)
        };
        per_call_us.insert("put_item_claim".into(), per(claim_cpu));
        per_call_us.insert("put_records".into(), per(publish_cpu));
        per_call_us.insert("batch_write_complete".into(), per(complete_cpu));
    }
    println!(
        "RESULT {}",
        serde_json::json!({
            "receiver": "rust-sdk-floor",
            "runtime": flag(args, "--runtime").unwrap_or_else(|| "current".into()),
            "sdk": flag(args, "--sdk").unwrap_or_else(|| "lean".into()),
            "deliveries": prepared.len(),
            "ok": prepared.len(),
            "new_events": new_events,
            "elapsed_s": elapsed.as_secs_f64(),
            "ns_per_delivery": elapsed.as_nanos() as f64 / n,
            "cpu_us_per_delivery": cpu as f64 / n,
            "cpu_us_per_call": per_call_us,
            "rss_kb_before": rss_before,
            "peak_rss_kb": peak_rss_kb(),
        })
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match flag(&args, "--cases") {
        Some(cases) => bench_support::runtime(&args).and_then(|rt| rt.block_on(run(&args, &cases))),
        None => Err(BenchError::Usage(USAGE)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
