//! ingest's core as the [`EventStore`] port: reconciled events take the path a delivery's
//! events take ([`ingest::Ingest::admit`]), on whatever stores that core was built with
//! (DynamoDB and Kinesis on AWS, the embedded SQLite store locally).

use crate::ports::{Admitted, EventStore};
use ingest::Ingest;
use ingest::ports::{Clock, DedupStore, EventPublisher};
use std::time::Instant;
use twilio_events::CloudEvent;
use twilio_events::metrics::{Metrics, MetricsSink};
use twilio_events::quarantine::Quarantine;

/// The name reconciled batches carry in ingest's logs.
const ORIGIN: &str = "reconcile";

impl<D, P, Q, M, C> EventStore for Ingest<D, P, Q, M, C>
where
    D: DedupStore,
    P: EventPublisher,
    Q: Quarantine,
    M: MetricsSink,
    C: Clock,
{
    async fn store(&self, events: Vec<CloudEvent<'static>>, deadline: Instant) -> Admitted {
        // The core's own counts (Received, Accepted…) stay out of the function's metrics: the
        // run publishes its own, and each metric name is a billed custom metric.
        let mut metrics = Metrics::new(ORIGIN);
        let mut total = Admitted::default();
        // At most one stream put's worth at a time, so the claims' lease fits each put.
        for chunk in chunks(events, ingest::ports::MAX_RECORDS_PER_PUT) {
            let admitted = self.admit(chunk, ORIGIN, deadline, &mut metrics).await;
            total.stored += admitted.stored;
            total.duplicates += admitted.duplicates;
            total.in_progress += admitted.in_progress;
            total.failed += admitted.failed;
        }
        total
    }
}

fn chunks<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut chunks = Vec::new();
    let mut rest = items.into_iter().peekable();
    while rest.peek().is_some() {
        chunks.push(rest.by_ref().take(size).collect());
    }
    chunks
}
