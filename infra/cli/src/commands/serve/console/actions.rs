//! Replaying and discarding quarantined items, each recorded in `<data-dir>/console-actions.jsonl`.
//!
//! A replay takes the path reconciled events take into the pipeline (`reconcile::ports::
//! EventStore`, which is `ingest::Ingest::admit`): claimed in the dedup store, put in the
//! stream, so an event stored meanwhile is a duplicate, not a second copy. Only ingest's items
//! replay: their payload is a delivery whose signature was verified before it was set aside.
//! Items of crm-sync or quota-alert are stream records already; their fix is the consumer's
//! own replay (`twilio-events stream replay --consumer …`).

use super::{Console, ConsoleError};
use reconcile::ports::{Admitted, EventStore};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use twilio_events::CloudEvent;
use twilio_events::event::parse_delivery;

pub const ACTIONS_FILE: &str = "console-actions.jsonl";

/// How long a replay may take to store its events.
const REPLAY_DEADLINE: Duration = Duration::from_secs(10);

/// One line of the actions log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Action {
    /// RFC 3339, UTC.
    pub at: String,
    /// `replay` or `discard`.
    pub action: String,
    /// The quarantined item's id.
    pub item: String,
    /// What happened, in words (counts and parse errors: no payload).
    pub outcome: String,
}

/// Where replayed events go: ingest's storing path. Object-safe, so the console need not be
/// generic over ingest's stores.
pub trait Replayer: Send + Sync {
    fn replay(
        &self,
        events: Vec<CloudEvent<'static>>,
    ) -> Pin<Box<dyn Future<Output = Admitted> + Send + '_>>;
}

impl<S: EventStore> Replayer for S {
    fn replay(
        &self,
        events: Vec<CloudEvent<'static>>,
    ) -> Pin<Box<dyn Future<Output = Admitted> + Send + '_>> {
        Box::pin(self.store(events, Instant::now() + REPLAY_DEADLINE))
    }
}

fn record(
    console: &Console,
    action: &str,
    item: &str,
    outcome: String,
) -> Result<(), ConsoleError> {
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    tracing::info!(action, item, outcome = %outcome, "console action");
    console
        .actions
        .append(&Action {
            at,
            action: action.to_owned(),
            item: item.to_owned(),
            outcome,
        })
        .map_err(ConsoleError::Actions)
}

/// The events of an ingest item's payload, or why it still cannot be read.
fn events_of(payload: &[u8]) -> Result<Vec<CloudEvent<'static>>, String> {
    let delivery = parse_delivery(payload).map_err(|e| e.to_string())?;
    let events = delivery.into_strict().map_err(|e| e.to_string())?;
    events
        .iter()
        .map(|event| {
            CloudEvent::parse_owned(event.raw_json().to_owned()).map_err(|e| e.to_string())
        })
        .collect()
}

pub async fn replay(console: &Console, id: &str) -> Result<(), ConsoleError> {
    let items = console.quarantine.items();
    let Some(item) = items.iter().find(|item| item.id == id) else {
        return record(
            console,
            "replay",
            id,
            "no such item (already replayed or discarded)".into(),
        );
    };
    if item.source != "ingest" {
        let outcome = format!(
            "not replayed: a {} item is a stream record already; after the fix, run \
             `twilio-events stream replay --consumer {}`",
            item.source, item.source
        );
        return record(console, "replay", id, outcome);
    }
    let Some(replayer) = &console.replayer else {
        return record(
            console,
            "replay",
            id,
            "not replayed: this serve has no pipeline to replay into".into(),
        );
    };
    let events = match events_of(&item.payload_bytes()) {
        Ok(events) => events,
        Err(error) => {
            return record(
                console,
                "replay",
                id,
                format!("not replayed, still unreadable: {error}"),
            );
        }
    };
    let count = events.len();
    let admitted = replayer.replay(events).await;
    let outcome = if admitted.failed > 0 || admitted.in_progress > 0 {
        format!(
            "{} of {count} event(s) not stored yet (store trouble or another attempt in progress); the item stays: try again",
            admitted.failed + admitted.in_progress
        )
    } else {
        console
            .quarantine
            .remove(id)
            .map_err(ConsoleError::Quarantine)?;
        format!(
            "replayed: {} event(s) stored in the stream, {} already there; removed from the quarantine",
            admitted.stored, admitted.duplicates
        )
    };
    record(console, "replay", id, outcome)
}

pub fn discard(console: &Console, id: &str) -> Result<(), ConsoleError> {
    let outcome = match console
        .quarantine
        .remove(id)
        .map_err(ConsoleError::Quarantine)?
    {
        Some(item) => format!("discarded ({} item, {})", item.source, item.reason),
        None => "no such item (already replayed or discarded)".to_owned(),
    };
    record(console, "discard", id, outcome)
}
