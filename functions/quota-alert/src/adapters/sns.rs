//! The SNS adapter: one message per alert, its JSON as the body, with `quota`, `threshold` and
//! `window` as message attributes so that subscriptions can filter (e.g. 100% to on-call only).

use crate::alert::Alert;
use crate::ports::{AlertPublishError, AlertPublisher};
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

#[derive(Clone, Debug)]
pub struct SnsAlertPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsAlertPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

fn attribute(
    data_type: &str,
    value: String,
    quota: &str,
) -> Result<MessageAttributeValue, AlertPublishError> {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .map_err(|e| AlertPublishError::new(quota, e))
}

impl AlertPublisher for SnsAlertPublisher {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertPublishError> {
        let body =
            serde_json::to_string(alert).map_err(|e| AlertPublishError::new(&alert.quota, e))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(alert.subject())
            .message(body)
            .message_attributes(
                "quota",
                attribute("String", alert.quota.clone(), &alert.quota)?,
            )
            .message_attributes(
                "threshold",
                attribute("Number", alert.threshold.to_string(), &alert.quota)?,
            )
            .message_attributes(
                "window",
                attribute("String", alert.window.clone(), &alert.quota)?,
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AlertPublishError::new(&alert.quota, e))
    }
}
