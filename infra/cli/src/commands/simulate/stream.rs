//! Reading back what reached the stream: the local store of `serve`, or a Kinesis stream.
//! Returns how many times each of our facts appears (`<account>#<dedup identity>`, as ingest
//! deduplicates: an event's id, or the status it reports).

use ingest::adapters::sqlite::SqliteError;
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StreamReadError {
    #[error(
        "cannot read the local stream in {dir}: no twilio-events.db there (is it the --data-dir `serve` uses?)"
    )]
    NoLocalStream { dir: String },
    #[error("cannot read the local stream in {dir} (is it the --data-dir `serve` uses?)")]
    Local {
        dir: String,
        #[source]
        source: SqliteError,
    },
    #[error("cannot read the local stream in {dir}: bad sequence number {value}")]
    Sequence { dir: String, value: String },
    #[error(
        "cannot read the Kinesis stream {stream} (check the name, AWS_ENDPOINT_URL and the credentials)"
    )]
    Kinesis {
        stream: String,
        #[source]
        source: Box<aws_sdk_kinesis::Error>,
    },
}

/// The fact a stored event reports (the stream holds each event's JSON as received).
fn event_fact(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let event = twilio_events::event::CloudEvent::parse(text).ok()?;
    Some(event.dedup_key())
}

fn count(counts: &mut HashMap<String, u32>, ours: &HashSet<&str>, data: &[u8]) {
    if let Some(fact) = event_fact(data) {
        if ours.contains(fact.as_str()) {
            *counts.entry(fact).or_default() += 1;
        }
    }
}

/// Occurrences of our facts in the local stream under `dir`.
pub fn read_local(
    dir: &Path,
    ours: &HashSet<&str>,
) -> Result<HashMap<String, u32>, StreamReadError> {
    let shown = || dir.display().to_string();
    let error = |source| StreamReadError::Local {
        dir: shown(),
        source,
    };
    if !ingest::adapters::sqlite::database_path(dir).exists() {
        return Err(StreamReadError::NoLocalStream { dir: shown() });
    }
    let store = ingest::adapters::sqlite::SqliteStore::open(dir).map_err(error)?;
    let mut counts = HashMap::new();
    let mut after = 0i64;
    loop {
        let batch = store.read_after(after, 5_000).map_err(error)?;
        let Some(last) = batch.last() else { break };
        after = last
            .sequence_number
            .parse()
            .map_err(|_| StreamReadError::Sequence {
                dir: shown(),
                value: last.sequence_number.clone(),
            })?;
        for record in &batch {
            count(&mut counts, ours, &record.data);
        }
    }
    Ok(counts)
}

/// Occurrences of our facts in every shard of a Kinesis stream, from its start.
pub async fn read_kinesis(
    stream: &str,
    ours: &HashSet<&str>,
) -> Result<HashMap<String, u32>, StreamReadError> {
    let error = |source: aws_sdk_kinesis::Error| StreamReadError::Kinesis {
        stream: stream.to_owned(),
        source: Box::new(source),
    };
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_kinesis::Client::new(&config);
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| error(e.into()))?;
    let mut counts = HashMap::new();
    for shard in shards.shards() {
        let iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| error(e.into()))?;
        let mut next = iterator.shard_iterator().map(str::to_owned);
        let mut empty_reads = 0;
        while let Some(it) = next {
            let page = client
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .map_err(|e| error(e.into()))?;
            for record in page.records() {
                count(&mut counts, ours, record.data().as_ref());
            }
            let caught_up = page.millis_behind_latest().unwrap_or(0) == 0;
            if page.records().is_empty() {
                empty_reads += 1;
                if caught_up || empty_reads > 20 {
                    break;
                }
            }
            next = page.next_shard_iterator().map(str::to_owned);
        }
    }
    Ok(counts)
}
