//! Local AWS (moto_server) for the integration tests: clients, unique resources, SNS→SQS.
#![allow(dead_code)]

use quota_alert::Alert;
use twilio_events::stream::StreamRecord;

/// The emulators, as the whole workspace's tests reach them.
#[allow(unused_imports)]
pub use twilio_events_testkit::aws::{
    ddb_local_endpoint as dynamodb_local_endpoint, moto_endpoint, sdk_config, unique,
};

pub async fn aws() -> aws_config::SdkConfig {
    sdk_config(&moto_endpoint()).await
}

/// A DynamoDB client for DynamoDB Local.
pub async fn dynamodb_local() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(&dynamodb_local_endpoint()).await)
}

/// An SNS topic delivering to an SQS queue, to read the alerts back.
pub struct AlertInbox {
    pub topic_arn: String,
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl AlertInbox {
    pub async fn new(aws: &aws_config::SdkConfig, name: &str) -> Self {
        let sns = aws_sdk_sns::Client::new(aws);
        let sqs = aws_sdk_sqs::Client::new(aws);
        let topic_arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("create topic")
            .topic_arn()
            .expect("topic arn")
            .to_owned();
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn")
            .clone();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe");
        Self {
            topic_arn,
            queue_url,
            sqs,
        }
    }

    /// Every alert delivered so far (each SQS message is an SNS notification whose
    /// `Message` is the alert's JSON), with the notification's subject.
    pub async fn drain(&self) -> Vec<(Alert, String)> {
        let mut alerts = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .expect("receive");
            let messages = out.messages();
            if messages.is_empty() {
                return alerts;
            }
            for m in messages {
                let envelope: serde_json::Value =
                    serde_json::from_str(m.body().expect("body")).expect("SNS envelope");
                let alert: Alert = serde_json::from_str(
                    envelope["Message"].as_str().expect("Message is a string"),
                )
                .expect("the message is an alert");
                let subject = envelope["Subject"].as_str().unwrap_or_default().to_owned();
                alerts.push((alert, subject));
            }
        }
    }
}

/// A one-shard Kinesis stream holding `events`, read back with GetRecords.
pub async fn through_kinesis(aws: &aws_config::SdkConfig, events: &[String]) -> Vec<StreamRecord> {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
    let kinesis = aws_sdk_kinesis::Client::new(aws);
    let stream = unique("stream");
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(1)
        .send()
        .await
        .expect("create stream");
    for chunk in events.chunks(500) {
        let entries: Vec<PutRecordsRequestEntry> = chunk
            .iter()
            .map(|e| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(e.as_bytes()))
                    .partition_key("k")
                    .build()
                    .expect("entry")
            })
            .collect();
        let out = kinesis
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("put records");
        assert_eq!(out.failed_record_count(), Some(0));
    }
    let shard = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("list shards")
        .shards()[0]
        .shard_id()
        .to_owned();
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(&stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("shard iterator")
        .shard_iterator()
        .map(str::to_owned);
    let mut records = Vec::new();
    while let Some(it) = iterator.take() {
        let out = kinesis
            .get_records()
            .shard_iterator(it)
            .limit(1000)
            .send()
            .await
            .expect("get records");
        for r in out.records() {
            records.push(StreamRecord {
                sequence_number: r.sequence_number().to_owned(),
                partition_key: r.partition_key().to_owned(),
                data: r.data().as_ref().to_vec(),
                arrived_at: r
                    .approximate_arrival_timestamp()
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
            });
        }
        if records.len() >= events.len() || out.records().is_empty() {
            break;
        }
        iterator = out.next_shard_iterator().map(str::to_owned);
    }
    assert_eq!(records.len(), events.len(), "every record read back");
    records
}
