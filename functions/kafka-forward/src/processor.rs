//! The batch processor: every record of a batch made a message and produced in stream order,
//! acknowledgements awaited until shortly before the deadline, failures reported by sequence
//! number, records that are not CloudEvents set aside in the quarantine.

use crate::SERVICE;
use crate::ports::{Delivered, ProduceError, Topic, TopicMessage, outcome, produced_again};
use std::time::{Duration, Instant};
use twilio_events::metrics::{Metrics, MetricsSink};
use twilio_events::quarantine::{Quarantine, QuarantineError, QuarantinedItem};
use twilio_events::stream::{BatchOutcome, BatchProcessor, StreamRecord};

/// Metric names (EMF, namespace `TwilioEvents`, dimension `Service=kafka-forward`).
pub mod metric {
    /// Messages the topic acknowledged.
    pub const FORWARDED: &str = "Forwarded";
    /// Messages refused or not acknowledged in time: reported back, so retried.
    pub const PRODUCE_FAILURES: &str = "ProduceFailures";
    /// Records set aside: not CloudEvents, or rejected by the topic for good.
    pub const QUARANTINED: &str = "Quarantined";
}

/// A field of the metrics log line, not a CloudWatch metric (nothing alarms on it): acknowledged
/// messages after a batch's first failure, which the retry produces again.
pub const PRODUCED_AGAIN: &str = "ProducedAgain";

/// Tuning.
#[derive(Clone, Debug)]
pub struct ForwardSettings {
    /// Kept free before the deadline to answer the runtime.
    pub safety_margin: Duration,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        Self {
            safety_margin: Duration::from_millis(500),
        }
    }
}

/// The forwarder.
#[derive(Debug)]
pub struct KafkaForward<T, Q, M> {
    pub topic: T,
    pub quarantine: Q,
    pub metrics: M,
    pub settings: ForwardSettings,
}

/// Why a record is reported back to the stream.
#[derive(Debug, thiserror::Error)]
enum NotForwarded {
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error("not a CloudEvent and could not be quarantined: {0}")]
    Quarantine(#[from] QuarantineError),
}

impl<T: Topic, Q: Quarantine, M: MetricsSink> KafkaForward<T, Q, M> {
    pub fn new(topic: T, quarantine: Q, metrics: M) -> Self {
        Self {
            topic,
            quarantine,
            metrics,
            settings: ForwardSettings::default(),
        }
    }

    async fn set_aside(
        &self,
        record: &StreamRecord,
        reason: &str,
        why: String,
    ) -> Result<(), QuarantineError> {
        let item = QuarantinedItem::new(SERVICE, reason, why, &record.data)
            .with_content_type(Some("application/cloudevents+json"))
            .with_reference(format!(
                "partition-key={} sequence-number={}",
                record.partition_key, record.sequence_number
            ));
        self.quarantine.put(item).await
    }
}

impl<T: Topic, Q: Quarantine, M: MetricsSink> BatchProcessor for KafkaForward<T, Q, M> {
    async fn process(&self, records: &[StreamRecord], deadline: Instant) -> BatchOutcome {
        let now = Instant::now();
        let stop = deadline
            .checked_sub(self.settings.safety_margin)
            .unwrap_or(now)
            .max(now);
        let mut metrics = Metrics::new(SERVICE);
        let mut results: Vec<(usize, Result<Delivered, NotForwarded>)> = Vec::new();
        let mut messages = Vec::with_capacity(records.len());
        let mut positions = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            match TopicMessage::from_record(record) {
                Ok(message) => {
                    messages.push(message);
                    positions.push(index);
                }
                // Ingest writes only CloudEvents, so this is another writer's record or a
                // corrupted one: kept for an operator, not retried for ever.
                Err(why) => match self
                    .set_aside(record, "malformed-record", why.to_string())
                    .await
                {
                    Ok(()) => metrics.count(metric::QUARANTINED, 1),
                    Err(error) => {
                        tracing::error!(sequence_number = %record.sequence_number, %error, "could not quarantine; the record will be retried");
                        results.push((index, Err(error.into())));
                    }
                },
            }
        }
        let produced = self.topic.produce(&messages, stop).await;
        for (index, result) in positions.into_iter().zip(produced) {
            let record = &records[index];
            let result = match result {
                Ok(delivered) => Ok(delivered),
                // Retrying cannot help this one: kept for an operator, the shard moves on.
                Err(ProduceError::Rejected(why)) => {
                    tracing::warn!(sequence_number = %record.sequence_number, error = %why, "rejected by the topic; quarantined");
                    match self
                        .set_aside(record, "kafka-rejected", why.to_string())
                        .await
                    {
                        Ok(()) => {
                            metrics.count(metric::QUARANTINED, 1);
                            continue;
                        }
                        Err(error) => Err(NotForwarded::Quarantine(error)),
                    }
                }
                Err(error) => {
                    tracing::warn!(sequence_number = %record.sequence_number, partition_key = %record.partition_key, %error, "not forwarded; retried from this record");
                    Err(NotForwarded::Produce(error))
                }
            };
            results.push((index, result));
        }
        let outcome = outcome(records, &results);
        let failures = results
            .iter()
            .filter(|(_, r)| matches!(r, Err(NotForwarded::Produce(_))))
            .count();
        metrics.count(
            metric::FORWARDED,
            results.iter().filter(|(_, r)| r.is_ok()).count(),
        );
        metrics.count(metric::PRODUCE_FAILURES, failures);
        metrics.tally(PRODUCED_AGAIN, produced_again(&results));
        self.metrics.publish(&metrics);
        outcome
    }
}
