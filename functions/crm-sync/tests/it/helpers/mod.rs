//! What the integration tests share: the emulators, Kinesis round trips, Lambda's retry
//! semantics, event builders, and a local HTTP CRM that behaves as README.md documents.
#![allow(dead_code)]

pub mod crm_server;
pub mod events;

use std::time::{Duration, Instant};
use twilio_events::stream::{BatchProcessor, StreamRecord};

/// The emulators, as the whole workspace's tests reach them.
#[allow(unused_imports)]
pub use twilio_events_testkit::aws::{
    ddb_local_endpoint as ddb_local, moto_endpoint as moto, sdk_config, unique,
};

pub async fn sdk(endpoint_url: &str) -> aws_config::SdkConfig {
    sdk_config(endpoint_url).await
}

/// A status ledger table on DynamoDB Local, as README.md describes it.
/// A ledger table as template.yaml defines it (with its open index), on DynamoDB Local.
pub async fn ledger_table(client: &aws_sdk_dynamodb::Client) -> String {
    let table = unique("crm-ledger");
    twilio_events_testkit::aws::create_ledger_table(client, &table).await;
    table
}

pub async fn queue(client: &aws_sdk_sqs::Client) -> String {
    client
        .create_queue()
        .queue_name(unique("crm-quarantine"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .unwrap()
}

/// Every message of an SQS queue (moto), parsed as quarantined items.
pub async fn drain_queue(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Vec<twilio_events::quarantine::QuarantinedItem> {
    twilio_events_testkit::aws::drain_queue(client, url)
        .await
        .iter()
        .map(|body| serde_json::from_str(body).expect("a quarantined item"))
        .collect()
}

/// Puts `(partition key, data)` into a new moto stream of `shards` shards, in order, and reads
/// every record back with GetRecords: one vector per shard, in shard order.
pub async fn through_kinesis(records: &[(String, Vec<u8>)], shards: i32) -> Vec<Vec<StreamRecord>> {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::PutRecordsRequestEntry;
    use std::collections::{BTreeMap, HashMap};
    let client = aws_sdk_kinesis::Client::new(&sdk(&moto()).await);
    let stream = unique("crm-stream");
    twilio_events_testkit::aws::create_stream(&client, &stream, shards).await;
    // The shard each partition key went to, as PutRecords reports it.
    let mut shard_of: HashMap<String, String> = HashMap::new();
    for chunk in records.chunks(500) {
        let entries: Vec<PutRecordsRequestEntry> = chunk
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.clone()))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("put records");
        assert_eq!(out.failed_record_count.unwrap_or(0), 0);
        for ((key, _), result) in chunk.iter().zip(out.records()) {
            let shard = result.shard_id().expect("a shard id").to_owned();
            shard_of.insert(key.clone(), shard);
        }
    }
    // read_stream returns the shards one after the other, each in order: group them back.
    let mut by_shard: BTreeMap<String, Vec<StreamRecord>> = BTreeMap::new();
    for (partition_key, data, sequence_number) in
        twilio_events_testkit::aws::read_stream(&client, &stream).await
    {
        by_shard
            .entry(shard_of[&partition_key].clone())
            .or_default()
            .push(StreamRecord {
                sequence_number,
                partition_key,
                data,
                arrived_at: None,
            });
    }
    let all: Vec<Vec<StreamRecord>> = by_shard.into_values().collect();
    client
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .ok();
    assert_eq!(
        all.iter().map(Vec::len).sum::<usize>(),
        records.len(),
        "every record read back"
    );
    all
}

/// What a Lambda event source mapping does with one shard: batches of `batch_size`, each
/// invocation given `timeout`; on failures it restarts from the first failed record.
/// Returns the number of invocations.
pub async fn run_shard(
    processor: &impl BatchProcessor,
    shard: &[StreamRecord],
    batch_size: usize,
    timeout: Duration,
) -> usize {
    let mut position = 0;
    let mut invocations = 0;
    while position < shard.len() {
        invocations += 1;
        assert!(invocations < 10_000, "no progress at record {position}");
        let batch = &shard[position..(position + batch_size).min(shard.len())];
        let started = Instant::now();
        let outcome = processor.process(batch, started + timeout).await;
        assert!(
            started.elapsed() <= timeout,
            "an invocation overran its timeout: {:?}",
            started.elapsed()
        );
        assert!(
            outcome.failed.iter().all(|s| !s.is_empty()),
            "an empty item identifier"
        );
        position += match outcome.first_failure(batch) {
            Some(first) => batch
                .iter()
                .position(|r| r.sequence_number == first.sequence_number)
                .unwrap(),
            None => batch.len(),
        };
    }
    invocations
}
