//! The Kinesis stream the core publishes to.

use crate::ports::{EntryError, EventPublisher, OutgoingRecord, StreamPublishError};
use aws_sdk_kinesis::error::{BuildError, DisplayErrorContext, SdkError};
use aws_sdk_kinesis::operation::put_records::PutRecordsError;

/// A Kinesis call that failed, with the SDK's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    #[error("Kinesis PutRecords on stream {stream}: {}", DisplayErrorContext(.source))]
    Put {
        stream: String,
        #[source]
        source: Box<SdkError<PutRecordsError>>,
    },
    #[error("cannot build a Kinesis record: {0}")]
    Record(#[source] BuildError),
}

/// The Kinesis stream, by name.
#[derive(Clone, Debug)]
pub struct KinesisPublisher {
    client: aws_sdk_kinesis::Client,
    stream_name: String,
}

impl KinesisPublisher {
    pub fn new(client: aws_sdk_kinesis::Client, stream_name: impl Into<String>) -> Self {
        Self {
            client,
            stream_name: stream_name.into(),
        }
    }
}

impl EventPublisher for KinesisPublisher {
    async fn put_records(
        &self,
        records: &[OutgoingRecord<'_>],
    ) -> Result<Vec<Result<(), EntryError>>, StreamPublishError> {
        let entries = records
            .iter()
            .map(|r| {
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .data(aws_sdk_kinesis::primitives::Blob::new(r.data))
                    .partition_key(r.partition_key)
                    .build()
                    .map_err(|e| StreamPublishError::new(KinesisError::Record(e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .put_records()
            .stream_name(&self.stream_name)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|source| {
                StreamPublishError::new(KinesisError::Put {
                    stream: self.stream_name.clone(),
                    source: Box::new(source),
                })
            })?;
        Ok(output
            .records()
            .iter()
            .map(|entry| match entry.error_code() {
                None => Ok(()),
                Some(code) => Err(EntryError::from_code(
                    code,
                    entry.error_message().unwrap_or(""),
                )),
            })
            .collect())
    }
}
