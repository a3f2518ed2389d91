//! The ports: what a reconciliation run needs, as traits, and the pure rules every run follows.
//!
//! - [`LedgerView`]: crm-sync's status ledger, read only: the resources that are not final, by
//!   when they last changed, and how far one resource has got.
//! - [`TwilioApi`]: Twilio's REST API: fetch one message or call, list a window of them.
//! - [`EventStore`]: where reconciled events go: ingest's storing path (dedup, stream).
//!
//! The rules: [`lookup_windows`] (when a stuck resource is looked up: once as its age crosses
//! each step of [`LOOKUP_STEPS`], then never again) and [`is_ahead`] (what is worth storing).

use crate::processor::Window;
use std::future::Future;
use std::time::{Duration, Instant};
use twilio_events::CloudEvent;

pub use crm_sync::ports::{LedgerError, OpenResource};
pub use crm_sync::update::ResourceKind;
pub use ingest::Admitted;
pub use twilio_events::reconciled::Resource;

/// A stuck resource is looked up when its last change is this old, once per step; after the
/// last step it is left alone (a message may rest in `sent` for ever when the carrier sends no
/// receipt, and Twilio keeps no status newer than a day's silence would reveal).
pub const LOOKUP_STEPS: [Duration; 4] = [
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(4 * 60 * 60),
    Duration::from_secs(24 * 60 * 60),
];

/// The windows of last-change times (milliseconds since the epoch, `[from, to)`) whose stuck
/// resources a run at `now_ms` looks up, when runs happen every `every`: for each step, the
/// resources whose age crossed it since the previous run, and half a period more, so that a
/// run that starts late leaves no gap (a resource may then be looked up twice for one step:
/// one more request, nothing stored twice). A missed run skips that step for its resources,
/// and the next step catches them.
pub fn lookup_windows(now_ms: i64, every: Duration) -> Vec<(i64, i64)> {
    let width = overlapping(every).as_millis() as i64;
    LOOKUP_STEPS
        .iter()
        .map(|step| {
            let to = now_ms - step.as_millis() as i64;
            (to - width, to)
        })
        .collect()
}

/// A window one and a half periods wide: consecutive runs overlap by half a period, so a late
/// start (a cold start, a delayed schedule) leaves no time uncovered.
pub fn overlapping(every: Duration) -> Duration {
    every + every / 2
}

/// Whether the REST API's `remote` status is worth storing, given the rank the ledger holds for
/// it (`None`: the ledger never saw it). Only a higher rank is: an equal rank is the same stage
/// (crm-sync breaks such ties by event time, and Twilio's own events for it arrived), and a
/// status with no rank (an inbound message's `received`) is not part of a delivery lifecycle.
pub fn is_ahead(known_rank: Option<u8>, remote: &Resource) -> bool {
    match (remote.rank(), known_rank) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(remote), Some(known)) => remote > known,
    }
}

/// crm-sync's status ledger, read only.
pub trait LedgerView: Send + Sync {
    /// The resources of `kind` that are not final and last changed in `[from_ms, to_ms)`.
    fn open_between(
        &self,
        kind: ResourceKind,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<OpenResource>, LedgerError>> + Send;

    /// The status the ledger holds for `sid`, if it holds one.
    fn known(&self, sid: &str) -> impl Future<Output = Result<Option<Known>, LedgerError>> + Send;
}

/// A resource's status as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub status: String,
    pub rank: u8,
}

/// What a fetch found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    Found(Box<Resource>),
    /// 404: deleted, or redacted under a data retention policy. Recorded, never asked again
    /// for this step.
    NotFound,
}

/// One page of a list, and where the next one is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourcePage {
    pub resources: Vec<Resource>,
    /// The next page's URI as Twilio gives it (`next_page_uri`), `None` on the last page.
    pub next_page: Option<String>,
}

/// Why a call to Twilio's REST API failed.
#[derive(Debug, thiserror::Error)]
pub enum TwilioApiError {
    /// 429: too many requests for the account's concurrency. Retried after a pause.
    #[error("Twilio's REST API is throttling (HTTP 429); retried after a pause")]
    Throttled { retry_after: Option<Duration> },
    /// 5xx: retried after a pause.
    #[error("Twilio's REST API failed (HTTP {status}); retried after a pause")]
    Server { status: u16 },
    /// 401/403: the credentials are wrong or may not read this resource. Stops the run.
    #[error(
        "Twilio's REST API refused the credentials (HTTP {status}{detail}); check the API key \
         (or Auth Token) and the account SID in the reconcile secret"
    )]
    Unauthorized { status: u16, detail: String },
    /// Another 4xx: the request is wrong for Twilio (a bug, or an API change).
    #[error("Twilio's REST API refused {path} (HTTP {status}{detail})")]
    Refused {
        path: String,
        status: u16,
        detail: String,
    },
    /// No answer (connection refused, timed out, TLS).
    #[error("could not reach Twilio's REST API ({source}); check the network and TWILIO_API_BASE")]
    Unreachable {
        #[source]
        source: reqwest::Error,
    },
    /// A list whose `next_page_uri` names a page it already gave: paging on would never end.
    #[error("Twilio's REST API gave the page {uri} twice; the sweep stops there")]
    PageLoop { uri: String },
    /// An answer that is not what the API describes.
    #[error("Twilio's REST API answered {path} with a body this version cannot read: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl TwilioApiError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::Server { .. } | Self::Unreachable { .. }
        )
    }
}

/// Twilio's REST API (2010-04-01 Messages and Calls).
pub trait TwilioApi: Send + Sync {
    /// `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json` or `.../Calls/{Sid}.json`.
    fn fetch(
        &self,
        kind: ResourceKind,
        sid: &str,
    ) -> impl Future<Output = Result<Fetched, TwilioApiError>> + Send;

    /// One page of the messages sent (or calls started) in `window`: the first page when
    /// `page` is `None`, else the page `next_page` named.
    fn list(
        &self,
        kind: ResourceKind,
        window: &Window,
        page: Option<&str>,
    ) -> impl Future<Output = Result<ResourcePage, TwilioApiError>> + Send;
}

/// Where reconciled events are stored: ingest's path, one claim per fact, then the stream.
pub trait EventStore: Send + Sync {
    fn store(
        &self,
        events: Vec<CloudEvent<'static>>,
        deadline: Instant,
    ) -> impl Future<Output = Admitted> + Send;
}

impl<T: LedgerView> LedgerView for std::sync::Arc<T> {
    fn open_between(
        &self,
        kind: ResourceKind,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<OpenResource>, LedgerError>> + Send {
        (**self).open_between(kind, from_ms, to_ms)
    }

    fn known(&self, sid: &str) -> impl Future<Output = Result<Option<Known>, LedgerError>> + Send {
        (**self).known(sid)
    }
}

impl<T: TwilioApi> TwilioApi for std::sync::Arc<T> {
    fn fetch(
        &self,
        kind: ResourceKind,
        sid: &str,
    ) -> impl Future<Output = Result<Fetched, TwilioApiError>> + Send {
        (**self).fetch(kind, sid)
    }

    fn list(
        &self,
        kind: ResourceKind,
        window: &Window,
        page: Option<&str>,
    ) -> impl Future<Output = Result<ResourcePage, TwilioApiError>> + Send {
        (**self).list(kind, window, page)
    }
}

impl<T: EventStore> EventStore for std::sync::Arc<T> {
    fn store(
        &self,
        events: Vec<CloudEvent<'static>>,
        deadline: Instant,
    ) -> impl Future<Output = Admitted> + Send {
        (**self).store(events, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: &str) -> Resource {
        Resource::Message(
            serde_json::from_value(serde_json::json!({
                "sid": "SM1a4d7f0c3e6b9d2f5a8c1e4b7d0f3a6c",
                "account_sid": "AC6efc9b5850127eaea3c1e8dea35cdf4a", "status": status,
            }))
            .unwrap(),
        )
    }

    #[test]
    fn only_a_higher_rank_or_an_unseen_resource_is_ahead() {
        let sent = message("sent").rank();
        assert!(is_ahead(None, &message("sent")));
        assert!(is_ahead(sent, &message("delivered")));
        assert!(!is_ahead(sent, &message("sent")));
        assert!(!is_ahead(message("delivered").rank(), &message("sent")));
        assert!(
            !is_ahead(None, &message("received")),
            "inbound: no lifecycle"
        );
    }

    #[test]
    fn each_step_is_looked_up_and_late_runs_leave_no_gap() {
        // GIVEN a resource last changed at t = 0 and runs every 15 minutes (7 s late)
        let every = Duration::from_secs(15 * 60);
        let changed = 0_i64;
        let runs = (1..=200).map(|i| i * every.as_millis() as i64 + 7_000);
        // WHEN each run computes its windows
        let hits: Vec<i64> = runs
            .filter(|now| {
                lookup_windows(*now, every)
                    .iter()
                    .any(|(from, to)| (*from..*to).contains(&changed))
            })
            .collect();
        // THEN it is looked up at each step, once more half a period later at most: at 15 min,
        // 1 h, 4 h and 24 h of age (and 15 minutes after each, from the overlap)
        let ages: Vec<i64> = hits.iter().map(|now| (now - changed) / 60_000).collect();
        assert_eq!(ages, vec![15, 30, 60, 75, 240, 255, 1440, 1455]);
    }
}
