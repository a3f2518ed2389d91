//! Making a sink active (docs/twilio.md §6): `POST /Sinks/{Sid}/Test` makes Twilio send the test
//! event to the sink; `POST /Sinks/{Sid}/Validate` with the event's `data.test_id` activates it.
//! The test id comes from `--test-id`, or from the local stream of a `serve` (`--data-dir`).

use super::SetupError;
use super::apply::print_step;
use super::events_api::EventsApi;
use super::plan::Validation;
use ingest::adapters::sqlite::SqliteStore;
use std::path::Path;
use std::time::{Duration, Instant};
use twilio_events::event::{CloudEvent, Detail};

/// Validates the sink `sid` (now `status`); the number of calls that changed something.
pub async fn validate(
    api: &EventsApi,
    sid: &str,
    status: &str,
    validation: &Validation,
    destination: &str,
) -> Result<usize, SetupError> {
    let mut changes = 0;
    let test_id = match validation {
        Validation::TestId(id) => {
            print_step(
                "validation",
                format_args!("{sid} is {status}: validating with --test-id {id}"),
            );
            id.trim().to_owned()
        }
        Validation::WaitInStream { .. } | Validation::SendTestEvent => {
            // Note where the local stream ends before the test event can arrive.
            let watcher = match validation {
                Validation::WaitInStream { dir, wait } => Some((StreamWatcher::start(dir)?, *wait)),
                _ => None,
            };
            let result = api.test_sink(sid).await?;
            changes += 1;
            print_step(
                "validation",
                format_args!(
                    "{sid} is {status}: sent the test event to {destination} (POST /Sinks/{sid}/Test: {result})"
                ),
            );
            let Some((mut watcher, wait)) = watcher else {
                return Err(SetupError::TestIdNeeded {
                    sink_sid: sid.to_owned(),
                    destination: destination.to_owned(),
                });
            };
            let id = watcher.wait_for_test_id(wait, sid).await?;
            print_step(
                "validation",
                format_args!("the test event arrived in {}: test_id {id}", watcher.dir),
            );
            id
        }
    };
    let result = api.validate_sink(sid, &test_id).await?;
    if result != "valid" {
        return Err(SetupError::NotValid {
            sink_sid: sid.to_owned(),
            test_id,
            result,
        });
    }
    changes += 1;
    print_step(
        "validation",
        format_args!("{sid} validated (POST /Sinks/{sid}/Validate: {result})"),
    );
    Ok(changes)
}

/// The local stream of a `serve`, read from where it ended when setup started watching.
struct StreamWatcher {
    store: SqliteStore,
    dir: String,
    after: i64,
}

impl StreamWatcher {
    fn start(dir: &Path) -> Result<Self, SetupError> {
        let shown = dir.display().to_string();
        let store_error = |source| SetupError::Store {
            dir: shown.clone(),
            source,
        };
        let store = SqliteStore::open(dir).map_err(store_error)?;
        let mut after = 0;
        loop {
            let batch = store.read_after(after, 1000).map_err(store_error)?;
            let Some(last) = batch.last() else { break };
            after = sequence(&last.sequence_number, after);
        }
        Ok(Self {
            store,
            dir: shown.clone(),
            after,
        })
    }

    /// The test_id of the first test event appended since `start`.
    async fn wait_for_test_id(
        &mut self,
        wait: Duration,
        sink_sid: &str,
    ) -> Result<String, SetupError> {
        let deadline = Instant::now() + wait;
        loop {
            let batch =
                self.store
                    .read_after(self.after, 1000)
                    .map_err(|source| SetupError::Store {
                        dir: self.dir.clone(),
                        source,
                    })?;
            for record in &batch {
                self.after = sequence(&record.sequence_number, self.after);
                if let Some(id) = test_id(&record.data) {
                    return Ok(id);
                }
            }
            if batch.is_empty() {
                if Instant::now() >= deadline {
                    return Err(SetupError::NoTestEvent {
                        sink_sid: sink_sid.to_owned(),
                        dir: self.dir.clone(),
                        wait_s: wait.as_secs(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn sequence(text: &str, fallback: i64) -> i64 {
    text.parse().unwrap_or(fallback)
}

/// The test_id of a record holding Twilio's sink test event.
fn test_id(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    match CloudEvent::parse(text).ok()?.detail {
        Detail::Test(test) => Some(test.test_id),
        _ => None,
    }
}
