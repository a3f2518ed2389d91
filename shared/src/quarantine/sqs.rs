use super::{Quarantine, QuarantineError, QuarantinedItem};

/// An SQS queue; each item is one message whose body is the item's JSON, with the reason
/// and source as message attributes for filtering.
#[derive(Clone, Debug)]
pub struct SqsQuarantine {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQuarantine {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

fn attribute(value: &str) -> aws_sdk_sqs::types::MessageAttributeValue {
    aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap_or_else(|_| unreachable!("data_type is set"))
}

impl Quarantine for SqsQuarantine {
    async fn put(&self, item: QuarantinedItem) -> Result<(), QuarantineError> {
        let body = serde_json::to_string(&item).map_err(|e| QuarantineError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("source", attribute(&item.source))
            .message_attributes("reason", attribute(&item.reason))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QuarantineError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))
    }
}
