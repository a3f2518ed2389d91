//! Local AWS (moto_server) for the integration tests: clients, unique resources, SNS→SQS.

use quota_alert::Alert;
use twilio_events::stream::StreamRecord;
use twilio_events_testkit::aws::{
    create_queue, create_stream, ddb_local_endpoint, drain_queue, moto_endpoint, read_stream,
    sdk_config,
};

/// A name no other test uses.
pub use twilio_events_testkit::aws::unique;

pub async fn aws() -> aws_config::SdkConfig {
    sdk_config(&moto_endpoint()).await
}

/// A DynamoDB client for DynamoDB Local.
pub async fn dynamodb_local() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(&ddb_local_endpoint()).await)
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
        let queue_url = create_queue(&sqs, name).await;
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

    /// Every alert delivered since the last drain (each SQS message is an SNS notification
    /// whose `Message` is the alert's JSON), with the notification's subject.
    pub async fn drain(&self) -> Vec<(Alert, String)> {
        drain_queue(&self.sqs, &self.queue_url)
            .await
            .iter()
            .map(|body| {
                let envelope: serde_json::Value = serde_json::from_str(body).expect("SNS envelope");
                let alert: Alert = serde_json::from_str(
                    envelope["Message"].as_str().expect("Message is a string"),
                )
                .expect("the message is an alert");
                let subject = envelope["Subject"].as_str().unwrap_or_default().to_owned();
                (alert, subject)
            })
            .collect()
    }
}

/// A one-shard Kinesis stream holding `events`, read back with GetRecords (the testkit's
/// reader; every fixture event carries its own `time`, so arrival times are not needed).
pub async fn through_kinesis(aws: &aws_config::SdkConfig, events: &[String]) -> Vec<StreamRecord> {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::PutRecordsRequestEntry;
    let kinesis = aws_sdk_kinesis::Client::new(aws);
    let stream = unique("stream");
    create_stream(&kinesis, &stream, 1).await;
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
    let records: Vec<StreamRecord> = read_stream(&kinesis, &stream)
        .await
        .into_iter()
        .map(|(partition_key, data, sequence_number)| StreamRecord {
            sequence_number,
            partition_key,
            data,
            arrived_at: None,
        })
        .collect();
    assert_eq!(records.len(), events.len(), "every record read back");
    records
}
