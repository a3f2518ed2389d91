//! The stream between ingest and its consumers, as the consumers see it: records in shard order,
//! processed in batches, failures reported by sequence number so that the source (a Kinesis
//! event source mapping, or `twilio-events serve`'s local stream) retries from the first one.
//!
//! Each record's data is one CloudEvent JSON, byte for byte as Twilio sent it; its partition key
//! is the event's resource key (MessageSid, CallSid, …), so one resource's events keep their order.

use std::future::Future;
use time::OffsetDateTime;

/// One record of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// Opaque and unique within a shard; never compared numerically (emulators use small integers).
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    /// When the stream accepted the record.
    pub arrived_at: Option<OffsetDateTime>,
}

/// What a consumer made of a batch: the sequence numbers to retry. Everything else, including
/// records set aside in a quarantine, counts as done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub failed: Vec<String>,
}

impl BatchOutcome {
    pub fn all_done() -> Self {
        Self::default()
    }

    /// The earliest failed record in batch order, where the source restarts.
    pub fn first_failure<'r>(&self, batch: &'r [StreamRecord]) -> Option<&'r StreamRecord> {
        batch
            .iter()
            .find(|r| self.failed.contains(&r.sequence_number))
    }
}

/// A stream consumer: crm-sync, quota-alert.
pub trait BatchProcessor: Send + Sync {
    /// Processes `records` (one shard's, in order) and must finish before `deadline`.
    fn process(
        &self,
        records: &[StreamRecord],
        deadline: std::time::Instant,
    ) -> impl Future<Output = BatchOutcome> + Send;
}
