//! `twilio-events replay`: re-drives a consumer function (crm-sync, quota-alert, or any function
//! that takes Kinesis events) with what the stream holds from a point in time, after a bug fix
//! or for a new CRM. Each shard is read in order from AT_TIMESTAMP and handed to the function in
//! batches shaped as its event source mapping would send them (same record fields, the batch
//! size of the mapping), synchronously. The function's partial batch response is honoured: a
//! shard stops at its first failed record, and the report says where to resume. The consumers
//! are idempotent (crm-sync's ledger only moves forward, quota-alert skips event ids it counted),
//! so a replay into the same CRM changes nothing that was already done.
//!
//! Endpoints come from the environment as for every AWS tool (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL_LAMBDA` for emulators).

use super::duration::{DurationError, parse_point_in_time};
use super::{CliError, Outcome};
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use base64::Engine as _;
use clap::Args;
use serde_json::{Value, json};
use time::OffsetDateTime;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The Kinesis stream (the stack's `StreamName` output).
    #[arg(long, env = "STREAM_NAME", value_name = "NAME")]
    stream: String,
    /// The function to invoke: a name or ARN (the crm-sync or quota-alert function of the stack,
    /// or any function that takes Kinesis events).
    #[arg(long, value_name = "NAME|ARN")]
    function: String,
    /// Replay what arrived from this time on: RFC 3339 (2026-11-30T08:00:00Z) or a duration ago
    /// (24h). Kinesis keeps records for the stream's retention period (template: 24 hours by default).
    #[arg(long, value_name = "TIME", value_parser = parse_point_in_time)]
    since: OffsetDateTime,
    /// Stop at records that arrived after this time (default: what the stream holds now).
    #[arg(long, value_name = "TIME", value_parser = parse_point_in_time)]
    until: Option<OffsetDateTime>,
    /// Records per invocation (the event source mapping's BatchSize; template: 100).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    batch_size: u16,
    /// Count the records that would be replayed; invoke nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, thiserror::Error)]
enum ReplayError {
    #[error("--until is before --since")]
    Window,
    #[error(
        "cannot read the Kinesis stream {stream} (check --stream, AWS_ENDPOINT_URL and the credentials)"
    )]
    Kinesis {
        stream: String,
        #[source]
        source: Box<aws_sdk_kinesis::Error>,
    },
    #[error(
        "cannot invoke {function} (check --function, its permissions and AWS_ENDPOINT_URL_LAMBDA)"
    )]
    Invoke {
        function: String,
        #[source]
        source: Box<aws_sdk_lambda::Error>,
    },
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Time(#[from] DurationError),
}

impl From<ReplayError> for CliError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Window | ReplayError::Time(_) => Self::usage(e),
            _ => Self::failed(e),
        }
    }
}

/// What one shard's replay came to.
#[derive(Debug, Default)]
struct ShardReport {
    shard: String,
    read: u64,
    replayed: u64,
    invocations: u64,
    /// Where the shard stopped: the first record the function failed, and when it arrived.
    stopped_at: Option<(String, Option<String>)>,
}

pub fn run(args: ReplayArgs) -> Result<Outcome, CliError> {
    if args.until.is_some_and(|until| until < args.since) {
        return Err(ReplayError::Window.into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReplayError::Runtime)?;
    let reports = runtime.block_on(replay(&args))?;
    let mut stopped = false;
    for r in &reports {
        let verb = if args.dry_run {
            "would replay"
        } else {
            "replayed"
        };
        println!(
            "{}: {verb} {} of {} record(s) in {} invocation(s)",
            r.shard, r.replayed, r.read, r.invocations
        );
        if let Some((sequence, arrived)) = &r.stopped_at {
            stopped = true;
            println!(
                "  stopped: {} failed record {sequence}{}; fix the cause, then resume with --since {}",
                args.function,
                arrived
                    .as_deref()
                    .map(|a| format!(" (arrived {a})"))
                    .unwrap_or_default(),
                arrived.as_deref().unwrap_or("<its arrival time>")
            );
        }
    }
    Ok(if stopped {
        Outcome::Rejected
    } else {
        Outcome::Ok
    })
}

async fn replay(args: &ReplayArgs) -> Result<Vec<ShardReport>, ReplayError> {
    let config = aws_config::load_from_env().await;
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let kinesis_error = |e: aws_sdk_kinesis::Error| ReplayError::Kinesis {
        stream: args.stream.clone(),
        source: Box::new(e),
    };
    let summary = kinesis
        .describe_stream_summary()
        .stream_name(&args.stream)
        .send()
        .await
        .map_err(|e| kinesis_error(e.into()))?;
    let stream_arn = summary
        .stream_description_summary()
        .map(|d| d.stream_arn().to_owned())
        .unwrap_or_default();
    let region = config.region().map(ToString::to_string).unwrap_or_default();
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let request = match &next_token {
            Some(token) => kinesis.list_shards().next_token(token),
            None => kinesis.list_shards().stream_name(&args.stream),
        };
        let page = request.send().await.map_err(|e| kinesis_error(e.into()))?;
        shards.extend(page.shards().iter().map(|s| s.shard_id().to_owned()));
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    let until = args.until.unwrap_or_else(OffsetDateTime::now_utc);
    let mut reports = Vec::new();
    for shard in shards {
        let mut report = ShardReport {
            shard: shard.clone(),
            ..ShardReport::default()
        };
        let iterator = kinesis
            .get_shard_iterator()
            .stream_name(&args.stream)
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(aws_smithy_types::DateTime::from_secs(
                args.since.unix_timestamp(),
            ))
            .send()
            .await
            .map_err(|e| kinesis_error(e.into()))?;
        let mut iterator = iterator.shard_iterator().map(str::to_owned);
        let mut pending: Vec<Record> = Vec::new();
        let mut done = false;
        while let Some(current) = iterator.take() {
            let page = kinesis
                .get_records()
                .shard_iterator(current)
                .limit(10_000)
                .send()
                .await
                .map_err(|e| kinesis_error(e.into()))?;
            for record in page.records() {
                let arrived = record
                    .approximate_arrival_timestamp()
                    .map(|t| t.secs())
                    .unwrap_or(i64::MIN);
                if arrived > until.unix_timestamp() {
                    done = true;
                    break;
                }
                report.read += 1;
                pending.push(record.clone());
            }
            let caught_up = page.millis_behind_latest().unwrap_or(0) == 0;
            if page.records().is_empty() && caught_up {
                done = true;
            }
            while pending.len() >= usize::from(args.batch_size) || (done && !pending.is_empty()) {
                let take = pending.len().min(usize::from(args.batch_size));
                let batch: Vec<Record> = pending.drain(..take).collect();
                if args.dry_run {
                    report.replayed += batch.len() as u64;
                    report.invocations += 1;
                    continue;
                }
                let failed = invoke(&lambda, args, &batch, &shard, &stream_arn, &region).await?;
                report.invocations += 1;
                match failed {
                    None => report.replayed += batch.len() as u64,
                    Some(position) => {
                        report.replayed += position as u64;
                        let record = &batch[position];
                        report.stopped_at = Some((
                            record.sequence_number().to_owned(),
                            record.approximate_arrival_timestamp().and_then(|t| {
                                OffsetDateTime::from_unix_timestamp(t.secs())
                                    .ok()
                                    .and_then(|t| {
                                        t.format(&time::format_description::well_known::Rfc3339)
                                            .ok()
                                    })
                            }),
                        ));
                        done = true;
                        pending.clear();
                        break;
                    }
                }
                if !args.quiet {
                    eprintln!("{shard}: {} record(s) replayed so far", report.replayed);
                }
            }
            if done {
                break;
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Invokes the function with one batch; the position of the first record it failed, if any.
async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    args: &ReplayArgs,
    batch: &[Record],
    shard: &str,
    stream_arn: &str,
    region: &str,
) -> Result<Option<usize>, ReplayError> {
    let event = kinesis_event(batch, shard, stream_arn, region);
    let answer = lambda
        .invoke()
        .function_name(&args.function)
        .payload(aws_smithy_types::Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|e| ReplayError::Invoke {
            function: args.function.clone(),
            source: Box::new(e.into()),
        })?;
    // A function error (it panicked or returned an error): the whole batch failed.
    if answer.function_error().is_some() {
        return Ok(Some(0));
    }
    let payload: Value = answer
        .payload()
        .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
        .unwrap_or(Value::Null);
    let failed: Vec<&str> = payload["batchItemFailures"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["itemIdentifier"].as_str())
                .collect()
        })
        .unwrap_or_default();
    Ok(batch
        .iter()
        .position(|r| failed.contains(&r.sequence_number())))
}

/// The records as a Kinesis event source mapping hands them to a function.
fn kinesis_event(batch: &[Record], shard: &str, stream_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = batch
        .iter()
        .map(|r| {
            let arrived = r
                .approximate_arrival_timestamp()
                .map(|t| t.as_secs_f64())
                .unwrap_or_default();
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key(),
                    "sequenceNumber": r.sequence_number(),
                    "data": base64::engine::general_purpose::STANDARD.encode(r.data().as_ref()),
                    "approximateArrivalTimestamp": arrived,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{}", r.sequence_number()),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
}
