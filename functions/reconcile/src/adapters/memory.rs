//! In-memory fakes of the ports, for the run's unit tests (feature `testing`).

use crate::ports::{
    Admitted, EventStore, Fetched, Known, LedgerError, LedgerView, OpenResource, Resource,
    ResourceKind, ResourcePage, TwilioApi, TwilioApiError,
};
use crate::processor::Window;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use twilio_events::CloudEvent;

/// A ledger: rows by SID.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    pub rows: Mutex<HashMap<String, OpenResource>>,
}

impl MemoryLedger {
    pub fn insert(&self, row: OpenResource) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.insert(row.sid.clone(), row);
        }
    }
}

impl LedgerView for MemoryLedger {
    async fn open_between(
        &self,
        kind: ResourceKind,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<OpenResource>, LedgerError> {
        let rows = self.rows.lock().map_err(|_| LedgerError::Poisoned)?;
        Ok(rows
            .values()
            .filter(|r| r.kind == kind && (from_ms..to_ms).contains(&r.changed_at_ms))
            .filter(|r| !is_final(r))
            .cloned()
            .collect())
    }

    async fn known(&self, sid: &str) -> Result<Option<Known>, LedgerError> {
        let rows = self.rows.lock().map_err(|_| LedgerError::Poisoned)?;
        Ok(rows.get(sid).map(|r| Known {
            status: r.status.clone(),
            rank: r.rank,
        }))
    }
}

fn is_final(row: &OpenResource) -> bool {
    match row.kind {
        ResourceKind::Message => {
            twilio_events::status::MessageStatus::parse(&row.status).is_final()
        }
        ResourceKind::Call => twilio_events::status::CallStatus::parse(&row.status).is_final(),
    }
}

/// Twilio's REST API, scripted: resources by SID, and errors to answer first, per SID.
#[derive(Debug, Default)]
pub struct ScriptedApi {
    pub resources: Mutex<HashMap<String, Resource>>,
    /// Answered (and consumed) before the resource, per SID.
    pub errors: Mutex<HashMap<String, VecDeque<u16>>>,
    pub requests: Mutex<Vec<String>>,
    /// Resources per list page.
    pub page_size: usize,
}

impl ScriptedApi {
    pub fn with(resources: impl IntoIterator<Item = Resource>) -> Self {
        Self {
            resources: Mutex::new(
                resources
                    .into_iter()
                    .map(|r| (r.sid().to_owned(), r))
                    .collect(),
            ),
            page_size: 50,
            ..Self::default()
        }
    }

    pub fn fail_first(&self, sid: &str, statuses: &[u16]) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.insert(sid.to_owned(), statuses.iter().copied().collect());
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl TwilioApi for ScriptedApi {
    async fn fetch(&self, _kind: ResourceKind, sid: &str) -> Result<Fetched, TwilioApiError> {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(format!("fetch {sid}"));
        }
        let next_error = self
            .errors
            .lock()
            .ok()
            .and_then(|mut e| e.get_mut(sid).and_then(VecDeque::pop_front));
        match next_error {
            Some(429) => {
                return Err(TwilioApiError::Throttled {
                    retry_after: Some(Duration::from_millis(1)),
                });
            }
            Some(401) => {
                return Err(TwilioApiError::Unauthorized {
                    status: 401,
                    detail: String::new(),
                });
            }
            Some(status) => return Err(TwilioApiError::Server { status }),
            None => {}
        }
        let resources = self
            .resources
            .lock()
            .map_err(|_| TwilioApiError::Server { status: 500 })?;
        Ok(match resources.get(sid) {
            Some(r) => Fetched::Found(Box::new(r.clone())),
            None => Fetched::NotFound,
        })
    }

    async fn list(
        &self,
        kind: ResourceKind,
        _window: &Window,
        page: Option<&str>,
    ) -> Result<ResourcePage, TwilioApiError> {
        let start: usize = page.and_then(|p| p.parse().ok()).unwrap_or(0);
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(format!("list {} from {start}", kind.as_str()));
        }
        let resources = self
            .resources
            .lock()
            .map_err(|_| TwilioApiError::Server { status: 500 })?;
        let mut all: Vec<&Resource> = resources
            .values()
            .filter(|r| {
                matches!(
                    (r, kind),
                    (Resource::Message(_), ResourceKind::Message)
                        | (Resource::Call(_), ResourceKind::Call)
                )
            })
            .collect();
        all.sort_by(|a, b| a.sid().cmp(b.sid()));
        let end = (start + self.page_size.max(1)).min(all.len());
        Ok(ResourcePage {
            resources: all[start.min(end)..end]
                .iter()
                .map(|r| (*r).clone())
                .collect(),
            next_page: (end < all.len()).then(|| end.to_string()),
        })
    }
}

/// A store with ingest's dedup rule (one fact, one event) and nothing else.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub keys: Mutex<HashSet<String>>,
    pub events: Mutex<Vec<String>>,
}

impl MemoryStore {
    pub fn events(&self) -> Vec<String> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventStore for MemoryStore {
    async fn store(&self, events: Vec<CloudEvent<'static>>, _deadline: Instant) -> Admitted {
        let mut admitted = Admitted::default();
        let (Ok(mut keys), Ok(mut stored)) = (self.keys.lock(), self.events.lock()) else {
            admitted.failed = events.len();
            return admitted;
        };
        for event in events {
            if keys.insert(event.dedup_key()) {
                stored.push(event.raw_json().to_owned());
                admitted.stored += 1;
            } else {
                admitted.duplicates += 1;
            }
        }
        admitted
    }
}
