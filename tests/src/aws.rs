//! The local AWS emulators the test command starts (infra/scripts/services.sh): moto_server for
//! DynamoDB, Kinesis, SQS and SNS; AWS's DynamoDB Local for DynamoDB's exact semantics.
//! Tests fail, never skip, when they are not running.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use std::sync::atomic::{AtomicU32, Ordering};

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: start the emulators with infra/scripts/test.sh (or `eval \"$(infra/scripts/services.sh start)\"`)")
    })
}

/// moto_server's endpoint (`TWILIO_EVENTS_TEST_MOTO`).
pub fn moto_endpoint() -> String {
    endpoint("TWILIO_EVENTS_TEST_MOTO")
}

/// DynamoDB Local's endpoint (`TWILIO_EVENTS_TEST_DDB_LOCAL`).
pub fn ddb_local_endpoint() -> String {
    endpoint("TWILIO_EVENTS_TEST_DDB_LOCAL")
}

/// An SDK configuration for an emulator: fixed region and dummy credentials (DynamoDB Local
/// keeps one database per key and region, so every client must use the same).
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "testkit",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A dedup table as template.yaml defines it: string key `pk`, on demand.
pub async fn create_dedup_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create table {name}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        });
}

/// crm-sync's status ledger as template.yaml defines it: string key `sid`, on demand, and the
/// sparse index `open-by-change` (`open_kind`, `changed_at_ms`) reconcile queries.
pub async fn create_ledger_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let attribute = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("sid", ScalarAttributeType::S))
        .attribute_definitions(attribute("open_kind", ScalarAttributeType::S))
        .attribute_definitions(attribute("changed_at_ms", ScalarAttributeType::N))
        .key_schema(key("sid", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("open-by-change")
                .key_schema(key("open_kind", KeyType::Hash))
                .key_schema(key("changed_at_ms", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("status")
                        .non_key_attributes("rank")
                        .non_key_attributes("event_id")
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create table {name}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        });
}

/// A stream with `shards` shards, once ACTIVE.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create stream {name}: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(e)
            )
        });
    for _ in 0..100 {
        let description = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap();
        if description
            .stream_description_summary()
            .map(|d| d.stream_status())
            == Some(&StreamStatus::Active)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("stream {name} never became active");
}

/// Every record of the stream as (partition key, data, sequence number), shard by shard in order.
pub async fn read_stream(
    client: &aws_sdk_kinesis::Client,
    name: &str,
) -> Vec<(String, Vec<u8>, String)> {
    let shards = client.list_shards().stream_name(name).send().await.unwrap();
    let mut records = Vec::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        while let Some(it) = iterator {
            let page = client
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                records.push((
                    r.partition_key().to_owned(),
                    r.data().as_ref().to_vec(),
                    r.sequence_number().to_owned(),
                ));
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
    records
}

/// An SQS queue; returns its URL.
pub async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap_or_default()
        .to_owned()
}

/// Every message body waiting in a queue.
pub async fn drain_queue(client: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let page = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if page.messages().is_empty() {
            return bodies;
        }
        for message in page.messages() {
            bodies.extend(message.body().map(str::to_owned));
            if let Some(handle) = message.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}
